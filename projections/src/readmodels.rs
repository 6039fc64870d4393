//! Read-model SQL, written once and instantiated for each backend by `read_models!` (the SQL is
//! portable: `$N` placeholders, row-value comparisons, `ON CONFLICT`). Types differ per backend
//! only in the migrations (UUID vs 16-byte BLOB), which sqlx maps for us.

use crate::rows::*;
use crate::{stream_kind, Kind, ProjectionError};
use chrono::{DateTime, Utc};
use domain::sale::SaleEvent;
use domain::{Currency, Money};
use eventstore::{Position, RecordedEvent};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(m: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(m).unwrap_or_default()
}

/// The wire name of a serde enum value (`Category::Watch` → `"WATCH"`).
pub fn enum_str<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// The case-folded brand filters and sorts use ("Rolex", "ROLEX" and "rolex" are one brand).
pub fn brand_key(brand: &str) -> String {
    brand.trim().to_lowercase()
}

/// The group an item is counted in for the page's totals: (status, category, brand key).
pub(crate) fn count_key(r: &ItemRow) -> (&'static str, &'static str, String) {
    (r.status.as_str(), r.category.as_str(), brand_key(&r.brand))
}

/// An enum stored as its API name (`IN_STOCK`, `WATCH`, …).
fn stored<T: serde::de::DeserializeOwned>(name: String, what: &str) -> Result<T, ProjectionError> {
    serde_json::from_value(serde_json::Value::String(name))
        .map_err(|_| ProjectionError::Invalid(format!("stored {what}")))
}

fn currency(code: &str) -> Result<Currency, ProjectionError> {
    Currency::from_stored(code).map_err(|_| ProjectionError::Invalid("stored currency".into()))
}

