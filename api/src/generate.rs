//! `demo generate`: a realistic dealer's history in a new store, for benchmarks and trials at
//! scale — items from the usual houses with price changes, customers with consents, and sales
//! (drafted and confirmed through the real commands). Items, customers and consents are decided
//! by the domain aggregates and appended in large multi-stream batches, the next batch decided
//! while the last is appended. The log is what the commands would have written, only faster.
//! The same data for a given `--seed` (the ids vary).

use crate::app::anyhow_free::Result;
use commands::{to_new_events, CommandContext};
use domain::aggregate::Aggregate;
use domain::consent::{CaptureMethod, Channel, ConsentChange, ConsentCommand, ConsentLedger, Purpose, SubjectFacts};
use domain::customer::{Customer, CustomerCommand, RegisterCustomer};
use domain::inventory::{AcquireItem, AcquisitionSource, Category, ChangeItemPrice, InventoryItem, ItemCommand};
use domain::sale::{CreateSale, SaleLine};
use domain::{CustomerId, ItemId, Money, SaleId, StoreId};
use eventstore::{Actor, EventStore, ExpectedVersion, NewEvent};
use std::time::Instant;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Plan {
    pub items: usize,
    /// The log's size to aim for (at least what the items, customers and sales need).
    pub events: usize,
    pub owner_email: String,
    pub owner_password: String,
    pub seed: u64,
}

/// What was generated.
#[derive(Debug)]
pub struct Generated {
    pub store_id: StoreId,
    pub items: usize,
    pub customers: usize,
    pub sales: usize,
    pub events: u64,
    pub seconds: f64,
}

/// A small deterministic generator (xorshift64*): reproducible data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// (category, house, models, typical asking price in dollars).
const HOUSES: &[(Category, &str, &[&str], u64)] = &[
    (Category::Watch, "Rolex", &["Submariner Date", "Daytona", "GMT-Master II", "Datejust 41", "Explorer II"], 14_000),
    (Category::Watch, "Omega", &["Speedmaster Professional", "Seamaster 300M", "Constellation"], 6_000),
    (Category::Watch, "Patek Philippe", &["Nautilus", "Aquanaut", "Calatrava"], 90_000),
    (Category::Watch, "Audemars Piguet", &["Royal Oak", "Royal Oak Offshore"], 55_000),
    (Category::Watch, "Cartier", &["Santos", "Tank Louis", "Ballon Bleu"], 7_500),
    (Category::Watch, "Tudor", &["Black Bay 58", "Pelagos"], 3_800),
    (Category::Watch, "IWC", &["Portugieser", "Pilot's Watch Mark XX"], 6_500),
    (Category::Watch, "Jaeger-LeCoultre", &["Reverso Classic", "Master Ultra Thin"], 8_000),
    (Category::Handbag, "Hermès", &["Birkin 30", "Kelly 28", "Constance 18", "Evelyne PM"], 22_000),
    (Category::Handbag, "Chanel", &["Classic Flap Medium", "Boy Bag", "2.55 Reissue"], 8_500),
    (Category::Handbag, "Louis Vuitton", &["Speedy 30", "Neverfull MM", "Capucines"], 2_500),
    (Category::Handbag, "Dior", &["Lady Dior", "Saddle"], 4_500),
    (Category::Handbag, "Bottega Veneta", &["Jodie", "Cassette"], 3_000),
];

