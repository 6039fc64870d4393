//! The verifiable ledger's costs, each beside a baseline measured in the same run on the same
//! database:
//! - sealing N events vs reading those N events (the sealer's own input);
//! - an inclusion / consistency proof vs reading one event by stream and version;
//! - `verify`'s ledger check (recompute the tree over the whole log) vs reading the whole log;
//! - appends while a sealer seals every 100 ms vs appends with no sealer (the sealer must not
//!   slow appends).
//!
//! Run: `cargo bench -p eventstore --bench ledger` (IC_LEDGER_BENCH_EVENTS sets N, default
//! 100,000). PostgreSQL rows appear when a server answers at IC_TEST_POSTGRES_URL.

use eventstore::ledger::Ledger;
use eventstore::testing::TestDatabase;
use eventstore::{Database, EventStore, ExpectedVersion, MasterKey, Metadata, NewEvent, Position, Upcasters};
use std::time::{Duration, Instant};
use uuid::Uuid;

const PROOFS: usize = 300;
const APPENDS: usize = 1500;

fn event(n: usize) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        store_id: Uuid::from_u128(1),
        event_type: "ItemPriceChanged".into(),
        schema_version: 1,
        payload: serde_json::json!({"n": n, "asking_price": {"minor": 1_250_000 + n, "currency": "USD"}}),
        metadata: Metadata::system("bench"),
        data_subject: None,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn p50(mut v: Vec<Duration>) -> f64 {
    v.sort();
    ms(v[v.len() / 2])
}

async fn read_everything(db: &Database) -> usize {
    let mut n = 0;
    let mut after = Position::START;
    loop {
        let page = db.backend().read_committed(after, 10_000).await.unwrap();
        let Some(last) = page.last() else { return n };
        after = last.position;
        n += page.len();
    }
}

async fn single_appends(store: &EventStore, tag: &str) -> f64 {
    let events: Vec<NewEvent> = (0..APPENDS).map(event).collect();
    let t = Instant::now();
    for (i, e) in events.into_iter().enumerate() {
        store.append(&format!("{tag}-{i}"), ExpectedVersion::NoStream, vec![e]).await.unwrap();
    }
    APPENDS as f64 / t.elapsed().as_secs_f64()
}

async fn bench(name: &str, tdb: TestDatabase, n: usize) {
    let db = Database::connect(&tdb.url).await.unwrap();
    let key = MasterKey::generate();
    let store = EventStore::new(&db, key.clone(), Upcasters::default());
    let ledger = Ledger::new(&db, &key);
    for chunk in 0..n / 100 {
        let events: Vec<NewEvent> = (chunk * 100..chunk * 100 + 100).map(event).collect();
        store.append(&format!("bench-{}", chunk % 500), ExpectedVersion::Any, events).await.unwrap();
    }

    let t = Instant::now();
    assert_eq!(read_everything(&db).await, n);
    let read = t.elapsed();
    let t = Instant::now();
    let head = ledger.seal_all(Duration::from_secs(600)).await.unwrap();
    let seal = t.elapsed();
    assert_eq!(head.tree_size as usize, n);
    println!(
        "| {name} | seal {n} events ({:.0} events/s) | {:.1} ms | read them: {:.1} ms | {:.1} |",
        n as f64 / seal.as_secs_f64(),
        ms(seal),
        ms(read),
        ms(seal) / ms(read)
    );

    let events = db.backend().read_committed(Position::START, n).await.unwrap();
    let mut proof = Vec::new();
    let mut lookup = Vec::new();
    for k in 0..PROOFS {
        let e = &events[(k * 7919) % n];
        let t = Instant::now();
        let p = ledger.inclusion_proof(e.event_id, n as u64).await.unwrap().unwrap();
        proof.push(t.elapsed());
        assert!(ledger::verify_inclusion(&p.leaf_hash, p.leaf_index, n as u64, &p.audit_path, &head.root_hash));
        let t = Instant::now();
        let one = db.backend().read_stream(&e.stream_id, e.version, 1).await.unwrap();
        lookup.push(t.elapsed());
        assert_eq!(one.len(), 1);
    }
    let (p, l) = (p50(proof), p50(lookup));
    println!("| {name} | inclusion proof at {n} (p50) | {p:.2} ms | read one event: {l:.2} ms | {:.1} |", p / l);

    // A second head, then consistency proofs between them.
    for chunk in 0..10 {
        let events: Vec<NewEvent> = (0..100).map(|i| event(n + chunk * 100 + i)).collect();
        store.append(&format!("more-{chunk}"), ExpectedVersion::Any, events).await.unwrap();
    }
    let head2 = ledger.seal_all(Duration::from_secs(60)).await.unwrap();
    let mut consistency = Vec::new();
    for _ in 0..PROOFS {
        let t = Instant::now();
        let path = ledger.consistency_proof(n as u64, head2.tree_size).await.unwrap().unwrap();
        consistency.push(t.elapsed());
        assert!(ledger::verify_consistency(n as u64, head2.tree_size, &head.root_hash, &head2.root_hash, &path));
    }
    let c = p50(consistency);
    println!(
        "| {name} | consistency proof {n} → {} (p50) | {c:.2} ms | read one event: {l:.2} ms | {:.1} |",
        head2.tree_size,
        c / l
    );

    let t = Instant::now();
    read_everything(&db).await;
    let read = t.elapsed();
    let t = Instant::now();
    let checked = ledger.check(None).await.unwrap().unwrap();
    let check = t.elapsed();
    println!(
        "| {name} | verify: recompute the tree over {checked} events | {:.1} ms | read them: {:.1} ms | {:.1} |",
        ms(check),
        ms(read),
        ms(check) / ms(read)
    );

    // Appends alone, then with a sealer running every 100 ms.
    let alone = single_appends(&store, "alone").await;
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let sealer = {
        let ledger = ledger.clone();
        tokio::spawn(async move {
            let mut seals = 0;
            while !*stop_rx.borrow() {
                ledger.seal().await.unwrap();
                seals += 1;
                let _ = tokio::time::timeout(Duration::from_millis(100), stop_rx.changed()).await;
            }
            seals
        })
    };
    let with = single_appends(&store, "sealed").await;
    stop_tx.send(true).unwrap();
    let seals = sealer.await.unwrap();
    println!("| {name} | single appends while sealing every 100 ms ({seals} seals) | {with:.0}/s | without a sealer: {alone:.0}/s | {:.2} |", with / alone);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("IC_LEDGER_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    println!("| backend | measured | figure | baseline (same run) | ratio |");
    println!("|---|---|---:|---:|---:|");
    bench("sqlite", TestDatabase::sqlite(), n).await;
    if let Some(pg) = TestDatabase::postgres().await {
        bench("postgres", pg, n).await;
    }
}
