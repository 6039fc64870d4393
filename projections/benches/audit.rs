//! Audit-trail pages at 1,000,000 entries, through the read model's own query code
//! (`ReadDb::audit`, what `auditTrail` runs), beside a baseline measured in the same run on the
//! same table: a primary-key lookup of one entry. Run: `cargo bench -p projections --bench audit`
//! (IC_AUDIT_BENCH_ROWS changes the size). PostgreSQL rows appear when a server answers at
//! IC_TEST_POSTGRES_URL (default local).

use eventstore::testing::TestDatabase;
use eventstore::Database;
use projections::audit::AuditFilter;
use projections::ReadDb;
use sqlx::QueryBuilder;
use std::time::{Duration, Instant};
use uuid::Uuid;

const ITERATIONS: usize = 300;
const ACTORS: u128 = 20;
const ITEMS: u64 = 50_000;
const TYPES: [&str; 8] = [
    "ItemAcquired",
    "ItemPriceChanged",
    "ItemReserved",
    "SaleDrafted",
    "SaleConfirmed",
    "PaymentRecorded",
    "CustomerRegistered",
    "ConsentGranted",
];

fn store() -> Uuid {
    Uuid::from_u128(1)
}

fn actor(i: u64) -> Uuid {
    Uuid::from_u128(1000 + (i as u128 % ACTORS))
}

fn correlation(i: u64) -> Uuid {
    Uuid::from_u128(10_000_000 + i as u128 / 3)
}

macro_rules! fill {
    ($pool:expr, $db:ty, $rows:expr) => {{
        let pool = $pool;
        let mut i = 0u64;
        while i < $rows {
            let mut tx = pool.begin().await.unwrap();
            for _ in 0..10 {
                let n = 1000.min($rows - i);
                if n == 0 {
                    break;
                }
                let mut qb = QueryBuilder::<$db>::new(format!("INSERT INTO rm_audit ({}) ", projections::audit::COLS));
                qb.push_values(i..i + n, |mut b, k| {
                    let item = k % ITEMS;
                    b.push_bind(Uuid::from_u128(1u128 << 64 | k as u128))
                        .push_bind(store())
                        .push_bind(1i64)
                        .push_bind(k as i64)
                        .push_bind(1_800_000_000_000_000i64 + k as i64 * 1000)
                        .push_bind("user")
                        .push_bind(actor(k))
                        .push_bind(if k % 3 == 0 { "SALES" } else { "MANAGER" })
                        .push_bind(TYPES[(k % 8) as usize])
                        .push_bind("InventoryItem")
                        .push_bind(Uuid::from_u128(item as u128).to_string())
                        .push_bind("Rolex Submariner Date")
                        .push_bind(format!("item-{}", Uuid::from_u128(item as u128)))
                        .push_bind((k / ITEMS) as i64)
                        .push_bind(None::<String>)
                        .push_bind(correlation(k))
                        .push_bind(Some(correlation(k)))
                        .push_bind(Some(correlation(k)))
                        .push_bind("Asking price 12,500.00 USD → 11,900.00 USD")
                        .push_bind(r#"[{"field":"askingPrice","value":{"minor":1190000,"currency":"USD"}}]"#);
                });
                qb.build().execute(&mut *tx).await.unwrap();
                i += n;
            }
            tx.commit().await.unwrap();
        }
        let _ = sqlx::query("ANALYZE").execute(pool).await;
    }};
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)].as_secs_f64() * 1000.0;
    (at(0.50), at(0.99))
}

async fn bench(name: &str, tdb: TestDatabase, rows: u64) {
    let db = Database::connect(&tdb.url).await.unwrap();
    let started = Instant::now();
    match &db {
        Database::Sqlite(b) => fill!(b.writer(), sqlx::Sqlite, rows),
        Database::Postgres(b) => fill!(b.pool(), sqlx::Postgres, rows),
    }
    eprintln!("{name}: filled {rows} audit entries in {:.1} s", started.elapsed().as_secs_f64());
    let read = ReadDb::new(&db);
    let base = AuditFilter { store_id: store(), first: 50, ..Default::default() };

    // Baseline: one entry by primary key, same table, same pool.
    let mut baseline = Vec::new();
    for k in 0..ITERATIONS as u64 {
        let id = Uuid::from_u128(1u128 << 64 | (k * 3331 % rows) as u128);
        let t = Instant::now();
        let sql = "SELECT summary FROM rm_audit WHERE event_id = $1";
        let found: Option<String> = match &db {
            Database::Sqlite(b) => sqlx::query_scalar(sql).bind(id).fetch_optional(b.reader()).await.unwrap(),
            Database::Postgres(b) => sqlx::query_scalar(sql).bind(id).fetch_optional(b.pool()).await.unwrap(),
        };
        assert!(found.is_some());
        baseline.push(t.elapsed());
    }
    let (b50, b99) = percentiles(baseline);
    println!("| {name} | primary-key lookup (baseline) | {b50:.2} | {b99:.2} | 1.0 |");

    let middle = (1i64, rows as i64 / 2);
    let scenarios: Vec<(&str, AuditFilter)> = vec![
        ("newest 50", base.clone()),
        ("50 after a cursor in the middle", AuditFilter { after: Some(middle), ..base.clone() }),
        ("by actor", AuditFilter { actor_id: Some(actor(7)), ..base.clone() }),
        ("by role", AuditFilter { role: Some("SALES".into()), ..base.clone() }),
        (
            "by entity",
            AuditFilter {
                entity_type: Some("InventoryItem".into()),
                entity_id: Some(Uuid::from_u128(4242).to_string()),
                ..base.clone()
            },
        ),
        ("by event type", AuditFilter { event_types: vec!["PaymentRecorded".into()], ..base.clone() }),
        ("by correlation id", AuditFilter { correlation_id: Some(correlation(rows / 2)), ..base.clone() }),
        ("oldest 50", AuditFilter { oldest_first: true, ..base.clone() }),
    ];
    for (label, f) in scenarios {
        let mut samples = Vec::new();
        for _ in 0..ITERATIONS {
            let t = Instant::now();
            let (page, _) = read.audit(&f).await.unwrap();
            assert!(!page.is_empty(), "{label}");
            samples.push(t.elapsed());
        }
        let (p50, p99) = percentiles(samples);
        println!("| {name} | page: {label} | {p50:.2} | {p99:.2} | {:.1} |", p50 / b50);
    }
}

#[tokio::main]
async fn main() {
    let rows: u64 = std::env::var("IC_AUDIT_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    println!("Audit trail at {rows} entries ({ITERATIONS} queries each; ms; ratio = p50 ÷ baseline p50)");
    println!("| backend | query | p50 ms | p99 ms | ratio |");
    println!("|---|---|---:|---:|---:|");
    bench("sqlite", TestDatabase::sqlite(), rows).await;
    if let Some(pg) = TestDatabase::postgres().await {
        bench("postgres", pg, rows).await;
    }
}
