//! The dashboard's inventory page at scale: a generated store (`api::generate`, the same
//! generator as `inventory-connect demo generate`), then the page over HTTP with 1 and 16
//! clients for a fixed time, against the baseline of the same page's SQL run straight on the
//! read-model table (one connection, no HTTP, no GraphQL).

use crate::{latency, Backend, Error};
use api::app::{AppState, Settings};
use eventstore::testing::TestDatabase;
use eventstore::{Database, EventStore, MasterKey, Upcasters};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(clap::Args)]
pub struct Options {
    /// Items in the generated store.
    #[arg(long, default_value_t = 100_000)]
    items: usize,
    /// Events in the generated log.
    #[arg(long, default_value_t = 300_000)]
    events: usize,
    /// How long each measurement runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

pub const HEADER: &str = "| backend | what | requests/s | p50 | p99 |\n|---|---|---|---|---|";

/// The page of the issue: 50 Rolex pieces, most expensive first, with totalCount, pageInfo and
/// eight fields per node.
const PAGE: &str =
    "{ inventoryItems(first: 50, where: {brand: \"rolex\"}, sortBy: {field: ASKING_PRICE, direction: DESC}) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id status category brand model referenceNumber askingPrice { amount currency } acquiredAt } } } }";

/// The same page in SQL straight on the read model: its rows and its total.
const RAW_PAGE: &str = "SELECT item_id, status, category, brand, model, reference_number, asking_minor, currency, acquired_at
    FROM rm_inventory_items WHERE store_id = $1 AND brand_key = 'rolex' ORDER BY asking_minor DESC, item_id DESC LIMIT 51";
const RAW_COUNT: &str =
    "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM rm_item_counts WHERE store_id = $1 AND brand_key = 'rolex'";

pub async fn run(backend: Backend, o: &Options) -> Result<Vec<String>, Error> {
    let tdb = match backend {
        Backend::Sqlite => TestDatabase::sqlite(),
        Backend::Postgres => TestDatabase::postgres().await.ok_or("PostgreSQL is not reachable")?,
    };
    let db = Database::connect(&tdb.url).await?;
    let store = EventStore::new(&db, MasterKey::generate(), Upcasters::default());
    let plan = api::generate::Plan {
        items: o.items,
        events: o.events,
        owner_email: "owner@bench.test".into(),
        owner_password: "amber-caliber-vault-2026".into(),
        seed: 7,
    };
    let generated = api::generate::generate(&store, &eventstore::Accounts::new(&db), &plan, |_, _| {}).await?;
    let mut rows = vec![format!(
        "| {backend:?} | generate {} items, {} events | {:.0} events/s | | |",
        o.items,
        generated.events,
        generated.events as f64 / generated.seconds
    )];
    let (_stop, shutdown) = watch::channel(false);
    let started = Instant::now();
    let state = AppState::start_with(db, store, shutdown.clone(), Settings::default()).await?;
    rows.push(format!(
        "| {backend:?} | read models catch up at start | {:.0} events/s | | |",
        generated.events as f64 / started.elapsed().as_secs_f64()
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/graphql", listener.local_addr()?);
    tokio::spawn(api::app::serve(listener, state.clone(), shutdown));
    let token = crate::login(&url, &plan.owner_email, &plan.owner_password).await?;

    // Baseline: the SQL alone.
    let raw = raw_sql(&tdb.url, generated.store_id.as_uuid(), o.seconds).await?;
    rows.push(raw.row(backend, "baseline: the page's SQL on the table (1 connection)"));
    for clients in [1usize, 16] {
        let m = http_load(&url, &token, clients, o.seconds).await?;
        rows.push(m.row(backend, &format!("inventory page over HTTP, {clients} client(s)")));
    }
    drop(tdb);
    Ok(rows)
}

/// The raw SQL baseline (page and count), through sqlx on one connection of its own.
async fn raw_sql(url: &str, store_id: uuid::Uuid, seconds: u64) -> Result<latency::Measured, Error> {
    use sqlx::Connection;
    if url.starts_with("sqlite:") {
        time_page(sqlx::SqliteConnection::connect(url).await?, store_id, seconds).await
    } else {
        time_page(sqlx::PgConnection::connect(url).await?, store_id, seconds).await
    }
}

/// Runs the page's SQL back to back on `c` for `seconds`.
async fn time_page<C>(mut c: C, store_id: uuid::Uuid, seconds: u64) -> Result<latency::Measured, Error>
where
    C: sqlx::Connection,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
    uuid::Uuid: for<'q> sqlx::Encode<'q, C::Database> + sqlx::Type<C::Database>,
    i64: for<'r> sqlx::Decode<'r, C::Database> + sqlx::Type<C::Database>,
    for<'q> <C::Database as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, C::Database>,
    (i64,): for<'r> sqlx::FromRow<'r, <C::Database as sqlx::Database>::Row>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut samples = Vec::new();
    let started = Instant::now();
    while Instant::now() < deadline {
        let t = Instant::now();
        let rows = sqlx::query(RAW_PAGE).bind(store_id).fetch_all(&mut c).await?;
        let n: i64 = sqlx::query_scalar(RAW_COUNT).bind(store_id).fetch_one(&mut c).await?;
        assert!(rows.len() as i64 <= n + 1);
        samples.push(t.elapsed());
    }
    Ok(latency::Measured::new(samples, started.elapsed()))
}

/// `clients` connections running the page back to back for `seconds`.
async fn http_load(url: &str, token: &str, clients: usize, seconds: u64) -> Result<latency::Measured, Error> {
    let http = reqwest::Client::new();
    let (url, token, body) = (url.to_owned(), token.to_owned(), Arc::new(json!({ "query": PAGE })));
    latency::load(clients, seconds, move |_, _| {
        let (http, url, token, body) = (http.clone(), url.clone(), token.clone(), body.clone());
        async move {
            let r: Value = http.post(&url).bearer_auth(&token).json(&*body).send().await?.json().await?;
            if r.get("errors").is_some() {
                return Err(format!("page failed: {r}").into());
            }
            Ok(())
        }
    })
    .await
}
