//! The auditor's reading: `auditTrail` (from the audit read model) and `streamEvents` (raw
//! envelopes from the log, decrypted where keys exist). Personal values appear only for roles
//! allowed to see them, read from the log — and as erased once the subject's key is destroyed.

use super::types::Role;
use super::{page_size, state, viewer};
use crate::auth::{allows, Permission, Viewer};
use crate::error::ApiError;
use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, InputObject, Object, SimpleObject, ID};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use domain::pii::PII_MARKER;
use projections::audit::{camel, AuditFilter, AuditRow};
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(SimpleObject, Debug, Clone)]
pub struct AuditActor {
    /// `user` or `system`.
    pub kind: String,
    pub id: Option<ID>,
    /// The staff member's name (from the staff directory; absent once erased).
    pub name: Option<String>,
    pub role: Option<String>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct AuditEntity {
    #[graphql(name = "type")]
    pub entity_type: String,
    pub id: String,
    pub label: Option<String>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct AuditAction {
    pub event_type: String,
    pub summary: String,
}

/// One changed field. `value` is JSON text; for personal fields it is shown only to roles that
/// may see it, and `erased` once the subject's key is destroyed.
#[derive(SimpleObject, Debug, Clone)]
pub struct AuditChange {
    pub field: String,
    pub value: Option<String>,
    pub personal: bool,
    pub erased: bool,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct AuditEntry {
    pub event_id: ID,
    pub position: String,
    pub recorded_at: DateTime<Utc>,
    pub actor: AuditActor,
    pub action: AuditAction,
    pub event_type: String,
    pub summary: String,
    pub entity: AuditEntity,
    pub stream_id: String,
    pub stream_version: i64,
    pub reason: Option<String>,
    pub correlation_id: ID,
    pub causation_id: Option<ID>,
    pub request_id: Option<ID>,
    pub changes: Vec<AuditChange>,
}

pub type AuditEntryConnection = Connection<String, AuditEntry, AuditTrailFields, EmptyFields>;

/// `totalCount` of the trail, counted only when a client asks for it: a page stays fast however
/// long the trail is, and a count costs what it costs only to those who want it.
pub struct AuditTrailFields {
    filter: AuditFilter,
}

#[Object]
impl AuditTrailFields {
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(state(ctx).read.audit_count(&self.filter).await.map_err(ApiError::from)?)
    }
}

#[derive(InputObject, Debug, Clone, Default)]
pub struct AuditWhere {
    pub actor_id: Option<ID>,
    pub role: Option<Role>,
    /// `InventoryItem`, `Customer`, `Sale`, `StaffMember`, `Store`, `ConsentLedger`, …
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub stream_id: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub correlation_id: Option<ID>,
    pub request_id: Option<ID>,
}

/// One event as stored, payload decrypted where its keys exist.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(name = "RecordedEvent")]
pub struct RecordedEventObject {
    pub event_id: ID,
    pub position: String,
    pub stream_id: String,
    pub version: i64,
    pub event_type: String,
    pub schema_version: i32,
    pub recorded_at: DateTime<Utc>,
    /// JSON text; an erased field reads `{"$erased": true, "class": "profile"}`.
    pub payload: String,
    /// JSON text: actor, correlation, causation, request, source, reason.
    pub metadata: String,
    /// This event's chain hash and its predecessor's (hex).
    pub hash: String,
    pub prev_hash: String,
}

pub type RecordedEventConnection = Connection<String, RecordedEventObject, EmptyFields, EmptyFields>;

/// Personal-data markers of an opened payload replaced by their values, or by an erased marker.
pub fn unmark(v: &Value) -> Value {
    match v {
        Value::Object(o) if o.len() == 1 && o.contains_key(PII_MARKER) => {
            let inner = &o[PII_MARKER];
            if inner.get("erased").and_then(Value::as_bool) == Some(true) {
                json!({"$erased": true, "class": inner.get("class").cloned().unwrap_or(Value::Null)})
            } else {
                inner.get("value").map(unmark).unwrap_or(Value::Null)
            }
        }
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), unmark(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(unmark).collect()),
        other => other.clone(),
    }
}

fn bad(what: &str) -> async_graphql::Error {
    ApiError::BadUserInput(format!("{what} is not valid")).into()
}

fn uuid(id: &Option<ID>, what: &str) -> async_graphql::Result<Option<Uuid>> {
    id.as_ref().map(|i| Uuid::parse_str(i.as_str()).map_err(|_| bad(what))).transpose()
}

/// The opened payload of one event, for showing personal values.
async fn opened_payload(ctx: &Context<'_>, v: &Viewer, row: &AuditRow) -> async_graphql::Result<Option<Value>> {
    let s = state(ctx);
    let stored = s
        .store
        .backend()
        .read_stream(&row.stream_id, row.stream_version as u64, 1)
        .await
        .map_err(|e| ApiError::internal("audit payload", &e))?;
    let opened = s.store.open_batch(stored).await.map_err(|e| ApiError::internal("audit payload", &e))?;
    Ok(opened.into_iter().find(|e| e.event_id == row.event_id && e.store_id == v.store_id).map(|e| e.payload))
}

async fn entry(ctx: &Context<'_>, v: &Viewer, r: AuditRow) -> async_graphql::Result<AuditEntry> {
    let s = state(ctx);
    let name = match (r.actor_id, allows(v.role, Permission::ViewStaff)) {
        (Some(id), true) => s.read.staff_member(v.store_id, id).await.map_err(ApiError::from)?.and_then(|m| m.name),
        _ => None,
    };
    let raw = r.changes.as_array().cloned().unwrap_or_default();
    let personal_visible = allows(v.role, Permission::ReadCustomers) && allows(v.role, Permission::ReadConsentEvidence);
    let payload = if personal_visible && raw.iter().any(|c| c["personal"] == true) {
        opened_payload(ctx, v, &r).await?
    } else {
        None
    };
    let changes = raw
        .iter()
        .map(|c| {
            let field = c["field"].as_str().unwrap_or_default().to_owned();
            if c["personal"] == true {
                let value = payload.as_ref().and_then(|p| {
                    p.as_object().and_then(|o| o.iter().find(|(k, _)| camel(k) == field).map(|(_, v)| unmark(v)))
                });
                let erased = value.as_ref().is_some_and(|v| v.get("$erased").is_some());
                AuditChange { field, value: value.filter(|_| !erased).map(|v| v.to_string()), personal: true, erased }
            } else {
                AuditChange { field, value: Some(c["value"].to_string()), personal: false, erased: false }
            }
        })
        .collect();
    Ok(AuditEntry {
        event_id: ID(r.event_id.to_string()),
        position: format!("{}.{}", r.commit_pos, r.seq_pos),
        recorded_at: DateTime::from_timestamp_micros(r.recorded_at).unwrap_or_default(),
        actor: AuditActor { kind: r.actor_kind, id: r.actor_id.map(|i| ID(i.to_string())), name, role: r.actor_role },
        action: AuditAction { event_type: r.event_type.clone(), summary: r.summary.clone() },
        event_type: r.event_type,
        summary: r.summary,
        entity: AuditEntity { entity_type: r.entity_type, id: r.entity_id, label: r.entity_label },
        stream_id: r.stream_id,
        stream_version: r.stream_version,
        reason: r.reason,
        correlation_id: ID(r.correlation_id.to_string()),
        causation_id: r.causation_id.map(|i| ID(i.to_string())),
        request_id: r.request_id.map(|i| ID(i.to_string())),
        changes,
    })
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Who did what, when, why: one entry per event, newest first (`oldestFirst` reverses).
    async fn audit_trail(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(name = "where")] filter: Option<AuditWhere>,
        oldest_first: Option<bool>,
    ) -> async_graphql::Result<AuditEntryConnection> {
        let v = viewer(ctx)?;
        let w = filter.unwrap_or_default();
        let after = match after {
            None => None,
            Some(a) => {
                let text = String::from_utf8(B64.decode(a).map_err(|_| bad("after"))?).map_err(|_| bad("after"))?;
                let (c, s) = text.split_once('.').ok_or_else(|| bad("after"))?;
                Some((c.parse().map_err(|_| bad("after"))?, s.parse().map_err(|_| bad("after"))?))
            }
        };
        let f = AuditFilter {
            store_id: v.store_id,
            actor_id: uuid(&w.actor_id, "actorId")?,
            role: w.role.map(|r| domain::staff::Role::from(r).as_str().to_owned()),
            entity_type: w.entity_type,
            entity_id: w.entity_id,
            stream_id: w.stream_id,
            event_types: w.event_types.unwrap_or_default(),
            from: w.from.map(|t| t.timestamp_micros()),
            to: w.to.map(|t| t.timestamp_micros()),
            correlation_id: uuid(&w.correlation_id, "correlationId")?,
            request_id: uuid(&w.request_id, "requestId")?,
            oldest_first: oldest_first.unwrap_or(false),
            first: page_size(first)?,
            after,
        };
        let s = state(ctx);
        let (rows, more) = s.read.audit(&f).await.map_err(ApiError::from)?;
        let count_filter = AuditFilter { after: None, ..f.clone() };
        let mut conn =
            Connection::with_additional_fields(f.after.is_some(), more, AuditTrailFields { filter: count_filter });
        for r in rows {
            let cursor = B64.encode(format!("{}.{}", r.commit_pos, r.seq_pos));
            conn.edges.push(Edge::new(cursor, entry(ctx, v, r).await?));
        }
        Ok(conn)
    }

