//! Append throughput, each figure beside a raw baseline measured in the same run on the same
//! database: a plain INSERT of an equivalent row (same columns, same indexes) in its own
//! transaction, or 100 rows in one transaction. Five rounds alternate store and baseline; each
//! row shows the medians. Run: `cargo bench -p eventstore --bench append`.
//! PostgreSQL rows appear when a server answers at IC_TEST_POSTGRES_URL (default local).

use chrono::Utc;
use eventstore::testing::TestDatabase;
use eventstore::{Database, EventStore, ExpectedVersion, MasterKey, Metadata, NewEvent, Upcasters};
use serde_json::json;
use std::time::Instant;
use uuid::Uuid;

const ROUNDS: usize = 5;
const SINGLE: usize = 600;
const WRITERS: usize = 8;
const PER_WRITER: usize = 150;
const BATCHES: usize = 12;
const BATCH: usize = 100;

fn event(i: usize, personal: bool) -> NewEvent {
    let subject = Uuid::now_v7();
    let payload = if personal {
        json!({
            "customer_id": subject,
            "name": {"$pii": {"class": "profile", "value": format!("Customer {i}")}},
            "email": {"$pii": {"class": "profile", "value": format!("c{i}@example.com")}},
            "phone": {"$pii": {"class": "profile", "value": "+1 212 555 0100"}},
            "tags": ["vip"],
        })
    } else {
        json!({
            "item_id": Uuid::now_v7(), "category": "WATCH", "brand": "Rolex", "model": "Submariner Date",
            "reference_number": "126610LN", "serial_number": format!("SN{i:08}"),
            "cost": {"minor": 980000, "currency": "USD"}, "asking_price": {"minor": 1250000, "currency": "USD"},
            "source": "PURCHASE", "attributes": {"dial": "black"}, "acquired_at": Utc::now(),
        })
    };
    NewEvent {
        event_id: Uuid::now_v7(),
        store_id: Uuid::from_u128(1),
        event_type: "ItemAcquired".into(),
        schema_version: 1,
        payload,
        metadata: Metadata::system("bench"),
        data_subject: personal.then_some(subject),
    }
}

/// Inserts one raw row like an event row: same column types and sizes.
async fn raw_insert(db: &Database, rows: usize, stream: &str, start_version: usize) {
    let payload = serde_json::to_string(&event(0, false).payload).unwrap();
    let metadata = serde_json::to_string(&Metadata::system("bench")).unwrap();
    let hash = vec![7u8; 32];
    macro_rules! insert {
        ($pool:expr, $now:expr) => {{
            let mut tx = $pool.begin().await.unwrap();
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO bench_raw (stream_id, version, event_id, store_id, event_type, schema_version, payload, metadata, recorded_at, prev_hash, hash) ",
            );
            qb.push_values(0..rows, |mut b, i| {
                b.push_bind(stream)
                    .push_bind((start_version + i) as i64)
                    .push_bind(Uuid::now_v7())
                    .push_bind(Uuid::from_u128(1))
                    .push_bind("ItemAcquired")
                    .push_bind(1i32)
                    .push_bind(&payload)
                    .push_bind(&metadata)
                    .push_bind($now)
                    .push_bind(&hash)
                    .push_bind(&hash);
            });
            qb.build().execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }};
    }
    match db {
        Database::Sqlite(b) => insert!(b.writer(), Utc::now().timestamp_micros()),
        Database::Postgres(b) => insert!(b.pool(), Utc::now()),
    }
}

async fn create_raw_table(db: &Database) {
    let ddl = match db {
        Database::Postgres(_) => "CREATE TABLE bench_raw (LIKE events INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS INCLUDING INDEXES)",
        Database::Sqlite(_) => {
            "CREATE TABLE bench_raw (position INTEGER PRIMARY KEY AUTOINCREMENT, stream_id TEXT NOT NULL, version INTEGER NOT NULL,
             event_id BLOB NOT NULL UNIQUE, store_id BLOB NOT NULL, event_type TEXT NOT NULL, schema_version INTEGER NOT NULL,
             payload TEXT NOT NULL, metadata TEXT NOT NULL, recorded_at INTEGER NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL,
             UNIQUE (stream_id, version));
             CREATE INDEX bench_raw_store_idx ON bench_raw (store_id, position);"
        }
    };
    db.execute_raw(ddl).await.unwrap();
}

