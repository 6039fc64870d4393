//! Projection contract, run against both backends: exactly-once application across restarts,
//! injected failures and racing runners; the read model equals a fresh replay.

use commands::{execute, CommandContext};
use domain::customer::{Customer, CustomerCommand, RegisterCustomer, UpdateCustomer};
use domain::inventory::{AcquireItem, Category, ChangeItemPrice, InventoryItem, ItemCommand, ItemStatus};
use domain::{CustomerId, ItemId, Money, StoreId};
use eventstore::testing::TestDatabase;
use eventstore::{Database, EventStore, MasterKey, Position, Upcasters};
use projections::{Kind, ProjectionError, ReadDb, Runner};
use std::time::{Duration, Instant};

struct World {
    store: EventStore,
    read: ReadDb,
    store_id: uuid::Uuid,
    items: Vec<(ItemId, u64)>,
    head: Position,
}

async fn world(tdb: &TestDatabase) -> World {
    let db = Database::connect(&tdb.url).await.unwrap();
    let store = EventStore::new(&db, MasterKey::generate(), Upcasters::default());
    let ctx = CommandContext::system(StoreId::new_v7(), "test");
    let usd = |s: &str| Money::parse("x", s, "USD").unwrap();
    let mut items = Vec::new();
    let mut head = Position::START;
    for i in 0..12u64 {
        let id = ItemId::new_v7();
        let acquire = ItemCommand::Acquire(AcquireItem {
            serial_number: Some(format!("SN{i}")),
            ..AcquireItem::purchase(
                id,
                ctx.store_id,
                if i % 2 == 0 { Category::Watch } else { Category::Handbag },
                &format!("Brand {}", i % 3),
                &format!("Model {i}"),
                Some(usd("100.00")),
                usd("1000.00"),
            )
        });
        head = head
            .max(execute::<InventoryItem>(&store, &ctx, &id.stream_id(), &acquire).await.unwrap().position.unwrap());
        let changes = i % 4;
        for c in 0..changes {
            let cmd = ItemCommand::ChangePrice(ChangeItemPrice {
                asking_price: usd(&format!("{}.00", 900 - c)),
                floor_price: None,
                reason: None,
            });
            head = head
                .max(execute::<InventoryItem>(&store, &ctx, &id.stream_id(), &cmd).await.unwrap().position.unwrap());
        }
        items.push((id, 1 + changes));
    }
    for i in 0..5 {
        let id = CustomerId::new_v7();
        let reg = CustomerCommand::Register(RegisterCustomer {
            customer_id: id,
            store_id: ctx.store_id,
            name: format!("Customer {i}"),
            email: Some(format!("c{i}@example.com")),
            phone: None,
            notes: None,
            tags: vec!["vip".into()],
            address: None,
            birthday: None,
            assigned_to: None,
            source: None,
            external_ids: Default::default(),
        });
        execute::<Customer>(&store, &ctx, &id.stream_id(), &reg).await.unwrap();
        let upd = CustomerCommand::Update(UpdateCustomer {
            phone: Some(format!("+1 212 555 010{i}")),
            email: Some(String::new()),
            ..Default::default()
        });
        head = head.max(execute::<Customer>(&store, &ctx, &id.stream_id(), &upd).await.unwrap().position.unwrap());
    }
    World { read: ReadDb::new(&db), store, store_id: ctx.store_id.as_uuid(), items, head }
}

