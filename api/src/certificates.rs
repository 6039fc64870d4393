//! Deletion certificates: what an erasure did, as one signed JSON document (see
//! `ledger::certificate` for the format and the offline check). GraphQL's `deletionCertificate`
//! and `inventory-connect certificate export` both call [`deletion_certificate`], and get the
//! same bytes: everything in it is fixed once the erasure completed — counts stop at the
//! completing event, and the tree head is the earliest one covering the erasure events.

use chrono::{DateTime, Utc};
use domain::aggregate::decode;
use domain::customer::CustomerEvent;
use domain::ids::consent_stream;
use domain::privacy::{PrivacyRequestEvent, RequestKind, Subject};
use domain::sale::SaleEvent;
use domain::store::StoreEvent;
use domain::{CustomerId, KeyClass};
use eventstore::ledger::Ledger;
use eventstore::{EventStore, Position, RecordedEvent, StoreError};
use projections::ReadDb;
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// How long backups are kept before they roll off (policy §7).
pub const BACKUP_WINDOW_DAYS: i64 = 90;

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// No such request in this store.
    #[error("no such privacy request")]
    NotFound,
    /// The request is not an erasure, or it has not completed.
    #[error("the request is not a completed erasure")]
    NotCompleted,
    /// The erasure events could not be sealed into a signed tree head in time.
    #[error("the erasure events are not sealed into a signed tree head yet; try again")]
    NotSealed,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Read(#[from] projections::ProjectionError),
}

/// The certificate's id: derived from the request, so every export of it is the same file.
pub fn certificate_id(request_id: Uuid) -> Uuid {
    const NAMESPACE: Uuid = Uuid::from_u128(0x1c_de1e_7e00_4000_8000_0000_0000_0001);
    Uuid::new_v5(&NAMESPACE, request_id.as_bytes())
}

