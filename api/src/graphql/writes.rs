//! Running a mutation's command and shaping its payload: idempotency keys, domain rejections
//! as user errors, the session's last write, and payloads read after the write.

use super::types::*;
use super::{history, state, viewer};
use crate::auth::Viewer;
use crate::error::{ApiError, ApiResult};
use async_graphql::Context;
use commands::idempotency::Once;
use commands::{CommandContext, CommandError};
use domain::{CustomerId, ItemId};
use eventstore::Position;
use uuid::Uuid;

/// An idempotency key, the mutation it belongs to and the entity it acts on.
pub(crate) struct Idem<'a> {
    pub key: Option<&'a str>,
    pub mutation: &'static str,
    pub entity: Uuid,
}

/// Maps a command outcome: a domain rejection becomes payload errors, anything else a GraphQL
/// error.
pub(crate) fn outcome<T>(r: Result<T, CommandError>) -> ApiResult<Result<T, Vec<UserError>>> {
    match r {
        Ok(once) => Ok(Ok(once)),
        Err(CommandError::Rejected(e)) => Ok(Err(vec![(&e).into()])),
        Err(e) => Err(e.into()),
    }
}

/// Runs one aggregate command at most once per idempotency key (a retry gets the first result).
pub(crate) async fn run<A: domain::Aggregate>(
    ctx: &Context<'_>,
    cctx: &CommandContext,
    idem: Idem<'_>,
    stream_id: &str,
    command: &A::Command,
) -> ApiResult<Result<Once, Vec<UserError>>> {
    let store = &state(ctx).store;
    let done = commands::execute_once::<A>(store, cctx, idem.key, idem.mutation, idem.entity, stream_id, command).await;
    ran(ctx, done)
}

/// A command's outcome for the resolver; the session remembers the write's position.
pub(crate) fn ran(ctx: &Context<'_>, done: Result<Once, CommandError>) -> ApiResult<Result<Once, Vec<UserError>>> {
    let result = outcome(done)?;
    if let (Ok(Once { position: Some(p), .. }), Ok(v)) = (&result, viewer(ctx)) {
        state(ctx).sessions.wrote(v.session_id, *p);
    }
    Ok(result)
}

/// After a write: waits (bounded) for the read models to reach `position`, then reads, so a
/// payload shows the new state; `None` if they did not get there in time (the client can query
/// again with `minPosition`).
pub(crate) async fn read_after<T>(
    ctx: &Context<'_>,
    position: Option<Position>,
    read: impl std::future::Future<Output = projections::Result<Option<T>>>,
) -> async_graphql::Result<Option<T>> {
    if let Some(p) = position {
        let s = state(ctx);
        match s.projections.wait_for(p, s.consistency_timeout).await {
            Ok(()) => {}
            Err(projections::ProjectionError::ConsistencyTimeout) => return Ok(None),
            Err(e) => return Err(ApiError::from(e).into()),
        }
    }
    Ok(read.await.map_err(ApiError::from)?)
}

/// An item mutation's payload: the item as its own stream folds to — the event the request
/// created it with, or the stream read from the log right after the write. That is the fold the
/// inventory read model applies (`projections::views::item_view`, one definition), so the
/// payload equals what the read model will show, without waiting for the projection;
/// `position` lets the queries that follow read their writes.
pub(crate) async fn item_payload(
    ctx: &Context<'_>,
    v: &Viewer,
    id: ItemId,
    once: &Once,
) -> async_graphql::Result<InventoryItemPayload> {
    let item = match &once.created {
        // Created by this request's single event: its own fold, nothing read back.
        Some(created) if created.store_id == v.store_id && created.stream_id == id.stream_id() => {
            history::replay_one(created)?
        }
        _ => history::item_now(&state(ctx).store, v.store_id, id).await?,
    };
    let position = once.position.map(|p| p.to_string());
    Ok(InventoryItemPayload { item: item.map(InventoryItem), position, errors: vec![] })
}

pub(crate) async fn customer_payload(
    ctx: &Context<'_>,
    v: &Viewer,
    id: CustomerId,
    position: Option<Position>,
) -> async_graphql::Result<CustomerPayload> {
    let customer = read_after(ctx, position, state(ctx).read.customer(v.store_id, id.as_uuid())).await?.map(Customer);
    Ok(CustomerPayload { customer, position: position.map(|p| p.to_string()), errors: vec![] })
}