/// Catches up until `head` is applied (PostgreSQL may hold events back while older
/// transactions elsewhere in the cluster finish).
async fn until_head(runner: &mut Runner, head: Position) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while runner.checkpoint() < head {
        assert!(Instant::now() < deadline, "runner never reached {head}");
        runner.catch_up().await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn assert_applied_exactly_once(w: &World) {
    for (id, events) in &w.items {
        let row = w.read.item(w.store_id, id.as_uuid()).await.unwrap().expect("item projected");
        assert_eq!(row.version as u64, *events, "item {id}: events applied != events in its stream");
    }
}

async fn a_runner_killed_between_and_inside_batches_applies_every_event_once(tdb: &TestDatabase) {
    let w = world(tdb).await;
    let mut first = Runner::new(Kind::Inventory, &w.read, &w.store).await.unwrap().with_batch_size(7);
    let mut applied = 0;
    while applied < 14 {
        applied += first.run_batch().await.unwrap();
    }
    let at_kill = first.checkpoint();
    drop(first);

    // A restarted runner fails in the middle of its first batch: nothing of it may stick.
    let mut second = Runner::new(Kind::Inventory, &w.read, &w.store).await.unwrap().with_batch_size(7);
    assert_eq!(second.checkpoint(), at_kill, "restart resumes from the stored checkpoint");
    second.fail_after = Some(3);
    assert!(matches!(second.run_batch().await, Err(ProjectionError::Injected)));
    assert_eq!(w.read.checkpoint(Kind::Inventory).await.unwrap(), at_kill, "a failed batch moves nothing");
    drop(second);

    let mut third = Runner::new(Kind::Inventory, &w.read, &w.store).await.unwrap().with_batch_size(7);
    until_head(&mut third, w.head).await;
    assert_applied_exactly_once(&w).await;

    // The read model equals a fresh replay from position zero.
    let before = w.read.dump(Kind::Inventory).await.unwrap();
    assert_eq!(before.len(), w.items.len());
    w.read.reset(Kind::Inventory).await.unwrap();
    assert!(w.read.dump(Kind::Inventory).await.unwrap().is_empty());
    let mut fresh = Runner::new(Kind::Inventory, &w.read, &w.store).await.unwrap();
    until_head(&mut fresh, w.head).await;
    assert_eq!(w.read.dump(Kind::Inventory).await.unwrap(), before);
}

async fn every_stored_row_equals_the_fold_of_its_stream(tdb: &TestDatabase) {
    let w = world(tdb).await;
    for kind in [Kind::Inventory, Kind::Customers] {
        let mut r = Runner::new(kind, &w.read, &w.store).await.unwrap();
        until_head(&mut r, w.head).await;
    }
    for (id, _) in &w.items {
        let mut folded = None;
        for e in w.store.read_stream(&id.stream_id(), 0).await.unwrap() {
            let event = domain::aggregate::decode(&e.event_type, &e.payload).unwrap();
            folded = projections::views::item_view(folded, &e, event);
        }
        assert_eq!(
            w.read.item(w.store_id, id.as_uuid()).await.unwrap(),
            folded,
            "item {id}: SQL round trip lost something"
        );
    }
    let customers = w.read.dump(Kind::Customers).await.unwrap();
    assert_eq!(customers.len(), 5);
    for line in customers {
        let id: uuid::Uuid = line.split("id: ").nth(1).unwrap()[..36].parse().unwrap();
        let mut folded = None;
        for e in w.store.read_stream(&CustomerId::from_uuid(id).stream_id(), 0).await.unwrap() {
            let event = domain::aggregate::decode(&e.event_type, &e.payload).unwrap();
            folded = projections::views::customer_view(folded, &e, event);
        }
        assert_eq!(w.read.customer(w.store_id, id).await.unwrap(), folded);
    }
}

async fn batch_reads_return_every_requested_row_and_only_the_callers_store(tdb: &TestDatabase) {
    let w = world(tdb).await;
    let mut r = Runner::new(Kind::Inventory, &w.read, &w.store).await.unwrap();
    until_head(&mut r, w.head).await;
    let ids: Vec<uuid::Uuid> = w.items.iter().map(|(id, _)| id.as_uuid()).collect();
    let rows = w.read.items_by_ids(w.store_id, &ids).await.unwrap();
    assert_eq!(rows.len(), ids.len());
    assert!(w.read.items_by_ids(uuid::Uuid::now_v7(), &ids).await.unwrap().is_empty(), "another store sees nothing");
    assert!(w.read.items_by_ids(w.store_id, &[]).await.unwrap().is_empty());
}

async fn racing_runners_never_apply_an_event_twice(tdb: &TestDatabase) {
    let w = world(tdb).await;
    let mut a = Runner::new(Kind::Inventory, &w.read, &w.store).await.unwrap().with_batch_size(3);
    let mut b = Runner::new(Kind::Inventory, &w.read, &w.store).await.unwrap().with_batch_size(5);
    let head = w.head;
    let (ra, rb) = tokio::join!(
        tokio::spawn(async move {
            until_head(&mut a, head).await;
        }),
        tokio::spawn(async move {
            until_head(&mut b, head).await;
        })
    );
    ra.unwrap();
    rb.unwrap();
    assert_applied_exactly_once(&w).await;
}

async fn batches_with_nothing_for_a_model_store_no_checkpoint_on_sqlite_and_lose_nothing(tdb: &TestDatabase) {
    let w = world(tdb).await;
    let ctx = CommandContext::system(StoreId::from_uuid(w.store_id), "test");
    let sqlite = matches!(w.read, ReadDb::Sqlite { .. });
    // The world ends with customers' events: nothing for the inventory.
    let mut a = Runner::new(Kind::Inventory, &w.read, &w.store).await.unwrap().with_batch_size(1);
    until_head(&mut a, w.head).await;
    let stored = w.read.checkpoint(Kind::Inventory).await.unwrap();
    if sqlite {
        assert!(stored < a.checkpoint(), "the customers' events were not stored for the inventory");
    } else {
        assert_eq!(stored, a.checkpoint(), "PostgreSQL stores every batch (other servers follow it)");
    }
    // Another runner from the stored checkpoint: it re-reads those events (nothing to apply)
    // and takes a price change; `a`, ahead in memory of the stored checkpoint it last wrote,
    // finds it moved and follows it. Nothing is applied twice.
    let mut b = Runner::new(Kind::Inventory, &w.read, &w.store).await.unwrap().with_batch_size(2);
    let (item, events) = w.items[0];
    let change = ItemCommand::ChangePrice(ChangeItemPrice {
        asking_price: Money::parse("x", "777.00", "USD").unwrap(),
        floor_price: None,
        reason: None,
    });
    let head = execute::<InventoryItem>(&w.store, &ctx, &item.stream_id(), &change).await.unwrap().position.unwrap();
    until_head(&mut b, head).await;
    assert_eq!(w.read.checkpoint(Kind::Inventory).await.unwrap(), head);
    until_head(&mut a, head).await;
    let row = w.read.item(w.store_id, item.as_uuid()).await.unwrap().unwrap();
    assert_eq!((row.version as u64, row.asking_price.minor), (events + 1, 77_700));
    // A customer's change again moves `b` in memory only; `flush` stores it.
    let log = w.store.read_all(Position::START, 1000).await.unwrap();
    let stream = &log.iter().find(|e| e.stream_id.starts_with("customer-")).expect("the world has customers").stream_id;
    let customer = uuid::Uuid::parse_str(&stream["customer-".len()..]).unwrap();
    let update = CustomerCommand::Update(UpdateCustomer { notes: Some("prefers steel".into()), ..Default::default() });
    let cid = CustomerId::from_uuid(customer);
    let before = w.read.checkpoint(Kind::Inventory).await.unwrap();
    let mut c = Runner::new(Kind::Inventory, &w.read, &w.store).await.unwrap();
    let head = execute::<Customer>(&w.store, &ctx, &cid.stream_id(), &update).await.unwrap().position.unwrap();
    until_head(&mut b, head).await;
    assert_eq!(w.read.checkpoint(Kind::Inventory).await.unwrap() < head, sqlite);
    // `c` takes the same batch from the same checkpoint. On PostgreSQL `b` stored it (one
    // compare-and-set, nothing else), so `c` finds the checkpoint moved and follows it.
    assert_eq!(c.checkpoint(), before);
    let applied = c.run_batch().await.unwrap();
    assert_eq!((applied, c.checkpoint()), (if sqlite { 1 } else { 0 }, head));
    b.flush().await.unwrap();
    assert_eq!(w.read.checkpoint(Kind::Inventory).await.unwrap(), head);
    assert_eq!(b.checkpoint(), head);
}

async fn customer_read_model_follows_updates_and_clears(tdb: &TestDatabase) {
    let w = world(tdb).await;
    let mut r = Runner::new(Kind::Customers, &w.read, &w.store).await.unwrap();
    until_head(&mut r, w.head).await;
    let rows = w.read.dump(Kind::Customers).await.unwrap();
    assert_eq!(rows.len(), 5);
    for row in rows {
        assert!(row.contains("email: None"), "email was cleared: {row}");
        assert!(row.contains("phone: Some(\"+1 212 555 010"), "{row}");
        assert!(row.contains("version: 2"), "{row}");
    }
}

/// The totals the inventory page shows come from counts the projection maintains: under every
/// filter they equal the rows that match, as items move between statuses, and a rebuild
/// arrives at the same counts.
async fn maintained_item_totals_equal_the_matching_rows_under_every_filter(tdb: &TestDatabase) {
    use projections::rows::{ItemFilter, ItemSortField, ListQuery};
    let w = world(tdb).await;
    let ctx = CommandContext::system(StoreId::from_uuid(w.store_id), "test");
    let mut head = w.head;
    // Move some items out of stock: archived, sent to service, archived then nothing more.
    for (n, (id, _)) in w.items.iter().enumerate() {
        let cmd = match n % 3 {
            0 => ItemCommand::Archive,
            1 => ItemCommand::SendToService { provider: "Atelier".into(), reason: None },
            _ => continue,
        };
        head =
            head.max(execute::<InventoryItem>(&w.store, &ctx, &id.stream_id(), &cmd).await.unwrap().position.unwrap());
    }
    let mut r = Runner::new(Kind::Inventory, &w.read, &w.store).await.unwrap();
    until_head(&mut r, head).await;
    let check = |label: &'static str| {
        let read = w.read.clone();
        let store_id = w.store_id;
        async move {
            let mut combos = 0;
            for status in [
                None,
                Some(ItemStatus::InStock),
                Some(ItemStatus::Archived),
                Some(ItemStatus::InService),
                Some(ItemStatus::Sold),
            ] {
                for category in [None, Some(Category::Watch), Some(Category::Handbag)] {
                    for brand in [None, Some("brand 1"), Some("BRAND 2"), Some("Nobody")] {
                        let filter = ItemFilter { status, category, brand: brand.map(str::to_owned) };
                        let q = ListQuery {
                            store_id,
                            first: 100,
                            after: None,
                            filter,
                            sort: ItemSortField::CreatedAt,
                            descending: false,
                            with_total: true,
                        };
                        let page = read.items(&q).await.unwrap();
                        assert_eq!(
                            page.total,
                            Some(page.rows.len() as i64),
                            "{label}: status {status:?}, category {category:?}, brand {brand:?}"
                        );
                        combos += usize::from(!page.rows.is_empty());
                    }
                }
            }
            assert!(combos > 10, "the filters select different, non-empty sets");
        }
    };
    check("maintained").await;
    // A rebuild from the log arrives at the same totals.
    w.read.reset(Kind::Inventory).await.unwrap();
    let mut r = Runner::new(Kind::Inventory, &w.read, &w.store).await.unwrap();
    until_head(&mut r, head).await;
    check("rebuilt").await;
}

