//! Every read model against a fresh rebuild, for random histories, on both backends: the models
//! maintained while the commands ran (runners stepping in small batches, as a server's do) equal
//! the same models rebuilt from the log in large batches; every sale row equals its stream's
//! history fold (`views::replay`, what `asOf` queries answer); the sales page's maintained
//! totals equal the rows they count.

use commands::customers::merge_customers;
use commands::sales::{cancel_sale, confirm_sale, create_sale, return_sale};
use commands::{execute, CommandContext};
use domain::customer::{Customer, CustomerCommand, RegisterCustomer};
use domain::inventory::{AcquireItem, Category, ChangeItemPrice, InventoryItem, ItemCommand};
use domain::privacy::PrivacyRequestId;
use domain::sale::{
    CreateSale, PaymentKind, PaymentMethod, RecordPayment, RefundPayment, Sale, SaleCommand, SaleLine, SaleStatus,
};
use domain::staff::Role;
use domain::store::{RosterActor, Store, StoreCommand};
use domain::{CustomerId, ItemId, Money, SaleId, StoreId, UserId};
use eventstore::testing::TestDatabase;
use eventstore::{Database, EventStore, MasterKey, Position, Upcasters};
use projections::rows::{ListQuery, SaleFilter, SaleRow};
use projections::{Kind, ReadDb, Runner};
use std::time::{Duration, Instant};

fn usd(minor: u64) -> Money {
    Money::parse("x", &format!("{}.{:02}", minor / 100, minor % 100), "USD").unwrap()
}

