//! The read-model views of items, customers, sales and staff members as pure folds over their
//! events, behind one trait ([`View`]).
//!
//! One definition serves every reader: the projections load the stored rows a batch touches,
//! fold the batch's events in and write the rows back; history queries (`asOf`) and mutation
//! payloads fold a stream's events from nothing ([`replay`]). So an entity's read model, its
//! history and a mutation's answer can never disagree.
//!
//! Most rows are their own stream's fold. A staff member's row is not: the store's roster
//! stream holds every member's events, so [`View::about`] names the row each event is about.

use crate::batch::stream_uuid;
use crate::readmodels::{merge, payment_json};
use crate::rows::{CustomerRow, ItemRow, SaleRow, StaffRow};
use crate::{stream_kind, ProjectionError};
use domain::aggregate::{decode, CodecError};
use domain::customer::{ContactField, CustomerEvent};
use domain::inventory::{ItemEvent, ItemStatus};
use domain::sale::{payment_status, status_after_refund, SaleEvent, SaleStatus};
use domain::staff::StaffEvent;
use domain::store::StoreEvent;
use domain::{Money, Pii};
use eventstore::RecordedEvent;
use std::collections::BTreeMap;
use uuid::Uuid;

/// A read-model row that is the fold of the events about it.
pub trait View: Sized {
    /// The events the row folds.
    type Event: domain::DomainEvent;
    /// The row after `event` (recorded as `e`); `None` while the entity does not exist.
    fn fold(row: Option<Self>, e: &RecordedEvent, event: Self::Event) -> Option<Self>;
    /// The id of the row `e` is about and its event, or `None` when it changes no row of this
    /// view. By default: its own stream's row (the stream id's uuid), for every event.
    fn about(e: &RecordedEvent) -> Result<Option<(Uuid, Self::Event)>, ProjectionError> {
        let event = decode::<Self::Event>(&e.event_type, &e.payload).map_err(|err| corrupt(e, err))?;
        Ok(Some((stream_uuid(e)?, event)))
    }
}

fn corrupt(e: &RecordedEvent, err: CodecError) -> ProjectionError {
    ProjectionError::Corrupt { position: e.position, reason: err.to_string() }
}

impl View for ItemRow {
    type Event = ItemEvent;
    fn fold(row: Option<Self>, e: &RecordedEvent, event: ItemEvent) -> Option<Self> {
        item_view(row, e, event)
    }
}

impl View for CustomerRow {
    type Event = CustomerEvent;
    fn fold(row: Option<Self>, e: &RecordedEvent, event: CustomerEvent) -> Option<Self> {
        customer_view(row, e, event)
    }
}

impl View for SaleRow {
    type Event = SaleEvent;
    fn fold(row: Option<Self>, e: &RecordedEvent, event: SaleEvent) -> Option<Self> {
        sale_view(row, e, event)
    }
}

