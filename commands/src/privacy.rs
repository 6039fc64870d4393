//! Privacy requests and the erasure workflow.
//!
//! An erasure runs in steps, each safe to repeat, so a crash anywhere is finished by running
//! it again (the same request):
//! 1. `ErasureStarted` is appended, naming the keys to destroy (class, id, fingerprint);
//! 2. the erasure is written to the erasure ledger outside the database (restore safety);
//! 3. the subject's `profile` and `consent_evidence` keys are destroyed;
//! 4. `CustomerErased` and `ErasureCompleted` are appended atomically; read models purge the
//!    subject on `CustomerErased`.
//!
//! Keys are never destroyed without step 1 recorded first.

use crate::idempotency::Once;
use crate::{load, CommandContext, CommandError, MultiDecision};
use chrono::Utc;
use domain::customer::{Customer, CustomerCommand};
use domain::privacy::{
    DestroyedKey, OpenPrivacyRequest, PrivacyRequest, PrivacyRequestCommand, PrivacyRequestId, RequestKind,
    RequestStatus, Subject, ERASED_NOW,
};
use domain::store::{Store, StoreCommand};
use domain::{Aggregate, CustomerId, DomainError, StoreId, UserId};
use eventstore::erasures::{ErasureLedger, ErasureRecord};
use eventstore::{EventStore, Position, StoreError};

/// Opens a privacy request about a customer or staff member of this store.
pub async fn open_request(
    store: &EventStore,
    ctx: &CommandContext,
    request: OpenPrivacyRequest,
) -> Result<Once, CommandError> {
    match request.subject {
        Subject::Customer(c) => crate::references::customer(store, ctx, c, "customerId").await?,
        Subject::Staff(u) => crate::references::staff_member(store, ctx, u, "staffId").await?,
    }
    let id = request.request_id;
    crate::execute::<PrivacyRequest>(store, ctx, &id.stream_id(), &PrivacyRequestCommand::Open(request))
        .await
        .map(|once| Once { entity_id: id.as_uuid(), ..once })
}

/// What an erasure did.
#[derive(Debug, Clone)]
pub struct Erasure {
    pub request_id: PrivacyRequestId,
    pub status: RequestStatus,
    /// The last position written (`None` when the erasure was already complete).
    pub position: Option<Position>,
}

/// The request `id` of this store, about `subject`; an unknown or foreign id, or one about
/// someone else, is the caller's error on `privacyRequestId`.
async fn request_about(
    store: &EventStore,
    ctx: &CommandContext,
    id: PrivacyRequestId,
    subject: Subject,
) -> Result<domain::privacy::PrivacyRequestState, CommandError> {
    let unknown = || DomainError::UnknownReference { field: "privacyRequestId", kind: PrivacyRequest::KIND };
    let (r, _) = load::<PrivacyRequest>(store, ctx.store_id, &id.stream_id()).await.map_err(|e| match e {
        CommandError::Rejected(DomainError::NotFound { .. }) => unknown().into(),
        e => e,
    })?;
    let state = r.state.ok_or_else(unknown)?;
    if state.subject != subject {
        return Err(DomainError::invalid("privacyRequestId", "is about another data subject").into());
    }
    Ok(state)
}

/// Erases a customer: see [`erase_subject`].
pub async fn erase_customer(
    store: &EventStore,
    ctx: &CommandContext,
    customer: CustomerId,
    request: Option<PrivacyRequestId>,
    ledger: Option<&ErasureLedger>,
) -> Result<Erasure, CommandError> {
    erase_subject(store, None, ctx, Subject::Customer(customer), request, ledger).await
}

/// The subject's own erased event: on the customer's stream, or on the store's roster.
fn erased_event(ctx: &CommandContext, subject: Subject, request_id: PrivacyRequestId) -> (String, SubjectErase) {
    match subject {
        Subject::Customer(c) => (c.stream_id(), SubjectErase::Customer(CustomerCommand::Erase { request_id })),
        Subject::Staff(u) => {
            (ctx.store_id.stream_id(), SubjectErase::Staff(StoreCommand::EraseMember { user_id: u, request_id }))
        }
    }
}

enum SubjectErase {
    Customer(CustomerCommand),
    Staff(StoreCommand),
}

