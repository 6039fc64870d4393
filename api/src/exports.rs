//! Subject-access exports (policy §6: access and portability): everything the store holds about
//! one data subject as one JSON document, described by `docs/schemas/subject-export.schema.json`.
//! Personal fields are read from the log (decrypted while the subject's keys exist); what an
//! erasure destroyed reads as `null` with `erased: true`.

use crate::app::AppState;
use crate::certificates::ts;
use chrono::{DateTime, Utc};
use domain::aggregate::decode;
use domain::consent::{state_as_of, ConsentEvent};
use domain::customer::Customer;
use domain::ids::consent_stream;
use domain::restriction::{restriction_stream, RestrictionEvent};
use domain::sale::SaleEvent;
use domain::{CustomerId, Pii, StoreId, UserId};
use eventstore::RecordedEvent;
use projections::audit::{AuditFilter, AuditRow};
use projections::privacy::PrivacyQuery;
use projections::readmodels::enum_str;
use serde_json::{json, Value};
use uuid::Uuid;

/// The `type` of every export this version writes.
pub const EXPORT_TYPE: &str = "inventory-connect/subject-export/v1";

/// The sections an export has (recorded in the log with each export, never the content).
pub const CUSTOMER_SECTIONS: [&str; 8] =
    ["profile", "consent", "restrictions", "purchases", "holds", "privacy_requests", "audit", "processing"];
pub const STAFF_SECTIONS: [&str; 5] = ["profile", "sessions", "actions", "privacy_requests", "processing"];

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn micros(m: i64) -> Value {
    DateTime::from_timestamp_micros(m).map_or(Value::Null, ts)
}

fn pii<T: serde::Serialize>(p: &Option<Pii<T>>) -> Value {
    match p {
        Some(Pii::Clear { value, .. }) => json!(value),
        _ => Value::Null,
    }
}

fn decoded<E: domain::DomainEvent>(events: &[RecordedEvent]) -> Result<Vec<(E, &RecordedEvent)>> {
    events.iter().map(|e| Ok((decode::<E>(&e.event_type, &e.payload)?, e))).collect()
}

fn audit_entry(r: &AuditRow) -> Value {
    json!({
        "recorded_at": micros(r.recorded_at), "event_type": r.event_type, "summary": r.summary,
        "stream_id": r.stream_id, "actor": {"kind": r.actor_kind, "id": r.actor_id, "role": r.actor_role},
        "reason": r.reason, "changes": r.changes,
    })
}

/// Why the store processes the data and who receives it (privacy policy §2–§4).
fn processing() -> Value {
    json!({
        "purposes": [
            "running the store's sales, customer relationship and after-sales service (policy §2.1)",
            "marketing contact only where consent is in force and processing is not restricted (policy §2.2, §6)",
            "tax, anti-money-laundering and accounting records of sales (policy §2.4, §4)",
            "security, abuse prevention and the audit trail (policy §2.4, §5)"
        ],
        "recipients": [
            "staff of the store, each according to their role (policy §3.3)",
            "infrastructure subprocessors: hosting, database, photo storage, transactional email (policy §3.1)",
            "integrations the store has connected (policy §3.2)",
            "authorities, where the law requires it (policy §3.4)"
        ],
        "retention": [
            "profile and consent evidence: while the store's account is active, then up to 90 days for export (policy §4)",
            "sales, invoices, payments and the buyer identity on them: 7 years after the sale (policy §4)",
            "audit trail entries: 12 months (policy §4)",
            "backups: a rolling window of about 90 days (policy §4)"
        ],
        "rights": "access, correction, deletion, portability, restriction and withdrawal of consent (policy §6)",
    })
}

async fn requests_about(state: &AppState, store_id: Uuid, subject: Uuid) -> Result<Vec<Value>> {
    let q = PrivacyQuery { store_id, subject_id: Some(subject), first: 1000, ..Default::default() };
    let (rows, _, _) = state.read.privacy_requests(&q).await?;
    Ok(rows
        .iter()
        .map(|r| {
            json!({"id": r.request_id, "kind": r.kind, "status": r.status, "received_via": r.received_via,
                   "received_at": micros(r.received_at), "due_at": micros(r.due_at),
                   "completed_at": r.completed_at.map_or(Value::Null, micros)})
        })
        .collect())
}

