//! The HTTP application: state, router, and `serve`.

use crate::graphql::{build_schema, AppSchema, RequestContext};
use crate::sessions::{SessionSettings, Sessions};
use crate::throttle::LoginThrottle;
use async_graphql::http::GraphiQLSource;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use eventstore::erasures::ErasureLedger;
use eventstore::{Accounts, Database, EventStore, Position};
use projections::{Kind, Projections, ReadDb};
use std::net::{IpAddr, SocketAddr};
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
    /// Credentials, sessions, one-time tokens, login counters.
    pub accounts: Accounts,
    /// The verifiable ledger: signed tree heads and proofs.
    pub ledger: eventstore::ledger::Ledger,
    pub sessions: Sessions,
    pub login_throttle: LoginThrottle,
    pub settings: Settings,
    /// Longest a query waits for `minPosition` before `CONSISTENCY_TIMEOUT`.
    pub consistency_timeout: Duration,
    /// Where erasures are also recorded, outside the database (see `eventstore::erasures`).
    pub erasure_ledger: Option<ErasureLedger>,
    /// Automatic persisted queries registered by clients.
    pub persisted_queries: crate::persisted::PersistedQueries,
    /// Documents kept parsed by their text.
    pub parsed: crate::parsed::ParsedDocuments,
    /// The log as it grows, for subscriptions.
    pub live: crate::live::Feed,
    /// Open websockets per session.
    pub sockets: crate::ws::Sockets,
    /// Turns true when the server shuts down (websockets close with 1001).
    pub shutdown: watch::Receiver<bool>,
}

/// Server settings (each has a `serve` flag and environment variable; see the CLI).
#[derive(Debug, Clone)]
pub struct Settings {
    pub sessions: SessionSettings,
    /// Proxies whose `X-Forwarded-For` is believed. Empty: the peer address is the client.
    pub trusted_proxies: Vec<IpAddr>,
    /// Most mutations one request may run.
    pub max_mutations: usize,
    /// Serve introspection to callers who are not signed in.
    pub public_introspection: bool,
    /// How many password hashes (logins, password changes) may run at once.
    pub concurrent_password_hashes: usize,
    /// How long a connection may take to send its request headers.
    pub header_read_timeout: Duration,
    /// How long requests in flight may take to finish once shutdown begins.
    pub shutdown_grace: Duration,
    /// How often new events are sealed into a signed tree head.
    pub seal_interval: Duration,
    /// Browser origins allowed to call the API (CORS). Empty: none.
    pub cors_origins: Vec<axum::http::HeaderValue>,
    /// `/readyz` fails when a projection has left an event unapplied for longer than this.
    pub readiness_max_lag: Duration,
    /// The erasure ledger file. `serve` always has one (default `<data-dir>/erasure-ledger.jsonl`);
    /// `None` only for embedded uses such as tests that do not restore.
    pub erasure_ledger: Option<std::path::PathBuf>,
    /// How often the retention job runs (at startup, then at this interval). `None`: never
    /// (embedded uses and tests, which run it with an injected clock).
    pub retention_interval: Option<Duration>,
    /// Websocket subscriptions: limits and timeouts.
    pub ws: crate::ws::WsSettings,
    /// When set, only these documents run (and automatic persisted queries are off).
    pub trusted_documents: Option<crate::persisted::TrustedDocuments>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            sessions: SessionSettings::default(),
            trusted_proxies: Vec::new(),
            max_mutations: 10,
            public_introspection: false,
            concurrent_password_hashes: std::thread::available_parallelism().map_or(2, |n| n.get()),
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(20),
            seal_interval: Duration::from_secs(60),
            cors_origins: Vec::new(),
            readiness_max_lag: Duration::from_secs(30),
            erasure_ledger: None,
            retention_interval: None,
            ws: crate::ws::WsSettings::default(),
            trusted_documents: None,
        }
    }
}