/// Erases a data subject — a customer, or a deactivated staff member (whose id stays in the
/// audit trail as a pseudonym; their password hash, sessions and tokens are deleted too):
/// finishes `request` (an open or half-done erasure request about them), or opens one when none
/// is given. Idempotent: a completed request is answered as it is.
#[tracing::instrument(skip_all, fields(subject = %subject.as_uuid()), err(level = "info"))]
pub async fn erase_subject(
    store: &EventStore,
    accounts: Option<&eventstore::Accounts>,
    ctx: &CommandContext,
    subject: Subject,
    request: Option<PrivacyRequestId>,
    ledger: Option<&ErasureLedger>,
) -> Result<Erasure, CommandError> {
    match subject {
        Subject::Customer(c) => crate::references::customer(store, ctx, c, "customerId").await?,
        Subject::Staff(u) => {
            crate::references::staff_member(store, ctx, u, "staffId").await?;
            // Refused before anything is recorded: only a deactivated member is erased.
            let roster = crate::staff::roster(store, ctx.store_id).await?;
            roster.decide(&StoreCommand::EraseMember { user_id: u, request_id: PrivacyRequestId::new_v7() })?;
        }
    }
    let request_id = match request {
        Some(id) => {
            let state = request_about(store, ctx, id, subject).await?;
            if state.status == RequestStatus::Completed {
                return Ok(Erasure { request_id: id, status: state.status, position: None });
            }
            id
        }
        None => PrivacyRequestId::new_v7(),
    };
    let subject_id = subject.as_uuid();

    // 1. Record the erasure and the keys it destroys, before destroying anything.
    let keys: Vec<DestroyedKey> = store
        .subject_keys(ctx.store_id.as_uuid(), subject_id)
        .await?
        .into_iter()
        .filter(|k| ERASED_NOW.contains(&k.class))
        .map(|k| DestroyedKey { class: k.class, key_id: k.key_id, fingerprint: k.fingerprint })
        .collect();
    let now = Utc::now();
    let mut d = MultiDecision::new(store, ctx);
    let mut commands = Vec::new();
    if request.is_none() {
        commands.push(PrivacyRequestCommand::Open(OpenPrivacyRequest {
            request_id,
            store_id: ctx.store_id,
            subject,
            kind: RequestKind::Erasure,
            // The retention job raises its own (a closed store's customers); otherwise staff.
            received_via: if ctx.source == "retention" { "retention" } else { "staff" }.into(),
            identity_verified_by: None,
            notes: None,
            received_at: now,
        }));
    }
    commands.push(PrivacyRequestCommand::StartErasure { keys, at: now });
    let started = d.decide::<PrivacyRequest>(&request_id.stream_id(), &commands).await?;
    let mut position = d.commit().await?;
    let keys = started.state.map(|s| s.keys).unwrap_or_default();

    // 2. Outside the database, so a restored backup cannot undo it.
    if let Some(ledger) = ledger {
        ledger
            .record(&ErasureRecord {
                store_id: ctx.store_id.as_uuid(),
                subject_kind: subject.kind().into(),
                subject_id,
                request_id: request_id.as_uuid(),
                classes: ERASED_NOW.to_vec(),
                key_ids: keys.iter().map(|k| k.key_id).collect(),
                at: now,
            })
            .await?;
    }

    // 3. Crypto-shredding (and, for staff, the account store's secrets and sessions).
    store.destroy_subject_keys(ctx.store_id.as_uuid(), subject_id, &ERASED_NOW).await?;
    if let (Subject::Staff(u), Some(accounts)) = (subject, accounts) {
        accounts.forget_user(u.as_uuid()).await?;
    }

    // 4. The subject's own stream says so (read models purge on it), with the request's close.
    let finished =
        crate::idempotency::once(store, ctx, None, "requestErasure", request_id.as_uuid(), |mut d| async move {
            match erased_event(ctx, subject, request_id) {
                (stream, SubjectErase::Customer(cmd)) => {
                    d.decide::<Customer>(&stream, &[cmd]).await?;
                }
                (stream, SubjectErase::Staff(cmd)) => {
                    d.decide::<Store>(&stream, &[cmd]).await?;
                }
            }
            d.decide::<PrivacyRequest>(
                &request_id.stream_id(),
                &[PrivacyRequestCommand::CompleteErasure { at: Utc::now() }],
            )
            .await?;
            Ok(d)
        })
        .await?;
    position = finished.position.or(position);
    Ok(Erasure { request_id, status: RequestStatus::Completed, position })
}

