//! Rebuilds without downtime, run against both backends: readers during a rebuild see the whole
//! model (never an empty or partial one), writes keep arriving and are followed, and the model
//! swapped in equals a replay from scratch.

use commands::{execute, CommandContext};
use domain::inventory::{AcquireItem, Category, InventoryItem, ItemCommand};
use domain::{ItemId, Money};
use eventstore::testing::TestDatabase;
use eventstore::{Database, EventStore, MasterKey, Position, Upcasters};
use projections::rows::{ItemFilter, ItemSortField, ListQuery};
use projections::{Kind, ReadDb, Runner};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn acquire(store: &EventStore, ctx: &CommandContext, i: usize) -> Position {
    let id = ItemId::new_v7();
    let cmd = ItemCommand::Acquire(AcquireItem::purchase(
        id,
        ctx.store_id,
        if i.is_multiple_of(2) { Category::Watch } else { Category::Handbag },
        ["Rolex", "Omega", "Hermès"][i % 3],
        &format!("Model {i}"),
        Some(Money::parse("x", "500.00", "USD").unwrap()),
        Money::parse("x", &format!("{}.00", 1000 + i), "USD").unwrap(),
    ));
    execute::<InventoryItem>(store, ctx, &id.stream_id(), &cmd).await.unwrap().position.unwrap()
}