/// The export of a customer of `store_id`.
pub async fn customer_export(state: &AppState, store_id: Uuid, customer: CustomerId, request: Uuid) -> Result<Value> {
    let store = &state.store;
    let (c, _) = commands::load::<Customer>(store, StoreId::from_uuid(store_id), &customer.stream_id()).await?;
    let Some(s) = c.state else { return Err("no such customer".into()) };
    let own = store.read_stream(&customer.stream_id(), 0).await?;
    let profile = json!({
        "id": customer.as_uuid(),
        "erased": s.erased || s.name.is_erased(),
        "name": s.name.clear(),
        "email": pii(&s.email), "phone": pii(&s.phone), "notes": pii(&s.notes),
        "address": pii(&s.address), "birthday": pii(&s.birthday),
        "tags": s.tags,
        "external_ids": s.external_ids.iter().map(|(k, v)| (k.clone(), json!(v.clear()))).collect::<serde_json::Map<_, _>>(),
        "source": s.source, "assigned_to": s.assigned_to.map(|u| u.as_uuid()),
        "merged_into": s.merged_into.map(|m| m.as_uuid()),
        "created_at": own.first().map(|e| ts(e.recorded_at)),
    });

    let consent_events = store.read_stream(&consent_stream(customer), 0).await?;
    let consent = decoded::<ConsentEvent>(&consent_events)?;
    let history: Vec<Value> = consent
        .iter()
        .map(|(e, r)| {
            let f = e.fact();
            json!({
                "kind": if e.granted() { "GRANTED" } else { "WITHDRAWN" },
                "event_id": r.event_id, "purpose": enum_str(&f.purpose), "channel": enum_str(&f.channel),
                "notice_version": f.notice_version, "method": enum_str(&f.method), "captured_by": f.captured_by,
                "effective_at": ts(f.effective_at), "recorded_at": ts(r.recorded_at),
                "evidence": {"ip": pii(&f.ip), "user_agent": pii(&f.user_agent),
                             "erased": f.ip.as_ref().is_some_and(Pii::is_erased) || f.user_agent.as_ref().is_some_and(Pii::is_erased)},
            })
        })
        .collect();
    let events: Vec<ConsentEvent> = consent.into_iter().map(|(e, _)| e).collect();
    let current: Vec<Value> = state_as_of(&events, Utc::now())
        .into_iter()
        .map(|((p, c), st)| {
            json!({"purpose": enum_str(&p), "channel": enum_str(&c), "granted": st.granted,
                                    "notice_version": st.notice_version, "effective_at": ts(st.effective_at)})
        })
        .collect();

    let restriction_events = store.read_stream(&restriction_stream(customer), 0).await?;
    let restrictions: Vec<Value> = decoded::<RestrictionEvent>(&restriction_events)?
        .iter()
        .map(|(e, r)| {
            let (kind, purposes, at) = match e {
                RestrictionEvent::ProcessingRestricted { purposes, at, .. } => ("RESTRICTED", purposes, at),
                RestrictionEvent::RestrictionLifted { purposes, at, .. } => ("LIFTED", purposes, at),
            };
            json!({"kind": kind, "purposes": purposes.iter().map(enum_str).collect::<Vec<_>>(),
                   "effective_at": ts(*at), "reason": r.metadata.reason})
        })
        .collect();

    let mut purchases = Vec::new();
    let mut streams = vec![customer.stream_id(), consent_stream(customer), restriction_stream(customer)];
    for sale in state.read.all_sales(store_id, Some(customer.as_uuid())).await? {
        let stream = domain::SaleId::from_uuid(sale.id).stream_id();
        let (mut buyer_name, mut buyer_address, mut confirmed_at) = (Value::Null, Value::Null, Value::Null);
        for (e, r) in decoded::<SaleEvent>(&store.read_stream(&stream, 0).await?)? {
            match e {
                SaleEvent::SaleDrafted { buyer_name: n, buyer_address: a, .. } => {
                    buyer_name = pii(&n);
                    buyer_address = pii(&a);
                }
                SaleEvent::SaleConfirmed { .. } => confirmed_at = ts(r.recorded_at),
                _ => {}
            }
        }
        purchases.push(json!({
            "sale_id": sale.id, "status": sale.status, "invoice_number": sale.invoice_number,
            "currency": sale.total.currency.code(), "total": sale.total.to_string(), "paid": sale.paid.to_string(),
            "refunded": sale.refunded.to_string(), "lines": sale.lines, "trade_ins": sale.trade_ins,
            "payments": sale.payments, "confirmed_at": confirmed_at,
            "buyer_name": buyer_name, "buyer_address": buyer_address,
        }));
        streams.push(stream);
    }
    let requests = requests_about(state, store_id, customer.as_uuid()).await?;
    streams.extend(requests.iter().filter_map(|r| r["id"].as_str().map(|id| format!("privacy_request-{id}"))));
    let audit = state.read.audit_about(store_id, &streams, customer.as_uuid()).await?;
    let holds: Vec<Value> = audit
        .iter()
        .filter(|r| r.entity_type == "InventoryItem")
        .map(|r| {
            json!({"item_id": r.entity_id, "item": r.entity_label, "event_type": r.event_type,
                        "summary": r.summary, "recorded_at": micros(r.recorded_at)})
        })
        .collect();

    Ok(json!({
        "type": EXPORT_TYPE,
        "generated_at": ts(Utc::now()),
        "store": {"id": store_id, "name": state.read.store_name(store_id).await?},
        "subject": {"kind": "customer", "id": customer.as_uuid()},
        "request_id": request,
        "profile": profile,
        "consent": {"current": current, "history": history},
        "restrictions": restrictions,
        "purchases": purchases,
        "holds": holds,
        "privacy_requests": requests,
        "audit": audit.iter().map(audit_entry).collect::<Vec<_>>(),
        "processing": processing(),
    }))
}

