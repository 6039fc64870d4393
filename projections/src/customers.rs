//! The `customers` projection: one row per customer (`rm_customers`) with the purchase totals
//! the dashboard shows (lifetime value, order count, last purchase), and the page's total
//! (`rm_customer_counts`, listed customers per store).
//!
//! Applied a batch at a time: every customer the batch touches — through their own events, a
//! sale that counts toward their purchases, or a merge that moves a duplicate's totals to its
//! survivor — is loaded in one query; the batch is folded over those rows in memory in log
//! order (a customer's own events with `views::customer_view`, the fold history queries use);
//! the rows go back with one multi-row upsert and each store's total moves once. The property
//! test in `tests/models.rs` holds it equal to a rebuild in large batches for random histories.

use crate::batch::stream_uuid;
use crate::readmodels::{micros, upsert_set, CUSTOMER_READ_COLS};
use crate::rows::CustomerRow;
use crate::views;
use crate::ProjectionError;
use chrono::{DateTime, Utc};
use domain::aggregate::decode;
use domain::customer::CustomerEvent;
use domain::sale::SaleEvent;
use domain::Money;
use eventstore::RecordedEvent;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Rows one statement reads or writes: 22 values a row stays under SQLite's 32,766 variables.
const CHUNK: usize = 500;

/// What one event of the batch does to the customers.
enum Step<'a> {
    /// A customer's own event.
    Own { id: Uuid, e: &'a RecordedEvent, event: Box<CustomerEvent>, absorbed: Option<Uuid> },
    /// A sale that starts (`sign` 1) or stops (-1) counting toward a customer's purchases.
    Purchase { id: Uuid, total: Money, sign: i64, at: DateTime<Utc> },
}

/// The customer events and purchase changes of `events`, in log order, and every customer they
/// touch (a merge touches the duplicate too), in first-touch order.
fn steps(events: &[RecordedEvent]) -> Result<(Vec<Step<'_>>, Vec<Uuid>), ProjectionError> {
    let corrupt = |e: &RecordedEvent, err: domain::aggregate::CodecError| ProjectionError::Corrupt {
        position: e.position,
        reason: err.to_string(),
    };
    let mut steps = Vec::new();
    let mut ids = Vec::new();
    let mut touch = |id: Uuid| {
        if !ids.contains(&id) {
            ids.push(id);
        }
    };
    for e in events {
        if e.stream_id.starts_with("customer-") {
            stream_uuid(e)?;
            let event = decode::<CustomerEvent>(&e.event_type, &e.payload).map_err(|err| corrupt(e, err))?;
            let id = event.customer_id().as_uuid();
            let absorbed = match &event {
                CustomerEvent::CustomerAbsorbed { merged_id, .. } => Some(merged_id.as_uuid()),
                _ => None,
            };
            touch(id);
            absorbed.into_iter().for_each(&mut touch);
            steps.push(Step::Own { id, e, event: Box::new(event), absorbed });
        } else if e.stream_id.starts_with("sale-") {
            // Lifetime value: confirmed sales count, cancelled (invoiced) or returned ones no
            // longer do.
            let (customer, total, sign) =
                match decode::<SaleEvent>(&e.event_type, &e.payload).map_err(|err| corrupt(e, err))? {
                    SaleEvent::SaleConfirmed { customer_id: Some(c), total, .. } => (c, total, 1),
                    SaleEvent::SaleCancelled { customer_id: Some(c), total, voided_invoice: Some(_), .. }
                    | SaleEvent::SaleReturned { customer_id: Some(c), total, .. } => (c, total, -1),
                    _ => continue,
                };
            touch(customer.as_uuid());
            steps.push(Step::Purchase { id: customer.as_uuid(), total, sign, at: e.recorded_at });
        }
    }
    Ok((steps, ids))
}

/// Adds `minor` to a lifetime value, which keeps the currency it has (or takes `currency`).
fn add(value: Option<Money>, minor: i64, currency: domain::Currency) -> Money {
    match value {
        Some(v) => Money::from_minor(v.minor + minor, v.currency),
        None => Money::from_minor(minor, currency),
    }
}

