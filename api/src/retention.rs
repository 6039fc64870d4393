//! The retention job (policy §4; rules in `domain::retention`): destroys legal-hold keys whose
//! hold has ended, removes audit read-model entries past their window, and erases every
//! customer of a store closed longer than its export window. Every step is idempotent, so a
//! crashed run is finished by the next; each run is recorded as a `RetentionRun` event. With
//! several servers on PostgreSQL one runs it at a time (an advisory lock); `now` is injected so
//! tests and `inventory-connect retention run --as-of` can run it at any instant.

use crate::app::AppState;
use chrono::{DateTime, Utc};
use commands::CommandContext;
use domain::aggregate::decode;
use domain::privacy::Subject;
use domain::retention::{retention_stream, RecordRun, RetentionEvent, RetentionLog};
use domain::sale::SaleEvent;
use domain::{CustomerId, KeyClass, StoreId};
use projections::rows::{CustomerFilter, CustomerSortField, ListQuery};
use std::collections::BTreeMap;
use uuid::Uuid;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// PostgreSQL advisory lock key of the retention job ("retent" in ASCII).
const RETENTION_LOCK: i64 = 0x7265_7465_6e74;

/// What one scheduled item of the retention schedule is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    /// `LEGAL_HOLD_IDENTITY`, `AUDIT_ENTRIES`, `CUSTOMER_PROFILES`.
    pub what: &'static str,
    /// The customer concerned, when it is one customer's data.
    pub subject_id: Option<Uuid>,
    pub due_at: DateTime<Utc>,
    pub detail: String,
}

/// The latest instant each customer's legal hold is based on: their last sale with a buyer
/// identity (confirmed, or only drafted).
async fn holds(state: &AppState, store_id: Uuid) -> Result<BTreeMap<Uuid, DateTime<Utc>>> {
    let mut latest: BTreeMap<Uuid, DateTime<Utc>> = BTreeMap::new();
    for sale in state.read.all_sales(store_id, None).await? {
        let Some(customer) = sale.customer_id else { continue };
        let mut identity = false;
        let mut base = None;
        for e in state.store.read_stream(&domain::SaleId::from_uuid(sale.id).stream_id(), 0).await? {
            match decode::<SaleEvent>(&e.event_type, &e.payload)? {
                SaleEvent::SaleDrafted { buyer_name, buyer_address, .. } => {
                    identity = buyer_name.is_some() || buyer_address.is_some();
                    base = Some(e.recorded_at);
                }
                SaleEvent::SaleConfirmed { .. } => base = Some(e.recorded_at),
                _ => {}
            }
        }
        if let (true, Some(at)) = (identity, base) {
            let slot = latest.entry(customer).or_insert(at);
            *slot = (*slot).max(at);
        }
    }
    Ok(latest)
}

/// Every customer of the store that is not erased yet.
async fn live_customers(state: &AppState, store_id: Uuid) -> Result<Vec<Uuid>> {
    let mut out = Vec::new();
    let mut q = ListQuery {
        store_id,
        first: 500,
        after: None,
        filter: CustomerFilter::default(),
        sort: CustomerSortField::CreatedAt,
        descending: false,
        with_total: false,
    };
    loop {
        let page = state.read.customers(&q).await?;
        out.extend(page.rows.iter().filter(|(c, _)| !c.erased).map(|(c, _)| c.id));
        match page.rows.last() {
            Some((_, cursor)) if page.has_next => q.after = Some(cursor.clone()),
            _ => return Ok(out),
        }
    }
}