/// `LIKE` pattern matching `s` anywhere, with wildcards in `s` escaped.
pub(crate) fn contains_pattern(s: &str) -> String {
    let escaped = s.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

pub(crate) const ITEM_COLS: &str = "item_id, store_id, status, category, brand, model, reference_number, serial_number, cost_minor, asking_minor, currency, source, attributes, acquired_at, created_seq, updated_at, version, floor_minor, condition, details, notes, held_for, sold_in";
pub(crate) const CUSTOMER_READ_COLS: &str = "customer_id, store_id, name, email, phone, notes, tags, erased, created_seq, updated_at, version, ltv_currency, ltv_minor, order_count, last_purchase_at, address, birthday, assigned_to, source, external_ids, merged_into";

pub(crate) const SALE_COLS: &str = "sale_id, store_id, customer_id, status, invoice_number, currency, total_minor, paid_minor, refunded_minor, lines, trade_ins, payments, created_seq, updated_at, version, salesperson";

/// The payment record a sale shows for a payment or refund event (shared with history views).
pub fn payment_json(event: &SaleEvent, at: DateTime<Utc>) -> Option<serde_json::Value> {
    match event {
        SaleEvent::PaymentRecorded { payment_id, amount, method, kind, provider_reference, .. } => {
            Some(serde_json::json!({
                "id": payment_id, "kind": enum_str(kind), "method": enum_str(method),
                "amount": amount, "providerReference": provider_reference, "at": at,
            }))
        }
        SaleEvent::PaymentRefunded { refund_id, amount, reason, .. } => Some(serde_json::json!({
            "id": refund_id, "kind": "REFUND", "method": null, "amount": amount, "reason": reason, "at": at,
        })),
        _ => None,
    }
}

/// `col = excluded.col, …` for every column but the key, for an upsert.
pub(crate) fn upsert_set(cols: &str, key: &str) -> String {
    cols.split(',')
        .map(str::trim)
        .filter(|c| *c != key)
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Merges `patch` into a JSON object (non-null keys in `patch` win).
pub fn merge(mut base: serde_json::Value, patch: serde_json::Value) -> serde_json::Value {
    if let (Some(b), serde_json::Value::Object(p)) = (base.as_object_mut(), patch) {
        for (k, v) in p {
            if !v.is_null() {
                b.insert(k, v);
            }
        }
    }
    base
}

macro_rules! read_models {
    ($module:ident, $db:ty, $begin:expr) => {
        pub mod $module {
            use super::*;
            use sqlx::{QueryBuilder, Row, Transaction};

            pub type Db = $db;
            pub type Pool = sqlx::Pool<Db>;
            type Tx<'c> = Transaction<'c, Db>;
            type R = <Db as sqlx::Database>::Row;
            type Result<T> = std::result::Result<T, ProjectionError>;

            pub async fn ensure_checkpoint(pool: &Pool, name: &str) -> Result<Position> {
                sqlx::query(
                    "INSERT INTO projection_checkpoints (name, commit_pos, seq_pos, updated_at) VALUES ($1, 0, 0, $2)
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(micros(Utc::now()))
                .execute(pool)
                .await?;
                checkpoint(pool, name).await
            }

            pub async fn checkpoint(pool: &Pool, name: &str) -> Result<Position> {
                let (commit, seq): (i64, i64) =
                    sqlx::query_as("SELECT commit_pos, seq_pos FROM projection_checkpoints WHERE name = $1")
                        .bind(name)
                        .fetch_optional(pool)
                        .await?
                        .unwrap_or((0, 0));
                Ok(Position { commit, seq })
            }

            /// Begins a projection's transaction (see `read_models!` for its durability), in
            /// one round trip.
            pub async fn begin(pool: &Pool) -> Result<Tx<'static>> {
                let begin: Option<&'static str> = $begin;
                Ok(match begin {
                    Some(statement) => pool.begin_with(statement).await?,
                    None => pool.begin().await?,
                })
            }

            /// Moves the checkpoint from `from` to `to` inside the read-model transaction. Returns
            /// false when another runner moved it first: the caller rolls back and reloads.
            pub async fn advance(tx: &mut Tx<'_>, name: &str, from: Position, to: Position) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE projection_checkpoints SET commit_pos = $1, seq_pos = $2, updated_at = $3
                     WHERE name = $4 AND commit_pos = $5 AND seq_pos = $6",
                )
                .bind(to.commit)
                .bind(to.seq)
                .bind(micros(Utc::now()))
                .bind(name)
                .bind(from.commit)
                .bind(from.seq)
                .execute(&mut **tx)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            /// Moves several projections' checkpoints, each from its own position, to the same
            /// `to` in one statement inside the transaction. False when another runner moved any
            /// of them first (some may have moved): the caller rolls back.
            pub async fn advance_many(tx: &mut Tx<'_>, from: &[(&str, Position)], to: Position) -> Result<bool> {
                let mut qb = QueryBuilder::<Db>::new("UPDATE projection_checkpoints SET commit_pos = ");
                qb.push_bind(to.commit).push(", seq_pos = ").push_bind(to.seq);
                qb.push(", updated_at = ").push_bind(micros(Utc::now()));
                qb.push(" WHERE (name, commit_pos, seq_pos) IN (");
                let mut list = qb.separated(", ");
                for (name, at) in from {
                    list.push("(").push_bind_unseparated(*name).push_unseparated(", ");
                    list.push_bind_unseparated(at.commit).push_unseparated(", ");
                    list.push_bind_unseparated(at.seq).push_unseparated(")");
                }
                qb.push(")");
                Ok(qb.build().execute(&mut **tx).await?.rows_affected() == from.len() as u64)
            }

            /// Empties a projection's tables and rewinds its checkpoint, in one transaction.
            pub async fn reset(tx: &mut Tx<'_>, kind: Kind) -> Result<()> {
                for table in kind.tables() {
                    sqlx::query(&format!("DELETE FROM {table}")).execute(&mut **tx).await?;
                }
                sqlx::query("UPDATE projection_checkpoints SET commit_pos = 0, seq_pos = 0, updated_at = $1 WHERE name = $2")
                    .bind(micros(Utc::now()))
                    .bind(kind.name())
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// Applies a batch of events in log order: the row models (inventory, customers,
            /// sales, directory) and the audit trail fold the batch in memory (see their files);
            /// privacy and consent apply event by event.
            pub async fn apply_batch(tx: &mut Tx<'_>, kind: Kind, events: &[RecordedEvent]) -> Result<()> {
                match kind {
                    Kind::Inventory => return crate::items::$module::apply_batch(tx, events).await,
                    Kind::Sales => return crate::sales::$module::apply_batch(tx, events).await,
                    Kind::Audit => return crate::audit::$module::apply_batch(tx, events).await,
                    Kind::Customers => return crate::customers::$module::apply_batch(tx, events).await,
                    Kind::Directory => return crate::staff::$module::apply_batch(tx, events).await,
                    _ => {}
                }
                for e in events {
                    apply(tx, kind, e).await?;
                }
                Ok(())
            }

            /// Applies one event to `kind`'s tables (events it does not care about are ignored).
            pub async fn apply(tx: &mut Tx<'_>, kind: Kind, e: &RecordedEvent) -> Result<()> {
                if !kind.cares(stream_kind(&e.stream_id)) {
                    return Ok(());
                }
                match (kind, stream_kind(&e.stream_id)) {
                    (Kind::Directory, _) => crate::staff::$module::apply_batch(tx, std::slice::from_ref(e)).await?,
                    (Kind::Inventory, "item") => crate::items::$module::apply_batch(tx, std::slice::from_ref(e)).await?,
                    (Kind::Sales, "sale") => crate::sales::$module::apply_batch(tx, std::slice::from_ref(e)).await?,
                    (Kind::Customers, "sale" | "customer") => {
                        crate::customers::$module::apply_batch(tx, std::slice::from_ref(e)).await?
                    }
                    (Kind::Audit, _) => crate::audit::$module::apply_batch(tx, std::slice::from_ref(e)).await?,
                    (Kind::Privacy, "privacy_request") => crate::privacy::$module::apply(tx, e).await?,
                    (Kind::Consent, kind @ ("consent" | "restriction")) => crate::consent::$module::apply(tx, e, kind).await?,
                    _ => {}
                }
                Ok(())
            }

            /// The rows of `table` with these ids (`id_col`), by id, in chunks of 500 per query.
            pub(crate) async fn load_rows<T>(
                tx: &mut Tx<'_>,
                table: &str,
                cols: &str,
                id_col: &str,
                ids: &[Uuid],
                decode: fn(&R) -> Result<T>,
                id: fn(&T) -> Uuid,
            ) -> Result<HashMap<Uuid, T>> {
                let mut out = HashMap::with_capacity(ids.len());
                for chunk in ids.chunks(500) {
                    let mut qb = QueryBuilder::<Db>::new(format!("SELECT {cols} FROM {table} WHERE {id_col} IN ("));
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    qb.push(")");
                    for r in qb.build().fetch_all(&mut **tx).await? {
                        let row = decode(&r)?;
                        out.insert(id(&row), row);
                    }
                }
                Ok(out)
            }

            pub(crate) fn sale_row(r: &R) -> Result<SaleRow> {
                let currency = currency(r.try_get("currency")?)?;
                let json = |col: &str| -> Result<serde_json::Value> {
                    Ok(serde_json::from_str(&r.try_get::<String, _>(col)?).unwrap_or(serde_json::Value::Null))
                };
                Ok(SaleRow {
                    id: r.try_get("sale_id")?,
                    store_id: r.try_get("store_id")?,
                    customer_id: r.try_get("customer_id")?,
                    status: stored(r.try_get("status")?, "sale status")?,
                    invoice_number: r.try_get("invoice_number")?,
                    total: Money::from_minor(r.try_get("total_minor")?, currency),
                    paid: Money::from_minor(r.try_get("paid_minor")?, currency),
                    refunded: Money::from_minor(r.try_get("refunded_minor")?, currency),
                    lines: json("lines")?,
                    trade_ins: json("trade_ins")?,
                    payments: json("payments")?,
                    created_seq: r.try_get("created_seq")?,
                    updated_at: from_micros(r.try_get("updated_at")?),
                    version: r.try_get("version")?,
                    salesperson: r.try_get("salesperson")?,
                })
            }

            pub async fn sale(pool: &Pool, store_id: Uuid, id: Uuid) -> Result<Option<SaleRow>> {
                let row = sqlx::query(&format!("SELECT {SALE_COLS} FROM rm_sales WHERE store_id = $1 AND sale_id = $2"))
                    .bind(store_id)
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
                row.as_ref().map(sale_row).transpose()
            }

            fn sale_filter(qb: &mut QueryBuilder<'_, Db>, q: &ListQuery<SaleFilter, ()>) {
                qb.push(" WHERE store_id = ").push_bind(q.store_id);
                if let Some(s) = &q.filter.status {
                    qb.push(" AND status = ").push_bind(s.as_str());
                }
                if let Some(c) = q.filter.customer_id {
                    qb.push(" AND customer_id = ").push_bind(c);
                }
            }

            pub async fn sales(pool: &Pool, q: &ListQuery<SaleFilter, ()>) -> Result<Page<SaleRow>> {
                let filter = |qb: &mut QueryBuilder<'_, Db>| sale_filter(qb, q);
                // A customer's sales are few and indexed: counted. A store's come from the
                // maintained totals.
                let total = |qb: &mut QueryBuilder<'_, Db>| {
                    if q.filter.customer_id.is_some() {
                        counted(qb, "rm_sales", &filter);
                    } else {
                        qb.push("SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM rm_sale_counts WHERE store_id = ");
                        qb.push_bind(q.store_id);
                        if let Some(s) = &q.filter.status {
                            qb.push(" AND status = ").push_bind(s.as_str());
                        }
                    }
                };
                page(pool, "rm_sales", SALE_COLS, "sale_id", "created_seq", q.descending, q.first, &q.after, &filter, q.with_total.then_some(&total as _), |r| {
                    let row = sale_row(r)?;
                    let cursor = Cursor { value: CursorValue::Int(row.created_seq), id: row.id };
                    Ok((row, cursor))
                })
                .await
            }

            pub(crate) fn item_row(r: &R) -> Result<ItemRow> {
                let currency = currency(r.try_get("currency")?)?;
                let attributes: String = r.try_get("attributes")?;
                Ok(ItemRow {
                    id: r.try_get("item_id")?,
                    store_id: r.try_get("store_id")?,
                    status: stored(r.try_get("status")?, "item status")?,
                    category: stored(r.try_get("category")?, "item category")?,
                    brand: r.try_get("brand")?,
                    model: r.try_get("model")?,
                    reference_number: r.try_get("reference_number")?,
                    serial_number: r.try_get("serial_number")?,
                    cost: r.try_get::<Option<i64>, _>("cost_minor")?.map(|m| Money::from_minor(m, currency)),
                    asking_price: Money::from_minor(r.try_get("asking_minor")?, currency),
                    source: stored(r.try_get("source")?, "item source")?,
                    attributes: serde_json::from_str::<BTreeMap<String, String>>(&attributes).unwrap_or_default(),
                    acquired_at: from_micros(r.try_get("acquired_at")?),
                    created_seq: r.try_get("created_seq")?,
                    updated_at: from_micros(r.try_get("updated_at")?),
                    version: r.try_get("version")?,
                    floor_price: r.try_get::<Option<i64>, _>("floor_minor")?.map(|m| Money::from_minor(m, currency)),
                    condition: r.try_get::<Option<String>, _>("condition")?.map(|c| stored(c, "item condition")).transpose()?,
                    details: serde_json::from_str(&r.try_get::<String, _>("details")?).unwrap_or_default(),
                    notes: r.try_get("notes")?,
                    held_for: r.try_get("held_for")?,
                    sold_in: r.try_get("sold_in")?,
                })
            }

            pub(crate) fn customer_row(r: &R) -> Result<CustomerRow> {
                let tags: String = r.try_get("tags")?;
                Ok(CustomerRow {
                    id: r.try_get("customer_id")?,
                    store_id: r.try_get("store_id")?,
                    name: r.try_get("name")?,
                    email: r.try_get("email")?,
                    phone: r.try_get("phone")?,
                    notes: r.try_get("notes")?,
                    tags: serde_json::from_str(&tags).unwrap_or_default(),
                    erased: r.try_get("erased")?,
                    created_seq: r.try_get("created_seq")?,
                    updated_at: from_micros(r.try_get("updated_at")?),
                    version: r.try_get("version")?,
                    lifetime_value: match r.try_get::<Option<String>, _>("ltv_currency")? {
                        Some(code) => Some(Money::from_minor(r.try_get("ltv_minor")?, currency(&code)?)),
                        None => None,
                    },
                    order_count: r.try_get("order_count")?,
                    last_purchase_at: r.try_get::<Option<i64>, _>("last_purchase_at")?.map(from_micros),
                    address: r.try_get("address")?,
                    birthday: r.try_get::<Option<String>, _>("birthday")?.and_then(|b| b.parse().ok()),
                    assigned_to: r.try_get("assigned_to")?,
                    source: r.try_get("source")?,
                    external_ids: serde_json::from_str(&r.try_get::<String, _>("external_ids")?).unwrap_or_default(),
                    merged_into: r.try_get("merged_into")?,
                })
            }

            pub async fn item(pool: &Pool, store_id: Uuid, id: Uuid) -> Result<Option<ItemRow>> {
                let row = sqlx::query(&format!("SELECT {ITEM_COLS} FROM rm_inventory_items WHERE store_id = $1 AND item_id = $2"))
                    .bind(store_id)
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
                row.as_ref().map(item_row).transpose()
            }

            /// Rows of `table` with these ids, in one query (for per-request batch loading).
            async fn by_ids<T>(
                pool: &Pool,
                table: &str,
                cols: &str,
                id_col: &str,
                store_id: Uuid,
                ids: &[Uuid],
                row: fn(&R) -> Result<T>,
            ) -> Result<Vec<T>> {
                if ids.is_empty() {
                    return Ok(vec![]);
                }
                let mut qb = QueryBuilder::<Db>::new(format!("SELECT {cols} FROM {table} WHERE store_id = "));
                qb.push_bind(store_id).push(format!(" AND {id_col} IN ("));
                let mut list = qb.separated(", ");
                for id in ids {
                    list.push_bind(*id);
                }
                list.push_unseparated(")");
                qb.build().fetch_all(pool).await?.iter().map(row).collect()
            }

            pub async fn items_by_ids(pool: &Pool, store_id: Uuid, ids: &[Uuid]) -> Result<Vec<ItemRow>> {
                by_ids(pool, "rm_inventory_items", ITEM_COLS, "item_id", store_id, ids, item_row).await
            }

            pub async fn customers_by_ids(pool: &Pool, store_id: Uuid, ids: &[Uuid]) -> Result<Vec<CustomerRow>> {
                by_ids(pool, "rm_customers", CUSTOMER_READ_COLS, "customer_id", store_id, ids, customer_row).await
            }

            pub async fn customer(pool: &Pool, store_id: Uuid, id: Uuid) -> Result<Option<CustomerRow>> {
                let row =
                    sqlx::query(&format!("SELECT {CUSTOMER_READ_COLS} FROM rm_customers WHERE store_id = $1 AND customer_id = $2"))
                        .bind(store_id)
                        .bind(id)
                        .fetch_optional(pool)
                        .await?;
                row.as_ref().map(customer_row).transpose()
            }

            fn push_cursor(qb: &mut QueryBuilder<'_, Db>, col: &str, id_col: &str, desc: bool, after: &Option<Cursor>) {
                if let Some(c) = after {
                    qb.push(format!(" AND ({col}, {id_col}) {} (", if desc { "<" } else { ">" }));
                    match &c.value {
                        CursorValue::Int(v) => qb.push_bind(*v),
                        CursorValue::Text(v) => qb.push_bind(v.clone()),
                    };
                    qb.push(", ").push_bind(c.id).push(")");
                }
            }

            fn item_filter(qb: &mut QueryBuilder<'_, Db>, q: &ListQuery<ItemFilter, ItemSortField>) {
                qb.push(" WHERE store_id = ").push_bind(q.store_id);
                if let Some(s) = &q.filter.status {
                    qb.push(" AND status = ").push_bind(s.as_str());
                }
                if let Some(c) = &q.filter.category {
                    qb.push(" AND category = ").push_bind(c.as_str());
                }
                if let Some(b) = &q.filter.brand {
                    qb.push(" AND brand_key = ").push_bind(brand_key(b));
                }
            }

            /// The SELECT of the inventory page's total: the maintained counts, a few rows
            /// however many items match.
            fn item_total(qb: &mut QueryBuilder<'_, Db>, q: &ListQuery<ItemFilter, ItemSortField>) {
                qb.push("SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM rm_item_counts");
                item_filter(qb, q);
            }

            /// The SELECT of a filtered page's total: the matching rows counted.
            fn counted(qb: &mut QueryBuilder<'_, Db>, table: &str, filter: &(dyn Fn(&mut QueryBuilder<'_, Db>) + Sync)) {
                qb.push(format!("SELECT COUNT(*) FROM {table}"));
                filter(qb);
            }

            /// The SELECT of a page's total, when asked for.
            type Total<'a> = Option<&'a (dyn Fn(&mut QueryBuilder<'_, Db>) + Sync)>;

            /// One keyset page: rows after the cursor in (sort, id) order, one extra to know
            /// whether there is a next page, and, when asked, the total: a scalar subquery of
            /// the page's own query (one round trip), run alone only when the page is empty.
            #[allow(clippy::too_many_arguments)]
            async fn page<T>(
                pool: &Pool,
                table: &str,
                cols: &str,
                id_col: &str,
                sort_col: &str,
                descending: bool,
                first: usize,
                after: &Option<Cursor>,
                filter: &(dyn Fn(&mut QueryBuilder<'_, Db>) + Sync),
                total: Total<'_>,
                row: impl Fn(&R) -> Result<(T, Cursor)>,
            ) -> Result<Page<T>> {
                let dir = if descending { "DESC" } else { "ASC" };
                let mut qb = QueryBuilder::<Db>::new(format!("SELECT {cols}"));
                if let Some(total) = total {
                    qb.push(", (");
                    total(&mut qb);
                    qb.push(") AS page_total");
                }
                qb.push(format!(" FROM {table}"));
                filter(&mut qb);
                push_cursor(&mut qb, sort_col, id_col, descending, after);
                qb.push(format!(" ORDER BY {sort_col} {dir}, {id_col} {dir} LIMIT ")).push_bind(first as i64 + 1);
                let rows = qb.build().fetch_all(pool).await?;
                let total = match (total, rows.first()) {
                    (None, _) => None,
                    (Some(_), Some(r)) => Some(r.try_get::<i64, _>("page_total")?),
                    (Some(total), None) => {
                        let mut qb = QueryBuilder::<Db>::new("");
                        total(&mut qb);
                        Some(qb.build_query_scalar().fetch_one(pool).await?)
                    }
                };
                let has_next = rows.len() > first;
                let rows = rows.iter().take(first).map(row).collect::<Result<Vec<_>>>()?;
                Ok(Page { rows, has_next, total })
            }

            pub async fn items(pool: &Pool, q: &ListQuery<ItemFilter, ItemSortField>) -> Result<Page<ItemRow>> {
                let col = match q.sort {
                    ItemSortField::CreatedAt => "created_seq",
                    ItemSortField::AskingPrice => "asking_minor",
                    ItemSortField::Brand => "brand_key",
                };
                let filter = |qb: &mut QueryBuilder<'_, Db>| item_filter(qb, q);
                let total = |qb: &mut QueryBuilder<'_, Db>| item_total(qb, q);
                page(pool, "rm_inventory_items", ITEM_COLS, "item_id", col, q.descending, q.first, &q.after, &filter, q.with_total.then_some(&total as _), |r| {
                    let row = item_row(r)?;
                    let value = match q.sort {
                        ItemSortField::CreatedAt => CursorValue::Int(row.created_seq),
                        ItemSortField::AskingPrice => CursorValue::Int(row.asking_price.minor),
                        ItemSortField::Brand => CursorValue::Text(brand_key(&row.brand)),
                    };
                    let id = row.id;
                    Ok((row, Cursor { value, id }))
                })
                .await
            }

            fn customer_filter(qb: &mut QueryBuilder<'_, Db>, q: &ListQuery<CustomerFilter, CustomerSortField>) {
                // Merged duplicates are reachable by id, not listed.
                qb.push(" WHERE merged_into IS NULL AND store_id = ").push_bind(q.store_id);
                if let Some(t) = &q.filter.tag {
                    // Tags are a JSON array of strings; match the quoted element.
                    let quoted = serde_json::to_string(t).expect("string serialises");
                    qb.push(" AND tags LIKE ").push_bind(contains_pattern(&quoted)).push(" ESCAPE '\\'");
                }
                if let Some(e) = &q.filter.email {
                    qb.push(" AND email_lookup = ").push_bind(e.trim().to_lowercase());
                }
                if let Some(n) = &q.filter.name_contains {
                    qb.push(" AND LOWER(name) LIKE ").push_bind(contains_pattern(n)).push(" ESCAPE '\\'");
                }
            }

            pub async fn customers(pool: &Pool, q: &ListQuery<CustomerFilter, CustomerSortField>) -> Result<Page<CustomerRow>> {
                let col = match q.sort {
                    CustomerSortField::CreatedAt => "created_seq",
                    CustomerSortField::Name => "COALESCE(name, '')",
                };
                let filter = |qb: &mut QueryBuilder<'_, Db>| customer_filter(qb, q);
                // Unfiltered, the total is the maintained count; a filtered total is counted
                // when asked (the filters select on the page's own indexes).
                let f = &q.filter;
                let maintained = f.tag.is_none() && f.email.is_none() && f.name_contains.is_none();
                let total = |qb: &mut QueryBuilder<'_, Db>| {
                    if maintained {
                        qb.push("SELECT COALESCE(MAX(n), 0) FROM rm_customer_counts WHERE store_id = ").push_bind(q.store_id);
                    } else {
                        counted(qb, "rm_customers", &filter);
                    }
                };
                page(pool, "rm_customers", CUSTOMER_READ_COLS, "customer_id", col, q.descending, q.first, &q.after, &filter, q.with_total.then_some(&total as _), |r| {
                    let row = customer_row(r)?;
                    let value = match q.sort {
                        CustomerSortField::CreatedAt => CursorValue::Int(row.created_seq),
                        CustomerSortField::Name => CursorValue::Text(row.name.clone().unwrap_or_default()),
                    };
                    let id = row.id;
                    Ok((row, Cursor { value, id }))
                })
                .await
            }

            pub async fn store_ids(pool: &Pool) -> Result<Vec<Uuid>> {
                Ok(sqlx::query_scalar("SELECT store_id FROM rm_stores ORDER BY store_id").fetch_all(pool).await?)
            }

            /// Retention: removes the store's audit entries recorded before `before`.
            pub async fn purge_audit_before(pool: &Pool, store_id: Uuid, before: i64) -> Result<u64> {
                Ok(sqlx::query("DELETE FROM rm_audit WHERE store_id = $1 AND recorded_at < $2")
                    .bind(store_id)
                    .bind(before)
                    .execute(pool)
                    .await?
                    .rows_affected())
            }

            pub async fn store_name(pool: &Pool, store_id: Uuid) -> Result<Option<String>> {
                Ok(sqlx::query_scalar("SELECT name FROM rm_stores WHERE store_id = $1").bind(store_id).fetch_optional(pool).await?)
            }

            /// Every row of a projection's tables, in a stable order: for comparing a read model
            /// with a fresh replay.
            pub async fn dump(pool: &Pool, kind: Kind) -> Result<Vec<String>> {
                let mut out = Vec::new();
                match kind {
                    Kind::Inventory => {
                        for r in sqlx::query(&format!("SELECT {ITEM_COLS} FROM rm_inventory_items ORDER BY item_id")).fetch_all(pool).await? {
                            out.push(format!("{:?}", item_row(&r)?));
                        }
                    }
                    Kind::Customers => {
                        for r in sqlx::query(&format!("SELECT {CUSTOMER_READ_COLS} FROM rm_customers ORDER BY customer_id")).fetch_all(pool).await? {
                            out.push(format!("{:?}", customer_row(&r)?));
                        }
                    }
                    Kind::Sales => {
                        for r in sqlx::query(&format!("SELECT {SALE_COLS} FROM rm_sales ORDER BY sale_id")).fetch_all(pool).await? {
                            out.push(format!("{:?}", sale_row(&r)?));
                        }
                    }
                    Kind::Audit => {
                        for r in sqlx::query(&format!("SELECT {} FROM rm_audit ORDER BY event_id", crate::audit::COLS)).fetch_all(pool).await? {
                            let (id, summary, changes): (Uuid, String, String) = (r.try_get("event_id")?, r.try_get("summary")?, r.try_get("changes")?);
                            let label: Option<String> = r.try_get("entity_label")?;
                            out.push(format!("{id} {summary} {changes} {label:?}"));
                        }
                        for r in sqlx::query("SELECT stream_id, memo_key, value FROM rm_audit_memo ORDER BY stream_id, memo_key").fetch_all(pool).await? {
                            let (s, k, v): (String, String, String) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                            out.push(format!("memo {s} {k} {v}"));
                        }
                    }
                    Kind::Consent => {
                        for r in sqlx::query("SELECT event_id, purpose, channel, granted, effective_at FROM rm_consent_facts ORDER BY event_id").fetch_all(pool).await? {
                            let (id, p, c, g, at): (Uuid, String, String, bool, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?);
                            out.push(format!("{id} {p} {c} {g} {at}"));
                        }
                        for r in sqlx::query("SELECT event_id, purpose, restricted, effective_at FROM rm_restrictions ORDER BY event_id, purpose").fetch_all(pool).await? {
                            let (id, p, x, at): (Uuid, String, bool, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
                            out.push(format!("{id} {p} {x} {at}"));
                        }
                    }
                    Kind::Privacy => {
                        for r in sqlx::query("SELECT request_id, status, destroyed_keys FROM rm_privacy_requests ORDER BY request_id").fetch_all(pool).await? {
                            let (id, status, keys): (Uuid, String, String) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                            out.push(format!("{id} {status} {keys}"));
                        }
                    }
                    Kind::Directory => {
                        for r in sqlx::query("SELECT store_id, name, created_at FROM rm_stores ORDER BY store_id").fetch_all(pool).await? {
                            let (id, name, at): (Uuid, String, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                            out.push(format!("store {id} {name:?} {at}"));
                        }
                        let members = crate::staff::$module::all(pool).await?;
                        out.extend(members.iter().map(|m| format!("{m:?}")));
                    }
                }
                Ok(out)
            }
        }
    };
}

// A projection's transaction need not wait for its commit to reach the disk: read models are
// rebuilt from the log, and a crash can only lose whole transactions, each with the checkpoint
// it moved, so the runner re-applies them from the log (exactly once still). On PostgreSQL that
// spares every projection commit a WAL flush (they were queueing behind, and in front of, the
// appends' own); SQLite in WAL mode with `synchronous = NORMAL` never flushes at commit.
read_models!(sqlite, sqlx::Sqlite, None);
read_models!(postgres, sqlx::Postgres, Some(PG_BEGIN));

/// A projection's transaction on PostgreSQL: begun and relaxed in one simple-query round trip.
const PG_BEGIN: &str = "BEGIN; SET LOCAL synchronous_commit = off";

/// Moves a projection's checkpoint from `from` to `to` by compare-and-set and nothing else, in
/// one round trip (a transaction as one simple query, relaxed like every projection commit):
/// what a runner does on PostgreSQL for a batch with nothing for its model. False when another
/// runner moved it first.
pub async fn pg_advance_alone(pool: &sqlx::PgPool, name: &str, from: Position, to: Position) -> crate::Result<bool> {
    // Values are written into the text (the simple protocol takes no parameters): integers,
    // and a projection's name, which is one of ours.
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return Err(ProjectionError::Invalid(format!("projection name {name:?}")));
    }
    let sql = format!(
        "{PG_BEGIN}; UPDATE projection_checkpoints SET commit_pos = {}, seq_pos = {}, updated_at = {} \
         WHERE name = '{name}' AND commit_pos = {} AND seq_pos = {}; COMMIT",
        to.commit,
        to.seq,
        micros(Utc::now()),
        from.commit,
        from.seq
    );
    Ok(sqlx::raw_sql(&sql).execute(pool).await?.rows_affected() == 1)
}