/// The page totals for every filter combination, and every row: what a read model holds.
async fn inventory_snapshot(read: &ReadDb, store_id: uuid::Uuid) -> (Vec<String>, Vec<Option<i64>>) {
    use projections::rows::{ItemFilter, ItemSortField, ListQuery};
    let mut totals = Vec::new();
    for status in [
        None,
        Some(ItemStatus::InStock),
        Some(ItemStatus::Archived),
        Some(ItemStatus::InService),
        Some(ItemStatus::Reserved),
    ] {
        for category in [None, Some(Category::Watch), Some(Category::Handbag)] {
            for brand in [None, Some("brand 0"), Some("Brand 1"), Some("BRAND 2")] {
                let filter = ItemFilter { status, category, brand: brand.map(str::to_owned) };
                let q = ListQuery {
                    store_id,
                    first: 1,
                    after: None,
                    filter,
                    sort: ItemSortField::CreatedAt,
                    descending: false,
                    with_total: true,
                };
                totals.push(read.items(&q).await.unwrap().total);
            }
        }
    }
    (read.dump(Kind::Inventory).await.unwrap(), totals)
}

async fn batched_application_equals_event_by_event_for_random_histories(tdb: &TestDatabase) {
    let w = world(tdb).await;
    let ctx = CommandContext::system(StoreId::from_uuid(w.store_id), "test");
    let usd = |minor: u64| Money::parse("x", &format!("{}.{:02}", minor / 100, minor % 100), "USD").unwrap();
    let mut head = w.head;
    for seed in [7u64, 1_000_003, 0x5eed] {
        // xorshift: the same history for a seed on every run and backend.
        let mut x = seed;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..120 {
            let (id, _) = w.items[(next() % w.items.len() as u64) as usize];
            let cmd = match next() % 6 {
                0 => ItemCommand::ChangePrice(ChangeItemPrice {
                    asking_price: usd(50_000 + next() % 900_000),
                    floor_price: None,
                    reason: None,
                }),
                1 => ItemCommand::SendToService { provider: "Atelier".into(), reason: None },
                2 => ItemCommand::ReturnFromService,
                3 => ItemCommand::Archive,
                4 => ItemCommand::Reserve { customer_id: CustomerId::new_v7(), until: None, now: chrono::Utc::now() },
                _ => ItemCommand::ReleaseReservation,
            };
            // Commands the item's state refuses append nothing; the rest make its history.
            if let Ok(done) = execute::<InventoryItem>(&w.store, &ctx, &id.stream_id(), &cmd).await {
                head = head.max(done.position.unwrap_or(head));
            }
        }
    }
    // Event by event, then in batches of other sizes from nothing: the same rows and totals.
    let mut one = Runner::new(Kind::Inventory, &w.read, &w.store).await.unwrap().with_batch_size(1);
    until_head(&mut one, head).await;
    let expected = inventory_snapshot(&w.read, w.store_id).await;
    assert!(expected.1.iter().filter(|t| t.unwrap_or(0) > 0).count() > 10, "the history spreads the items out");
    for size in [500, 3, 17] {
        w.read.reset(Kind::Inventory).await.unwrap();
        let mut r = Runner::new(Kind::Inventory, &w.read, &w.store).await.unwrap().with_batch_size(size);
        until_head(&mut r, head).await;
        assert_eq!(inventory_snapshot(&w.read, w.store_id).await, expected, "batches of {size}");
    }
}