async fn until(runner: &mut Runner, head: Position) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while runner.checkpoint() < head {
        assert!(Instant::now() < deadline, "runner never reached {head}");
        runner.catch_up().await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A seeded random history of items, customers and sales through the real commands. Commands
/// the domain refuses (selling a sold item, refunding more than was paid, …) append nothing;
/// after each accepted one the live runners take a step. Returns the last position written.
async fn history(store: &EventStore, ctx: &CommandContext, seed: u64, live: &mut [Runner]) -> Position {
    // xorshift: the same history for a seed on every run and backend.
    let mut x = seed;
    let mut next = move |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    let (mut items, mut customers, mut sales) = (Vec::<ItemId>::new(), Vec::<CustomerId>::new(), Vec::<SaleId>::new());
    let mut head = Position::START;
    // The store and its roster, changed every few steps from a generator of its own (the
    // dealer's history above stays what it was for the seed).
    let roster_cmd = StoreCommand::Open { store_id: ctx.store_id, name: format!("Store {seed}") };
    head =
        head.max(execute::<Store>(store, ctx, &ctx.store_id.stream_id(), &roster_cmd).await.unwrap().position.unwrap());
    let mut members = Vec::<UserId>::new();
    let mut r = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut roster_next = move |n: usize| {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        (r % n as u64) as usize
    };
    for step in 0..160 {
        if step % 5 == 0 {
            let written = roster_step(store, ctx, &mut members, &mut roster_next, step).await;
            if let Some(p) = written {
                head = head.max(p);
            }
        }
        let choice = if step < 6 { step % 2 } else { next(12) };
        let written: Option<Position> = match choice {
            0 => {
                let id = ItemId::new_v7();
                let cmd = ItemCommand::Acquire(AcquireItem::purchase(
                    id,
                    ctx.store_id,
                    if next(2) == 0 { Category::Watch } else { Category::Handbag },
                    ["Rolex", "Omega", "Hermès", "Chanel"][next(4)],
                    &format!("Model {step}"),
                    Some(usd(100_000)),
                    usd(200_000 + 100 * next(5000) as u64),
                ));
                items.push(id);
                execute::<InventoryItem>(store, ctx, &id.stream_id(), &cmd).await.ok().and_then(|d| d.position)
            }
            1 => {
                let id = CustomerId::new_v7();
                let cmd = CustomerCommand::Register(RegisterCustomer {
                    customer_id: id,
                    store_id: ctx.store_id,
                    name: format!("Customer {step}"),
                    email: Some(format!("c{step}@example.com")),
                    phone: None,
                    notes: None,
                    tags: vec![],
                    address: None,
                    birthday: None,
                    assigned_to: None,
                    source: None,
                    external_ids: Default::default(),
                });
                customers.push(id);
                execute::<Customer>(store, ctx, &id.stream_id(), &cmd).await.ok().and_then(|d| d.position)
            }
            2 => {
                let id = items[next(items.len())];
                let cmd = ItemCommand::ChangePrice(ChangeItemPrice {
                    asking_price: usd(150_000 + 100 * next(5000) as u64),
                    floor_price: None,
                    reason: None,
                });
                execute::<InventoryItem>(store, ctx, &id.stream_id(), &cmd).await.ok().and_then(|d| d.position)
            }
            3 | 4 => {
                let id = SaleId::new_v7();
                let item = items[next(items.len())];
                let cmd = CreateSale {
                    sale_id: id,
                    store_id: ctx.store_id,
                    customer_id: (next(3) > 0).then(|| customers[next(customers.len())]),
                    salesperson: None,
                    lines: vec![SaleLine {
                        item_id: item,
                        price: usd(100_000 + 100 * next(3000) as u64),
                        discount: None,
                    }],
                    trade_ins: vec![],
                    tax: None,
                    buyer_name: None,
                    buyer_address: None,
                };
                let done = create_sale(store, ctx, cmd, true, None).await;
                if done.is_ok() {
                    sales.push(id);
                }
                done.ok().and_then(|d| d.position)
            }
            11 => {
                // A duplicate merged into another customer: its purchase totals move.
                let (merged, survivor) = (customers[next(customers.len())], customers[next(customers.len())]);
                merge_customers(store, ctx, merged, survivor, None).await.ok().and_then(|d| d.position)
            }
            _ if sales.is_empty() => None,
            5 | 6 => confirm_sale(store, ctx, sales[next(sales.len())], true, None).await.ok().and_then(|d| d.position),
            7 | 8 => {
                let sale = sales[next(sales.len())];
                let cmd = if choice == 7 || next(3) > 0 {
                    SaleCommand::RecordPayment(RecordPayment {
                        payment_id: uuid::Uuid::new_v4(),
                        amount: usd(10_000 * (1 + next(30)) as u64),
                        method: [PaymentMethod::Card, PaymentMethod::Wire, PaymentMethod::Cash][next(3)],
                        kind: if next(2) == 0 { PaymentKind::Deposit } else { PaymentKind::Payment },
                        idempotency_key: None,
                        provider_reference: None,
                    })
                } else {
                    SaleCommand::RefundPayment(RefundPayment {
                        refund_id: uuid::Uuid::new_v4(),
                        amount: usd(10_000 * (1 + next(10)) as u64),
                        idempotency_key: None,
                        reason: Some("adjustment".into()),
                    })
                };
                execute::<Sale>(store, ctx, &sale.stream_id(), &cmd).await.ok().and_then(|d| d.position)
            }
            9 => {
                let sale = sales[next(sales.len())];
                execute::<Sale>(store, ctx, &sale.stream_id(), &SaleCommand::Fulfil).await.ok().and_then(|d| d.position)
            }
            _ => {
                let sale = sales[next(sales.len())];
                let done = if next(2) == 0 {
                    cancel_sale(store, ctx, sale, Some("changed mind".into()), None).await
                } else {
                    return_sale(store, ctx, sale, Some("returned".into()), None).await
                };
                done.ok().and_then(|d| d.position)
            }
        };
        if let Some(p) = written {
            head = head.max(p);
            for runner in live.iter_mut() {
                runner.run_batch().await.unwrap();
            }
        }
    }
    head
}

/// One change to the roster: a member added, a role changed, a member deactivated,
/// reactivated or erased (refused changes — erasing an active member, demoting the last owner —
/// append nothing). Returns the position written, if any.
async fn roster_step(
    store: &EventStore,
    ctx: &CommandContext,
    members: &mut Vec<UserId>,
    next: &mut impl FnMut(usize) -> usize,
    step: usize,
) -> Option<Position> {
    let stream = ctx.store_id.stream_id();
    let by = RosterActor::System;
    let cmd = match (members.len(), next(6)) {
        (0..=1, _) | (_, 0) => {
            let user_id = UserId::new_v7();
            members.push(user_id);
            let role = Role::ALL[next(Role::ALL.len())];
            let name = (next(2) == 0).then(|| format!("Member {step}"));
            StoreCommand::AddMember { user_id, email: format!("M{step}@Example.com"), name, role }
        }
        (n, 1) => StoreCommand::ChangeRole { by, user_id: members[next(n)], role: Role::ALL[next(Role::ALL.len())] },
        (n, 2 | 3) => StoreCommand::Deactivate { by, user_id: members[next(n)] },
        (n, 4) => StoreCommand::Reactivate { by, user_id: members[next(n)] },
        (n, _) => StoreCommand::EraseMember { user_id: members[next(n)], request_id: PrivacyRequestId::new_v7() },
    };
    execute::<Store>(store, ctx, &stream, &cmd).await.ok().and_then(|d| d.position)
}

/// Every store's directory against the write side's own roster (the `Store` aggregate folded
/// from the store's stream): the same members with the same role, active flag and email, the
/// erased ones without name or email; and the store under its name.
async fn directory_is_the_roster(read: &ReadDb, store: &EventStore, stores: &[uuid::Uuid]) -> usize {
    let mut seen = 0;
    for store_id in stores {
        let roster = commands::staff::roster(store, StoreId::from_uuid(*store_id)).await.unwrap();
        assert_eq!(read.store_name(*store_id).await.unwrap(), roster.name, "store name");
        let q = projections::staff::StaffQuery { store_id: *store_id, first: 1000, ..Default::default() };
        let (rows, _, total) = read.staff(&q).await.unwrap();
        assert_eq!(rows.len(), roster.members.len(), "members of {store_id}");
        assert_eq!(total, rows.len() as i64);
        for row in rows {
            let member = &roster.members[&UserId::from_uuid(row.user_id)];
            assert_eq!((row.role, row.active, &row.email), (member.role, member.active, &member.email), "{row:?}");
            assert_eq!(member.erased, row.name.is_none() && row.email.is_none(), "{row:?}");
            assert_eq!(row.store_id, *store_id);
            assert!(row.updated_at >= row.created_at);
            seen += 1;
        }
        let erased = roster.members.values().filter(|m| m.erased).count();
        let inactive = roster.members.values().filter(|m| !m.active).count();
        assert!(erased > 0 && inactive > erased && roster.members.len() > inactive, "roster too plain: {roster:?}");
    }
    seen
}

async fn every_read_model_equals_a_fresh_rebuild_for_random_histories(tdb: &TestDatabase) {
    let db = Database::connect(&tdb.url).await.unwrap();
    let store = EventStore::new(&db, MasterKey::generate(), Upcasters::default());
    let read = ReadDb::new(&db);
    let mut live = Vec::new();
    for kind in Kind::ALL {
        live.push(Runner::new(kind, &read, &store).await.unwrap().with_batch_size(3));
    }
    let mut stores = Vec::new();
    let mut head = Position::START;
    for seed in [7u64, 1_000_003, 0x5eed] {
        let ctx = CommandContext::system(StoreId::new_v7(), "test");
        head = head.max(history(&store, &ctx, seed, &mut live).await);
        stores.push(ctx.store_id.as_uuid());
    }
    for runner in live.iter_mut() {
        until(runner, head).await;
    }
    let mut maintained = Vec::new();
    for kind in Kind::ALL {
        maintained.push(read.dump(kind).await.unwrap());
    }

    // The histories reach every sale status, or the comparison proves little.
    let mut statuses = std::collections::BTreeSet::new();
    for store_id in &stores {
        for sale in read.all_sales(*store_id, None).await.unwrap() {
            statuses.insert(sale.status.as_str());
            // The row is its stream's history fold.
            let events = store.read_stream(&SaleId::from_uuid(sale.id).stream_id(), 0).await.unwrap();
            let replayed = projections::views::replay::<SaleRow>(&events).unwrap();
            assert_eq!(replayed.as_ref(), Some(&sale), "sale {} against its history", sale.id);
        }
        // The maintained totals equal the rows they count, for every status filter.
        let mut statuses_here = vec![None];
        statuses_here.extend(
            [
                SaleStatus::Draft,
                SaleStatus::Confirmed,
                SaleStatus::PartiallyPaid,
                SaleStatus::Paid,
                SaleStatus::Fulfilled,
                SaleStatus::Cancelled,
                SaleStatus::Returned,
            ]
            .map(Some),
        );
        for status in statuses_here {
            let q = ListQuery {
                store_id: *store_id,
                first: 1000,
                after: None,
                filter: SaleFilter { status, customer_id: None },
                sort: (),
                descending: false,
                with_total: true,
            };
            let page = read.sales(&q).await.unwrap();
            assert_eq!(page.total, Some(page.rows.len() as i64), "sales total for {status:?}");
        }
    }
    assert!(statuses.len() >= 5, "the histories reach only {statuses:?}");

    // The audit trail is the fold of `audit::entry` over the log, stream by stream, as plain
    // code computes it here: no batching, no memo table.
    let mut log = Vec::new();
    loop {
        let next = store
            .read_all(log.last().map_or(Position::START, |e: &eventstore::RecordedEvent| e.position), 1000)
            .await
            .unwrap();
        if next.is_empty() {
            break;
        }
        log.extend(next);
    }
    let mut memos = std::collections::HashMap::<String, projections::audit::Memo>::new();
    let mut expected = Vec::new();
    for e in &log {
        let memo = memos.entry(e.stream_id.clone()).or_default();
        let (row, next) = projections::audit::entry(e, memo);
        *memo = next;
        expected.push(format!("{} {} {} {:?}", row.event_id, row.summary, row.changes, row.entity_label));
    }
    expected.sort();
    let audit = Kind::ALL.iter().position(|k| *k == Kind::Audit).unwrap();
    let entries: Vec<&String> = maintained[audit].iter().filter(|l| !l.starts_with("memo ")).collect();
    assert_eq!(entries.len(), expected.len(), "one audit entry per event");
    for (got, want) in entries.iter().zip(&expected) {
        assert_eq!(*got, want);
    }
    assert!(expected.iter().any(|l| l.contains(" USD → ")), "the histories change prices after a first one");
    customers_are_their_histories(&read, &store, &stores, &log).await;
    assert!(directory_is_the_roster(&read, &store, &stores).await > 0);

    // Rebuilt from the log in large batches: every model the same.
    for (kind, expected) in Kind::ALL.into_iter().zip(&maintained) {
        assert!(!expected.is_empty() || matches!(kind, Kind::Privacy | Kind::Consent), "{kind:?} empty");
        projections::rebuild(&read, &store, kind, |_, _| {}).await.unwrap();
        assert_eq!(&read.dump(kind).await.unwrap(), expected, "{kind:?} rebuilt differs from maintained");
    }
}

/// Every customer row: its own stream's fold (`views::replay`), with purchase totals as plain
/// code computes them over the log — a confirmed sale counts for its customer, a cancelled
/// invoiced or returned one stops counting, a merge moves the duplicate's totals to the
/// survivor — and the page's total counts the customers not merged away.
async fn customers_are_their_histories(
    read: &ReadDb,
    store: &EventStore,
    stores: &[uuid::Uuid],
    log: &[eventstore::RecordedEvent],
) {
    use domain::aggregate::decode;
    use domain::customer::CustomerEvent;
    use domain::sale::SaleEvent;
    let mut totals = std::collections::HashMap::<uuid::Uuid, (i64, i64)>::new();
    let mut merges = 0;
    for e in log {
        if e.stream_id.starts_with("sale-") {
            let (c, minor, sign) = match decode::<SaleEvent>(&e.event_type, &e.payload).unwrap() {
                SaleEvent::SaleConfirmed { customer_id: Some(c), total, .. } => (c, total.minor, 1),
                SaleEvent::SaleCancelled { customer_id: Some(c), total, voided_invoice: Some(_), .. }
                | SaleEvent::SaleReturned { customer_id: Some(c), total, .. } => (c, total.minor, -1),
                _ => continue,
            };
            let t = totals.entry(c.as_uuid()).or_default();
            *t = (t.0 + sign * minor, t.1 + sign);
        } else if let Ok(CustomerEvent::CustomerAbsorbed { customer_id, merged_id, .. }) =
            decode::<CustomerEvent>(&e.event_type, &e.payload)
        {
            merges += 1;
            let moved = totals.insert(merged_id.as_uuid(), (0, 0)).unwrap_or_default();
            let t = totals.entry(customer_id.as_uuid()).or_default();
            *t = (t.0 + moved.0, t.1 + moved.1);
        }
    }
    assert!(merges > 0, "the histories merge customers");
    let mut moved_totals = 0;
    for store_id in stores {
        let q = ListQuery {
            store_id: *store_id,
            first: 100,
            after: None,
            filter: Default::default(),
            sort: projections::rows::CustomerSortField::CreatedAt,
            descending: false,
            with_total: true,
        };
        let page = read.customers(&q).await.unwrap();
        assert!(!page.has_next);
        assert_eq!(page.total, Some(page.rows.len() as i64), "listed customers");
        let ids: Vec<uuid::Uuid> = log
            .iter()
            .filter(|e| e.stream_id.starts_with("customer-"))
            .filter_map(|e| e.stream_id.split_once('-').and_then(|(_, id)| id.parse().ok()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for row in read.customers_by_ids(*store_id, &ids).await.unwrap() {
            let events = store.read_stream(&CustomerId::from_uuid(row.id).stream_id(), 0).await.unwrap();
            let mut replayed = projections::views::replay::<projections::rows::CustomerRow>(&events).unwrap().unwrap();
            let (minor, orders) = totals.get(&row.id).copied().unwrap_or_default();
            assert_eq!(row.lifetime_value.map_or(0, |m| m.minor), minor, "lifetime value of {}", row.id);
            assert_eq!(row.order_count, orders, "orders of {}", row.id);
            assert_eq!(
                row.merged_into.is_none(),
                page.rows.iter().any(|(r, _)| r.id == row.id),
                "listed unless merged"
            );
            if row.merged_into.is_some() && orders == 0 && row.lifetime_value.is_some() {
                moved_totals += 1;
            }
            (replayed.lifetime_value, replayed.order_count) = (row.lifetime_value, row.order_count);
            replayed.last_purchase_at = row.last_purchase_at;
            assert_eq!(replayed, row, "customer {} against its history", row.id);
        }
    }
    assert!(moved_totals > 0, "a merged duplicate had purchases that moved");
}

eventstore::backend_contract!(every_read_model_equals_a_fresh_rebuild_for_random_histories);
