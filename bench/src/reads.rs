//! The dashboard's inventory page at scale: a generated store (`api::generate`, the same
//! generator as `inventory-connect demo generate`), then the page over HTTP with 1 and 16
//! clients for a fixed time, against the baseline of the same page's SQL run straight on the
//! read-model table (one connection, no HTTP, no GraphQL). Then the customers and sales pages
//! the same way (their baseline: the page read from the read model in this process), and the
//! process's memory (server and load generator share it, so it overstates the server's).

use crate::{latency, Backend, Error};
use api::app::{AppState, Settings};
use projections::rows::{CustomerFilter, CustomerSortField, ListQuery, SaleFilter};
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

/// The customers page: the newest 50 with their total.
const CUSTOMERS: &str = "{ customers(first: 50, sortBy: {field: CREATED_AT, direction: DESC}) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id name email phone tags orderCount lifetimeValue { amount currency } } } } }";

/// The sales page: the newest 50 confirmed sales with their total.
const SALES: &str = "{ sales(first: 50, where: {status: CONFIRMED}) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id status invoiceNumber customerId total { amount currency } amountPaid { amount } updatedAt } } } }";

/// The same page in SQL straight on the read model: its rows and its total.
const RAW_PAGE: &str = "SELECT item_id, status, category, brand, model, reference_number, asking_minor, currency, acquired_at
    FROM rm_inventory_items WHERE store_id = $1 AND brand_key = 'rolex' ORDER BY asking_minor DESC, item_id DESC LIMIT 51";
const RAW_COUNT: &str =
    "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM rm_item_counts WHERE store_id = $1 AND brand_key = 'rolex'";

pub async fn run(backend: Backend, o: &Options) -> Result<Vec<String>, Error> {
    let (tdb, db, store, generated, row) = crate::generated_store(backend, o.items, o.events, 7).await?;
    let mut rows = vec![row];
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
    let token = crate::login(&url, crate::OWNER_EMAIL, crate::OWNER_PASSWORD).await?;

    // Baseline: the SQL alone.
    let raw = raw_sql(&tdb.url, generated.store_id.as_uuid(), o.seconds).await?;
    rows.push(raw.row(backend, "baseline: the page's SQL on the table (1 connection)"));
    for clients in [1usize, 16] {
        let m = http_load(&url, &token, PAGE, clients, o.seconds).await?;
        rows.push(m.row(backend, &format!("inventory page over HTTP, {clients} client(s)")));
    }
    rows.push(memory(backend, "after the 16-client inventory load"));

    // The customers and sales pages, against the same page read from the read model in this
    // process (its SQL and row decoding, no HTTP, no GraphQL).
    let store_id = generated.store_id.as_uuid();
    let read = state.read.clone();
    let customers = move || {
        let read = read.clone();
        async move {
            let q = ListQuery {
                store_id,
                first: 50,
                after: None,
                filter: CustomerFilter::default(),
                sort: CustomerSortField::CreatedAt,
                descending: true,
                with_total: true,
            };
            read.customers(&q).await.map(drop).map_err(Error::from)
        }
    };
    let m = latency::load(1, o.seconds, move |_, _| customers()).await?;
    rows.push(m.row(backend, "baseline: the customers page from the read model (in process)"));
    for clients in [1usize, 16] {
        let m = http_load(&url, &token, CUSTOMERS, clients, o.seconds).await?;
        rows.push(m.row(backend, &format!("customers page over HTTP, {clients} client(s)")));
    }
    let read = state.read.clone();
    let sales = move || {
        let read = read.clone();
        async move {
            let filter = SaleFilter { status: Some(domain::sale::SaleStatus::Confirmed), customer_id: None };
            let q =
                ListQuery { store_id, first: 50, after: None, filter, sort: (), descending: true, with_total: true };
            read.sales(&q).await.map(drop).map_err(Error::from)
        }
    };
    let m = latency::load(1, o.seconds, move |_, _| sales()).await?;
    rows.push(m.row(backend, "baseline: the sales page from the read model (in process)"));
    for clients in [1usize, 16] {
        let m = http_load(&url, &token, SALES, clients, o.seconds).await?;
        rows.push(m.row(backend, &format!("sales page over HTTP, {clients} client(s)")));
    }
    rows.push(memory(backend, "at the end (peak over the run)"));
    drop(tdb);
    Ok(rows)
}

/// This process's resident memory now and at its peak (server and load generator together).
fn memory(backend: Backend, when: &str) -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    format!(
        "| {backend:?} | memory {when}: RSS {} MB, peak {} MB (server and clients in one process) | | | |",
        kb("VmRSS:") / 1024,
        kb("VmHWM:") / 1024
    )
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

/// `clients` connections running `page` back to back for `seconds`.
async fn http_load(
    url: &str,
    token: &str,
    page: &str,
    clients: usize,
    seconds: u64,
) -> Result<latency::Measured, Error> {
    let http = reqwest::Client::new();
    let (url, token, body) = (url.to_owned(), token.to_owned(), Arc::new(json!({ "query": page })));
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
