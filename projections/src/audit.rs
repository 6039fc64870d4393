//! The audit trail read model: one entry per event — who (actor and role), what (event type, a
//! readable summary, the changed fields), on which entity, why (reason), and the correlation,
//! causation and request ids. Personal fields are recorded as changed without their values, so
//! the table holds no personal data and erasure never has to reach it; the API shows those
//! values from the log to roles allowed to see them, or "erased" once the key is gone.

use crate::readmodels::micros;
use crate::ProjectionError;
use domain::Currency;
use eventstore::RecordedEvent;
use serde_json::{json, Value};
use std::collections::HashMap;
use uuid::Uuid;

/// Rows one statement writes: 20 values a row stays under SQLite's 32,766 variables.
const CHUNK: usize = 500;

/// One audit entry as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub event_id: Uuid,
    pub store_id: Uuid,
    pub commit_pos: i64,
    pub seq_pos: i64,
    pub recorded_at: i64,
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<String>,
    pub event_type: String,
    pub entity_type: String,
    pub entity_id: String,
    pub entity_label: Option<String>,
    pub stream_id: String,
    pub stream_version: i64,
    pub reason: Option<String>,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub request_id: Option<Uuid>,
    pub summary: String,
    /// `[{"field": …, "value": …} | {"field": …, "personal": true}]`
    pub changes: Value,
}

/// Filters of `auditTrail`, all optional, within one store.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub store_id: Uuid,
    pub actor_id: Option<Uuid>,
    pub role: Option<String>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub stream_id: Option<String>,
    pub event_types: Vec<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub correlation_id: Option<Uuid>,
    pub request_id: Option<Uuid>,
    /// Oldest first instead of newest first.
    pub oldest_first: bool,
    pub first: usize,
    /// Keyset cursor: the (commit, seq) position of the last entry seen.
    pub after: Option<(i64, i64)>,
}

/// The entity type an event stream holds, by its prefix.
pub fn entity_type(stream_id: &str) -> &'static str {
    match stream_id.split_once('-').map_or(stream_id, |(k, _)| k) {
        "item" => "InventoryItem",
        "customer" => "Customer",
        "sale" => "Sale",
        "staff" => "StaffMember",
        "store" => "Store",
        "consent" => "ConsentLedger",
        "invoices" => "InvoiceBook",
        "idem" => "IdempotencyKey",
        _ => "Other",
    }
}