impl AppState {
    /// Starts the projections (caught up first) and builds the state, with default settings.
    pub async fn start(
        db: Database,
        store: EventStore,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow_free::Result<Arc<Self>> {
        Self::start_with(db, store, shutdown, Settings::default()).await
    }

    pub async fn start_with(
        db: Database,
        store: EventStore,
        shutdown: watch::Receiver<bool>,
        settings: Settings,
    ) -> anyhow_free::Result<Arc<Self>> {
        // The recorder exists before the first counter.
        crate::metrics::handle();
        // Never serve (or project) under a master key the database was not initialised with.
        db.check_master_key(store.master_key()).await?;
        // Before the first request: a restored copy must not bring an erased subject back.
        let erasure_ledger = settings.erasure_ledger.clone().map(ErasureLedger::new);
        let read = ReadDb::new(&db);
        if let Some(ledger) = &erasure_ledger {
            let n = commands::privacy::reapply_erasures(&store, &Accounts::new(&db), ledger).await?;
            if n > 0 {
                tracing::warn!(erasures = n, "re-applied erasures that a restored copy had undone");
                // Purge the read models and scrub storage before the first request.
                projections::catch_up_all(&read, &store).await?;
                db.scrub(&erasure_tables()).await?;
            }
        }
        let projections = Projections::start(&read, &store, shutdown.clone()).await?;
        let accounts = Accounts::new(&db);
        let ledger = eventstore::ledger::Ledger::new(&db, store.master_key());
        ledger.signer().await?; // created with the database, not on first use
        tokio::spawn(seal_periodically(ledger.clone(), settings.seal_interval, shutdown.clone()));
        let retention = settings.retention_interval;
        // The feed starts where the read models are (caught up just now): nobody can have
        // subscribed before this, and a subscriber with `fromPosition` replays from the log.
        let from = projections.status().into_iter().map(|(_, p)| p).min().unwrap_or(Position::START);
        let live = crate::live::Feed::start(store.clone(), from, settings.ws.feed_capacity, shutdown.clone());
        let persisted_queries = crate::persisted::PersistedQueries::new(settings.trusted_documents.clone());
        let state = Arc::new(Self {
            ledger,
            sessions: Sessions::new(accounts.clone(), settings.sessions),
            login_throttle: LoginThrottle::new(accounts.clone(), settings.concurrent_password_hashes),
            accounts,
            db,
            store,
            read,
            projections,
            settings,
            consistency_timeout: Duration::from_secs(5),
            erasure_ledger,
            persisted_queries,
            parsed: Default::default(),
            live,
            sockets: Default::default(),
            shutdown: shutdown.clone(),
        });
        if let Some(interval) = retention {
            tokio::spawn(crate::retention::run_periodically(state.clone(), interval, shutdown));
        }
        Ok(state)
    }

    /// After an erasure at `position`: once the read models have purged the subject, scrubs
    /// storage (WAL checkpoint on SQLite, VACUUM on PostgreSQL) so no copy of the purged values
    /// is left behind. Failures are logged: the erasure itself is complete either way.
    pub async fn scrub_after_erasure(&self, position: Option<Position>) {
        if let Some(p) = position {
            if let Err(e) = self.projections.wait_for(p, Duration::from_secs(30)).await {
                tracing::warn!(error = %e, "read models did not reach the erasure in time; storage not scrubbed yet");
                return;
            }
        }
        if let Err(e) = self.db.scrub(&erasure_tables()).await {
            tracing::warn!(error = %e, "storage scrub after an erasure failed");
        }
    }
}

/// The read-model tables an erasure purges rows of.
pub fn erasure_tables() -> Vec<&'static str> {
    [Kind::Customers, Kind::Privacy, Kind::Directory].iter().flat_map(|k| k.tables().iter().copied()).collect()
}

/// Seals new events into a signed head every `interval` (several servers may run this: one
/// seals at a time, the others find nothing new).
async fn seal_periodically(
    ledger: eventstore::ledger::Ledger,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => return,
        }
        if let Err(e) = ledger.seal().await {
            tracing::warn!(error = %e, "sealing the ledger failed; retrying at the next interval");
        }
    }
}