/// Destroys again every key the erasure ledger says was destroyed, and marks the subject erased
/// where the log does not say so yet — after a restore from a backup older than the erasure.
/// Returns how many erasures had to be re-applied.
pub async fn reapply_erasures(
    store: &EventStore,
    accounts: &eventstore::Accounts,
    ledger: &ErasureLedger,
) -> Result<usize, CommandError> {
    let mut reapplied = 0;
    for entry in ledger.entries().await? {
        let records = store.subject_keys(entry.store_id, entry.subject_id).await?;
        let live = !eventstore::erasures::resurrected(&records, &entry).is_empty();
        if live {
            store.destroy_subject_keys(entry.store_id, entry.subject_id, &entry.classes).await?;
        }
        let ctx = CommandContext::system(StoreId::from_uuid(entry.store_id), "erasure-ledger");
        let request_id = PrivacyRequestId::from_uuid(entry.request_id);
        let marked = match entry.subject_kind.as_str() {
            "customer" => {
                let stream = CustomerId::from_uuid(entry.subject_id).stream_id();
                crate::execute::<Customer>(store, &ctx, &stream, &CustomerCommand::Erase { request_id }).await
            }
            "staff" => {
                let erase = StoreCommand::EraseMember { user_id: UserId::from_uuid(entry.subject_id), request_id };
                crate::execute::<Store>(store, &ctx, &ctx.store_id.stream_id(), &erase).await
            }
            other => {
                return Err(
                    StoreError::Config(format!("the erasure ledger names an unknown subject kind {other:?}")).into()
                )
            }
        };
        let marked = match marked {
            Ok(once) => once.position.is_some(),
            // The restored copy predates the subject (or, for staff, they were active in it and
            // are erased by key alone): nothing more to purge.
            Err(CommandError::Rejected(DomainError::NotFound { .. } | DomainError::IllegalTransition { .. })) => false,
            Err(e) => return Err(e),
        };
        if entry.subject_kind == "staff" && (live || marked) {
            // A restored copy brings the account store back too: no password, no sessions.
            accounts.forget_user(entry.subject_id).await?;
        }
        if live || marked {
            tracing::warn!(subject = %entry.subject_id, request = %entry.request_id, "re-applied an erasure a restored copy had undone");
            reapplied += 1;
        }
    }
    Ok(reapplied)
}

/// Records that the subject's data was exported (the sections, never the content): answers
/// `request` (an access or portability request about them), or opens an access request for it.
/// `new_request_id` names the request opened when none is given. Returns the position written.
pub async fn record_export(
    store: &EventStore,
    ctx: &CommandContext,
    subject: Subject,
    request: Option<PrivacyRequestId>,
    new_request_id: PrivacyRequestId,
    sections: &[&str],
) -> Result<Option<Position>, CommandError> {
    let request_id = request.unwrap_or(new_request_id);
    let mut commands = Vec::new();
    match request {
        Some(id) => {
            request_about(store, ctx, id, subject).await?;
        }
        None => commands.push(PrivacyRequestCommand::Open(OpenPrivacyRequest {
            request_id,
            store_id: ctx.store_id,
            subject,
            kind: RequestKind::Access,
            received_via: "staff".into(),
            identity_verified_by: None,
            notes: None,
            received_at: Utc::now(),
        })),
    }
    commands.push(PrivacyRequestCommand::RecordExport {
        sections: sections.iter().map(|s| (*s).to_owned()).collect(),
        at: Utc::now(),
    });
    let done = crate::idempotency::once(store, ctx, None, "exportSubjectData", request_id.as_uuid(), |mut d| {
        let commands = commands.clone();
        async move {
            d.decide::<PrivacyRequest>(&request_id.stream_id(), &commands).await?;
            Ok(d)
        }
    })
    .await?;
    Ok(done.position)
}