/// What the rules will destroy or remove, and when.
pub async fn schedule(state: &AppState, store_id: Uuid, now: DateTime<Utc>) -> Result<Vec<Scheduled>> {
    let roster = commands::staff::roster(&state.store, StoreId::from_uuid(store_id)).await?;
    let policy = roster.retention;
    let mut out = Vec::new();
    for (customer, base) in holds(state, store_id).await? {
        let keys = state.store.subject_keys(store_id, customer).await?;
        if keys.iter().any(|k| k.class == KeyClass::LegalHold && k.wrapped.is_some()) {
            out.push(Scheduled {
                what: "LEGAL_HOLD_IDENTITY",
                subject_id: Some(customer),
                due_at: policy.legal_hold_until(base),
                detail: format!("buyer identity on invoices, {} years after the last sale", policy.legal_hold_years),
            });
        }
    }
    out.push(Scheduled {
        what: "AUDIT_ENTRIES",
        subject_id: None,
        due_at: now,
        detail: format!(
            "audit read-model entries recorded before {} ({} months)",
            policy.audit_cutoff(now).to_rfc3339(),
            policy.audit_months
        ),
    });
    if let Some(closed) = roster.closed_at {
        out.push(Scheduled {
            what: "CUSTOMER_PROFILES",
            subject_id: None,
            due_at: policy.closure_shred_at(closed),
            detail: format!("every customer's profile, {} days after the store closed", policy.closure_export_days),
        });
    }
    out.sort_by_key(|s| s.due_at);
    Ok(out)
}

/// One run for one store at `now`; returns the recorded event.
pub async fn run_store(state: &AppState, store_id: Uuid, now: DateTime<Utc>) -> Result<RetentionEvent> {
    let roster = commands::staff::roster(&state.store, StoreId::from_uuid(store_id)).await?;
    let policy = roster.retention;
    let ctx = CommandContext::system(StoreId::from_uuid(store_id), "retention");

    let mut legal_hold_destroyed = Vec::new();
    for (customer, base) in holds(state, store_id).await? {
        if policy.legal_hold_until(base) > now {
            continue;
        }
        let keys = state.store.subject_keys(store_id, customer).await?;
        if keys.iter().any(|k| k.class == KeyClass::LegalHold && k.wrapped.is_some()) {
            state.store.destroy_subject_keys(store_id, customer, &[KeyClass::LegalHold]).await?;
            legal_hold_destroyed.push(customer);
        }
    }

    let audit_before = policy.audit_cutoff(now);
    let audit_entries_removed = state.read.purge_audit_before(store_id, audit_before.timestamp_micros()).await?;

    let mut profiles_shredded = Vec::new();
    if roster.closed_at.is_some_and(|closed| policy.closure_shred_at(closed) <= now) {
        for customer in live_customers(state, store_id).await? {
            let subject = Subject::Customer(CustomerId::from_uuid(customer));
            commands::privacy::erase_subject(&state.store, None, &ctx, subject, None, state.erasure_ledger.as_ref())
                .await?;
            profiles_shredded.push(customer);
        }
    }

    let event = RetentionEvent::RetentionRun {
        run_id: Uuid::now_v7(),
        store_id: StoreId::from_uuid(store_id),
        at: now,
        legal_hold_destroyed,
        audit_before,
        audit_entries_removed,
        profiles_shredded,
    };
    let stream = retention_stream(StoreId::from_uuid(store_id));
    let once = commands::execute::<RetentionLog>(&state.store, &ctx, &stream, &RecordRun(event.clone())).await?;
    let RetentionEvent::RetentionRun { profiles_shredded, audit_entries_removed, .. } = &event;
    if !profiles_shredded.is_empty() || *audit_entries_removed > 0 {
        state.scrub_after_erasure(once.position).await;
    }
    Ok(event)
}

/// One run over every store, by one server at a time. `None` when another server holds the
/// job's lock.
pub async fn run_all(state: &AppState, now: DateTime<Utc>) -> Result<Option<Vec<RetentionEvent>>> {
    let Some(_lock) = state.db.try_job_lock(RETENTION_LOCK).await? else { return Ok(None) };
    let mut runs = Vec::new();
    for store_id in state.read.store_ids().await? {
        runs.push(run_store(state, store_id, now).await?);
    }
    Ok(Some(runs))
}

/// Runs the job at startup and then every `interval` until shutdown.
pub async fn run_periodically(
    state: std::sync::Arc<AppState>,
    interval: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match run_all(&state, Utc::now()).await {
            Ok(Some(runs)) => tracing::info!(stores = runs.len(), "retention run"),
            Ok(None) => tracing::debug!("retention run skipped: another server runs it"),
            Err(e) => tracing::warn!(error = %e, "retention run failed; it is retried at the next interval"),
        }
        tokio::select! {
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