/// `ItemPriceChanged` → "Item price changed".
fn humanize(event_type: &str) -> String {
    let mut out = String::new();
    for (i, c) in event_type.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

pub fn camel(field: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// "31,500.00 USD" from a stored money value.
pub fn money(v: &Value) -> Option<String> {
    let minor = v.get("minor")?.as_i64()?;
    let code = v.get("currency")?.as_str()?;
    let exp = Currency::from_stored(code).ok()?.exponent();
    let scale = 10i64.pow(exp);
    let (whole, frac) = (minor.abs() / scale, minor.abs() % scale);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if minor < 0 { "-" } else { "" };
    Some(if exp == 0 {
        format!("{sign}{grouped} {code}")
    } else {
        format!("{sign}{grouped}.{frac:0w$} {code}", w = exp as usize)
    })
}

/// Whether a value is, or holds anywhere inside it, a personal field (e.g. a map of external
/// ids whose values are personal): then the whole field is listed without its value.
fn is_personal(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.contains_key(domain::pii::PII_MARKER) || o.values().any(is_personal),
        Value::Array(a) => a.iter().any(is_personal),
        _ => false,
    }
}

/// What the fold remembers per stream (label and last asking price of an item).
#[derive(Debug, Clone, Default)]
pub struct Memo {
    pub label: Option<String>,
    pub price: Option<String>,
}

/// The audit entry for an event, and the memo after it.
pub fn entry(e: &RecordedEvent, memo: &Memo) -> (AuditRow, Memo) {
    let mut next = memo.clone();
    let p = &e.payload;
    let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
    let summary = match e.event_type.as_str() {
        "ItemAcquired" => {
            let label =
                format!("{} {}", s("brand").unwrap_or_default(), s("model").unwrap_or_default()).trim().to_owned();
            next.label = Some(label.clone());
            next.price = p.get("asking_price").and_then(money);
            format!("Acquired {label} at {}", next.price.clone().unwrap_or_default())
        }
        "ItemPriceChanged" => {
            let new = p.get("asking_price").and_then(money).unwrap_or_default();
            let text = match &memo.price {
                Some(old) => format!("Asking price {old} → {new}"),
                None => format!("Asking price → {new}"),
            };
            next.price = Some(new);
            text
        }
        "PaymentRecorded" => format!("Payment of {}", p.get("amount").and_then(money).unwrap_or_default()),
        "PaymentRefunded" => format!("Refund of {}", p.get("amount").and_then(money).unwrap_or_default()),
        "StaffRoleChanged" => format!("Role {} → {}", s("from").unwrap_or_default(), s("to").unwrap_or_default()),
        other => humanize(other),
    };
    let entity_id = e.stream_id.split_once('-').map_or(String::new(), |(_, id)| id.to_owned());
    let changes: Vec<Value> = p
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, v)| !(k.ends_with("_id") && v.as_str() == Some(entity_id.as_str())) && *k != "store_id")
                .map(|(k, v)| {
                    if is_personal(v) {
                        json!({"field": camel(k), "personal": true})
                    } else {
                        json!({"field": camel(k), "value": v})
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let m = &e.metadata;
    let row = AuditRow {
        event_id: e.event_id,
        store_id: e.store_id,
        commit_pos: e.position.commit,
        seq_pos: e.position.seq,
        recorded_at: micros(e.recorded_at),
        actor_kind: m.actor.kind.clone(),
        actor_id: m.actor.id,
        actor_role: m.actor.role.clone(),
        event_type: e.event_type.clone(),
        entity_type: entity_type(&e.stream_id).to_owned(),
        entity_id,
        entity_label: next.label.clone(),
        stream_id: e.stream_id.clone(),
        stream_version: e.version as i64,
        reason: m.reason.clone(),
        correlation_id: m.correlation_id,
        causation_id: m.causation_id,
        request_id: m.request_id,
        summary,
        changes: Value::Array(changes),
    };
    (row, next)
}

pub const COLS: &str = "event_id, store_id, commit_pos, seq_pos, recorded_at, actor_kind, actor_id, actor_role, event_type, entity_type, entity_id, entity_label, stream_id, stream_version, reason, correlation_id, causation_id, request_id, summary, changes";

macro_rules! audit_sql {
    ($module:ident, $db:ty) => {
        pub mod $module {
            use super::*;
            use sqlx::{QueryBuilder, Row, Transaction};
            type Db = $db;
            type Pool = sqlx::Pool<Db>;
            type Result<T> = std::result::Result<T, ProjectionError>;

            /// Applies a batch: the memos of every stream it touches are loaded in one query,
            /// the entries folded in memory in log order (each from its stream's memo as the
            /// events before it left it), then written with multi-row statements. The same rows
            /// and memos as applying the events one by one (`tests/models.rs` compares them).
            pub async fn apply_batch(tx: &mut Transaction<'_, Db>, events: &[RecordedEvent]) -> Result<()> {
                if events.is_empty() {
                    return Ok(());
                }
                // Memos to load: of streams whose first event here is not their first (one that
                // starts in this batch has none yet, as in `batch::touched`).
                let (mut streams, mut to_load): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
                let mut memos: HashMap<&str, Memo> = HashMap::new();
                for e in events {
                    if !memos.contains_key(e.stream_id.as_str()) {
                        memos.insert(&e.stream_id, Memo::default());
                        streams.push(&e.stream_id);
                        if e.version > 0 {
                            to_load.push(&e.stream_id);
                        }
                    }
                }
                for chunk in to_load.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<Db>::new(
                        "SELECT stream_id, memo_key, value FROM rm_audit_memo WHERE stream_id IN (",
                    );
                    let mut list = qb.separated(", ");
                    for s in chunk {
                        list.push_bind(*s);
                    }
                    qb.push(")");
                    for r in qb.build().fetch_all(&mut **tx).await? {
                        let (stream, key, value): (String, String, String) =
                            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                        if let Some(memo) = memos.get_mut(stream.as_str()) {
                            match key.as_str() {
                                "label" => memo.label = Some(value),
                                "price" => memo.price = Some(value),
                                _ => {}
                            }
                        }
                    }
                }
                let mut rows = Vec::with_capacity(events.len());
                for e in events {
                    let memo = memos.get_mut(e.stream_id.as_str()).expect("every stream has a memo");
                    let (row, next) = entry(e, memo);
                    // A stored memo value is only ever replaced, never cleared.
                    memo.label = next.label.or(memo.label.take());
                    memo.price = next.price.or(memo.price.take());
                    rows.push(row);
                }
                for chunk in rows.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<Db>::new(format!("INSERT INTO rm_audit ({COLS}) "));
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.event_id)
                            .push_bind(r.store_id)
                            .push_bind(r.commit_pos)
                            .push_bind(r.seq_pos)
                            .push_bind(r.recorded_at)
                            .push_bind(r.actor_kind.clone())
                            .push_bind(r.actor_id)
                            .push_bind(r.actor_role.clone())
                            .push_bind(r.event_type.clone())
                            .push_bind(r.entity_type.clone())
                            .push_bind(r.entity_id.clone())
                            .push_bind(r.entity_label.clone())
                            .push_bind(r.stream_id.clone())
                            .push_bind(r.stream_version)
                            .push_bind(r.reason.clone())
                            .push_bind(r.correlation_id)
                            .push_bind(r.causation_id)
                            .push_bind(r.request_id)
                            .push_bind(r.summary.clone())
                            .push_bind(r.changes.to_string());
                    });
                    qb.push(" ON CONFLICT (event_id) DO NOTHING");
                    qb.build().execute(&mut **tx).await?;
                }
                let memo_rows: Vec<(&str, &str, &String)> = streams
                    .iter()
                    .flat_map(|s| {
                        let m = &memos[s];
                        [("label", &m.label), ("price", &m.price)]
                            .into_iter()
                            .filter_map(move |(k, v)| v.as_ref().map(|v| (*s, k, v)))
                    })
                    .collect();
                for chunk in memo_rows.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<Db>::new("INSERT INTO rm_audit_memo (stream_id, memo_key, value) ");
                    qb.push_values(chunk, |mut b, (s, k, v)| {
                        b.push_bind(*s).push_bind(*k).push_bind((*v).clone());
                    });
                    qb.push(" ON CONFLICT (stream_id, memo_key) DO UPDATE SET value = excluded.value");
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            fn row(r: &<Db as sqlx::Database>::Row) -> Result<AuditRow> {
                let changes: String = r.try_get("changes")?;
                Ok(AuditRow {
                    event_id: r.try_get("event_id")?,
                    store_id: r.try_get("store_id")?,
                    commit_pos: r.try_get("commit_pos")?,
                    seq_pos: r.try_get("seq_pos")?,
                    recorded_at: r.try_get("recorded_at")?,
                    actor_kind: r.try_get("actor_kind")?,
                    actor_id: r.try_get("actor_id")?,
                    actor_role: r.try_get("actor_role")?,
                    event_type: r.try_get("event_type")?,
                    entity_type: r.try_get("entity_type")?,
                    entity_id: r.try_get("entity_id")?,
                    entity_label: r.try_get("entity_label")?,
                    stream_id: r.try_get("stream_id")?,
                    stream_version: r.try_get("stream_version")?,
                    reason: r.try_get("reason")?,
                    correlation_id: r.try_get("correlation_id")?,
                    causation_id: r.try_get("causation_id")?,
                    request_id: r.try_get("request_id")?,
                    summary: r.try_get("summary")?,
                    changes: serde_json::from_str(&changes).unwrap_or(Value::Null),
                })
            }

            fn filter(qb: &mut QueryBuilder<'_, Db>, f: &AuditFilter) {
                qb.push(" WHERE store_id = ").push_bind(f.store_id);
                if let Some(a) = f.actor_id {
                    qb.push(" AND actor_id = ").push_bind(a);
                }
                if let Some(r) = &f.role {
                    qb.push(" AND actor_role = ").push_bind(r.clone());
                }
                if let Some(t) = &f.entity_type {
                    qb.push(" AND entity_type = ").push_bind(t.clone());
                }
                if let Some(i) = &f.entity_id {
                    qb.push(" AND entity_id = ").push_bind(i.clone());
                }
                if let Some(s) = &f.stream_id {
                    qb.push(" AND stream_id = ").push_bind(s.clone());
                }
                if !f.event_types.is_empty() {
                    qb.push(" AND event_type IN (");
                    let mut sep = qb.separated(", ");
                    for t in &f.event_types {
                        sep.push_bind(t.clone());
                    }
                    qb.push(")");
                }
                if let Some(t) = f.from {
                    qb.push(" AND recorded_at >= ").push_bind(t);
                }
                if let Some(t) = f.to {
                    qb.push(" AND recorded_at < ").push_bind(t);
                }
                if let Some(c) = f.correlation_id {
                    qb.push(" AND correlation_id = ").push_bind(c);
                }
                if let Some(r) = f.request_id {
                    qb.push(" AND request_id = ").push_bind(r);
                }
            }

            /// A page of entries and whether more follow.
            pub async fn page(pool: &Pool, f: &AuditFilter) -> Result<(Vec<AuditRow>, bool)> {
                let mut qb = QueryBuilder::<Db>::new(format!("SELECT {COLS} FROM rm_audit"));
                filter(&mut qb, f);
                let (cmp, dir) = if f.oldest_first { (">", "ASC") } else { ("<", "DESC") };
                if let Some((c, s)) = f.after {
                    qb.push(format!(" AND (commit_pos, seq_pos) {cmp} ("))
                        .push_bind(c)
                        .push(", ")
                        .push_bind(s)
                        .push(")");
                }
                qb.push(format!(" ORDER BY commit_pos {dir}, seq_pos {dir} LIMIT ")).push_bind(f.first as i64 + 1);
                let mut rows = qb.build().fetch_all(pool).await?.iter().map(row).collect::<Result<Vec<_>>>()?;
                let more = rows.len() > f.first;
                rows.truncate(f.first);
                Ok((rows, more))
            }

            /// Every entry about a data subject, oldest first: the events of `streams` (their
            /// own), and any other entry whose recorded changes name `subject` (a reservation or
            /// memo for them, a sale to them, …).
            pub async fn about(
                pool: &Pool,
                store_id: Uuid,
                streams: &[String],
                subject: Uuid,
            ) -> Result<Vec<AuditRow>> {
                let mut qb = QueryBuilder::<Db>::new(format!("SELECT {COLS} FROM rm_audit WHERE store_id = "));
                qb.push_bind(store_id).push(" AND (changes LIKE ").push_bind(format!("%{subject}%"));
                for s in streams {
                    qb.push(" OR stream_id = ").push_bind(s.clone());
                }
                qb.push(") ORDER BY commit_pos, seq_pos");
                qb.build().fetch_all(pool).await?.iter().map(row).collect()
            }

            pub async fn count(pool: &Pool, f: &AuditFilter) -> Result<i64> {
                let mut qb = QueryBuilder::<Db>::new("SELECT COUNT(*) FROM rm_audit");
                filter(&mut qb, f);
                Ok(qb.build_query_scalar().fetch_one(pool).await?)
            }
        }
    };
}

audit_sql!(sqlite, sqlx::Sqlite);
audit_sql!(postgres, sqlx::Postgres);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_values_nested_in_maps_and_lists_are_never_copied() {
        let marker = json!({"$pii": {"class": "profile", "value": "shopify-7788"}});
        assert!(is_personal(&marker));
        assert!(is_personal(&json!({"shopify": marker.clone()})), "a map of personal values");
        assert!(is_personal(&json!([{"note": marker}])), "a list holding one");
        assert!(!is_personal(&json!({"minor": 5, "currency": "USD"})));
        assert!(!is_personal(&json!(["vip"])));
    }

    #[test]
    fn money_reads_like_an_invoice() {
        assert_eq!(money(&json!({"minor": 3150000, "currency": "USD"})).unwrap(), "31,500.00 USD");
        assert_eq!(money(&json!({"minor": 1500, "currency": "JPY"})).unwrap(), "1,500 JPY");
        assert_eq!(money(&json!({"minor": 1234, "currency": "BHD"})).unwrap(), "1.234 BHD");
        assert_eq!(humanize("ItemPriceChanged"), "Item price changed");
        assert_eq!(camel("asking_price"), "askingPrice");
    }
}
