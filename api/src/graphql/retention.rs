//! Retention over GraphQL: closing and reopening the store's account and setting its retention
//! periods (OWNER), and the schedule
//! of what the retention job will destroy when (COMPLIANCE, OWNER). Rules live in
//! `domain::retention` and `domain::store`; the job in `crate::retention`.

use super::types::UserError;
use super::{command_context, run, state, viewer, Idem};
use crate::error::ApiError;
use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::retention::RetentionPolicy;
use domain::store::{Store, StoreCommand};
use domain::StoreId;

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum RetentionItemKind {
    /// The buyer identity on a customer's invoices (their legal-hold key).
    LegalHoldIdentity,
    /// Audit read-model entries past their window (the log keeps the events).
    AuditEntries,
    /// Every customer's profile, after the closed store's export window.
    CustomerProfiles,
}

#[derive(SimpleObject)]
pub struct RetentionItem {
    pub what: RetentionItemKind,
    /// The customer concerned, when it is one customer's data.
    pub customer_id: Option<ID>,
    /// When the retention job destroys or removes it.
    pub due_at: DateTime<Utc>,
    pub detail: String,
}

/// The store's retention periods (the privacy policy's defaults).
#[derive(SimpleObject)]
pub struct RetentionPolicyObject {
    pub legal_hold_years: u32,
    pub audit_months: u32,
    pub closure_export_days: u32,
}

#[derive(SimpleObject)]
pub struct RetentionSchedule {
    pub policy: RetentionPolicyObject,
    /// When the account was closed, if it is.
    pub closed_at: Option<DateTime<Utc>>,
    /// What will be destroyed when, soonest first.
    pub items: Vec<RetentionItem>,
}

#[derive(InputObject)]
pub struct RetentionPolicyInput {
    pub legal_hold_years: u32,
    pub audit_months: u32,
    pub closure_export_days: u32,
}

#[derive(SimpleObject, Default)]
pub struct StoreAccountPayload {
    pub closed_at: Option<DateTime<Utc>>,
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

#[derive(Default)]
pub struct RetentionQuery;

#[Object]
impl RetentionQuery {
    async fn retention_schedule(&self, ctx: &Context<'_>) -> async_graphql::Result<RetentionSchedule> {
        let v = viewer(ctx)?;
        let s = state(ctx);
        let items = crate::retention::schedule(s, v.store_id, Utc::now())
            .await
            .map_err(|e| ApiError::internal("retention schedule", e.as_ref()))?;
        let roster = commands::staff::roster(&s.store, StoreId::from_uuid(v.store_id)).await.map_err(ApiError::from)?;
        let p = roster.retention;
        Ok(RetentionSchedule {
            policy: RetentionPolicyObject {
                legal_hold_years: p.legal_hold_years,
                audit_months: p.audit_months,
                closure_export_days: p.closure_export_days,
            },
            closed_at: roster.closed_at,
            items: items
                .into_iter()
                .map(|i| RetentionItem {
                    what: match i.what {
                        "LEGAL_HOLD_IDENTITY" => RetentionItemKind::LegalHoldIdentity,
                        "AUDIT_ENTRIES" => RetentionItemKind::AuditEntries,
                        _ => RetentionItemKind::CustomerProfiles,
                    },
                    customer_id: i.subject_id.map(|c| ID(c.to_string())),
                    due_at: i.due_at,
                    detail: i.detail,
                })
                .collect(),
        })
    }
}

async fn account(
    ctx: &Context<'_>,
    command: StoreCommand,
    mutation: &'static str,
) -> async_graphql::Result<StoreAccountPayload> {
    let v = viewer(ctx)?;
    let cctx = command_context(ctx, v, None);
    let stream = StoreId::from_uuid(v.store_id).stream_id();
    let idem = Idem { key: None, mutation, entity: v.store_id };
    match run::<Store>(ctx, &cctx, idem, &stream, &command).await? {
        Err(errors) => Ok(StoreAccountPayload { errors, ..Default::default() }),
        Ok(once) => {
            let roster = commands::staff::roster(&state(ctx).store, StoreId::from_uuid(v.store_id))
                .await
                .map_err(ApiError::from)?;
            Ok(StoreAccountPayload {
                closed_at: roster.closed_at,
                position: once.position.map(|p| p.to_string()),
                errors: vec![],
            })
        }
    }
}

#[derive(Default)]
pub struct RetentionMutation;

#[Object]
impl RetentionMutation {
    /// Closes the store's account (policy §4): its data stays for the export window (90 days),
    /// then the retention job shreds every customer's profile, each as an erasure with its
    /// certificate. Transaction records stay under their own retention.
    async fn close_store(&self, ctx: &Context<'_>) -> async_graphql::Result<StoreAccountPayload> {
        account(ctx, StoreCommand::Close { at: Utc::now() }, "closeStore").await
    }

    /// Reopens a closed store within its export window.
    async fn reopen_store(&self, ctx: &Context<'_>) -> async_graphql::Result<StoreAccountPayload> {
        account(ctx, StoreCommand::Reopen { at: Utc::now() }, "reopenStore").await
    }

    /// Sets the store's retention periods (bounds: legal hold 5–30 years, audit entries 6–120
    /// months, export window after closing 30–365 days). The privacy policy's apply until set.
    async fn set_retention_policy(
        &self,
        ctx: &Context<'_>,
        input: RetentionPolicyInput,
    ) -> async_graphql::Result<StoreAccountPayload> {
        let policy = RetentionPolicy {
            legal_hold_years: input.legal_hold_years,
            audit_months: input.audit_months,
            closure_export_days: input.closure_export_days,
        };
        account(ctx, StoreCommand::SetRetentionPolicy(policy), "setRetentionPolicy").await
    }
}
