//! The `inventory` projection: one row per item (`rm_inventory_items`) and the page's totals
//! (`rm_item_counts`, items per status, category and brand key).
//!
//! Applied a batch at a time: the rows of every item the batch touches are loaded in one
//! query, each item's events are folded in memory with `views::item_view` (the fold history
//! queries and mutation payloads use), and the changed rows are written back with one
//! multi-row upsert; the totals move once per item from the group it was in before the batch to
//! the group it is in after. Equivalent to applying the events one by one (the property test in
//! `tests/runner.rs` holds it to that), and it turns four statements an event into a few a batch.

use crate::readmodels::{brand_key, count_key, enum_str, upsert_set, ITEM_COLS};
use crate::rows::ItemRow;
use eventstore::RecordedEvent;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Rows one statement reads or writes: 24 values a row stays under SQLite's 32,766 variables.
const CHUNK: usize = 500;

/// The group an item is counted in: (status, category, brand key).
type CountKey = (&'static str, &'static str, String);

/// Totals moved by a batch: (store, (status, category, brand key)) → change.
type Deltas = BTreeMap<(Uuid, CountKey), i64>;

macro_rules! items_sql {
    ($module:ident, $db:ty) => {
        pub mod $module {
            use super::*;
            use crate::batch::{touched, Folded};
            use crate::readmodels::$module::{load_rows, item_row};
            use crate::ProjectionError;
            use sqlx::{QueryBuilder, Transaction};

            type Db = $db;
            type Tx<'c> = Transaction<'c, Db>;
            type Result<T> = std::result::Result<T, ProjectionError>;

            /// Applies the item events of `events` (others are ignored), in log order.
            pub async fn apply_batch(tx: &mut Tx<'_>, events: &[RecordedEvent]) -> Result<()> {
                let crate::batch::Touched { ids, mine, existing } = touched(events, "item-")?;
                if mine.is_empty() {
                    return Ok(());
                }
                let loaded = load_rows(tx, "rm_inventory_items", ITEM_COLS, "item_id", &existing, item_row, |r| r.id).await?;
                let mut folded = Folded::new(ids, loaded, count_key);
                folded.apply(&mine)?;
                upsert(tx, &folded.changed()).await?;
                count(tx, &folded.deltas(|r| r.store_id, count_key)).await
            }

            async fn upsert(tx: &mut Tx<'_>, rows: &[&ItemRow]) -> Result<()> {
                for chunk in rows.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<Db>::new(format!("INSERT INTO rm_inventory_items ({ITEM_COLS}, brand_key) "));
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.id)
                            .push_bind(r.store_id)
                            .push_bind(r.status.as_str())
                            .push_bind(r.category.as_str())
                            .push_bind(r.brand.clone())
                            .push_bind(r.model.clone())
                            .push_bind(r.reference_number.clone())
                            .push_bind(r.serial_number.clone())
                            .push_bind(r.cost.map(|c| c.minor))
                            .push_bind(r.asking_price.minor)
                            .push_bind(r.asking_price.currency.code().to_owned())
                            .push_bind(enum_str(&r.source))
                            .push_bind(serde_json::to_string(&r.attributes).expect("map serialises"))
                            .push_bind(crate::readmodels::micros(r.acquired_at))
                            .push_bind(r.created_seq)
                            .push_bind(crate::readmodels::micros(r.updated_at))
                            .push_bind(r.version)
                            .push_bind(r.floor_price.map(|f| f.minor))
                            .push_bind(r.condition.as_ref().map(enum_str))
                            .push_bind(r.details.to_string())
                            .push_bind(r.notes.clone())
                            .push_bind(r.held_for)
                            .push_bind(r.sold_in)
                            .push_bind(brand_key(&r.brand));
                    });
                    qb.push(format!(
                        " ON CONFLICT (item_id) DO UPDATE SET {}, brand_key = excluded.brand_key",
                        upsert_set(ITEM_COLS, "item_id")
                    ));
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            async fn count(tx: &mut Tx<'_>, deltas: &Deltas) -> Result<()> {
                let deltas: Vec<_> = deltas.iter().collect();
                for chunk in deltas.chunks(CHUNK) {
                    let mut qb =
                        QueryBuilder::<Db>::new("INSERT INTO rm_item_counts (store_id, status, category, brand_key, n) ");
                    qb.push_values(chunk, |mut b, ((store, (status, category, brand)), n)| {
                        b.push_bind(*store)
                            .push_bind(status.clone())
                            .push_bind(category.clone())
                            .push_bind(brand.clone())
                            .push_bind(**n);
                    });
                    qb.push(
                        " ON CONFLICT (store_id, status, category, brand_key) DO UPDATE SET n = rm_item_counts.n + excluded.n",
                    );
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }
        }
    };
}

items_sql!(sqlite, sqlx::Sqlite);
items_sql!(postgres, sqlx::Postgres);