/// The client's address: the peer, or — when the peer is a trusted proxy — the nearest address
/// in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded.into_iter().rev().find(|a| !trusted.contains(a)).unwrap_or(peer)
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
    // CORS: only the configured origins; preflights are answered either way, without
    // permission for an origin that is not listed.
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::AllowOrigin::list(state.settings.cors_origins.clone()))
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderName::from_static("x-correlation-id"),
        ])
        .max_age(Duration::from_secs(600));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/graphql", get(graphql_get).post(graphql))
        .route("/graphql/ws", get(graphql_ws))
        .route("/.well-known/inventory-connect/ledger-key", get(ledger_key))
        .route("/metrics", get(metrics_endpoint))
        .layer(RequestBodyLimitLayer::new(256 * 1024))
        // Request log: method, path, status, latency. Never the query string or body: GraphQL
        // over GET carries variables (personal data) in the query string.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                    // `otel.*` and the semantic-convention names shape the exported trace span.
                    tracing::info_span!(
                        "http",
                        otel.name = %format_args!("{} {}", req.method(), req.uri().path()),
                        otel.kind = "server",
                        request_id = %id,
                        method = %req.method(),
                        path = %req.uri().path(),
                        http.response.status_code = tracing::field::Empty,
                    )
                })
                .on_response(|res: &axum::http::Response<_>, latency: Duration, span: &tracing::Span| {
                    span.record("http.response.status_code", i64::from(res.status().as_u16()));
                    tracing::info!(
                        status = res.status().as_u16(),
                        latency_ms = latency.as_secs_f64() * 1000.0,
                        "request"
                    );
                }),
        )
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        // Every request gets an id (a UUID; the client's own when it sends one): on every log
        // line of the request, in the `x-request-id` response header, and in the metadata of
        // the events it writes.
        .layer(tower_http::request_id::PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(axum::middleware::map_request(ensure_request_id))
        .layer(cors)
        .with_state(Http { state, schema })
}