/// Applies the log with `runner` until `head` is in (PostgreSQL may hold the newest events
/// back while older transactions elsewhere in the cluster finish).
async fn until(runner: &mut Runner, head: Position) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while runner.checkpoint() < head {
        assert!(Instant::now() < deadline, "runner never reached {head}");
        runner.catch_up().await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The ids of every item the inventory model lists, and the total it reports.
async fn listed(read: &ReadDb, store_id: uuid::Uuid) -> (BTreeSet<uuid::Uuid>, i64) {
    let query = ListQuery {
        store_id,
        first: 1000,
        after: None,
        filter: ItemFilter::default(),
        sort: ItemSortField::CreatedAt,
        descending: false,
        with_total: true,
    };
    let page = read.items(&query).await.unwrap();
    (page.rows.into_iter().map(|(r, _)| r.id).collect(), page.total.unwrap())
}

async fn readers_see_the_whole_model_while_it_is_rebuilt_and_written_to(tdb: &TestDatabase) {
    let db = Database::connect(&tdb.url).await.unwrap();
    let store = EventStore::new(&db, MasterKey::generate(), Upcasters::default());
    let read = ReadDb::new(&db);
    let ctx = CommandContext::system(domain::StoreId::new_v7(), "test");
    let store_id = ctx.store_id.as_uuid();
    let mut head = Position::START;
    for i in 0..120 {
        head = head.max(acquire(&store, &ctx, i).await);
    }
    let mut live = Runner::new(Kind::Inventory, &read, &store).await.unwrap();
    until(&mut live, head).await;
    let (before, total) = listed(&read, store_id).await;
    assert_eq!((before.len(), total), (120, 120));
    if let ReadDb::Postgres(pool) = &read {
        // What a crashed rebuild left behind is dropped by the next one.
        sqlx::raw_sql(
            "CREATE SCHEMA ic_rebuild_inventory_crashed; CREATE TABLE ic_rebuild_inventory_crashed.t (x int)",
        )
        .execute(pool)
        .await
        .unwrap();
    }

    // Readers: every answer lists every item known before the rebuild, as many rows as its
    // total says, and never fewer items than an earlier answer.
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (read, before, stop, reads) = (read.clone(), before.clone(), stop.clone(), reads.clone());
        readers.push(tokio::spawn(async move {
            let mut seen = 0;
            while !stop.load(Ordering::Relaxed) {
                let (ids, total) = listed(&read, store_id).await;
                // (The rows and the total are two reads: the live runner may add an item between.)
                assert!(total >= before.len() as i64, "a reader saw a total of {total}");
                assert!(
                    ids.is_superset(&before),
                    "a reader saw a partial model: {} of {} items",
                    ids.len(),
                    before.len()
                );
                assert!(ids.len() >= seen, "a reader saw the model go back from {seen} to {} items", ids.len());
                seen = ids.len();
                reads.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        }));
    }
    // The server goes on: items are acquired and the live runner follows them.
    let writer = {
        let (store, ctx, stop) = (store.clone(), ctx.clone(), stop.clone());
        tokio::spawn(async move {
            let mut head = Position::START;
            let mut i = 120;
            while !stop.load(Ordering::Relaxed) && i < 160 {
                head = head.max(acquire(&store, &ctx, i).await);
                live.catch_up().await.unwrap();
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (live, head, i)
        })
    };

    let applied =
        projections::rebuild_with(&read, &store, Kind::Inventory, 3, |_, _| {}, async {}).await.unwrap().applied;
    assert!(applied >= 120, "the rebuild applied the log ({applied} events)");
    // Readers keep going a moment after the swap, then stop.
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    let (mut live, written_head, acquired) = writer.await.unwrap();
    assert!(reads.load(Ordering::Relaxed) >= 10, "readers ran during the rebuild");
    assert!(acquired > 120, "items were acquired during the rebuild");

    // The live runner goes on from the swapped-in model's checkpoint.
    until(&mut live, written_head).await;
    let (after, total) = listed(&read, store_id).await;
    assert_eq!((after.len() as i64, after.len()), (total, acquired));
    let rebuilt = read.dump(Kind::Inventory).await.unwrap();
    // The swapped-in model equals a replay from scratch, event by event.
    read.reset(Kind::Inventory).await.unwrap();
    let mut fresh = Runner::new(Kind::Inventory, &read, &store).await.unwrap().with_batch_size(1);
    until(&mut fresh, written_head).await;
    assert_eq!(read.dump(Kind::Inventory).await.unwrap(), rebuilt);

    if let ReadDb::Postgres(pool) = &read {
        let left: Vec<String> =
            sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'ic_rebuild%'")
                .fetch_all(pool)
                .await
                .unwrap();
        assert!(left.is_empty(), "shadow schemas left behind: {left:?}");
        // The live tables kept their index names (later migrations refer to them).
        let indexes: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema()
             AND indexname IN ('rm_items_brand_idx', 'rm_items_status_price_idx', 'rm_inventory_items_pkey')",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(indexes, 3);
    }
}

async fn two_rebuilds_at_once_leave_the_model_whole_and_the_next_one_runs(tdb: &TestDatabase) {
    let db = Database::connect(&tdb.url).await.unwrap();
    let store = EventStore::new(&db, MasterKey::generate(), Upcasters::default());
    let read = ReadDb::new(&db);
    let ctx = CommandContext::system(domain::StoreId::new_v7(), "test");
    let mut head = Position::START;
    for i in 0..10 {
        head = head.max(acquire(&store, &ctx, i).await);
    }
    // Two rebuilds at once: on PostgreSQL the second is refused while the first runs; on
    // SQLite each has its own TEMP tables. Either way the model ends whole.
    let (a, b) = tokio::join!(
        projections::rebuild_with(&read, &store, Kind::Inventory, 2, |_, _| {}, async {}),
        projections::rebuild_with(&read, &store, Kind::Inventory, 2, |_, _| {}, async {}),
    );
    match &read {
        ReadDb::Postgres(_) => {
            assert!(a.is_ok() || b.is_ok(), "one rebuild finished");
            for e in [&a, &b].into_iter().filter_map(|r| r.as_ref().err()) {
                assert!(e.to_string().contains("a rebuild of inventory is already running"), "{e}");
            }
        }
        ReadDb::Sqlite { .. } => {
            a.unwrap();
            b.unwrap();
        }
    }
    let mut live = Runner::new(Kind::Inventory, &read, &store).await.unwrap();
    until(&mut live, head).await;
    let (ids, total) = listed(&read, ctx.store_id.as_uuid()).await;
    assert_eq!((ids.len(), total), (10, 10));
    // And it rebuilds again (the lock was released, the shadow dropped).
    projections::rebuild(&read, &store, Kind::Inventory, |_, _| {}).await.unwrap();
    let (ids, total) = listed(&read, ctx.store_id.as_uuid()).await;
    assert_eq!((ids.len(), total), (10, 10));
}

async fn the_swapped_in_model_is_never_behind_the_live_one(tdb: &TestDatabase) {
    let db = Database::connect(&tdb.url).await.unwrap();
    let store = EventStore::new(&db, MasterKey::generate(), Upcasters::default());
    let read = ReadDb::new(&db);
    let ctx = CommandContext::system(domain::StoreId::new_v7(), "test");
    let mut head = Position::START;
    for i in 0..20 {
        head = head.max(acquire(&store, &ctx, i).await);
    }
    let mut live = Runner::new(Kind::Inventory, &read, &store).await.unwrap();
    until(&mut live, head).await;
    // Once the shadow has caught up, and before the swap, the live model moves ahead: five
    // more items, applied by the live runner (which then stops, as a server's might).
    let ahead = async {
        let mut head = head;
        for i in 20..25 {
            head = head.max(acquire(&store, &ctx, i).await);
        }
        until(&mut live, head).await;
    };
    projections::rebuild_with(&read, &store, Kind::Inventory, 4, |_, _| {}, ahead).await.unwrap();
    // Without another runner step, the swapped-in model has them (the swap finished the
    // shadow up to the live checkpoint it held), and its checkpoint is not behind.
    let (ids, total) = listed(&read, ctx.store_id.as_uuid()).await;
    assert_eq!((ids.len(), total), (25, 25));
    assert!(read.checkpoint(Kind::Inventory).await.unwrap() >= live.checkpoint());
}

eventstore::backend_contract!(
    the_swapped_in_model_is_never_behind_the_live_one,
    readers_see_the_whole_model_while_it_is_rebuilt_and_written_to,
    two_rebuilds_at_once_leave_the_model_whole_and_the_next_one_runs,
);