async fn the_maintained_customers_total_equals_the_listed_rows_through_merges_and_rebuilds(tdb: &TestDatabase) {
    use projections::rows::{CustomerFilter, CustomerSortField, ListQuery};
    let w = world(tdb).await;
    let ctx = CommandContext::system(StoreId::from_uuid(w.store_id), "test");
    let mut head = w.head;
    let ids: Vec<CustomerId> = {
        let mut r = Runner::new(Kind::Customers, &w.read, &w.store).await.unwrap();
        until_head(&mut r, head).await;
        let q = ListQuery {
            store_id: w.store_id,
            first: 100,
            after: None,
            filter: CustomerFilter::default(),
            sort: CustomerSortField::CreatedAt,
            descending: false,
            with_total: false,
        };
        w.read.customers(&q).await.unwrap().rows.iter().map(|(c, _)| CustomerId::from_uuid(c.id)).collect()
    };
    // Two duplicates merged into the first customer: no longer listed, no longer counted.
    for dup in &ids[1..3] {
        let merge = CustomerCommand::MergeInto { survivor: ids[0] };
        head = head.max(execute::<Customer>(&w.store, &ctx, &dup.stream_id(), &merge).await.unwrap().position.unwrap());
        let absorb = CustomerCommand::Absorb { merged: *dup };
        head = head
            .max(execute::<Customer>(&w.store, &ctx, &ids[0].stream_id(), &absorb).await.unwrap().position.unwrap());
    }
    let totals = |label: &'static str| {
        let read = w.read.clone();
        let store_id = w.store_id;
        async move {
            let query = |filter: CustomerFilter| ListQuery {
                store_id,
                first: 1,
                after: None,
                filter,
                sort: CustomerSortField::CreatedAt,
                descending: false,
                with_total: true,
            };
            let maintained = read.customers(&query(CustomerFilter::default())).await.unwrap().total;
            // Every customer has a name: matching "" counts the listed rows one by one.
            let all = CustomerFilter { name_contains: Some(String::new()), ..Default::default() };
            let counted = read.customers(&query(all)).await.unwrap().total;
            assert_eq!(maintained, counted, "{label}");
            maintained
        }
    };
    let mut r = Runner::new(Kind::Customers, &w.read, &w.store).await.unwrap();
    until_head(&mut r, head).await;
    assert_eq!(totals("maintained").await, Some(ids.len() as i64 - 2));
    w.read.reset(Kind::Customers).await.unwrap();
    let mut r = Runner::new(Kind::Customers, &w.read, &w.store).await.unwrap();
    until_head(&mut r, head).await;
    assert_eq!(totals("rebuilt").await, Some(ids.len() as i64 - 2));
}

