//! `acquireItem` over HTTP: 1 and 8 clients running the mutation back to back for a fixed time
//! against a server in this process, with each request's latency. The mutation asks for its
//! errors only; its payload's item is the fold of the event the command recorded (nothing waits
//! for a projection). Baseline, same run, same database, same concurrency: the bare event-store
//! append of one item event to a new stream (no HTTP, no GraphQL, no command, no read model).
//! With `--events N` the same `acquireItem` load runs on a generated store of N events too, in
//! rounds alternating with the empty store's server (both running), and the rates' ratio.

use crate::latency::{load, Measured};
use crate::subscriptions::{server, ACQUIRE};
use crate::{Backend, Error};
use api::app::{AppState, Settings};
use eventstore::testing::TestDatabase;
use eventstore::{Database, EventStore, ExpectedVersion, MasterKey, Metadata, NewEvent, Upcasters};
use serde_json::{json, Value};
use tokio::sync::watch;

#[derive(clap::Args)]
pub struct Options {
    /// How long each measurement runs.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Also measure `acquireItem` on a generated store of this many events (0: only the empty
    /// store), against the empty store's figures in the same run: writes should stay flat as the
    /// log grows.
    #[arg(long, default_value_t = 0)]
    events: usize,
    /// Items in that generated store.
    #[arg(long, default_value_t = 100_000)]
    items: usize,
}

pub const HEADER: &str = "| backend | what | per second | p50 | p99 |\n|---|---|---|---|---|";

pub async fn run(backend: Backend, o: &Options) -> Result<Vec<String>, Error> {
    let s = server(backend).await?;
    let graphql = format!("{}/graphql", s.url);
    let token = crate::login(&graphql, api::demo::DEMO_EMAIL, api::demo::DEMO_PASSWORD).await?;
    // The baseline writes to a database of its own on the same server, so the server's
    // projections never see its events.
    let tdb = match backend {
        Backend::Sqlite => TestDatabase::sqlite(),
        Backend::Postgres => TestDatabase::postgres().await.ok_or("PostgreSQL is not reachable")?,
    };
    let db = Database::connect(&tdb.url).await?;
    let store = EventStore::new(&db, MasterKey::generate(), Upcasters::default());
    let mut rows = Vec::new();
    for clients in [1usize, 8] {
        let bare = appends(&store, clients, o.seconds).await?;
        rows.push(bare.row(backend, &format!("baseline: bare append of one event, {clients} writer(s)")));
        let http = acquire(&graphql, &token, clients, o.seconds).await?;
        rows.push(http.row(backend, &format!("acquireItem over HTTP, {clients} client(s)")));
        rows.push(format!(
            "| {backend:?} | ratio acquireItem ÷ bare append, {clients} | {:.2} | | |",
            http.per_second() / bare.per_second()
        ));
    }
    drop(tdb);
    if o.events > 0 {
        rows.extend(at_scale(backend, o, (&graphql, &token)).await?);
    }
    Ok(rows)
}

/// Rounds of the load on the generated store, each beside one on the empty store's server.
const ROUNDS: usize = 3;

/// `acquireItem` with 1 and 8 clients on a generated store of `o.events` events, against the
/// same load on the empty store's server (`empty`: its URL and token) in alternating rounds,
/// so that the machine's drift over the run weighs on both alike.
async fn at_scale(backend: Backend, o: &Options, empty: (&str, &str)) -> Result<Vec<String>, Error> {
    let (tdb, db, store, generated, row) = crate::generated_store(backend, o.items, o.events, 13).await?;
    let mut rows = vec![row];
    // Served as `demo generate` then `serve` would: the server opens the store afresh (not
    // through the generator's connections).
    let key = store.master_key().clone();
    drop((store, db));
    let db = Database::connect(&tdb.url).await?;
    let store = EventStore::new(&db, key, Upcasters::default());
    let (_stop, shutdown) = watch::channel(false);
    let state = AppState::start_with(db, store, shutdown.clone(), Settings::default()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let graphql = format!("http://{}/graphql", listener.local_addr()?);
    tokio::spawn(api::app::serve(listener, state.clone(), shutdown));
    let token = crate::login(&graphql, crate::OWNER_EMAIL, crate::OWNER_PASSWORD).await?;
    for clients in [1usize, 8] {
        let (mut at_empty, mut at_scale) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            at_empty.push(acquire(empty.0, empty.1, clients, o.seconds).await?.per_second());
            at_scale.push(acquire(&graphql, &token, clients, o.seconds).await?);
        }
        let mean = |rates: &[f64]| rates.iter().sum::<f64>() / rates.len() as f64;
        let scale_rates: Vec<f64> = at_scale.iter().map(Measured::per_second).collect();
        let round = |rates: &[f64]| rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(" / ");
        rows.push(format!(
            "| {backend:?} | acquireItem over HTTP, {clients} client(s), empty store, {ROUNDS} rounds ({}) | {:.0} | | |",
            round(&at_empty),
            mean(&at_empty)
        ));
        let last = at_scale.last().expect("ROUNDS > 0");
        rows.push(format!(
            "| {backend:?} | acquireItem over HTTP, {clients} client(s), at {} events, {ROUNDS} rounds ({}) | {:.0} | {:.2} ms | {:.2} ms |",
            generated.events,
            round(&scale_rates),
            mean(&scale_rates),
            last.percentile(0.50).as_secs_f64() * 1e3,
            last.percentile(0.99).as_secs_f64() * 1e3,
        ));
        rows.push(format!(
            "| {backend:?} | ratio to the empty store, {clients} | {:.2} | | |",
            mean(&scale_rates) / mean(&at_empty)
        ));
    }
    Ok(rows)
}

async fn acquire(graphql: &str, token: &str, clients: usize, seconds: u64) -> Result<Measured, Error> {
    let http = reqwest::Client::new();
    let (graphql, token) = (graphql.to_owned(), token.to_owned());
    load(clients, seconds, move |c, i| {
        let (http, graphql, token) = (http.clone(), graphql.clone(), token.clone());
        async move {
            let body =
                json!({"query": ACQUIRE, "variables": {"p": format!("{}.00", 10_000 + c as u64 * 1_000_000 + i)}});
            let r: Value = http.post(&graphql).bearer_auth(&token).json(&body).send().await?.json().await?;
            if r["data"]["acquireItem"]["errors"] != json!([]) {
                return Err(format!("acquireItem failed: {r}").into());
            }
            Ok(())
        }
    })
    .await
}

async fn appends(store: &EventStore, clients: usize, seconds: u64) -> Result<Measured, Error> {
    let store = store.clone();
    load(clients, seconds, move |_, i| {
        let store = store.clone();
        async move {
            let item = uuid::Uuid::now_v7();
            let event = NewEvent {
                event_id: uuid::Uuid::now_v7(),
                store_id: uuid::Uuid::from_u128(0xbe9c),
                event_type: "BenchItemAcquired".into(),
                schema_version: 1,
                payload: json!({"item_id": item, "brand": "Rolex", "model": "Submariner", "asking_price": {"minor": i, "currency": "USD"}}),
                metadata: Metadata::system("bench"),
                data_subject: None,
            };
            store.append(&format!("bench-{item}"), ExpectedVersion::NoStream, vec![event]).await?;
            Ok(())
        }
    })
    .await
}
