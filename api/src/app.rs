//! The HTTP application: state, router, and `serve`.

use crate::auth::TokenKeys;
use crate::graphql::{build_schema, AppSchema, RequestContext};
use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use eventstore::{Database, EventStore};
use projections::{Projections, ReadDb};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use uuid::Uuid;

/// Everything a request needs. Cheap to share: pools and channels inside.
pub struct AppState {
    pub db: Database,
    pub store: EventStore,
    pub read: ReadDb,
    pub projections: Projections,
    pub tokens: TokenKeys,
    /// Longest a query waits for `minPosition` before `CONSISTENCY_TIMEOUT`.
    pub consistency_timeout: Duration,
    pub login_throttle: crate::throttle::LoginThrottle,
}

impl AppState {
    /// Starts the projections (caught up first) and builds the state.
    pub async fn start(
        db: Database,
        store: EventStore,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow_free::Result<Arc<Self>> {
        let read = ReadDb::new(&db);
        let projections = Projections::start(&read, &store, shutdown).await?;
        let tokens = TokenKeys::new(store.master_key().derive("session-token-v1"));
        Ok(Arc::new(Self {
            db,
            store,
            read,
            projections,
            tokens,
            consistency_timeout: Duration::from_secs(5),
            login_throttle: Default::default(),
        }))
    }
}

/// A tiny boxed-error result for bootstrap code, without pulling in `anyhow`.
pub mod anyhow_free {
    pub type Error = Box<dyn std::error::Error + Send + Sync>;
    pub type Result<T> = std::result::Result<T, Error>;
}

#[derive(Clone)]
struct Http {
    state: Arc<AppState>,
    schema: AppSchema,
}

pub fn router(state: Arc<AppState>) -> Router {
    let schema = build_schema(Some(state.clone()));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/graphql", get(graphiql).post(graphql))
        .layer(RequestBodyLimitLayer::new(256 * 1024))
        // Request log: method, path, status, latency. Never the query string or body: GraphQL
        // over GET carries variables (personal data) in the query string.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
                })
                .on_response(|res: &axum::http::Response<_>, latency: Duration, _span: &tracing::Span| {
                    tracing::info!(status = res.status().as_u16(), latency_ms = latency.as_secs_f64() * 1000.0, "request");
                }),
        )
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        .with_state(Http { state, schema })
}

async fn readyz(State(http): State<Http>) -> impl IntoResponse {
    match http.state.db.backend().migrations_applied().await {
        Ok(true) => (StatusCode::OK, "ready"),
        Ok(false) => (StatusCode::SERVICE_UNAVAILABLE, "migrations pending"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable"),
    }
}

async fn graphiql() -> impl IntoResponse {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
}

async fn graphql(
    State(http): State<Http>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    req: GraphQLRequest,
) -> GraphQLResponse {
    let viewer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .and_then(|t| http.state.tokens.verify(t.trim()));
    let request_id = Uuid::now_v7();
    let correlation_id = headers
        .get("x-correlation-id")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| Uuid::parse_str(h.trim()).ok())
        .unwrap_or(request_id);
    let mut req = req.into_inner();
    if let Some(v) = &viewer {
        let (items, customers) = crate::graphql::loaders::for_request(&http.state.read, v.store_id);
        req = req.data(items).data(customers);
    }
    let req = req.data(RequestContext { viewer, request_id, correlation_id, client_ip: Some(peer.ip()) });
    let mut response = http.schema.execute(req).await;
    // Resolver errors always carry a code (ApiError). Errors without one come from
    // async-graphql itself — syntax, validation, wrong input types, depth/complexity limits —
    // and are all the client's input.
    for e in &mut response.errors {
        let ext = e.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", "BAD_USER_INPUT");
        }
    }
    response.into()
}

/// Serves until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, router(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await
}