async fn a_rebuild_applies_the_whole_log_and_refreshes_planner_statistics(tdb: &TestDatabase) {
    let w = world(tdb).await;
    let mut r = Runner::new(Kind::Customers, &w.read, &w.store).await.unwrap();
    until_head(&mut r, w.head).await;
    let before = w.read.dump(Kind::Customers).await.unwrap();
    let total = w.store.count_after(Position::START).await.unwrap();
    let done = projections::rebuild(&w.read, &w.store, Kind::Customers, |_, _| {}).await.unwrap().applied;
    assert_eq!(done, total, "every event of the log went through the rebuild");
    assert_eq!(w.read.dump(Kind::Customers).await.unwrap(), before);
    if let projections::ReadDb::Postgres(pool) = &w.read {
        // The planner has statistics for the refilled tables (a freshly filled table is
        // otherwise planned as if empty).
        let analysed: Vec<(String, bool)> = sqlx::query_as(
            "SELECT relname::text, last_analyze IS NOT NULL FROM pg_stat_user_tables
             WHERE relname IN ('rm_customers', 'rm_customer_counts') ORDER BY relname",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        assert_eq!(analysed, [("rm_customer_counts".to_owned(), true), ("rm_customers".to_owned(), true)]);
    }
}

eventstore::backend_contract!(
    a_rebuild_applies_the_whole_log_and_refreshes_planner_statistics,
    the_maintained_customers_total_equals_the_listed_rows_through_merges_and_rebuilds,
    batched_application_equals_event_by_event_for_random_histories,
    maintained_item_totals_equal_the_matching_rows_under_every_filter,
    a_runner_killed_between_and_inside_batches_applies_every_event_once,
    racing_runners_never_apply_an_event_twice,
    batches_with_nothing_for_a_model_store_no_checkpoint_on_sqlite_and_lose_nothing,
    customer_read_model_follows_updates_and_clears,
    every_stored_row_equals_the_fold_of_its_stream,
    batch_reads_return_every_requested_row_and_only_the_callers_store,
);