const FIRST: &[&str] = &["Avery", "Jordan", "Morgan", "Riley", "Casey", "Quinn", "Harper", "Rowan", "Elliot", "Sasha"];
const LAST: &[&str] = &["Collector", "Whitfield", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Rossi", "Novak", "Byrne"];

fn usd(dollars: u64) -> Money {
    Money::parse("amount", &format!("{dollars}.00"), "USD").expect("generated amounts are valid")
}

type Batches = Vec<(String, ExpectedVersion, Vec<NewEvent>)>;

/// Appends batches in the background while the next one is decided: one append in flight at a
/// time, so they land in the order they were decided.
struct Appender {
    store: EventStore,
    pending: Option<tokio::task::JoinHandle<Result<u64>>>,
    /// Events appended so far (not counting the one in flight).
    written: u64,
}

impl Appender {
    /// Starts appending `batches` (taken) once the append before has finished; returns what
    /// is appended so far.
    async fn send(&mut self, batches: &mut Batches) -> Result<u64> {
        self.wait().await?;
        let batches = std::mem::take(batches);
        let n: usize = batches.iter().map(|b| b.2.len()).sum();
        if n > 0 {
            let store = self.store.clone();
            self.pending = Some(tokio::spawn(async move {
                store.append_streams(batches).await?;
                Ok(n as u64)
            }));
        }
        Ok(self.written)
    }

    /// Waits for the append in flight; returns what is appended so far.
    async fn wait(&mut self) -> Result<u64> {
        if let Some(pending) = self.pending.take() {
            self.written += pending.await??;
        }
        Ok(self.written)
    }
}

/// Generates the store and its history. `progress` is told how many events are in so far.
pub async fn generate(
    store: &EventStore,
    accounts: &eventstore::Accounts,
    plan: &Plan,
    mut progress: impl FnMut(u64, u64),
) -> Result<Generated> {
    let started = Instant::now();
    let mut rng = Rng(plan.seed.max(1));
    let (store_id, owner, _) = commands::stores::create_store(
        store,
        accounts,
        "demo-generate",
        "Generated Dealer",
        &plan.owner_email,
        &plan.owner_password,
    )
    .await?;
    let ctx = CommandContext {
        actor: Actor { kind: "user".into(), id: Some(owner.as_uuid()), role: Some("OWNER".into()) },
        ..CommandContext::system(store_id, "demo-generate")
    };
    let customers = (plan.items / 10).max(1);
    let sales = (plan.items / 50).clamp(1, 2_000).min(plan.items);
    // Events the fixed parts take: one per item, two per customer (profile, consent), about
    // four per sale; price changes fill the rest.
    let fixed = plan.items + 2 * customers + 4 * sales;
    let mut price_changes = plan.events.saturating_sub(fixed);
    let target = (fixed + price_changes) as u64;
    let mut appender = Appender { store: store.clone(), pending: None, written: 0 };
    let mut batch = Vec::new();
    let mut in_batch = 0usize;
    const BATCH_EVENTS: usize = 2_000;

    let now = chrono::Utc::now();
    let mut item_ids = Vec::with_capacity(plan.items);
    for i in 0..plan.items {
        let (category, house, models, typical) = *rng.pick(HOUSES);
        let model = *rng.pick(models);
        let asking = typical / 2 + rng.below(typical as usize) as u64;
        let source = match rng.below(10) {
            0 => AcquisitionSource::Consignment,
            1 | 2 => AcquisitionSource::TradeIn,
            _ => AcquisitionSource::Purchase,
        };
        let item_id = ItemId::new_v7();
        let acquire = ItemCommand::Acquire(AcquireItem {
            item_id,
            store_id,
            category,
            brand: house.into(),
            model: model.into(),
            reference_number: Some(format!("{}-{:05}", &house[..3].to_uppercase(), rng.below(99_999))),
            serial_number: Some(format!("SN{:08}", i)),
            cost: (source != AcquisitionSource::Consignment).then(|| usd(asking * 7 / 10)),
            asking_price: usd(asking),
            source,
            attributes: Default::default(),
            acquired_at: now - chrono::Duration::days(rng.below(3 * 365) as i64),
            floor_price: None,
            counterparty: None,
            vendor: None,
            consignor_payout: (source == AcquisitionSource::Consignment)
                .then_some(domain::inventory::ConsignorPayout::Percentage { basis_points: 8000 }),
            condition: Some(domain::inventory::ConditionGrade::Excellent),
            watch: None,
            handbag: None,
            notes: None,
        });
        let mut item = InventoryItem::default();
        let mut events = item.decide(&acquire)?;
        item = events.iter().fold(item, |s, e| s.evolve(e));
        // Spread the price changes evenly over the items still to come.
        let changes = price_changes.div_ceil(plan.items - i);
        price_changes -= changes;
        let mut price = asking;
        for _ in 0..changes {
            price = (price * (95 + rng.below(10) as u64) / 100).max(100);
            let cmd = ItemCommand::ChangePrice(ChangeItemPrice {
                asking_price: usd(price),
                floor_price: None,
                reason: Some("market adjustment".into()),
            });
            let more = item.decide(&cmd)?;
            item = more.iter().fold(item, |s, e| s.evolve(e));
            events.extend(more);
        }
        in_batch += events.len();
        batch.push((item_id.stream_id(), ExpectedVersion::NoStream, to_new_events(&ctx, &events)));
        item_ids.push(item_id);
        if in_batch >= BATCH_EVENTS {
            let written = appender.send(&mut batch).await?;
            in_batch = 0;
            progress(written, target);
        }
    }

    let mut customer_ids = Vec::with_capacity(customers);
    for c in 0..customers {
        let customer_id = CustomerId::new_v7();
        let (first, last) = (*rng.pick(FIRST), *rng.pick(LAST));
        let register = CustomerCommand::Register(RegisterCustomer {
            customer_id,
            store_id,
            name: format!("{first} {last}"),
            email: Some(format!("{}.{}.{c}@example.com", first.to_lowercase(), last.to_lowercase())),
            phone: Some(format!("+1 555 {:07}", c)),
            notes: None,
            tags: vec![if rng.below(4) == 0 { "vip" } else { "collector" }.into()],
            address: None,
            birthday: None,
            assigned_to: None,
            source: None,
            external_ids: Default::default(),
        });
        let events = Customer::default().decide(&register)?;
        batch.push((customer_id.stream_id(), ExpectedVersion::NoStream, to_new_events(&ctx, &events)));
        let grant = ConsentCommand::Grant(ConsentChange {
            customer_id,
            store_id,
            purpose: *rng.pick(&[Purpose::MarketingEmail, Purpose::MarketingSms]),
            channel: Channel::Any,
            notice_version: "2026-01".into(),
            method: CaptureMethod::InStore,
            captured_by: Some(owner.as_uuid()),
            ip: None,
            user_agent: None,
            effective_at: now - chrono::Duration::days(rng.below(365) as i64),
            subject: SubjectFacts::default(),
        });
        let consent = ConsentLedger::default().decide(&grant)?;
        batch.push((
            domain::ids::consent_stream(customer_id),
            ExpectedVersion::NoStream,
            to_new_events(&ctx, &consent),
        ));
        customer_ids.push(customer_id);
        in_batch += events.len() + consent.len();
        if in_batch >= BATCH_EVENTS {
            let written = appender.send(&mut batch).await?;
            in_batch = 0;
            progress(written, target);
        }
    }
    appender.send(&mut batch).await?;
    progress(appender.wait().await?, target);

    // Sales go through the real commands: they span the sale, its items and the invoice book.
    // One at a time: on SQLite's one writer, four at once contended on the invoice book and
    // took 21 s for 2,000 sales against 14 s.
    for s in 0..sales {
        let item_id = item_ids[(s * 37) % item_ids.len()];
        let (item, _) = commands::load::<InventoryItem>(store, store_id, &item_id.stream_id()).await?;
        let Some(price) = item.state.as_ref().map(|i| i.asking_price) else { continue };
        let sale_id = SaleId::new_v7();
        let cmd = CreateSale {
            sale_id,
            store_id,
            customer_id: Some(customer_ids[s % customer_ids.len()]),
            salesperson: Some(owner),
            lines: vec![SaleLine { item_id, price, discount: None }],
            trade_ins: vec![],
            tax: None,
            buyer_name: None,
            buyer_address: None,
        };
        // An item already taken by an earlier sale is skipped, as a dealer would.
        if commands::sales::create_sale(store, &ctx, cmd, true, None).await.is_err() {
            continue;
        }
        commands::sales::confirm_sale(store, &ctx, sale_id, true, None).await?;
    }
    let events = store.count_after(eventstore::Position::START).await?;
    progress(events, target);
    Ok(Generated { store_id, items: plan.items, customers, sales, events, seconds: started.elapsed().as_secs_f64() })
}
