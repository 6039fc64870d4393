//! `acquireItem` over HTTP: 1 and 8 clients running the mutation back to back for a fixed time
//! against a server in this process, with each request's latency. The payload is the item as the
//! read model shows it after the write (the server waits for its projection to reach the
//! write's position). Baseline, same run, same database, same concurrency: the bare event-store
//! append of one item event to a new stream (no HTTP, no GraphQL, no command, no read model).

use crate::latency::{load, Measured};
use crate::subscriptions::{server, ACQUIRE};
use crate::{Backend, Error};
use eventstore::testing::TestDatabase;
use eventstore::{Database, EventStore, ExpectedVersion, MasterKey, Metadata, NewEvent, Upcasters};
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct Options {
    /// How long each measurement runs.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
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
    drop(s);
    drop(tdb);
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
