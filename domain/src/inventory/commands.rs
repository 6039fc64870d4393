//! What can be asked of an item: the commands, their inputs raw as the caller sent them.

use super::*;

/// Acquire a new piece into stock. Strings are raw input; `decide` parses them.
#[derive(Debug, Clone)]
pub struct AcquireItem {
    pub item_id: ItemId,
    pub store_id: StoreId,
    pub category: Category,
    pub brand: String,
    pub model: String,
    pub reference_number: Option<String>,
    pub serial_number: Option<String>,
    pub cost: Option<Money>,
    pub asking_price: Money,
    pub source: AcquisitionSource,
    pub attributes: BTreeMap<String, String>,
    pub acquired_at: DateTime<Utc>,
    pub floor_price: Option<Money>,
    /// The customer it came from, if it came from a customer.
    pub counterparty: Option<CustomerId>,
    /// The dealer, auction house or supplier it came from, if not a customer.
    pub vendor: Option<String>,
    pub consignor_payout: Option<ConsignorPayout>,
    pub condition: Option<ConditionGrade>,
    pub watch: Option<WatchDetails>,
    pub handbag: Option<HandbagDetails>,
    pub notes: Option<String>,
}

impl AcquireItem {
    /// A purchase of `brand` `model` acquired now, with nothing optional given (no reference or
    /// serial number, attributes, floor price, counterparty, condition or details): the start
    /// of a fuller command through struct update syntax (`AcquireItem { serial_number, ..
    /// AcquireItem::purchase(…) }`).
    pub fn purchase(
        item_id: ItemId,
        store_id: StoreId,
        category: Category,
        brand: &str,
        model: &str,
        cost: Option<Money>,
        asking_price: Money,
    ) -> Self {
        Self {
            item_id,
            store_id,
            category,
            brand: brand.to_owned(),
            model: model.to_owned(),
            reference_number: None,
            serial_number: None,
            cost,
            asking_price,
            source: AcquisitionSource::Purchase,
            attributes: BTreeMap::new(),
            acquired_at: Utc::now(),
            floor_price: None,
            counterparty: None,
            vendor: None,
            consignor_payout: None,
            condition: None,
            watch: None,
            handbag: None,
            notes: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ChangeItemPrice {
    pub asking_price: Money,
    /// `None` leaves the floor price as it is.
    pub floor_price: Option<Money>,
    pub reason: Option<String>,
}

/// `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UpdateItemDetails {
    pub condition: Option<ConditionGrade>,
    pub authentication: Option<Authentication>,
    pub notes: Option<String>,
    pub photos: Option<Vec<Photo>>,
    pub watch: Option<WatchDetails>,
    pub handbag: Option<HandbagDetails>,
}

#[derive(Debug, Clone)]
pub enum ItemCommand {
    Acquire(AcquireItem),
    ChangePrice(ChangeItemPrice),
    UpdateDetails(UpdateItemDetails),
    /// Hold for a customer, until `until` if given (then it stops blocking other buyers).
    Reserve {
        customer_id: CustomerId,
        until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    },
    ReleaseReservation,
    /// Out on approval to a customer, due back by `due`.
    SendOnMemo {
        customer_id: CustomerId,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    ReturnFromMemo,
    SendToService {
        provider: String,
        reason: Option<String>,
    },
    ReturnFromService,
    ReturnToConsignor,
    Archive,
    /// Issued only by the sale workflow, atomically with the sale's confirmation. `price` is
    /// the line's net price: below the item's floor only with `below_floor_approved` (a role
    /// with APPROVE_DISCOUNTS).
    MarkSold {
        sale_id: SaleId,
        customer_id: Option<CustomerId>,
        price: Money,
        below_floor_approved: bool,
        now: DateTime<Utc>,
    },
    /// Issued only by the sale workflow when a confirmed sale is cancelled or returned.
    MarkReturned {
        sale_id: SaleId,
    },
    /// A returned piece goes back on sale.
    Restock,
}