/// A staff member in the directory: the roster's events about them (`StaffJoined`, role and
/// active changes, erasure) in the store's stream, and `StaffMemberAdded` in streams written
/// before the roster existed (folded as the join it was).
impl View for StaffRow {
    type Event = StoreEvent;
    fn fold(row: Option<Self>, e: &RecordedEvent, event: StoreEvent) -> Option<Self> {
        member_view(row, e, event)
    }
    fn about(e: &RecordedEvent) -> Result<Option<(Uuid, StoreEvent)>, ProjectionError> {
        let event = match stream_kind(&e.stream_id) {
            "store" => decode::<StoreEvent>(&e.event_type, &e.payload).map_err(|err| corrupt(e, err))?,
            "staff" => match decode::<StaffEvent>(&e.event_type, &e.payload).map_err(|err| corrupt(e, err))? {
                StaffEvent::StaffMemberAdded { user_id, email, role, .. } => {
                    StoreEvent::StaffJoined { user_id, email, name: None, role, invitation_id: None }
                }
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        let user = match &event {
            StoreEvent::StaffJoined { user_id, .. }
            | StoreEvent::StaffRoleChanged { user_id, .. }
            | StoreEvent::StaffDeactivated { user_id }
            | StoreEvent::StaffReactivated { user_id }
            | StoreEvent::StaffErased { user_id, .. } => user_id.as_uuid(),
            StoreEvent::StoreOpened { .. }
            | StoreEvent::StaffInvited { .. }
            | StoreEvent::StoreClosed { .. }
            | StoreEvent::StoreReopened { .. }
            | StoreEvent::RetentionPolicySet { .. } => return Ok(None),
        };
        Ok(Some((user, event)))
    }
}

/// A staff member after a roster event about them (recorded as `e`): a join makes the row (a
/// second join of the same id changes nothing), role and active changes update it, erasure
/// drops the name and email and keeps the id (the audit trail's pseudonym).
pub fn member_view(row: Option<StaffRow>, e: &RecordedEvent, event: StoreEvent) -> Option<StaffRow> {
    let at = e.recorded_at.timestamp_micros();
    match event {
        StoreEvent::StaffJoined { user_id, email, name, role, .. } => Some(row.unwrap_or_else(|| StaffRow {
            user_id: user_id.as_uuid(),
            store_id: e.store_id,
            role,
            email: email.clear().map(|s| s.to_lowercase()),
            name: clear(name),
            active: true,
            created_at: at,
            updated_at: at,
        })),
        StoreEvent::StaffRoleChanged { to, .. } => row.map(|r| StaffRow { role: to, updated_at: at, ..r }),
        StoreEvent::StaffDeactivated { .. } => row.map(|r| StaffRow { active: false, updated_at: at, ..r }),
        StoreEvent::StaffReactivated { .. } => row.map(|r| StaffRow { active: true, updated_at: at, ..r }),
        StoreEvent::StaffErased { .. } => row.map(|r| StaffRow { name: None, email: None, updated_at: at, ..r }),
        _ => row,
    }
}

/// A stream's row folded from nothing over `events` (its events, in order).
pub fn replay<'a, V: View>(events: impl IntoIterator<Item = &'a RecordedEvent>) -> Result<Option<V>, CodecError> {
    let mut row = None;
    for e in events {
        row = V::fold(row, e, decode::<V::Event>(&e.event_type, &e.payload)?);
    }
    Ok(row)
}

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
            status: ItemStatus::InStock,
            category,
            brand,
            model,
            reference_number,
            serial_number,
            cost,
            asking_price,
            source,
            attributes,
            acquired_at: micros(acquired_at),
            created_seq: e.position.seq,
            updated_at: e.recorded_at,
            version: 1,
            floor_price,
            condition,
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
                r.condition = Some(c);
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
                r.status = status;
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

/// The sale after `event`: its status follows the domain's payment rules (`payment_status`,
/// `status_after_refund`, as the sale aggregate applies them), payments and refunds are listed
/// in the order recorded.
pub fn sale_view(row: Option<SaleRow>, e: &RecordedEvent, event: SaleEvent) -> Option<SaleRow> {
    let at = micros(e.recorded_at);
    if let SaleEvent::SaleDrafted { sale_id, store_id, customer_id, lines, trade_ins, total, salesperson, .. } = event {
        return Some(SaleRow {
            id: sale_id.as_uuid(),
            store_id: store_id.as_uuid(),
            customer_id: customer_id.map(|c| c.as_uuid()),
            status: SaleStatus::Draft,
            invoice_number: None,
            total,
            paid: Money::from_minor(0, total.currency),
            refunded: Money::from_minor(0, total.currency),
            lines: serde_json::to_value(&lines).unwrap_or_default(),
            trade_ins: serde_json::to_value(&trade_ins).unwrap_or_default(),
            payments: serde_json::Value::Array(Vec::new()),
            created_seq: e.position.seq,
            updated_at: at,
            version: 1,
            salesperson: salesperson.map(|u| u.as_uuid()),
        });
    }
    let mut r = row?;
    r.updated_at = at;
    r.version += 1;
    let net = |r: &SaleRow| r.paid.minor - r.refunded.minor;
    if let (Some(payment), serde_json::Value::Array(list)) = (payment_json(&event, e.recorded_at), &mut r.payments) {
        list.push(payment);
    }
    match event {
        SaleEvent::SaleDrafted { .. } => unreachable!("handled above"),
        SaleEvent::SaleConfirmed { invoice_number, .. } => {
            r.invoice_number = Some(invoice_number as i64);
            r.status = payment_status(r.total.minor, net(&r));
        }
        SaleEvent::PaymentRecorded { amount, .. } => {
            r.paid.minor += amount.minor;
            if r.status != SaleStatus::Draft {
                r.status = payment_status(r.total.minor, net(&r));
            }
        }
        SaleEvent::PaymentRefunded { amount, .. } => {
            r.refunded.minor += amount.minor;
            r.status = status_after_refund(r.status, r.total.minor, net(&r));
        }
        SaleEvent::SaleFulfilled { .. } => r.status = SaleStatus::Fulfilled,
        SaleEvent::SaleCancelled { .. } => r.status = SaleStatus::Cancelled,
        SaleEvent::SaleReturned { .. } => r.status = SaleStatus::Returned,
    }
    Some(r)
}
