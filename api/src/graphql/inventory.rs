//! Item lifecycle mutations: reserve, memo, service, consignor returns, archive, restock and
//! detail edits. Selling and sale returns happen only through the sale mutations.

use super::types::*;
use super::{command_context, item_payload, run, viewer, Idem};
use async_graphql::{Context, InputObject, Object, ID};
use chrono::{DateTime, Utc};
use domain::inventory::{InventoryItem as ItemAggregate, ItemCommand, UpdateItemDetails};
use domain::{CustomerId, ItemId};
use uuid::Uuid;

#[derive(InputObject)]
pub struct ItemActionInput {
    pub item_id: ID,
    pub reason: Option<String>,
    pub idempotency_key: Option<String>,
}

#[derive(InputObject)]
pub struct ReserveItemInput {
    pub item_id: ID,
    pub customer_id: ID,
    pub until: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub idempotency_key: Option<String>,
}

#[derive(InputObject)]
pub struct SendItemOnMemoInput {
    pub item_id: ID,
    pub customer_id: ID,
    /// When the piece is due back.
    pub due: DateTime<Utc>,
    pub reason: Option<String>,
    pub idempotency_key: Option<String>,
}

#[derive(InputObject)]
pub struct SendItemToServiceInput {
    pub item_id: ID,
    pub provider: String,
    pub reason: Option<String>,
    pub idempotency_key: Option<String>,
}

/// Omitted fields stay as they are; an empty `notes` clears the notes.
#[derive(InputObject)]
pub struct UpdateItemDetailsInput {
    pub item_id: ID,
    pub condition: Option<ConditionGrade>,
    pub authentication: Option<AuthenticationInput>,
    pub notes: Option<String>,
    pub photos: Option<Vec<Photo>>,
    pub watch: Option<WatchDetails>,
    pub handbag: Option<HandbagDetails>,
    pub idempotency_key: Option<String>,
}

fn ids(item: &ID, customer: Option<&ID>) -> Result<(ItemId, Option<CustomerId>), UserError> {
    let item = Uuid::parse_str(item.as_str()).map(ItemId::from_uuid).map_err(|_| UserError::invalid_id("itemId"))?;
    let customer = customer
        .map(|c| {
            Uuid::parse_str(c.as_str()).map(CustomerId::from_uuid).map_err(|_| UserError::invalid_id("customerId"))
        })
        .transpose()?;
    Ok((item, customer))
}

/// Runs one item command and answers with the item as it now is.
#[allow(clippy::too_many_arguments)]
async fn act(
    ctx: &Context<'_>,
    mutation: &'static str,
    key: Option<String>,
    item: &ID,
    customer: Option<&ID>,
    reason: Option<String>,
    command: impl FnOnce(Option<CustomerId>) -> ItemCommand,
) -> async_graphql::Result<InventoryItemPayload> {
    let v = viewer(ctx)?;
    let (item_id, customer) = match ids(item, customer) {
        Ok(ids) => ids,
        Err(e) => return Ok(InventoryItemPayload { errors: vec![e], ..Default::default() }),
    };
    let cctx = command_context(ctx, v, reason);
    if let Some(c) = customer {
        let check = commands::references::customer(&super::state(ctx).store, &cctx, c, "customerId").await;
        if let Err(errors) = super::outcome(check)? {
            return Ok(InventoryItemPayload { errors, ..Default::default() });
        }
    }
    let idem = Idem { key: key.as_deref(), mutation, entity: item_id.as_uuid() };
    match run::<ItemAggregate>(ctx, &cctx, idem, &item_id.stream_id(), &command(customer)).await? {
        Err(errors) => Ok(InventoryItemPayload { errors, ..Default::default() }),
        Ok(once) => item_payload(ctx, v, item_id, &once).await,
    }
}

fn customer(c: Option<CustomerId>) -> CustomerId {
    c.expect("customer id parsed when given")
}

#[derive(Default)]
pub struct ItemMutation;

#[Object]
impl ItemMutation {
    /// Hold an in-stock piece for a customer. Only that customer can then buy it.
    async fn reserve_item(
        &self,
        ctx: &Context<'_>,
        input: ReserveItemInput,
    ) -> async_graphql::Result<InventoryItemPayload> {
        let until = input.until;
        act(
            ctx,
            "reserveItem",
            input.idempotency_key.clone(),
            &input.item_id,
            Some(&input.customer_id),
            input.reason,
            |c| ItemCommand::Reserve { customer_id: customer(c), until, now: chrono::Utc::now() },
        )
        .await
    }

