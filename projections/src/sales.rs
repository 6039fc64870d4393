//! The `sales` projection: one row per sale (`rm_sales`) and the page's totals
//! (`rm_sale_counts`, sales per store and status).
//!
//! Applied a batch at a time, like the inventory: the rows of every sale the batch touches are
//! loaded in one query, each sale's events are folded in memory with `views::sale_view` (the
//! fold history queries use), the changed rows are written back with one multi-row upsert and
//! the totals move once per sale. The property test in `tests/models.rs` holds it equal to
//! applying the events one by one and to each sale's history.

use crate::readmodels::{micros, upsert_set, SALE_COLS};
use crate::rows::SaleRow;
use eventstore::RecordedEvent;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Rows one statement reads or writes: 16 values a row stays under SQLite's 32,766 variables.
const CHUNK: usize = 500;

/// Totals moved by a batch: (store, status) → change.
type Deltas = BTreeMap<(Uuid, &'static str), i64>;

/// The total a sale is counted in: its status.
fn status(r: &SaleRow) -> &'static str {
    r.status.as_str()
}

macro_rules! sales_sql {
    ($module:ident, $db:ty) => {
        pub mod $module {
            use super::*;
            use crate::batch::{touched, Folded};
            use crate::readmodels::$module::{load_rows, sale_row};
            use crate::ProjectionError;
            use sqlx::{QueryBuilder, Transaction};

            type Db = $db;
            type Tx<'c> = Transaction<'c, Db>;
            type Result<T> = std::result::Result<T, ProjectionError>;

            /// Applies the sale events of `events` (others are ignored), in log order.
            pub async fn apply_batch(tx: &mut Tx<'_>, events: &[RecordedEvent]) -> Result<()> {
                let crate::batch::Touched { ids, mine, existing } = touched(events, "sale-")?;
                if mine.is_empty() {
                    return Ok(());
                }
                let loaded = load_rows(tx, "rm_sales", SALE_COLS, "sale_id", &existing, sale_row, |r| r.id).await?;
                let mut folded = Folded::new(ids, loaded, status);
                folded.apply(&mine)?;
                upsert(tx, &folded.changed()).await?;
                count(tx, &folded.deltas(|r| r.store_id, status)).await
            }

            async fn upsert(tx: &mut Tx<'_>, rows: &[&SaleRow]) -> Result<()> {
                for chunk in rows.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<Db>::new(format!("INSERT INTO rm_sales ({SALE_COLS}) "));
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.id)
                            .push_bind(r.store_id)
                            .push_bind(r.customer_id)
                            .push_bind(r.status.as_str())
                            .push_bind(r.invoice_number)
                            .push_bind(r.total.currency.code().to_owned())
                            .push_bind(r.total.minor)
                            .push_bind(r.paid.minor)
                            .push_bind(r.refunded.minor)
                            .push_bind(r.lines.to_string())
                            .push_bind(r.trade_ins.to_string())
                            .push_bind(r.payments.to_string())
                            .push_bind(r.created_seq)
                            .push_bind(micros(r.updated_at))
                            .push_bind(r.version)
                            .push_bind(r.salesperson);
                    });
                    qb.push(format!(" ON CONFLICT (sale_id) DO UPDATE SET {}", upsert_set(SALE_COLS, "sale_id")));
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            async fn count(tx: &mut Tx<'_>, deltas: &Deltas) -> Result<()> {
                let deltas: Vec<_> = deltas.iter().collect();
                for chunk in deltas.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<Db>::new("INSERT INTO rm_sale_counts (store_id, status, n) ");
                    qb.push_values(chunk, |mut b, ((store, status), n)| {
                        b.push_bind(*store).push_bind(*status).push_bind(**n);
                    });
                    qb.push(" ON CONFLICT (store_id, status) DO UPDATE SET n = rm_sale_counts.n + excluded.n");
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }
        }
    };
}

sales_sql!(sqlite, sqlx::Sqlite);
sales_sql!(postgres, sqlx::Postgres);
