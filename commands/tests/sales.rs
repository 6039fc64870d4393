//! Sale workflows against both backends: an item is never sold twice under concurrent
//! confirmations, and invoice numbers are gap-free and never reused.

use commands::sales::{cancel_sale, confirm_sale, create_sale};
use commands::{execute, CommandContext, CommandError};
use domain::aggregate::decode;
use domain::inventory::{InventoryItem, ItemCommand, ItemEvent, ItemStatus};
use domain::sale::{CreateSale, InvoiceEvent, SaleLine, SaleStatus};
use domain::{DomainError, ItemId, SaleId, StoreId};
use eventstore::testing::TestDatabase;
use eventstore::{Database, EventStore, MasterKey, Upcasters};

mod common;
use common::{acquire_command, setup, usd};

async fn acquire(store: &EventStore, ctx: &CommandContext) -> ItemId {
    let id = ItemId::new_v7();
    execute::<InventoryItem>(store, ctx, &id.stream_id(), &acquire_command(ctx, id)).await.unwrap();
    id
}

async fn draft(store: &EventStore, ctx: &CommandContext, item: ItemId) -> SaleId {
    let sale_id = SaleId::new_v7();
    let cmd = CreateSale {
        sale_id,
        store_id: ctx.store_id,
        customer_id: None,
        salesperson: None,
        lines: vec![SaleLine { item_id: item, price: usd("15000.00"), discount: None }],
        trade_ins: vec![],
        tax: None,
        buyer_name: None,
        buyer_address: None,
    };
    create_sale(store, ctx, cmd, false, None).await.unwrap();
    sale_id
}

async fn sale_state(store: &EventStore, ctx: &CommandContext, sale: SaleId) -> domain::sale::SaleState {
    commands::load::<domain::sale::Sale>(store, ctx.store_id, &sale.stream_id()).await.unwrap().0.state.unwrap()
}

async fn one_item_is_never_sold_twice_under_concurrent_confirmations(tdb: &TestDatabase) {
    let (store, ctx) = setup(tdb).await;
    let item = acquire(&store, &ctx).await;
    let mut sales = Vec::new();
    for _ in 0..8 {
        sales.push(draft(&store, &ctx, item).await);
    }
    let tasks: Vec<_> = sales
        .iter()
        .map(|sale| {
            let (store, ctx, sale) = (store.clone(), ctx.clone(), *sale);
            tokio::spawn(async move { confirm_sale(&store, &ctx, sale, false, None).await.map(|_| sale) })
        })
        .collect();
    let mut confirmed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(sale) => {
                assert_eq!(sale_state(&store, &ctx, sale).await.status, SaleStatus::Confirmed);
                confirmed += 1;
            }
            Err(CommandError::Rejected(DomainError::IllegalTransition { .. })) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(confirmed, 1, "exactly one sale gets the item");
    let events = store.read_stream(&item.stream_id(), 0).await.unwrap();
    let sold = events.iter().filter(|e| e.event_type == "ItemSold").count();
    assert_eq!(sold, 1);
    let invoices = store.read_stream(&domain::ids::invoice_stream(ctx.store_id), 0).await.unwrap();
    assert_eq!(invoices.len(), 1, "the losers took no invoice number");
}