    async fn release_item_reservation(
        &self,
        ctx: &Context<'_>,
        input: ItemActionInput,
    ) -> async_graphql::Result<InventoryItemPayload> {
        act(ctx, "releaseItemReservation", input.idempotency_key.clone(), &input.item_id, None, input.reason, |_| {
            ItemCommand::ReleaseReservation
        })
        .await
    }

    /// Out on approval to a customer until `due`.
    async fn send_item_on_memo(
        &self,
        ctx: &Context<'_>,
        input: SendItemOnMemoInput,
    ) -> async_graphql::Result<InventoryItemPayload> {
        let due = input.due;
        act(
            ctx,
            "sendItemOnMemo",
            input.idempotency_key.clone(),
            &input.item_id,
            Some(&input.customer_id),
            input.reason,
            |c| ItemCommand::SendOnMemo { customer_id: customer(c), due, now: chrono::Utc::now() },
        )
        .await
    }

    async fn return_item_from_memo(
        &self,
        ctx: &Context<'_>,
        input: ItemActionInput,
    ) -> async_graphql::Result<InventoryItemPayload> {
        act(ctx, "returnItemFromMemo", input.idempotency_key.clone(), &input.item_id, None, input.reason, |_| {
            ItemCommand::ReturnFromMemo
        })
        .await
    }

    async fn send_item_to_service(
        &self,
        ctx: &Context<'_>,
        input: SendItemToServiceInput,
    ) -> async_graphql::Result<InventoryItemPayload> {
        let (provider, reason) = (input.provider, input.reason);
        act(ctx, "sendItemToService", input.idempotency_key.clone(), &input.item_id, None, reason.clone(), |_| {
            ItemCommand::SendToService { provider, reason }
        })
        .await
    }

    async fn return_item_from_service(
        &self,
        ctx: &Context<'_>,
        input: ItemActionInput,
    ) -> async_graphql::Result<InventoryItemPayload> {
        act(ctx, "returnItemFromService", input.idempotency_key.clone(), &input.item_id, None, input.reason, |_| {
            ItemCommand::ReturnFromService
        })
        .await
    }

    /// A consigned piece goes back to its consignor.
    async fn return_item_to_consignor(
        &self,
        ctx: &Context<'_>,
        input: ItemActionInput,
    ) -> async_graphql::Result<InventoryItemPayload> {
        act(ctx, "returnItemToConsignor", input.idempotency_key.clone(), &input.item_id, None, input.reason, |_| {
            ItemCommand::ReturnToConsignor
        })
        .await
    }

    async fn archive_item(
        &self,
        ctx: &Context<'_>,
        input: ItemActionInput,
    ) -> async_graphql::Result<InventoryItemPayload> {
        act(ctx, "archiveItem", input.idempotency_key.clone(), &input.item_id, None, input.reason, |_| {
            ItemCommand::Archive
        })
        .await
    }

    /// A piece returned from a sale goes back on sale.
    async fn restock_item(
        &self,
        ctx: &Context<'_>,
        input: ItemActionInput,
    ) -> async_graphql::Result<InventoryItemPayload> {
        act(ctx, "restockItem", input.idempotency_key.clone(), &input.item_id, None, input.reason, |_| {
            ItemCommand::Restock
        })
        .await
    }

    async fn update_item_details(
        &self,
        ctx: &Context<'_>,
        input: UpdateItemDetailsInput,
    ) -> async_graphql::Result<InventoryItemPayload> {
        let cmd = UpdateItemDetails {
            condition: input.condition.map(Into::into),
            authentication: input.authentication.as_ref().map(AuthenticationInput::to_domain),
            notes: input.notes,
            photos: input.photos.as_ref().and_then(convert),
            watch: input.watch.as_ref().and_then(convert),
            handbag: input.handbag.as_ref().and_then(convert),
        };
        act(ctx, "updateItemDetails", input.idempotency_key.clone(), &input.item_id, None, None, |_| {
            ItemCommand::UpdateDetails(cmd)
        })
        .await
    }
}
