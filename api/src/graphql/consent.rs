//! The consent ledger: grant and withdraw per purpose and channel, and "what was the consent
//! state of this customer at instant T", with every change listed. This is a history query: it
//! reads the customer's ledger stream, not a read model.

use super::types::UserError;
use super::{command_context, parse_id, run, state, viewer, Idem};
use crate::auth::{allows, Permission, Viewer};
use crate::error::ApiError;
use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::aggregate::decode;
use domain::consent::{state_as_of, ConsentChange, ConsentCommand, ConsentEvent, ConsentLedger as Ledger};
use domain::ids::consent_stream;
use domain::{CustomerId, StoreId};
use eventstore::Position;
use uuid::Uuid;

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "domain::consent::Purpose")]
pub enum ConsentPurpose {
    MarketingEmail,
    MarketingSms,
    MarketingPhone,
    MarketingPost,
    Profiling,
    ThirdPartySharing,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "domain::consent::Channel")]
pub enum ConsentChannel {
    Email,
    Sms,
    Phone,
    Post,
    InPerson,
    Any,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "domain::consent::CaptureMethod")]
pub enum CaptureMethod {
    InStore,
    WebForm,
    LeadApi,
    Import,
    Integration,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ConsentChangeKind {
    Granted,
    Withdrawn,
}

#[derive(InputObject)]
pub struct ConsentEvidenceInput {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(InputObject)]
pub struct ConsentInput {
    pub customer_id: ID,
    pub purpose: ConsentPurpose,
    pub channel: ConsentChannel,
    /// The privacy notice / policy version the customer was shown.
    pub notice_version: String,
    pub method: CaptureMethod,
    pub evidence: Option<ConsentEvidenceInput>,
    /// When the customer gave or withdrew it; defaults to now.
    pub effective_at: Option<DateTime<Utc>>,
    /// A retried request with the same key returns the first result and writes nothing.
    pub idempotency_key: Option<String>,
}

#[derive(SimpleObject)]
pub struct ConsentState {
    pub purpose: ConsentPurpose,
    pub channel: ConsentChannel,
    pub granted: bool,
    pub notice_version: String,
    pub effective_at: DateTime<Utc>,
}

/// Evidence of a capture; `erased` once the customer's consent-evidence key is destroyed.
#[derive(SimpleObject)]
pub struct ConsentEvidence {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub erased: bool,
}

#[derive(SimpleObject)]
pub struct ConsentRecord {
    pub kind: ConsentChangeKind,
    pub purpose: ConsentPurpose,
    pub channel: ConsentChannel,
    pub notice_version: String,
    pub method: CaptureMethod,
    pub captured_by: Option<ID>,
    pub effective_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    /// Log position of the fact (for audits and `minPosition`).
    pub position: String,
    /// Only for roles allowed to see consent evidence.
    pub evidence: Option<ConsentEvidence>,
}

#[derive(SimpleObject)]
pub struct ConsentLedger {
    pub customer_id: ID,
    /// The instant the `current` states answer for.
    pub as_of: DateTime<Utc>,
    /// The state per purpose and channel as of `asOf` (effective time).
    pub current: Vec<ConsentState>,
    /// Every grant and withdrawal, in recorded order.
    pub changes: Vec<ConsentRecord>,
}

#[derive(SimpleObject, Default)]
pub struct ConsentPayload {
    pub ledger: Option<ConsentLedger>,
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

async fn ledger(
    ctx: &Context<'_>,
    v: &Viewer,
    customer: CustomerId,
    as_of: DateTime<Utc>,
) -> async_graphql::Result<ConsentLedger> {
    let recorded = state(ctx)
        .store
        .read_stream(&consent_stream(customer), 0)
        .await
        .map_err(|e| ApiError::internal("consent", &e))?;
    if recorded.iter().any(|e| e.store_id != v.store_id) {
        return Err(ApiError::NotFound.into());
    }
    let show_evidence = allows(v.role, Permission::ReadConsentEvidence);
    let mut events = Vec::new();
    let mut changes = Vec::new();
    for r in &recorded {
        let e: ConsentEvent =
            decode(&r.event_type, &r.payload).map_err(|err| ApiError::internal("consent decode", &err))?;
        let f = e.fact();
        let evidence = show_evidence.then(|| ConsentEvidence {
            ip: f.ip.as_ref().and_then(|p| p.clear().cloned()),
            user_agent: f.user_agent.as_ref().and_then(|p| p.clear().cloned()),
            erased: f.ip.as_ref().is_some_and(|p| p.is_erased())
                || f.user_agent.as_ref().is_some_and(|p| p.is_erased()),
        });
        changes.push(ConsentRecord {
            kind: if e.granted() { ConsentChangeKind::Granted } else { ConsentChangeKind::Withdrawn },
            purpose: f.purpose.into(),
            channel: f.channel.into(),
            notice_version: f.notice_version.clone(),
            method: f.method.into(),
            captured_by: f.captured_by.map(|u| ID(u.to_string())),
            effective_at: f.effective_at,
            recorded_at: r.recorded_at,
            position: r.position.to_string(),
            evidence,
        });
        events.push(e);
    }
    let current = state_as_of(&events, as_of)
        .into_iter()
        .map(|((purpose, channel), s)| ConsentState {
            purpose: purpose.into(),
            channel: channel.into(),
            granted: s.granted,
            notice_version: s.notice_version,
            effective_at: s.effective_at,
        })
        .collect();
    Ok(ConsentLedger { customer_id: ID(customer.to_string()), as_of, current, changes })
}

#[derive(Default)]
pub struct ConsentQuery;

#[Object]
impl ConsentQuery {
    /// The consent state per purpose and channel as of `asOf` (default now), and every change.
    async fn consent_ledger(
        &self,
        ctx: &Context<'_>,
        customer_id: ID,
        as_of: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<ConsentLedger> {
        let v = viewer(ctx)?;
        let customer = CustomerId::from_uuid(parse_id(&customer_id, "customerId")?);
        ledger(ctx, v, customer, as_of.unwrap_or_else(Utc::now)).await
    }
}

async fn change(ctx: &Context<'_>, input: ConsentInput, grant: bool) -> async_graphql::Result<ConsentPayload> {
    let v = viewer(ctx)?;
    let Ok(customer) = Uuid::parse_str(input.customer_id.as_str()).map(CustomerId::from_uuid) else {
        return Ok(ConsentPayload { errors: vec![UserError::invalid_id("customerId")], ..Default::default() });
    };
    // Consent is recorded only for customers of this store.
    let cctx = command_context(ctx, v, None);
    let subject = match super::outcome(
        commands::references::customer_facts(&state(ctx).store, &cctx, customer, "customerId").await,
    )? {
        Ok(facts) => facts,
        Err(errors) => return Ok(ConsentPayload { errors, ..Default::default() }),
    };
    let evidence = input.evidence.unwrap_or(ConsentEvidenceInput { ip: None, user_agent: None });
    let change = ConsentChange {
        customer_id: customer,
        store_id: StoreId::from_uuid(v.store_id),
        purpose: input.purpose.into(),
        channel: input.channel.into(),
        notice_version: input.notice_version,
        method: input.method.into(),
        captured_by: Some(v.user_id),
        ip: evidence.ip,
        user_agent: evidence.user_agent,
        effective_at: input.effective_at.unwrap_or_else(Utc::now),
        subject,
    };
    let cmd = if grant { ConsentCommand::Grant(change) } else { ConsentCommand::Withdraw(change) };
    let mutation = if grant { "grantConsent" } else { "withdrawConsent" };
    let idem = Idem { key: input.idempotency_key.as_deref(), mutation, entity: customer.as_uuid() };
    match run::<Ledger>(ctx, &cctx, idem, &consent_stream(customer), &cmd).await? {
        Err(errors) => Ok(ConsentPayload { errors, ..Default::default() }),
        Ok(once) => Ok(ConsentPayload {
            ledger: Some(ledger(ctx, v, customer, Utc::now()).await?),
            position: once.position.map(|p: Position| p.to_string()),
            errors: vec![],
        }),
    }
}

#[derive(Default)]
pub struct ConsentMutation;

#[Object]
impl ConsentMutation {
    async fn grant_consent(&self, ctx: &Context<'_>, input: ConsentInput) -> async_graphql::Result<ConsentPayload> {
        change(ctx, input, true).await
    }

    /// Always recorded, even if nothing was granted: a withdrawal is evidence too.
    async fn withdraw_consent(&self, ctx: &Context<'_>, input: ConsentInput) -> async_graphql::Result<ConsentPayload> {
        change(ctx, input, false).await
    }
}