async fn invoice_numbers_are_gap_free_under_concurrency_and_voids_keep_them(tdb: &TestDatabase) {
    let (store, ctx) = setup(tdb).await;
    let mut sales = Vec::new();
    for _ in 0..10 {
        let item = acquire(&store, &ctx).await;
        sales.push((draft(&store, &ctx, item).await, item));
    }
    let tasks: Vec<_> = sales
        .iter()
        .map(|(sale, _)| {
            let (store, ctx, sale) = (store.clone(), ctx.clone(), *sale);
            tokio::spawn(async move {
                confirm_sale(&store, &ctx, sale, false, None).await.unwrap();
                sale_state(&store, &ctx, sale).await.invoice_number.unwrap()
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap());
    }
    numbers.sort();
    assert_eq!(numbers, (1..=10).collect::<Vec<u64>>());
    // Cancelling a confirmed sale voids its number and restocks the item; the next sale gets 11.
    let (cancelled, item) = sales[0];
    cancel_sale(&store, &ctx, cancelled, Some("customer changed mind".into()), None).await.unwrap();
    assert_eq!(sale_state(&store, &ctx, cancelled).await.status, SaleStatus::Cancelled);
    let (item_state, _) = commands::load::<InventoryItem>(&store, ctx.store_id, &item.stream_id()).await.unwrap();
    assert_eq!(item_state.state.unwrap().status, ItemStatus::InStock);
    let next = draft(&store, &ctx, item).await;
    confirm_sale(&store, &ctx, next, false, None).await.unwrap();
    assert_eq!(sale_state(&store, &ctx, next).await.invoice_number, Some(11));
    let book = store.read_stream(&domain::ids::invoice_stream(ctx.store_id), 0).await.unwrap();
    let voided: Vec<u64> = book
        .iter()
        .filter_map(|e| match decode::<InvoiceEvent>(&e.event_type, &e.payload).unwrap() {
            InvoiceEvent::InvoiceVoided { number, .. } => Some(number),
            _ => None,
        })
        .collect();
    assert_eq!(voided.len(), 1);
    let events = store.read_stream(&item.stream_id(), 0).await.unwrap();
    let kinds: Vec<_> =
        events.iter().map(|e| decode::<ItemEvent>(&e.event_type, &e.payload).unwrap().new_status()).collect();
    assert_eq!(
        kinds,
        vec![
            Some(ItemStatus::InStock),
            Some(ItemStatus::Sold),
            Some(ItemStatus::Returned),
            Some(ItemStatus::InStock),
            Some(ItemStatus::Sold)
        ]
    );
}

async fn a_sale_of_a_reserved_item_for_someone_else_is_rejected_and_writes_nothing(tdb: &TestDatabase) {
    let (store, ctx) = setup(tdb).await;
    let item = acquire(&store, &ctx).await;
    let someone = domain::CustomerId::new_v7();
    execute::<InventoryItem>(
        &store,
        &ctx,
        &item.stream_id(),
        &ItemCommand::Reserve { customer_id: someone, until: None, now: chrono::Utc::now() },
    )
    .await
    .unwrap();
    let sale = draft(&store, &ctx, item).await;
    let err = confirm_sale(&store, &ctx, sale, false, None).await.unwrap_err();
    assert!(matches!(err, CommandError::Rejected(DomainError::ReservedForAnother { .. })), "{err:?}");
    assert!(store.read_stream(&domain::ids::invoice_stream(ctx.store_id), 0).await.unwrap().is_empty());
    assert_eq!(store.read_stream(&sale.stream_id(), 0).await.unwrap().len(), 1, "still a draft");
}

async fn a_retried_request_with_the_same_idempotency_key_writes_nothing_new(tdb: &TestDatabase) {
    let (store, ctx) = setup(tdb).await;
    let item = acquire(&store, &ctx).await;
    let sale = draft(&store, &ctx, item).await;
    let first = confirm_sale(&store, &ctx, sale, false, Some("confirm-1")).await.unwrap();
    assert!(!first.replayed);
    let log_len = |store: EventStore| async move { store.count_after(eventstore::Position::START).await.unwrap() };
    let before = log_len(store.clone()).await;
    let again = confirm_sale(&store, &ctx, sale, false, Some("confirm-1")).await.unwrap();
    assert!(again.replayed, "the retry returns the first result");
    assert_eq!(again.entity_id, first.entity_id);
    assert_eq!(log_len(store.clone()).await, before, "and writes nothing");
    // Without the key the same retry is a real second attempt, and the domain refuses it.
    assert!(matches!(confirm_sale(&store, &ctx, sale, false, None).await, Err(CommandError::Rejected(_))));
    // A key reused for another operation is an error, not a silent replay.
    let err = cancel_sale(&store, &ctx, sale, None, Some("confirm-1")).await.unwrap_err();
    assert!(matches!(err, CommandError::Rejected(DomainError::Invalid { field: "idempotencyKey", .. })), "{err:?}");
    // Concurrent requests with one key: one writes, the others replay it.
    let item = acquire(&store, &ctx).await;
    let sale = draft(&store, &ctx, item).await;
    let before = log_len(store.clone()).await;
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (store, ctx) = (store.clone(), ctx.clone());
            tokio::spawn(async move { confirm_sale(&store, &ctx, sale, false, Some("confirm-2")).await.unwrap() })
        })
        .collect();
    let mut fresh = 0;
    for t in tasks {
        if !t.await.unwrap().replayed {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
    // sale confirmed + invoice number + item sold + the key's claim
    assert_eq!(log_len(store.clone()).await, before + 4);
}

/// The invoice book's state is kept in memory between commands (it holds no personal data and
/// grows by a sale at a time): two servers taking turns still issue 1, 2, 3, … with no number
/// twice, each reading the other's newer events after its kept state; nothing with personal
/// data is kept, and a kept state never answers for another store.
async fn kept_invoice_book_states_follow_another_servers_numbers(tdb: &TestDatabase) {
    let db = Database::connect(&tdb.url).await.unwrap();
    let key = MasterKey::generate();
    let a = EventStore::new(&db, key.clone(), Upcasters::default());
    let b = EventStore::new(&db, key, Upcasters::default());
    let ctx = CommandContext::system(StoreId::new_v7(), "test");
    let mut numbers = Vec::new();
    for n in 0..8 {
        let server = if n % 3 == 1 { &b } else { &a };
        let item = acquire(&a, &ctx).await;
        let sale = draft(&a, &ctx, item).await;
        confirm_sale(server, &ctx, sale, false, None).await.unwrap();
        numbers.push(sale_state(&a, &ctx, sale).await.invoice_number.unwrap());
        if n == 4 {
            // A void through the other server adds to the book without taking a number.
            cancel_sale(&b, &ctx, sale, Some("changed mind".into()), None).await.unwrap();
        }
    }
    assert_eq!(numbers, (1..=8).collect::<Vec<u64>>(), "gap-free, none twice, across servers");
    let book = domain::ids::invoice_stream(ctx.store_id);
    let (state, expected) = commands::load::<domain::sale::InvoiceBook>(&b, ctx.store_id, &book).await.unwrap();
    assert_eq!(state.last, 8);
    assert_eq!(expected, eventstore::ExpectedVersion::Exact(8), "eight numbers and a void: versions 0 to 8");
    // Only the invoice book is kept: items, sales (and customers) are read whole every time.
    assert_eq!((a.states().len(), b.states().len()), (1, 1));
    // Another store asking for this book's stream finds nothing, kept state or not.
    let other = StoreId::new_v7();
    let err = commands::load::<domain::sale::InvoiceBook>(&a, other, &book).await.unwrap_err();
    assert!(matches!(err, CommandError::Rejected(DomainError::NotFound { .. })), "{err:?}");
}

eventstore::backend_contract!(
    kept_invoice_book_states_follow_another_servers_numbers,
    one_item_is_never_sold_twice_under_concurrent_confirmations,
    invoice_numbers_are_gap_free_under_concurrency_and_voids_keep_them,
    a_sale_of_a_reserved_item_for_someone_else_is_rejected_and_writes_nothing,
    a_retried_request_with_the_same_idempotency_key_writes_nothing_new,
);