fn rate(n: usize, started: Instant) -> f64 {
    n as f64 / started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median rates of the store and the raw baseline, and the median of the per-round ratios:
/// rounds alternate the two, so a noisy moment on this shared machine hits both.
fn row(backend: &str, scenario: &str, rounds: &[(f64, f64)]) {
    let store = median(rounds.iter().map(|r| r.0).collect());
    let raw = median(rounds.iter().map(|r| r.1).collect());
    let ratio = median(rounds.iter().map(|r| r.0 / r.1).collect());
    println!("{backend:<9} {scenario:<44} {store:>12.0} {raw:>12.0} {ratio:>8.2}");
}

/// `writers` tasks, each appending `each` single-event appends to streams of its own.
async fn concurrent_store(store: &EventStore, writers: usize, each: usize, tag: &str) -> f64 {
    let t = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            // Events are built before the clock starts, as the raw rows are.
            let events: Vec<_> = (0..each).map(|i| event(i, false)).collect();
            let tag = tag.to_owned();
            tokio::spawn(async move {
                for (i, e) in events.into_iter().enumerate() {
                    store.append(&format!("{tag}-{w}-{i}"), ExpectedVersion::NoStream, vec![e]).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    rate(writers * each, t)
}

async fn concurrent_raw(db: &Database, writers: usize, each: usize, tag: &str) -> f64 {
    let t = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let db = db.clone();
            let tag = tag.to_owned();
            tokio::spawn(async move {
                for i in 0..each {
                    raw_insert(&db, 1, &format!("{tag}-{w}-{i}"), 0).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    rate(writers * each, t)
}

async fn bench(backend: &str, url: &str) {
    let db = Database::connect(url).await.unwrap();
    let store = EventStore::new(&db, MasterKey::generate(), Upcasters::default());
    create_raw_table(&db).await;
    // Warm up both paths (connections, statement caches).
    for i in 0..50 {
        store.append(&format!("warm-{i}"), ExpectedVersion::NoStream, vec![event(i, false)]).await.unwrap();
        raw_insert(&db, 1, &format!("warm-{i}"), 0).await;
    }
    let (mut single, mut personal, mut eight, mut batch) = (vec![], vec![], vec![], vec![]);
    for r in 0..ROUNDS {
        // 1 writer, one event per transaction.
        let t = Instant::now();
        for i in 0..SINGLE {
            raw_insert(&db, 1, &format!("raw-1-{r}-{i}"), 0).await;
        }
        let raw = rate(SINGLE, t);
        let events: Vec<_> = (0..SINGLE).map(|i| event(i, false)).collect();
        let t = Instant::now();
        for (i, e) in events.into_iter().enumerate() {
            store.append(&format!("s1-{r}-{i}"), ExpectedVersion::NoStream, vec![e]).await.unwrap();
        }
        single.push((rate(SINGLE, t), raw));

        let events: Vec<_> = (0..SINGLE / 4).map(|i| event(i, true)).collect();
        let t = Instant::now();
        for (i, e) in events.into_iter().enumerate() {
            store.append(&format!("p1-{r}-{i}"), ExpectedVersion::NoStream, vec![e]).await.unwrap();
        }
        personal.push((rate(SINGLE / 4, t), raw));

        // 8 concurrent writers, each on its own streams.
        let raw = concurrent_raw(&db, WRITERS, PER_WRITER, &format!("raw-8-{r}")).await;
        eight.push((concurrent_store(&store, WRITERS, PER_WRITER, &format!("s8-{r}")).await, raw));

        // 100 events per transaction.
        let t = Instant::now();
        for b in 0..BATCHES {
            raw_insert(&db, BATCH, &format!("raw-b-{r}-{b}"), 0).await;
        }
        let raw = rate(BATCHES * BATCH, t);
        let batches: Vec<Vec<_>> = (0..BATCHES).map(|_| (0..BATCH).map(|i| event(i, false)).collect()).collect();
        let t = Instant::now();
        for (b, events) in batches.into_iter().enumerate() {
            store.append(&format!("b-{r}-{b}"), ExpectedVersion::NoStream, events).await.unwrap();
        }
        batch.push((rate(BATCHES * BATCH, t), raw));
    }
    row(backend, "single-event append, 1 writer", &single);
    row(backend, "  same, 3 encrypted personal fields", &personal);
    row(backend, "single-event append, 8 concurrent writers", &eight);
    row(backend, "100-event batch append", &batch);
}

#[tokio::main]
async fn main() {
    println!("{:<9} {:<44} {:>12} {:>12} {:>8}", "backend", "scenario", "store ev/s", "raw rows/s", "ratio");
    let sqlite = TestDatabase::sqlite();
    bench("sqlite", &sqlite.url).await;
    match TestDatabase::postgres().await {
        Some(pg) => bench("postgres", &pg.url).await,
        None => println!("postgres  skipped: no server at {}", eventstore::testing::postgres_admin_url()),
    }
}
