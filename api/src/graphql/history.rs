//! History queries: an entity as it was at an instant, rebuilt by replaying its own stream up
//! to that instant. Personal data erased since then reads as erased: history never resurrects
//! what was shredded.

use crate::error::{ApiError, ApiResult};
use chrono::{DateTime, Utc};
use domain::aggregate::decode;
use domain::customer::CustomerEvent;
use domain::inventory::ItemEvent;
use domain::sale::{Sale, SaleEvent};
use domain::{Aggregate, CustomerId, ItemId, Money, SaleId};
use eventstore::{EventStore, RecordedEvent};
use projections::readmodels::payment_json;
use projections::rows::{CustomerRow, ItemRow, SaleRow};
use projections::views::{customer_view, item_view};
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

fn decode_or_internal<E: domain::DomainEvent>(e: &RecordedEvent) -> ApiResult<E> {
    decode::<E>(&e.event_type, &e.payload).map_err(|err| ApiError::internal("history decode", &err))
}

pub async fn item_as_of(store: &EventStore, store_id: Uuid, id: ItemId, at: AsOf) -> ApiResult<Option<ItemRow>> {
    let mut row = None;
    for e in events_until(store, store_id, &id.stream_id(), at).await? {
        row = item_view(row, &e, decode_or_internal::<ItemEvent>(&e)?);
    }
    Ok(row)
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
    let mut row = None;
    for e in events_until(store, store_id, &id.stream_id(), at).await? {
        row = customer_view(row, &e, decode_or_internal::<CustomerEvent>(&e)?);
    }
    Ok(row)
}

pub async fn sale_as_of(store: &EventStore, store_id: Uuid, id: SaleId, at: AsOf) -> ApiResult<Option<SaleRow>> {
    let events = events_until(store, store_id, &id.stream_id(), at).await?;
    let (Some(first), Some(last)) = (events.first(), events.last()) else { return Ok(None) };
    let (created_seq, updated_at, version) = (first.position.seq, last.recorded_at, events.len() as i64);
    let mut sale = Sale::default();
    let mut payments = Vec::new();
    for e in &events {
        let event = decode_or_internal::<SaleEvent>(e)?;
        payments.extend(payment_json(&event, e.recorded_at));
        sale = sale.evolve(&event);
    }
    Ok(sale.state.map(|s| SaleRow {
        id: s.id.as_uuid(),
        store_id: s.store_id.as_uuid(),
        customer_id: s.customer_id.map(|c| c.as_uuid()),
        status: s.status.as_str().to_owned(),
        invoice_number: s.invoice_number.map(|n| n as i64),
        total: s.total,
        paid: Money::from_minor(s.paid, s.total.currency),
        refunded: Money::from_minor(s.refunded, s.total.currency),
        lines: serde_json::to_value(&s.lines).unwrap_or_default(),
        trade_ins: serde_json::to_value(&s.trade_ins).unwrap_or_default(),
        payments: serde_json::Value::Array(payments),
        created_seq,
        updated_at,
        version,
        salesperson: s.salesperson.map(|u| u.as_uuid()),
    }))
}
