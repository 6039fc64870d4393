//! The read-model views of items and customers as pure folds over their events.
//!
//! One definition serves both readers: the projection loads the stored row, folds the next
//! event in and writes the row back; history queries (`asOf`) fold a stream's events from
//! nothing. So an entity's read model and its history can never disagree.

use crate::readmodels::{enum_str, merge};
use crate::rows::{CustomerRow, ItemRow};
use domain::customer::{ContactField, CustomerEvent};
use domain::inventory::ItemEvent;
use domain::Pii;
use eventstore::RecordedEvent;
use std::collections::BTreeMap;

/// Read models keep microsecond precision (what both databases store exactly).
fn micros(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

fn clear(p: Option<Pii<String>>) -> Option<String> {
    p.and_then(|p| p.clear().cloned())
}

fn clear_map(ids: BTreeMap<String, Pii<String>>) -> BTreeMap<String, String> {
    ids.into_iter().filter_map(|(k, v)| v.clear().cloned().map(|v| (k, v))).collect()
}

/// The item after `event` (recorded as `e`); `None` while it does not exist.
pub fn item_view(row: Option<ItemRow>, e: &RecordedEvent, event: ItemEvent) -> Option<ItemRow> {
    if let ItemEvent::ItemAcquired {
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
    } = event
    {
        return Some(ItemRow {
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
            acquired_at: micros(acquired_at),
            created_seq: e.position.seq,
            updated_at: e.recorded_at,
            version: 1,
            floor_price,
            condition: condition.as_ref().map(enum_str),
            details: serde_json::json!({
                "watch": watch, "handbag": handbag, "consignorPayout": consignor_payout,
                "counterparty": counterparty, "vendor": vendor,
            }),
            notes,
            held_for: None,
            sold_in: None,
        });
    }
    let mut r = row?;
    r.updated_at = e.recorded_at;
    r.version += 1;
    match event {
        ItemEvent::ItemPriceChanged { asking_price, floor_price, .. } => {
            r.asking_price = asking_price;
            r.floor_price = floor_price.or(r.floor_price);
        }
        ItemEvent::ItemDetailsUpdated { condition, authentication, notes, photos, watch, handbag, .. } => {
            if let Some(c) = condition {
                r.condition = Some(enum_str(&c));
            }
            if let Some(n) = notes {
                r.notes = Some(n).filter(|n| !n.is_empty());
            }
            r.details = merge(
                r.details,
                serde_json::json!({"authentication": authentication, "photos": photos, "watch": watch, "handbag": handbag}),
            );
        }
        status_change => {
            if let Some(status) = status_change.new_status() {
                r.status = status.as_str().to_owned();
            }
            r.held_for = match &status_change {
                ItemEvent::ItemReserved { customer_id, .. } | ItemEvent::ItemSentOnMemo { customer_id, .. } => {
                    Some(customer_id.as_uuid())
                }
                _ => None,
            };
            r.sold_in = match &status_change {
                ItemEvent::ItemSold { sale_id, .. } => Some(sale_id.as_uuid()),
                _ => None,
            };
        }
    }
    Some(r)
}

/// The customer after `event`. Lifetime value is not part of a customer's own history: it is
/// carried over from `row` unchanged (the projection maintains it from sale events).
pub fn customer_view(row: Option<CustomerRow>, e: &RecordedEvent, event: CustomerEvent) -> Option<CustomerRow> {
    if let CustomerEvent::CustomerRegistered {
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
    } = event
    {
        return Some(CustomerRow {
            id: customer_id.as_uuid(),
            store_id: store_id.as_uuid(),
            erased: name.is_erased(),
            name: clear(Some(name)),
            email: clear(email),
            phone: clear(phone),
            notes: clear(notes),
            tags: tags.values(),
            created_seq: e.position.seq,
            updated_at: e.recorded_at,
            version: 1,
            lifetime_value: None,
            order_count: 0,
            last_purchase_at: None,
            address: clear(address),
            birthday: birthday.and_then(|b| b.clear().copied()),
            assigned_to: assigned_to.map(|a| a.as_uuid()),
            source,
            external_ids: clear_map(external_ids),
            merged_into: None,
        });
    }
    let mut r = row?;
    r.updated_at = e.recorded_at;
    r.version += 1;
    match event {
        CustomerEvent::CustomerRegistered { .. } => unreachable!("handled above"),
        CustomerEvent::CustomerMergedInto { survivor_id, .. } => r.merged_into = Some(survivor_id.as_uuid()),
        CustomerEvent::CustomerAbsorbed { .. } => {}
        // Every personal field goes (the email lookup with the email): the row keeps only ids,
        // dates and purchase totals.
        CustomerEvent::CustomerErased { .. } => {
            r.erased = true;
            r.name = None;
            r.email = None;
            r.phone = None;
            r.notes = None;
            r.tags = Vec::new();
            r.address = None;
            r.birthday = None;
            r.external_ids = Default::default();
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
                r.tags = t.values();
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
        }
    }
    Some(r)
}
