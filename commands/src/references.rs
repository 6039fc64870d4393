//! Tenancy for references: every id an input names must exist in the caller's store, decided
//! from the log. Another store's id and a made-up one get the same answer (`NOT_FOUND` on the
//! input field), so a tenant can neither act on nor learn of another tenant's records.

use crate::{load, CommandContext, CommandError};
use domain::customer::Customer;
use domain::inventory::InventoryItem;
use domain::{Aggregate, CustomerId, DomainError, ItemId, UserId};
use eventstore::EventStore;

fn unknown(field: &'static str, kind: &'static str) -> CommandError {
    DomainError::UnknownReference { field, kind }.into()
}

/// Loads `A` from `stream`; absent, or another store's, is an unknown reference.
async fn existing<A: Aggregate>(
    store: &EventStore,
    ctx: &CommandContext,
    stream: &str,
    field: &'static str,
) -> Result<(A, bool), CommandError> {
    match load::<A>(store, ctx.store_id, stream).await {
        Ok((a, expected)) => Ok((a, expected != eventstore::ExpectedVersion::NoStream)),
        Err(CommandError::Rejected(DomainError::NotFound { .. })) => Err(unknown(field, A::KIND)),
        Err(e) => Err(e),
    }
}

/// The customer exists in this store.
pub async fn customer(
    store: &EventStore,
    ctx: &CommandContext,
    id: CustomerId,
    field: &'static str,
) -> Result<(), CommandError> {
    let (c, _) = existing::<Customer>(store, ctx, &id.stream_id(), field).await?;
    c.state.map(|_| ()).ok_or_else(|| unknown(field, Customer::KIND))
}

/// The customer exists in this store; what consent rules need to know of them.
pub async fn customer_facts(
    store: &EventStore,
    ctx: &CommandContext,
    id: CustomerId,
    field: &'static str,
) -> Result<domain::consent::SubjectFacts, CommandError> {
    let (c, _) = existing::<Customer>(store, ctx, &id.stream_id(), field).await?;
    let s = c.state.ok_or_else(|| unknown(field, Customer::KIND))?;
    Ok(domain::consent::SubjectFacts {
        birthday: s.birthday.as_ref().and_then(|b| b.clear().copied()),
        erased: s.erased || s.name.is_erased(),
    })
}

/// The item exists in this store.
pub async fn item(
    store: &EventStore,
    ctx: &CommandContext,
    id: ItemId,
    field: &'static str,
) -> Result<(), CommandError> {
    let (i, _) = existing::<InventoryItem>(store, ctx, &id.stream_id(), field).await?;
    i.state.map(|_| ()).ok_or_else(|| unknown(field, InventoryItem::KIND))
}

/// The staff member belongs to this store (active or not).
pub async fn staff_member(
    store: &EventStore,
    ctx: &CommandContext,
    id: UserId,
    field: &'static str,
) -> Result<(), CommandError> {
    let roster = crate::staff::roster(store, ctx.store_id).await?;
    if roster.members.contains_key(&id) {
        return Ok(());
    }
    // Members from before the roster existed.
    match crate::staff::login_role(store, ctx.store_id, id).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) | Err(CommandError::Rejected(_)) => Err(unknown(field, "staff member")),
        Err(e) => Err(e),
    }
}
