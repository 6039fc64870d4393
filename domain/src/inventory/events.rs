//! What happened to an item: its events, as the log stores them.

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ItemEvent {
    ItemAcquired {
        item_id: ItemId,
        store_id: StoreId,
        category: Category,
        brand: String,
        model: String,
        reference_number: Option<String>,
        serial_number: Option<String>,
        cost: Option<Money>,
        asking_price: Money,
        source: AcquisitionSource,
        #[serde(default)]
        attributes: BTreeMap<String, String>,
        acquired_at: DateTime<Utc>,
        // Fields added after the first version default to empty, so older events still read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        floor_price: Option<Money>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        counterparty: Option<CustomerId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vendor: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        consignor_payout: Option<ConsignorPayout>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        condition: Option<ConditionGrade>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        watch: Option<WatchDetails>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handbag: Option<HandbagDetails>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notes: Option<String>,
    },
    ItemPriceChanged {
        item_id: ItemId,
        previous: Money,
        asking_price: Money,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        floor_price: Option<Money>,
        reason: Option<String>,
    },
    ItemDetailsUpdated {
        item_id: ItemId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        condition: Option<ConditionGrade>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        authentication: Option<Authentication>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notes: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        photos: Option<Vec<Photo>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        watch: Option<WatchDetails>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handbag: Option<HandbagDetails>,
    },
    ItemReserved {
        item_id: ItemId,
        customer_id: CustomerId,
        until: Option<DateTime<Utc>>,
    },
    ItemReservationReleased {
        item_id: ItemId,
    },
    ItemSentOnMemo {
        item_id: ItemId,
        customer_id: CustomerId,
        due: DateTime<Utc>,
    },
    ItemReturnedFromMemo {
        item_id: ItemId,
    },
    ItemSentToService {
        item_id: ItemId,
        provider: String,
        reason: Option<String>,
    },
    ItemReturnedFromService {
        item_id: ItemId,
    },
    ItemReturnedToConsignor {
        item_id: ItemId,
    },
    ItemArchived {
        item_id: ItemId,
    },
    ItemSold {
        item_id: ItemId,
        sale_id: SaleId,
        customer_id: Option<CustomerId>,
    },
    ItemReturned {
        item_id: ItemId,
        sale_id: SaleId,
    },
    ItemRestocked {
        item_id: ItemId,
    },
}

impl ItemEvent {
    /// The status an event moves the item to, if it changes status.
    pub fn new_status(&self) -> Option<ItemStatus> {
        Some(match self {
            Self::ItemAcquired { .. }
            | Self::ItemReservationReleased { .. }
            | Self::ItemReturnedFromMemo { .. }
            | Self::ItemReturnedFromService { .. }
            | Self::ItemRestocked { .. } => ItemStatus::InStock,
            Self::ItemReserved { .. } => ItemStatus::Reserved,
            Self::ItemSentOnMemo { .. } => ItemStatus::OnMemo,
            Self::ItemSentToService { .. } => ItemStatus::InService,
            Self::ItemReturnedToConsignor { .. } => ItemStatus::ReturnedToConsignor,
            Self::ItemArchived { .. } => ItemStatus::Archived,
            Self::ItemSold { .. } => ItemStatus::Sold,
            Self::ItemReturned { .. } => ItemStatus::Returned,
            Self::ItemPriceChanged { .. } | Self::ItemDetailsUpdated { .. } => return None,
        })
    }
}

impl DomainEvent for ItemEvent {}
