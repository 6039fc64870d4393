//! Customer workflows spanning two customers.

use crate::idempotency::{once, Once};
use crate::{CommandContext, CommandError};
use domain::customer::{Customer, CustomerCommand};
use domain::CustomerId;
use eventstore::EventStore;

/// Merges the duplicate `merged` into `survivor`, atomically on both streams. The duplicate
/// then points to the survivor and takes no more changes; both histories stay replayable.
#[tracing::instrument(skip_all, fields(merged = %merged, survivor = %survivor), err(level = "info"))]
pub async fn merge_customers(
    store: &EventStore,
    ctx: &CommandContext,
    merged: CustomerId,
    survivor: CustomerId,
    key: Option<&str>,
) -> Result<Once, CommandError> {
    once(store, ctx, key, "mergeCustomers", survivor.as_uuid(), |mut d| async move {
        d.decide::<Customer>(&merged.stream_id(), &[CustomerCommand::MergeInto { survivor }]).await?;
        d.decide::<Customer>(&survivor.stream_id(), &[CustomerCommand::Absorb { merged }]).await?;
        Ok(d)
    })
    .await
}
