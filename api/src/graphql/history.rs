//! History queries: an entity as it was at an instant, rebuilt by replaying its own stream up
//! to that instant. Personal data erased since then reads as erased: history never resurrects
//! what was shredded.

use crate::error::{ApiError, ApiResult};
use chrono::{DateTime, Utc};
use domain::{CustomerId, ItemId, SaleId};
use eventstore::{EventStore, RecordedEvent};
use projections::rows::{CustomerRow, ItemRow, SaleRow};
use projections::views::{replay, View};
use uuid::Uuid;

/// A point in an entity's history: an instant, or a version (1 = after its first event).
#[derive(Debug, Clone, Copy)]
pub enum AsOf {
    Time(DateTime<Utc>),
    Version(u64),
}

async fn events_until(store: &EventStore, store_id: Uuid, stream_id: &str, at: AsOf) -> ApiResult<Vec<RecordedEvent>> {
    let events = store.read_stream(stream_id, 0).await.map_err(|e| ApiError::internal("history", &e))?;
    if events.iter().any(|e| e.store_id != store_id) {
        return Ok(vec![]); // another tenant's stream reads as absent
    }
    Ok(events
        .into_iter()
        .filter(|e| match at {
            AsOf::Time(t) => e.recorded_at <= t,
            AsOf::Version(v) => e.version < v,
        })
        .collect())
}

/// The entity's row after the events of its stream up to `at` (`None` before it existed).
async fn as_of<V: View>(store: &EventStore, store_id: Uuid, stream_id: &str, at: AsOf) -> ApiResult<Option<V>> {
    let events = events_until(store, store_id, stream_id, at).await?;
    replay::<V>(&events).map_err(|err| ApiError::internal("history decode", &err))
}

pub async fn item_as_of(store: &EventStore, store_id: Uuid, id: ItemId, at: AsOf) -> ApiResult<Option<ItemRow>> {
    as_of(store, store_id, &id.stream_id(), at).await
}

/// The row a stream's first event creates, from that event alone (a mutation's payload when the
/// request created the stream: the same fold as the read model, nothing read back).
pub fn replay_one<V: View>(created: &RecordedEvent) -> ApiResult<Option<V>> {
    replay::<V>([created]).map_err(|err| ApiError::internal("payload decode", &err))
}

/// The item now: every event of its stream folded.
pub async fn item_now(store: &EventStore, store_id: Uuid, id: ItemId) -> ApiResult<Option<ItemRow>> {
    item_as_of(store, store_id, id, AsOf::Version(u64::MAX)).await
}

pub async fn customer_as_of(
    store: &EventStore,
    store_id: Uuid,
    id: CustomerId,
    at: AsOf,
) -> ApiResult<Option<CustomerRow>> {
    as_of(store, store_id, &id.stream_id(), at).await
}

pub async fn sale_as_of(store: &EventStore, store_id: Uuid, id: SaleId, at: AsOf) -> ApiResult<Option<SaleRow>> {
    as_of(store, store_id, &id.stream_id(), at).await
}
