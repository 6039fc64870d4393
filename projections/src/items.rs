//! The `inventory` projection: one row per item (`rm_inventory_items`) and the page's totals
//! (`rm_item_counts`, items per status, category and brand key).
//!
//! Applied a batch at a time: the rows of every item the batch touches are loaded in one
//! query, each item's events are folded in memory with `views::item_view` (the fold history
//! queries and mutation payloads use), and the changed rows are written back with one
//! multi-row upsert; the totals move once per item from the group it was in before the batch to
//! the group it is in after. Equivalent to applying the events one by one (the property test in
//! `tests/runner.rs` holds it to that), and it turns four statements an event into a few a batch.

use crate::readmodels::{brand_key, count_key, upsert_set, ITEM_COLS};
use crate::rows::ItemRow;
use crate::views;
use eventstore::RecordedEvent;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Rows one statement reads or writes: 24 values a row stays under SQLite's 32,766 variables.
const CHUNK: usize = 500;

/// Totals moved by a batch: (store, (status, category, brand key)) → change.
type Deltas = BTreeMap<(Uuid, CountKey), i64>;

/// The group an item is counted in: (status, category, brand key).
type CountKey = (String, String, String);

/// What a batch leaves: each touched item's group before and row after, in first-touch order.
#[derive(Default)]
struct Folded {
    order: Vec<Uuid>,
    rows: HashMap<Uuid, (Option<CountKey>, Option<ItemRow>)>,
}

impl Folded {
    /// The totals' changes: each changed item leaves its old group and joins its new one.
    fn deltas(&self) -> Deltas {
        let mut deltas = Deltas::new();
        for (old, after) in self.rows.values() {
            let Some(after) = after else { continue };
            let new = count_key(after);
            if old.as_ref() != Some(&new) {
                if let Some(old) = old {
                    *deltas.entry((after.store_id, old.clone())).or_default() -= 1;
                }
                *deltas.entry((after.store_id, new)).or_default() += 1;
            }
        }
        deltas.retain(|_, n| *n != 0);
        deltas
    }

    fn changed(&self) -> Vec<&ItemRow> {
        self.order.iter().filter_map(|id| self.rows[id].1.as_ref()).collect()
    }
}

macro_rules! items_sql {
    ($module:ident, $db:ty) => {
        pub mod $module {
            use super::*;
            use crate::readmodels::$module::{item_row, stream_uuid};
            use crate::ProjectionError;
            use domain::aggregate::decode;
            use domain::inventory::ItemEvent;
            use sqlx::{QueryBuilder, Transaction};

            type Db = $db;
            type Tx<'c> = Transaction<'c, Db>;
            type Result<T> = std::result::Result<T, ProjectionError>;

            /// Applies the item events of `events` (others are ignored), in log order.
            pub async fn apply_batch(tx: &mut Tx<'_>, events: &[RecordedEvent]) -> Result<()> {
                let mine: Vec<&RecordedEvent> = events.iter().filter(|e| e.stream_id.starts_with("item-")).collect();
                if mine.is_empty() {
                    return Ok(());
                }
                let mut ids = Vec::new();
                for e in &mine {
                    let id = stream_uuid(e)?;
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                let mut folded = Folded { order: ids.clone(), rows: HashMap::with_capacity(ids.len()) };
                let mut loaded = load(tx, &ids).await?;
                for id in &ids {
                    let before = loaded.remove(id);
                    folded.rows.insert(*id, (before.as_ref().map(count_key), before));
                }
                for e in mine {
                    let event = decode::<ItemEvent>(&e.event_type, &e.payload)
                        .map_err(|err| ProjectionError::Corrupt { position: e.position, reason: err.to_string() })?;
                    let slot = &mut folded.rows.get_mut(&stream_uuid(e)?).expect("loaded above").1;
                    // The view answers `None` only for an item that does not exist yet.
                    *slot = views::item_view(slot.take(), e, event);
                }
                upsert(tx, &folded.changed()).await?;
                count(tx, &folded.deltas()).await
            }

            async fn load(tx: &mut Tx<'_>, ids: &[Uuid]) -> Result<HashMap<Uuid, ItemRow>> {
                let mut out = HashMap::with_capacity(ids.len());
                for chunk in ids.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<Db>::new(format!("SELECT {ITEM_COLS} FROM rm_inventory_items WHERE item_id IN ("));
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    qb.push(")");
                    for r in qb.build().fetch_all(&mut **tx).await? {
                        let row = item_row(&r)?;
                        out.insert(row.id, row);
                    }
                }
                Ok(out)
            }

            async fn upsert(tx: &mut Tx<'_>, rows: &[&ItemRow]) -> Result<()> {
                for chunk in rows.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<Db>::new(format!("INSERT INTO rm_inventory_items ({ITEM_COLS}, brand_key) "));
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.id)
                            .push_bind(r.store_id)
                            .push_bind(r.status.clone())
                            .push_bind(r.category.clone())
                            .push_bind(r.brand.clone())
                            .push_bind(r.model.clone())
                            .push_bind(r.reference_number.clone())
                            .push_bind(r.serial_number.clone())
                            .push_bind(r.cost.map(|c| c.minor))
                            .push_bind(r.asking_price.minor)
                            .push_bind(r.asking_price.currency.code().to_owned())
                            .push_bind(r.source.clone())
                            .push_bind(serde_json::to_string(&r.attributes).expect("map serialises"))
                            .push_bind(crate::readmodels::micros(r.acquired_at))
                            .push_bind(r.created_seq)
                            .push_bind(crate::readmodels::micros(r.updated_at))
                            .push_bind(r.version)
                            .push_bind(r.floor_price.map(|f| f.minor))
                            .push_bind(r.condition.clone())
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