    /// A stream's events as stored, oldest first, payloads decrypted where keys exist. Another
    /// store's stream reads as empty.
    async fn stream_events(
        &self,
        ctx: &Context<'_>,
        stream_id: String,
        first: Option<i32>,
        after: Option<String>,
        from_version: Option<i64>,
    ) -> async_graphql::Result<RecordedEventConnection> {
        let v = viewer(ctx)?;
        let first = page_size(first)?;
        let start = match (after, from_version) {
            (Some(a), _) => a.parse::<u64>().map_err(|_| bad("after"))? + 1,
            (None, Some(f)) => u64::try_from(f).map_err(|_| bad("fromVersion"))?,
            (None, None) => 0,
        };
        let s = state(ctx);
        let stored = s
            .store
            .backend()
            .read_stream(&stream_id, start, first + 1)
            .await
            .map_err(|e| ApiError::internal("stream", &e))?;
        if stored.first().is_some_and(|e| e.store_id != v.store_id) {
            return Ok(Connection::new(false, false));
        }
        let hashes: Vec<(String, String)> =
            stored.iter().map(|e| (ledger::hex(&e.hash), ledger::hex(&e.prev_hash))).collect();
        let mut opened = s.store.open_batch(stored).await.map_err(|e| ApiError::internal("stream", &e))?;
        let more = opened.len() > first;
        opened.truncate(first);
        let mut conn = Connection::new(start > 0, more);
        for (e, (hash, prev)) in opened.into_iter().zip(hashes) {
            conn.edges.push(Edge::new(
                e.version.to_string(),
                RecordedEventObject {
                    event_id: ID(e.event_id.to_string()),
                    position: e.position.to_string(),
                    stream_id: e.stream_id,
                    version: e.version as i64,
                    event_type: e.event_type,
                    schema_version: e.schema_version as i32,
                    recorded_at: e.recorded_at,
                    payload: unmark(&e.payload).to_string(),
                    metadata: serde_json::to_string(&e.metadata).unwrap_or_default(),
                    hash,
                    prev_hash: prev,
                },
            ));
        }
        Ok(conn)
    }
}
