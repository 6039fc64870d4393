//! History queries: an entity as it was at an instant, rebuilt by replaying its own stream up
//! to that instant. Personal data erased since then reads as erased: history never resurrects
//! what was shredded.

use crate::error::{ApiError, ApiResult};
use chrono::{DateTime, Utc};
use domain::aggregate::decode;
use domain::customer::{ContactField, CustomerEvent};
use domain::inventory::ItemEvent;
use domain::sale::{Sale, SaleEvent};
use domain::{Aggregate, CustomerId, ItemId, Money, Pii, SaleId};
use eventstore::{EventStore, RecordedEvent};
use projections::readmodels::{enum_str, merge, payment_json};
use projections::rows::{CustomerRow, ItemRow, SaleRow};
use uuid::Uuid;

async fn events_until(
    store: &EventStore,
    store_id: Uuid,
    stream_id: &str,
    at: DateTime<Utc>,
) -> ApiResult<Vec<RecordedEvent>> {
    let events = store.read_stream(stream_id, 0).await.map_err(|e| ApiError::internal("history", &e))?;
    if events.iter().any(|e| e.store_id != store_id) {
        return Ok(vec![]); // another tenant's stream reads as absent
    }
    Ok(events.into_iter().filter(|e| e.recorded_at <= at).collect())
}

fn decode_or_internal<E: domain::DomainEvent>(e: &RecordedEvent) -> ApiResult<E> {
    decode::<E>(&e.event_type, &e.payload).map_err(|err| ApiError::internal("history decode", &err))
}

pub async fn item_as_of(
    store: &EventStore,
    store_id: Uuid,
    id: ItemId,
    at: DateTime<Utc>,
) -> ApiResult<Option<ItemRow>> {
    let mut row: Option<ItemRow> = None;
    for e in events_until(store, store_id, &id.stream_id(), at).await? {
        match decode_or_internal::<ItemEvent>(&e)? {
            ItemEvent::ItemAcquired {
                item_id,
                store_id,
                category,
                brand,
                model,
                reference_number,
                serial_number,
                cost,
                asking_price,
                source,
                attributes,
                acquired_at,
                floor_price,
                counterparty,
                vendor,
                consignor_payout,
                condition,
                watch,
                handbag,
                notes,
            } => {
                row = Some(ItemRow {
                    id: item_id.as_uuid(),
                    store_id: store_id.as_uuid(),
                    status: "IN_STOCK".into(),
                    category: enum_str(&category),
                    brand,
                    model,
                    reference_number,
                    serial_number,
                    cost,
                    asking_price,
                    source: enum_str(&source),
                    attributes,
                    acquired_at,
                    created_seq: e.position.seq,
                    updated_at: e.recorded_at,
                    version: 1,
                    floor_price,
                    condition: condition.as_ref().map(enum_str),
                    details: serde_json::json!({
                        "watch": watch, "handbag": handbag, "consignorPayout": consignor_payout, "counterparty": counterparty, "vendor": vendor,
                    }),
                    notes,
                    held_for: None,
                    sold_in: None,
                })
            }
            other => {
                let Some(r) = row.as_mut() else { continue };
                r.updated_at = e.recorded_at;
                r.version += 1;
                match other {
                    ItemEvent::ItemPriceChanged { asking_price, floor_price, .. } => {
                        r.asking_price = asking_price;
                        r.floor_price = floor_price.or(r.floor_price);
                    }
                    ItemEvent::ItemDetailsUpdated {
                        condition, authentication, notes, photos, watch, handbag, ..
                    } => {
                        if let Some(c) = condition {
                            r.condition = Some(enum_str(&c));
                        }
                        if let Some(n) = notes {
                            r.notes = Some(n).filter(|n| !n.is_empty());
                        }
                        r.details = merge(
                            r.details.clone(),
                            serde_json::json!({"authentication": authentication, "photos": photos, "watch": watch, "handbag": handbag}),
                        );
                    }
                    status_change => {
                        if let Some(status) = status_change.new_status() {
                            r.status = status.as_str().to_owned();
                        }
                        r.held_for = match &status_change {
                            ItemEvent::ItemReserved { customer_id, .. }
                            | ItemEvent::ItemSentOnMemo { customer_id, .. } => Some(customer_id.as_uuid()),
                            _ => None,
                        };
                        r.sold_in = match &status_change {
                            ItemEvent::ItemSold { sale_id, .. } => Some(sale_id.as_uuid()),
                            _ => None,
                        };
                    }
                }
            }
        }
    }
    Ok(row)
}

