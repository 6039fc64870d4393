//! Marketing use of customer data: restriction of processing and the marketing audience — who
//! may be contacted for a purpose over a channel at an instant, with the consent that allows it.
//! Rules live in `domain::consent` and `domain::restriction`; this file parses, calls and maps.

use super::consent::{ConsentChannel, ConsentPurpose};
use super::types::{ConnectionFields, Customer, UserError};
use super::{command_context, outcome, page_size, parse_id, reach, run, state, viewer, Idem};
use crate::error::ApiError;
use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::aggregate::decode;
use domain::restriction::{
    restricted_as_of, restriction_stream, ProcessingRestriction, RestrictionCommand, RestrictionEvent,
};
use domain::{CustomerId, StoreId};
use projections::consent::AudienceQuery;
use uuid::Uuid;

#[derive(InputObject)]
pub struct RestrictionInput {
    pub customer_id: ID,
    pub purposes: Vec<ConsentPurpose>,
    /// Why (a business reason, never personal data): kept with the event.
    pub reason: String,
    /// When it applies from; defaults to now.
    pub effective_at: Option<DateTime<Utc>>,
}

#[derive(SimpleObject, Default)]
pub struct RestrictionPayload {
    /// The customer's restricted purposes after the change.
    pub restricted_purposes: Vec<ConsentPurpose>,
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

/// A customer who may be contacted, and the consent that allows it.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AudienceMember {
    pub customer_id: ID,
    /// The grant in force: the receipt a newsletter sync keeps.
    pub consent_event_id: ID,
    #[graphql(skip)]
    id: Uuid,
}

#[ComplexObject]
impl AudienceMember {
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Customer>> {
        let loader = ctx.data_unchecked::<DataLoader<super::loaders::CustomerLoader>>();
        let row = loader.load_one(self.id).await.map_err(|e| ApiError::internal("customer loader", e.as_ref()))?;
        Ok(row.map(Customer))
    }
}

pub type MarketingAudienceConnection = Connection<String, AudienceMember, ConnectionFields, EmptyFields>;

async fn restricted_now(ctx: &Context<'_>, customer: CustomerId) -> async_graphql::Result<Vec<ConsentPurpose>> {
    let recorded = state(ctx)
        .store
        .read_stream(&restriction_stream(customer), 0)
        .await
        .map_err(|e| ApiError::internal("restrictions", &e))?;
    let events = recorded
        .iter()
        .map(|r| decode::<RestrictionEvent>(&r.event_type, &r.payload))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::internal("restriction decode", &e))?;
    Ok(restricted_as_of(&events, Utc::now()).into_iter().map(Into::into).collect())
}

async fn change(
    ctx: &Context<'_>,
    input: RestrictionInput,
    restrict: bool,
) -> async_graphql::Result<RestrictionPayload> {
    let v = viewer(ctx)?;
    let Ok(customer) = Uuid::parse_str(input.customer_id.as_str()).map(CustomerId::from_uuid) else {
        return Ok(RestrictionPayload { errors: vec![UserError::invalid_id("customerId")], ..Default::default() });
    };
    let reason = input.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        let e = UserError {
            field: Some("reason".into()),
            code: "INVALID".into(),
            message: "reason: must be 1 to 500 characters".into(),
        };
        return Ok(RestrictionPayload { errors: vec![e], ..Default::default() });
    }
    let cctx = command_context(ctx, v, Some(reason.to_owned()));
    if let Err(errors) =
        outcome(commands::references::customer(&state(ctx).store, &cctx, customer, "customerId").await)?
    {
        return Ok(RestrictionPayload { errors, ..Default::default() });
    }
    let (store_id, at) = (StoreId::from_uuid(v.store_id), input.effective_at.unwrap_or_else(Utc::now));
    let purposes = input.purposes.into_iter().map(Into::into).collect();
    let (cmd, mutation) = if restrict {
        (RestrictionCommand::Restrict { customer_id: customer, store_id, purposes, at }, "restrictProcessing")
    } else {
        (RestrictionCommand::Lift { customer_id: customer, store_id, purposes, at }, "liftRestriction")
    };
    let idem = Idem { key: None, mutation, entity: customer.as_uuid() };
    match run::<ProcessingRestriction>(ctx, &cctx, idem, &restriction_stream(customer), &cmd).await? {
        Err(errors) => Ok(RestrictionPayload { errors, ..Default::default() }),
        Ok(once) => Ok(RestrictionPayload {
            restricted_purposes: restricted_now(ctx, customer).await?,
            position: once.position.map(|p| p.to_string()),
            errors: vec![],
        }),
    }
}

#[derive(Default)]
pub struct MarketingQuery;

#[Object]
impl MarketingQuery {
    /// Customers who may be contacted for `purpose` over `channel` at `asOf` (default now):
    /// their consent is in force then, no restriction of processing covers the purpose, and
    /// they are not erased. Ordered by customer id.
    #[allow(clippy::too_many_arguments)]
    async fn marketing_audience(
        &self,
        ctx: &Context<'_>,
        purpose: ConsentPurpose,
        channel: ConsentChannel,
        as_of: Option<DateTime<Utc>>,
        first: Option<i32>,
        after: Option<String>,
        min_position: Option<String>,
    ) -> async_graphql::Result<MarketingAudienceConnection> {
        let v = viewer(ctx)?;
        reach(ctx, min_position.as_deref()).await?;
        let after = after.map(|a| parse_id(&ID(a), "after")).transpose()?;
        let q = AudienceQuery {
            store_id: v.store_id,
            purpose: purpose.into(),
            channel: channel.into(),
            as_of: as_of.unwrap_or_else(Utc::now).timestamp_micros(),
            first: page_size(first)?,
            after,
        };
        let read = &state(ctx).read;
        let (members, has_next) = read.marketing_audience(&q).await.map_err(ApiError::from)?;
        let total = read.marketing_audience_count(&q).await.map_err(ApiError::from)?;
        let mut conn =
            Connection::with_additional_fields(q.after.is_some(), has_next, ConnectionFields { total_count: total });
        for m in members {
            conn.edges.push(Edge::new(
                m.customer_id.to_string(),
                AudienceMember {
                    customer_id: ID(m.customer_id.to_string()),
                    consent_event_id: ID(m.consent_event_id.to_string()),
                    id: m.customer_id,
                },
            ));
        }
        Ok(conn)
    }
}

#[derive(Default)]
pub struct MarketingMutation;

#[Object]
impl MarketingMutation {
    /// Restricts processing of a customer's data for these purposes (right to restriction):
    /// they are left out of every marketing audience until the restriction is lifted.
    async fn restrict_processing(
        &self,
        ctx: &Context<'_>,
        input: RestrictionInput,
    ) -> async_graphql::Result<RestrictionPayload> {
        change(ctx, input, true).await
    }

    async fn lift_restriction(
        &self,
        ctx: &Context<'_>,
        input: RestrictionInput,
    ) -> async_graphql::Result<RestrictionPayload> {
        change(ctx, input, false).await
    }
}