/// Folds the steps over the rows (`rows` holds every touched customer that exists).
fn fold(rows: &mut HashMap<Uuid, CustomerRow>, steps: Vec<Step<'_>>) {
    for step in steps {
        match step {
            Step::Own { id, e, event, absorbed } => {
                if let Some(row) = views::customer_view(rows.remove(&id), e, *event) {
                    rows.insert(id, row);
                }
                // The survivor takes over the duplicate's purchase totals: moved, not copied, so
                // store-wide sums stay right.
                let Some(m) = absorbed.and_then(|merged| rows.get_mut(&merged)) else { continue };
                let (value, orders) = (m.lifetime_value, m.order_count);
                m.lifetime_value = value.map(|v| Money::from_minor(0, v.currency));
                m.order_count = 0;
                if let Some(s) = rows.get_mut(&id) {
                    if let Some(v) = value {
                        s.lifetime_value = Some(add(s.lifetime_value, v.minor, v.currency));
                    }
                    s.order_count += orders;
                }
            }
            Step::Purchase { id, total, sign, at } => {
                let Some(r) = rows.get_mut(&id) else { continue };
                r.lifetime_value = Some(add(r.lifetime_value, sign * total.minor, total.currency));
                r.order_count += sign;
                if sign > 0 {
                    r.last_purchase_at = Some(at);
                }
            }
        }
    }
}

/// Listed customers (not merged away) are what the page counts.
fn listed(r: Option<&CustomerRow>) -> bool {
    r.is_some_and(|r| r.merged_into.is_none())
}

macro_rules! customers_sql {
    ($module:ident, $db:ty) => {
        pub mod $module {
            use super::*;
            use crate::readmodels::$module::{customer_row, load_rows};
            use sqlx::{QueryBuilder, Transaction};

            type Db = $db;
            type Tx<'c> = Transaction<'c, Db>;
            type Result<T> = std::result::Result<T, ProjectionError>;

            /// Applies the customer and sale events of `events` (others are ignored), in log order.
            pub async fn apply_batch(tx: &mut Tx<'_>, events: &[RecordedEvent]) -> Result<()> {
                let (steps, ids) = steps(events)?;
                if steps.is_empty() {
                    return Ok(());
                }
                let mut rows =
                    load_rows(tx, "rm_customers", CUSTOMER_READ_COLS, "customer_id", &ids, customer_row, |r| r.id)
                        .await?;
                let before: HashMap<Uuid, bool> = ids.iter().map(|id| (*id, listed(rows.get(id)))).collect();
                fold(&mut rows, steps);
                let changed: Vec<&CustomerRow> = ids.iter().filter_map(|id| rows.get(id)).collect();
                upsert(tx, &changed).await?;
                let mut deltas: BTreeMap<Uuid, i64> = BTreeMap::new();
                for r in &changed {
                    let (was, now) = (before[&r.id], listed(Some(r)));
                    if was != now {
                        *deltas.entry(r.store_id).or_default() += if now { 1 } else { -1 };
                    }
                }
                count(tx, &deltas).await
            }

            async fn upsert(tx: &mut Tx<'_>, rows: &[&CustomerRow]) -> Result<()> {
                let cols = format!("{CUSTOMER_READ_COLS}, email_lookup");
                for chunk in rows.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<Db>::new(format!("INSERT INTO rm_customers ({cols}) "));
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.id)
                            .push_bind(r.store_id)
                            .push_bind(r.name.clone())
                            .push_bind(r.email.clone())
                            .push_bind(r.phone.clone())
                            .push_bind(r.notes.clone())
                            .push_bind(serde_json::to_string(&r.tags).expect("tags serialise"))
                            .push_bind(r.erased)
                            .push_bind(r.created_seq)
                            .push_bind(micros(r.updated_at))
                            .push_bind(r.version)
                            .push_bind(r.lifetime_value.map(|m| m.currency.code().to_owned()))
                            .push_bind(r.lifetime_value.map_or(0, |m| m.minor))
                            .push_bind(r.order_count)
                            .push_bind(r.last_purchase_at.map(micros))
                            .push_bind(r.address.clone())
                            .push_bind(r.birthday.map(|b| b.to_string()))
                            .push_bind(r.assigned_to)
                            .push_bind(r.source.clone())
                            .push_bind(serde_json::to_string(&r.external_ids).expect("map serialises"))
                            .push_bind(r.merged_into)
                            .push_bind(r.email.as_ref().map(|e| e.to_lowercase()));
                    });
                    qb.push(format!(" ON CONFLICT (customer_id) DO UPDATE SET {}", upsert_set(&cols, "customer_id")));
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            async fn count(tx: &mut Tx<'_>, deltas: &BTreeMap<Uuid, i64>) -> Result<()> {
                let deltas: Vec<_> = deltas.iter().filter(|(_, n)| **n != 0).collect();
                for chunk in deltas.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<Db>::new("INSERT INTO rm_customer_counts (store_id, n) ");
                    qb.push_values(chunk, |mut b, (store, n)| {
                        b.push_bind(**store).push_bind(**n);
                    });
                    qb.push(" ON CONFLICT (store_id) DO UPDATE SET n = rm_customer_counts.n + excluded.n");
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }
        }
    };
}

customers_sql!(sqlite, sqlx::Sqlite);
customers_sql!(postgres, sqlx::Postgres);