/// An instant as the documents write it (RFC 3339, microseconds, `Z`).
pub(crate) fn ts(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

fn actor(e: &RecordedEvent) -> Value {
    json!({"kind": e.metadata.actor.kind, "id": e.metadata.actor.id, "role": e.metadata.actor.role})
}

fn corrupt(e: &RecordedEvent, err: impl std::fmt::Display) -> CertificateError {
    StoreError::Corrupt { position: e.position, reason: err.to_string() }.into()
}

/// Events of `stream_id` up to `until` (the erasure's completion).
async fn stream_until(store: &EventStore, stream_id: &str, until: Position) -> Result<Vec<RecordedEvent>, StoreError> {
    Ok(store.read_stream(stream_id, 0).await?.into_iter().filter(|e| e.position <= until).collect())
}

/// The signed certificate of erasure request `request_id`, as pretty-printed JSON text.
pub async fn deletion_certificate(
    store: &EventStore,
    read: &ReadDb,
    ledger: &Ledger,
    store_id: Uuid,
    request_id: Uuid,
) -> Result<String, CertificateError> {
    let request_stream = format!("privacy_request-{request_id}");
    let recorded = store.read_stream(&request_stream, 0).await?;
    if recorded.is_empty() || recorded.iter().any(|e| e.store_id != store_id) {
        return Err(CertificateError::NotFound);
    }
    let (mut opened, mut started, mut completed) = (None, None, None);
    for e in &recorded {
        let event: PrivacyRequestEvent = decode(&e.event_type, &e.payload).map_err(|err| corrupt(e, err))?;
        match &event {
            PrivacyRequestEvent::PrivacyRequestOpened { .. } => opened = Some((e, event)),
            PrivacyRequestEvent::ErasureStarted { .. } => started = Some((e, event)),
            PrivacyRequestEvent::ErasureCompleted { .. } => completed = Some((e, event)),
            PrivacyRequestEvent::SubjectDataExported { .. } => {}
        }
    }
    let (Some((opened_at, opened)), Some((started_at, _)), Some((completed_at, completed))) =
        (opened, started, completed)
    else {
        return Err(CertificateError::NotCompleted);
    };
    let PrivacyRequestEvent::PrivacyRequestOpened { kind, subject, received_at, received_via, .. } = opened else {
        unreachable!("matched above")
    };
    let PrivacyRequestEvent::ErasureCompleted { keys, at: completed_time, .. } = completed else {
        unreachable!("matched above")
    };
    if kind != RequestKind::Erasure {
        return Err(CertificateError::NotCompleted);
    }
    let until = completed_at.position;
    // The retention periods in force when the erasure completed (so the file never changes).
    let roster_events = stream_until(store, &domain::StoreId::from_uuid(store_id).stream_id(), until).await?;
    let roster: Vec<StoreEvent> = roster_events
        .iter()
        .map(|e| decode::<StoreEvent>(&e.event_type, &e.payload).map_err(|err| corrupt(e, err)))
        .collect::<Result<_, _>>()?;
    let policy = <domain::store::Store as domain::Aggregate>::replay(&roster).retention;
    let mut erasure_events = vec![started_at.clone(), completed_at.clone()];
    let request_events = recorded.iter().filter(|e| e.position <= until).count();
    let (mut streams, purged, retained_sales, hold_until) = match subject {
        Subject::Customer(customer) => {
            // The subject's own erased event (written by the first erasure of this subject).
            let own = stream_until(store, &customer.stream_id(), until).await?;
            erasure_events.extend(
                own.iter()
                    .filter(|e| {
                        matches!(
                            decode::<CustomerEvent>(&e.event_type, &e.payload),
                            Ok(CustomerEvent::CustomerErased { .. })
                        )
                    })
                    .cloned(),
            );
            let mut streams =
                vec![json!({"stream_id": customer.stream_id(), "events": own.len(), "personal_data": "erased"})];
            let consent = stream_until(store, &consent_stream(customer), until).await?;
            if !consent.is_empty() {
                streams.push(json!({"stream_id": consent_stream(customer), "events": consent.len(), "personal_data": "evidence erased; consent facts kept"}));
            }
            let (sales, hold) = sales_of(store, read, store_id, customer, until, policy, &mut streams).await?;
            let purged =
                "rm_customers (name, email, phone, notes, address, birthday, tags, external ids, email lookup)";
            (streams, purged, sales, hold)
        }
        Subject::Staff(user) => {
            let roster_stream = domain::StoreId::from_uuid(store_id).stream_id();
            let roster = stream_until(store, &roster_stream, until).await?;
            erasure_events.extend(
                roster
                    .iter()
                    .filter(|e| {
                        matches!(
                            decode::<StoreEvent>(&e.event_type, &e.payload),
                            Ok(StoreEvent::StaffErased { user_id, .. }) if user_id == user
                        )
                    })
                    .cloned(),
            );
            let streams = vec![json!({"stream_id": roster_stream, "events": roster.len(),
                                      "personal_data": "the member's name and email erased; their id kept as a pseudonym"})];
            (streams, "rm_staff (name, email lookup); the account store's password hash, sessions and tokens", 0, None)
        }
    };
    erasure_events.sort_by_key(|e| e.position);
    streams.push(json!({"stream_id": request_stream, "events": request_events, "personal_data": "erased"}));

    let record = store.subject_keys(store_id, subject.as_uuid()).await?;
    let destroyed: Vec<Value> = keys
        .iter()
        .map(|k| {
            let at = record.iter().find(|r| r.key_id == k.key_id).and_then(|r| r.destroyed_at);
            json!({"class": k.class.as_str(), "key_id": k.key_id, "fingerprint": k.fingerprint, "destroyed_at": at.map(ts)})
        })
        .collect();

    // Sealed into a signed head, and proven against the earliest head that covers them all.
    let mut indexes = Vec::new();
    for round in 0..2 {
        indexes.clear();
        for e in &erasure_events {
            indexes.push(ledger.leaf_index(e.event_id).await?);
        }
        if indexes.iter().all(Option::is_some) || round == 1 {
            break;
        }
        ledger.seal_all(std::time::Duration::from_secs(10)).await?;
    }
    let Some(last) = indexes.iter().copied().collect::<Option<Vec<u64>>>().and_then(|i| i.into_iter().max()) else {
        return Err(CertificateError::NotSealed);
    };
    let head = ledger.head_covering(last + 1).await?.ok_or(CertificateError::NotSealed)?;
    let mut proofs = Vec::new();
    for e in &erasure_events {
        let proof = ledger.inclusion_proof(e.event_id, head.tree_size).await?.ok_or(CertificateError::NotSealed)?;
        proofs.push(json!({
            "event_id": e.event_id, "event_type": e.event_type, "stream_id": e.stream_id,
            "position": e.position.to_string(), "recorded_at": ts(e.recorded_at),
            "leaf_index": proof.leaf_index, "leaf_hash": ledger::hex(&proof.leaf_hash),
            "audit_path": proof.audit_path.iter().map(|h| ledger::hex(h)).collect::<Vec<_>>(),
        }));
    }

    let mut retained = vec![
        json!({"what": "consent history (grants and withdrawals; their evidence erased)",
               "legal_basis": "proof of consent and of its withdrawal (policy §4, §5)", "until": null}),
        json!({"what": "audit trail entries (actors, actions and times; no personal values)",
               "legal_basis": "security and accountability (policy §4)", "until": null}),
    ];
    if retained_sales > 0 {
        retained.push(json!({
            "what": format!("{retained_sales} sale(s): amounts, items, invoice numbers and payments; the buyer identity on them under the legal_hold key"),
            "legal_basis": "tax and anti-money-laundering record keeping (policy §4)",
            "until": hold_until.map(ts),
        }));
    }
    let document = json!({
        "type": ledger::certificate::CERTIFICATE_TYPE,
        "certificate_id": certificate_id(request_id),
        "store_id": store_id,
        "subject": {"kind": subject.kind(), "pseudonymous_id": subject.as_uuid()},
        "request": {
            "id": request_id,
            "kind": "ERASURE",
            "received_at": ts(received_at),
            "received_via": received_via,
            "opened_by": actor(opened_at),
            "erasure_started_at": ts(started_at.recorded_at),
            "erasure_started_by": actor(started_at),
            "reason": started_at.metadata.reason,
            "completed_at": ts(completed_time),
            "completed_by": actor(completed_at),
        },
        "destroyed_keys": destroyed,
        "streams": streams,
        "read_models_purged": [purged],
        "retained": retained,
        "backups": format!(
            "Backups taken before {} still hold the destroyed keys; they roll off within the store's backup window of {BACKUP_WINDOW_DAYS} days. Every restore re-applies this erasure from the erasure ledger before serving.",
            ts(completed_time).as_str().unwrap_or_default()
        ),
        "erasure_events": proofs,
        "tree_head": {"tree_size": head.tree_size, "root_hash": ledger::hex(&head.root_hash), "checkpoint": head.checkpoint},
    });
    let Value::Object(document) = document else { unreachable!("a JSON object") };
    let signed: Map<String, Value> = ledger::certificate::sign(document, &ledger.signer().await?);
    Ok(ledger::certificate::file_text(&signed))
}

/// The customer's sales up to `until`: adds their streams and returns how many there are and
/// when the last legal hold ends (the store's legal-hold period after the latest confirmation
/// with a buyer identity).
async fn sales_of(
    store: &EventStore,
    read: &ReadDb,
    store_id: Uuid,
    customer: CustomerId,
    until: Position,
    policy: domain::retention::RetentionPolicy,
    streams: &mut Vec<Value>,
) -> Result<(usize, Option<DateTime<Utc>>), CertificateError> {
    let (mut count, mut hold_until) = (0, None::<DateTime<Utc>>);
    for sale in read.all_sales(store_id, Some(customer.as_uuid())).await? {
        let stream_id = format!("sale-{}", sale.id);
        let events = stream_until(store, &stream_id, until).await?;
        if events.is_empty() {
            continue;
        }
        count += 1;
        let mut identity = false;
        let mut confirmed = None;
        for e in &events {
            match decode::<SaleEvent>(&e.event_type, &e.payload) {
                Ok(SaleEvent::SaleDrafted { buyer_name, buyer_address, .. }) => {
                    identity = buyer_name.is_some() || buyer_address.is_some();
                }
                Ok(SaleEvent::SaleConfirmed { .. }) => confirmed = Some(e.recorded_at),
                _ => {}
            }
        }
        if let (true, Some(at)) = (identity, confirmed) {
            let end = policy.legal_hold_until(at);
            hold_until = Some(hold_until.map_or(end, |h| h.max(end)));
        }
        streams.push(json!({
                "stream_id": stream_id, "events": events.len(),
                "personal_data": if identity { format!("buyer identity retained under {}", KeyClass::LegalHold.as_str()) } else { "none".into() },
            }));
    }
    Ok((count, hold_until))
}