/// The export of a staff member of `store_id` (policy §1.1: staff are data subjects too).
pub async fn staff_export(state: &AppState, store_id: Uuid, user: UserId, request: Uuid) -> Result<Value> {
    let Some(member) = state.read.staff_member(store_id, user.as_uuid()).await? else {
        return Err("no such staff member".into());
    };
    let now = Utc::now();
    let sessions: Vec<Value> = state
        .accounts
        .live_sessions_of(user.as_uuid(), now, state.settings.sessions.idle)
        .await?
        .iter()
        .map(|s| {
            json!({"id": s.session_id, "created_at": ts(s.created_at), "last_seen_at": ts(s.last_seen_at),
                        "expires_at": ts(s.expires_at), "client_ip": s.client_ip, "user_agent": s.user_agent})
        })
        .collect();
    let mut actions = Vec::new();
    let mut f =
        AuditFilter { store_id, actor_id: Some(user.as_uuid()), oldest_first: true, first: 500, ..Default::default() };
    loop {
        let (rows, more) = state.read.audit(&f).await?;
        actions.extend(rows.iter().map(audit_entry));
        match rows.last() {
            Some(last) if more => f.after = Some((last.commit_pos, last.seq_pos)),
            _ => break,
        }
    }
    Ok(json!({
        "type": EXPORT_TYPE,
        "generated_at": ts(now),
        "store": {"id": store_id, "name": state.read.store_name(store_id).await?},
        "subject": {"kind": "staff", "id": user.as_uuid()},
        "request_id": request,
        "profile": {"id": user.as_uuid(), "erased": member.email.is_none() && member.name.is_none(),
                    "name": member.name, "email": member.email, "role": member.role.as_str(), "active": member.active,
                    "joined_at": micros(member.created_at)},
        "sessions": sessions,
        "actions": actions,
        "privacy_requests": requests_about(state, store_id, user.as_uuid()).await?,
        "processing": processing(),
    }))
}