fn clear(p: Option<Pii<String>>) -> Option<String> {
    p.and_then(|p| p.clear().cloned())
}

fn clear_map(ids: std::collections::BTreeMap<String, Pii<String>>) -> std::collections::BTreeMap<String, String> {
    ids.into_iter().filter_map(|(k, v)| v.clear().cloned().map(|v| (k, v))).collect()
}

pub async fn customer_as_of(
    store: &EventStore,
    store_id: Uuid,
    id: CustomerId,
    at: DateTime<Utc>,
) -> ApiResult<Option<CustomerRow>> {
    let mut row: Option<CustomerRow> = None;
    for e in events_until(store, store_id, &id.stream_id(), at).await? {
        match decode_or_internal::<CustomerEvent>(&e)? {
            CustomerEvent::CustomerRegistered {
                customer_id,
                store_id,
                name,
                email,
                phone,
                notes,
                tags,
                address,
                birthday,
                assigned_to,
                source,
                external_ids,
            } => {
                row = Some(CustomerRow {
                    id: customer_id.as_uuid(),
                    store_id: store_id.as_uuid(),
                    erased: name.is_erased(),
                    name: clear(Some(name)),
                    email: clear(email),
                    phone: clear(phone),
                    notes: clear(notes),
                    tags,
                    created_seq: e.position.seq,
                    updated_at: e.recorded_at,
                    version: 1,
                    // Lifetime value comes from sales, not from the customer's own history.
                    lifetime_value: None,
                    order_count: 0,
                    last_purchase_at: None,
                    address: clear(address),
                    birthday: birthday.and_then(|b| b.clear().copied()),
                    assigned_to: assigned_to.map(|a| a.as_uuid()),
                    source,
                    external_ids: clear_map(external_ids),
                    merged_into: None,
                })
            }
            CustomerEvent::CustomerMergedInto { survivor_id, .. } => {
                if let Some(r) = row.as_mut() {
                    r.merged_into = Some(survivor_id.as_uuid());
                    r.updated_at = e.recorded_at;
                    r.version += 1;
                }
            }
            CustomerEvent::CustomerAbsorbed { .. } => {
                if let Some(r) = row.as_mut() {
                    r.updated_at = e.recorded_at;
                    r.version += 1;
                }
            }
            CustomerEvent::CustomerDetailsUpdated {
                name,
                email,
                phone,
                notes,
                tags,
                cleared,
                address,
                birthday,
                assigned_to,
                source,
                external_ids,
                ..
            } => {
                if let Some(r) = row.as_mut() {
                    if let Some(n) = name {
                        r.erased = n.is_erased();
                        r.name = clear(Some(n));
                    }
                    for (new, slot) in
                        [(email, &mut r.email), (phone, &mut r.phone), (notes, &mut r.notes), (address, &mut r.address)]
                    {
                        if new.is_some() {
                            *slot = clear(new);
                        }
                    }
                    if let Some(b) = birthday {
                        r.birthday = b.clear().copied();
                    }
                    if let Some(a) = assigned_to {
                        r.assigned_to = Some(a.as_uuid());
                    }
                    if source.is_some() {
                        r.source = source;
                    }
                    if let Some(ids) = external_ids {
                        r.external_ids = clear_map(ids);
                    }
                    if let Some(t) = tags {
                        r.tags = t;
                    }
                    for f in cleared {
                        match f {
                            ContactField::Email => r.email = None,
                            ContactField::Phone => r.phone = None,
                            ContactField::Notes => r.notes = None,
                            ContactField::Address => r.address = None,
                            ContactField::Birthday => r.birthday = None,
                            ContactField::AssignedTo => r.assigned_to = None,
                            ContactField::Source => r.source = None,
                        }
                    }
                    r.updated_at = e.recorded_at;
                    r.version += 1;
                }
            }
        }
    }
    Ok(row)
}

pub async fn sale_as_of(
    store: &EventStore,
    store_id: Uuid,
    id: SaleId,
    at: DateTime<Utc>,
) -> ApiResult<Option<SaleRow>> {
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