/// Ready when the database answers, every migration is applied, and no projection has left an
/// event unapplied for longer than `settings.readiness_max_lag` (a stopped or far-behind
/// projection serves stale reads).
async fn readyz(State(http): State<Http>) -> Response {
    let s = &http.state;
    match s.db.backend().migrations_applied().await {
        Ok(true) => {}
        Ok(false) => return (StatusCode::SERVICE_UNAVAILABLE, "migrations pending").into_response(),
        Err(_) => return (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response(),
    }
    let now = chrono::Utc::now();
    for (kind, at) in s.projections.status() {
        match s.db.backend().read_committed(at, 1).await {
            Ok(next) => {
                if let Some(oldest) = next.first() {
                    let behind = now - oldest.recorded_at;
                    if behind.to_std().unwrap_or_default() > s.settings.readiness_max_lag {
                        let body = format!("projection {} is {} s behind", kind.name(), behind.num_seconds());
                        return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
                    }
                }
            }
            Err(_) => return (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response(),
        }
    }
    (StatusCode::OK, "ready").into_response()
}

async fn metrics_endpoint(State(http): State<Http>) -> Response {
    let body = crate::metrics::render(&http.state).await;
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// The ledger's signed-note verifier key, for auditors' tools and witnesses.
async fn ledger_key(State(http): State<Http>) -> Response {
    match http.state.ledger.signer().await {
        Ok(s) => ([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{}\n", s.verifier_key()))
            .into_response(),
        Err(e) => {
            crate::error::ApiError::internal("ledger key", &e);
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

async fn graphiql() -> impl IntoResponse {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
}

const REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

/// Keeps the client's `x-request-id` if it is a UUID, and replaces it (or adds one) otherwise,
/// so the id in the logs is the id recorded with the events.
async fn ensure_request_id(mut req: axum::http::Request<axum::body::Body>) -> axum::http::Request<axum::body::Body> {
    let valid =
        req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).is_some_and(|v| Uuid::parse_str(v.trim()).is_ok());
    if !valid {
        let id = Uuid::now_v7().to_string();
        req.headers_mut()
            .insert(REQUEST_ID, axum::http::HeaderValue::from_str(&id).expect("a UUID is a valid header value"));
    }
    req
}

/// A GraphQL-shaped error response (for requests that never reach the schema).
fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"errors": [{"message": message, "extensions": {"code": code}}]});
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// `POST /graphql`: a JSON body (see `crate::http` for the GraphQL-over-HTTP rules).
async fn graphql(
    State(http): State<Http>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(media) = crate::http::negotiate(&headers) else { return crate::http::not_acceptable() };
    if !crate::http::is_json_body(&headers) {
        return crate::http::error(
            media,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the request as application/json",
        );
    }
    let parsed = serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| {
        let document_id = v.get("documentId").and_then(|d| d.as_str()).map(str::to_owned);
        // A document comes as text, or by hash (persisted query / document id); without one
        // the parameters are invalid (a misspelt `query`, say).
        let by_hash = document_id.is_some() || v.pointer("/extensions/persistedQuery").is_some();
        if !(by_hash || v.get("query").is_some_and(serde_json::Value::is_string)) {
            return None;
        }
        serde_json::from_value::<async_graphql::Request>(v).ok().map(|r| (r, document_id))
    });
    let req = match parsed {
        Some((mut r, document_id)) => {
            if let Err((status, code, message)) = crate::persisted::adopt_document_id(&mut r, document_id.as_deref()) {
                return crate::http::error(media, status, code, message);
            }
            r
        }
        None => {
            return crate::http::error(
                media,
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "the request body must be a JSON object with a \"query\" string (and optional \"variables\", \"operationName\")",
            )
        }
    };
    execute(http, peer, headers, req, media).await
}

/// `GET /graphql`: a query in the URL; GraphiQL for a browser that asks for HTML.
async fn graphql_get(
    State(http): State<Http>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Response {
    let has_query = raw.as_deref().is_some_and(|q| q.split('&').any(|p| p.starts_with("query=")));
    if !has_query && crate::http::accepts_html(&headers) {
        return graphiql().await.into_response();
    }
    let Some(media) = crate::http::negotiate(&headers) else { return crate::http::not_acceptable() };
    let mut req = match crate::http::from_query(raw.as_deref()) {
        Ok(r) => r,
        Err(why) => return crate::http::error(media, StatusCode::BAD_REQUEST, "BAD_REQUEST", why),
    };
    // A persisted query is known by its text only once resolved: check what it is first.
    if let Err((status, code, message)) = http.state.persisted_queries.resolve(&mut req) {
        return crate::http::error(media, status, code, message);
    }
    if crate::http::is_mutation(&req) {
        let mut r = crate::http::error(
            media,
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "mutations are sent with POST",
        );
        r.headers_mut().insert(axum::http::header::ALLOW, axum::http::HeaderValue::from_static("POST"));
        return r;
    }
    execute(http, peer, headers, req, media).await
}

/// `GET /graphql/ws`: the websocket for subscriptions (`crate::ws`).
async fn graphql_ws(
    State(http): State<Http>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: axum::extract::ws::WebSocketUpgrade,
) -> Response {
    let ws = ws.protocols([crate::ws::PROTOCOL]).max_message_size(256 * 1024).max_frame_size(256 * 1024);
    let protocol_ok = ws.selected_protocol().is_some();
    let peer = crate::ws::Peer {
        ip: client_ip(peer.ip(), &headers, &http.state.settings.trusted_proxies),
        user_agent: headers.get(axum::http::header::USER_AGENT).and_then(|h| h.to_str().ok()).map(str::to_owned),
        request_id: headers
            .get(REQUEST_ID)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| Uuid::parse_str(h.trim()).ok())
            .unwrap_or_else(Uuid::now_v7),
    };
    let shutdown = http.state.shutdown.clone();
    ws.on_upgrade(move |socket| crate::ws::serve(http.state, http.schema, socket, peer, shutdown, protocol_ok))
}

/// Runs a request as its caller (the session in `Authorization`), and answers in `media`.
async fn execute(
    http: Http,
    peer: SocketAddr,
    headers: HeaderMap,
    req: async_graphql::Request,
    media: crate::http::Media,
) -> Response {
    let mut req = req;
    if let Err((status, code, message)) = http.state.persisted_queries.resolve(&mut req) {
        return crate::http::error(media, status, code, message);
    }
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    let viewer = match token {
        None => None,
        Some(t) => match http.state.sessions.authenticate(t).await {
            Ok(v) => v,
            Err(e) => {
                crate::error::ApiError::internal("session lookup", &e);
                return error_response(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error");
            }
        },
    };
    let request_id = headers
        .get(REQUEST_ID)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| Uuid::parse_str(h.trim()).ok())
        .unwrap_or_else(Uuid::now_v7);
    let correlation_id = headers
        .get("x-correlation-id")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| Uuid::parse_str(h.trim()).ok())
        .unwrap_or(request_id);
    let mut req = req;
    http.state.parsed.prepare(&mut req);
    let settings = &http.state.settings;
    let admitted =
        crate::auth::admit(&mut req, viewer.is_some(), settings.max_mutations, settings.public_introspection);
    if let Some(v) = &viewer {
        let (items, customers) = crate::graphql::loaders::for_request(&http.state.read, v.store_id);
        req = req.data(items).data(customers);
    }
    let client_ip = client_ip(peer.ip(), &headers, &http.state.settings.trusted_proxies);
    let user_agent = headers.get(axum::http::header::USER_AGENT).and_then(|h| h.to_str().ok()).map(str::to_owned);
    let req = req.data(RequestContext { viewer, request_id, correlation_id, client_ip: Some(client_ip), user_agent });
    let operation = crate::metrics::operation_label(req.operation_name.as_deref());
    let started = std::time::Instant::now();
    let span = tracing::info_span!(
        "graphql",
        otel.name = %format_args!("graphql {operation}"),
        graphql.operation.name = %operation,
        outcome = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let mut response = match admitted {
        Ok(()) => tracing::Instrument::instrument(http.schema.execute(req), span.clone()).await,
        Err(refusal) => async_graphql::Response::from_errors(vec![refusal]),
    };
    // Resolver errors always carry a code (ApiError). Errors without one come from
    // async-graphql itself — syntax, validation, wrong input types, depth/complexity limits —
    // and are all the client's input.
    for e in &mut response.errors {
        let ext = e.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", "BAD_USER_INPUT");
        }
    }
    let outcome = response
        .errors
        .first()
        .and_then(|e| e.extensions.as_ref())
        .and_then(|x| x.get("code"))
        .map_or_else(|| "ok".to_owned(), |c| c.to_string().trim_matches('"').to_owned());
    span.record("outcome", outcome.as_str());
    if outcome != "ok" {
        span.record("otel.status_code", "ERROR");
    }
    metrics::counter!("ic_graphql_requests_total", "operation" => operation.clone(), "outcome" => outcome).increment(1);
    metrics::histogram!("ic_graphql_request_duration_seconds", "operation" => operation)
        .record(started.elapsed().as_secs_f64());
    crate::http::respond(media, response)
}

/// Serves until `shutdown` turns true, then stops accepting and lets requests in flight finish
/// (for at most `settings.shutdown_grace`). Each connection must send its request headers within
/// `settings.header_read_timeout`, so a client that never finishes them cannot hold a
/// connection open (slowloris).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let header_timeout = state.settings.header_read_timeout;
    let grace = state.settings.shutdown_grace;
    let app = router(state);
    // Every connection holds a clone of `alive`; once all are dropped, `gone` answers.
    let (alive, mut gone) = tokio::sync::mpsc::channel::<()>(1);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: axum::http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            tower::ServiceExt::oneshot(app.clone(), req)
        });
        // With upgrades: `/graphql/ws` turns the connection into a websocket, which then
        // closes itself on shutdown (1001).
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut shutdown = shutdown.clone();
        let alive = alive.clone();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = async { let _ = shutdown.wait_for(|s| *s).await; } => {
                    // Finish the request in flight, then close.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(alive);
        });
    }
    drop(listener);
    drop(alive);
    if tokio::time::timeout(grace, gone.recv()).await.is_err() {
        tracing::warn!(grace_secs = grace.as_secs(), "requests still in flight after the grace period; closing them");
    }
    Ok(())
}
