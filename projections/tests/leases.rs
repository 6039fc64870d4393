//! Projection leases: with several servers on one PostgreSQL database, each projection is
//! applied by exactly one of them (the lease holder); the others follow its checkpoint, so
//! read-your-writes works on every server; when the leader goes away another takes over.

use commands::{execute, CommandContext};
use domain::inventory::{AcquireItem, Category, InventoryItem, ItemCommand};
use domain::{ItemId, Money, StoreId};
use eventstore::testing::TestDatabase;
use eventstore::{Database, EventStore, MasterKey, Position, Upcasters};
use projections::{Kind, Projections, ReadDb};
use std::time::{Duration, Instant};
use tokio::sync::watch;

async fn acquire(store: &EventStore, ctx: &CommandContext) -> Position {
    let id = ItemId::new_v7();
    let usd = Money::parse("x", "100.00", "USD").unwrap();
    let cmd = ItemCommand::Acquire(AcquireItem::purchase(
        id,
        ctx.store_id,
        Category::Handbag,
        "Chanel",
        "Boy",
        Some(usd),
        usd,
    ));
    execute::<InventoryItem>(store, ctx, &id.stream_id(), &cmd).await.unwrap().position.unwrap()
}

async fn server(url: &str, key: &MasterKey, shutdown: watch::Receiver<bool>) -> (EventStore, Projections) {
    let db = Database::connect(url).await.unwrap();
    let store = EventStore::new(&db, key.clone(), Upcasters::default());
    let projections = Projections::start(&ReadDb::new(&db), &store, shutdown).await.unwrap();
    (store, projections)
}

async fn settle(check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "leases never settled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_each_projection_has_one_leader_and_followers_read_their_writes() {
    let Some(tdb) = TestDatabase::postgres().await else { return };
    let key = MasterKey::generate();
    let (stop_a, shutdown_a) = watch::channel(false);
    let (_stop_b, shutdown_b) = watch::channel(false);
    let (store, a) = server(&tdb.url, &key, shutdown_a).await;
    let (_, b) = server(&tdb.url, &key, shutdown_b).await;
    let one_leader_each =
        |a: &Projections, b: &Projections| a.leading().iter().zip(b.leading()).all(|((_, x), (_, y))| *x != y);
    settle(|| one_leader_each(&a, &b)).await;

    let ctx = CommandContext::system(StoreId::new_v7(), "test");
    let position = acquire(&store, &ctx).await;
    for server in [&a, &b] {
        server.wait_for(position, Duration::from_secs(20)).await.expect("every server sees the write");
    }

    // The first server stops: the other takes every lease and keeps projecting.
    stop_a.send(true).unwrap();
    settle(|| b.leading().iter().all(|(_, leads)| *leads)).await;
    let position = acquire(&store, &ctx).await;
    b.wait_for(position, Duration::from_secs(20)).await.expect("the new leader projects");
    assert!(b.status().iter().all(|(_, at)| *at >= position));
    assert_eq!(b.leading().len(), Kind::ALL.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_runners_always_lead() {
    let tdb = TestDatabase::sqlite();
    let (_stop, shutdown) = watch::channel(false);
    let (_, p) = server(&tdb.url, &MasterKey::generate(), shutdown).await;
    settle(|| p.leading().iter().all(|(_, leads)| *leads)).await;
}
