//! One physical piece of inventory: a watch or a handbag, from acquisition to sale.

use crate::aggregate::{Aggregate, DomainEvent};
use crate::values::Text;
use crate::{DomainError, ItemId, Money, StoreId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    Watch,
    Handbag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AcquisitionSource {
    Purchase,
    TradeIn,
    Consignment,
    MemoIn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ItemStatus {
    InStock,
    Reserved,
    OnMemo,
    InService,
    Sold,
    Returned,
    ReturnedToConsignor,
    Archived,
}

impl ItemStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InStock => "IN_STOCK",
            Self::Reserved => "RESERVED",
            Self::OnMemo => "ON_MEMO",
            Self::InService => "IN_SERVICE",
            Self::Sold => "SOLD",
            Self::Returned => "RETURNED",
            Self::ReturnedToConsignor => "RETURNED_TO_CONSIGNOR",
            Self::Archived => "ARCHIVED",
        }
    }
}

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
}

#[derive(Debug, Clone)]
pub struct ChangeItemPrice {
    pub asking_price: Money,
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
pub enum ItemCommand {
    Acquire(AcquireItem),
    ChangePrice(ChangeItemPrice),
}

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
    },
    ItemPriceChanged {
        item_id: ItemId,
        previous: Money,
        asking_price: Money,
        reason: Option<String>,
    },
}

impl DomainEvent for ItemEvent {}

/// The decision state of an item: only what the rules need.
#[derive(Debug, Clone, Default)]
pub struct InventoryItem {
    pub state: Option<ItemState>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ItemState {
    pub id: ItemId,
    pub store_id: StoreId,
    pub status: ItemStatus,
    pub asking_price: Money,
    pub cost: Option<Money>,
}

const MAX_ATTRIBUTES: usize = 50;

fn optional_text(field: &'static str, raw: &Option<String>, max: usize) -> Result<Option<String>, DomainError> {
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => Text::parse(field, s, max).map(|t| Some(t.into_inner())),
    }
}

fn acquire(cmd: &AcquireItem) -> Result<Vec<ItemEvent>, DomainError> {
    let brand = Text::parse("brand", &cmd.brand, 100)?.into_inner();
    let model = Text::parse("model", &cmd.model, 200)?.into_inner();
    let reference_number = optional_text("referenceNumber", &cmd.reference_number, 100)?;
    let serial_number = optional_text("serialNumber", &cmd.serial_number, 100)?;
    if !cmd.asking_price.is_positive() {
        return Err(DomainError::invalid("askingPrice", "must be greater than zero"));
    }
    match (cmd.source, &cmd.cost) {
        (AcquisitionSource::Consignment, Some(_)) => {
            return Err(DomainError::invalid(
                "cost",
                "must be absent for consignment: the consignor is paid out on sale",
            ))
        }
        (AcquisitionSource::Purchase | AcquisitionSource::TradeIn, None) => {
            return Err(DomainError::invalid("cost", "is required for a purchase or trade-in"))
        }
        _ => {}
    }
    if let Some(cost) = &cmd.cost {
        if cost.minor < 0 {
            return Err(DomainError::invalid("cost", "must not be negative"));
        }
        cmd.asking_price.same_currency(cost, "cost")?;
    }
    if cmd.attributes.len() > MAX_ATTRIBUTES {
        return Err(DomainError::invalid("attributes", format!("at most {MAX_ATTRIBUTES} entries")));
    }
    let mut attributes = BTreeMap::new();
    for (k, v) in &cmd.attributes {
        let k = Text::parse("attributes", k, 64)?.into_inner();
        let v = Text::parse("attributes", v, 500)?.into_inner();
        attributes.insert(k, v);
    }
    Ok(vec![ItemEvent::ItemAcquired {
        item_id: cmd.item_id,
        store_id: cmd.store_id,
        category: cmd.category,
        brand,
        model,
        reference_number,
        serial_number,
        cost: cmd.cost,
        asking_price: cmd.asking_price,
        source: cmd.source,
        attributes,
        acquired_at: cmd.acquired_at,
    }])
}

impl Aggregate for InventoryItem {
    type Command = ItemCommand;
    type Event = ItemEvent;
    const KIND: &'static str = "inventory item";

    fn decide(&self, command: &ItemCommand) -> Result<Vec<ItemEvent>, DomainError> {
        match (command, &self.state) {
            (ItemCommand::Acquire(_), Some(_)) => Err(DomainError::AlreadyExists { kind: Self::KIND }),
            (ItemCommand::Acquire(cmd), None) => acquire(cmd),
            (_, None) => Err(DomainError::NotFound { kind: Self::KIND }),
            (ItemCommand::ChangePrice(cmd), Some(item)) => {
                if matches!(item.status, ItemStatus::Sold | ItemStatus::Archived | ItemStatus::ReturnedToConsignor) {
                    return Err(DomainError::IllegalTransition {
                        action: "change the price",
                        state: item.status.as_str().to_owned(),
                    });
                }
                if !cmd.asking_price.is_positive() {
                    return Err(DomainError::invalid("askingPrice", "must be greater than zero"));
                }
                item.asking_price.same_currency(&cmd.asking_price, "askingPrice")?;
                let reason = optional_text("reason", &cmd.reason, 500)?;
                if cmd.asking_price == item.asking_price {
                    // Setting the same price is not a change: nothing happened, nothing is recorded.
                    return Ok(vec![]);
                }
                Ok(vec![ItemEvent::ItemPriceChanged {
                    item_id: item.id,
                    previous: item.asking_price,
                    asking_price: cmd.asking_price,
                    reason,
                }])
            }
        }
    }

    fn evolve(mut self, event: &ItemEvent) -> Self {
        match event {
            ItemEvent::ItemAcquired { item_id, store_id, asking_price, cost, .. } => {
                self.state = Some(ItemState {
                    id: *item_id,
                    store_id: *store_id,
                    status: ItemStatus::InStock,
                    asking_price: *asking_price,
                    cost: *cost,
                });
            }
            ItemEvent::ItemPriceChanged { asking_price, .. } => {
                if let Some(s) = self.state.as_mut() {
                    s.asking_price = *asking_price;
                }
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::given;
    use chrono::TimeZone;

    fn usd(amount: &str) -> Money {
        Money::parse("x", amount, "USD").unwrap()
    }

    fn acquire_cmd() -> AcquireItem {
        AcquireItem {
            item_id: ItemId::from_uuid(uuid::Uuid::from_u128(1)),
            store_id: StoreId::from_uuid(uuid::Uuid::from_u128(2)),
            category: Category::Watch,
            brand: " Rolex ".into(),
            model: "Submariner".into(),
            reference_number: Some("126610LN".into()),
            serial_number: Some("".into()),
            cost: Some(usd("9000.00")),
            asking_price: usd("12500.00"),
            source: AcquisitionSource::Purchase,
            attributes: BTreeMap::from([("dial".into(), "black".into())]),
            acquired_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        }
    }

    fn acquired() -> ItemEvent {
        let c = acquire_cmd();
        ItemEvent::ItemAcquired {
            item_id: c.item_id,
            store_id: c.store_id,
            category: c.category,
            brand: "Rolex".into(),
            model: c.model,
            reference_number: c.reference_number,
            serial_number: None,
            cost: c.cost,
            asking_price: c.asking_price,
            source: c.source,
            attributes: c.attributes,
            acquired_at: c.acquired_at,
        }
    }

    #[test]
    fn acquiring_a_new_item_records_it_in_stock_with_trimmed_fields() {
        let item = given::<InventoryItem>(&[]).when(ItemCommand::Acquire(acquire_cmd())).then_expect(&[acquired()]);
        assert_eq!(item.state.unwrap().status, ItemStatus::InStock);
    }

    #[test]
    fn acquiring_the_same_item_twice_is_rejected() {
        given::<InventoryItem>(&[acquired()]).when(ItemCommand::Acquire(acquire_cmd())).then_reject("ALREADY_EXISTS");
    }

    #[test]
    fn consignment_has_no_cost_and_purchase_requires_one() {
        let mut c = acquire_cmd();
        c.source = AcquisitionSource::Consignment;
        given::<InventoryItem>(&[]).when(ItemCommand::Acquire(c.clone())).then_reject("INVALID");
        c.cost = None;
        given::<InventoryItem>(&[]).when(ItemCommand::Acquire(c)).events();
        let mut p = acquire_cmd();
        p.cost = None;
        let e = given::<InventoryItem>(&[]).when(ItemCommand::Acquire(p)).then_reject("INVALID");
        assert_eq!(e.field(), Some("cost"));
    }

    #[test]
    fn cost_in_another_currency_than_the_price_is_rejected() {
        let mut c = acquire_cmd();
        c.cost = Some(Money::parse("x", "1.00", "EUR").unwrap());
        given::<InventoryItem>(&[]).when(ItemCommand::Acquire(c)).then_reject("CURRENCY_MISMATCH");
    }

    #[test]
    fn blank_brand_and_non_positive_price_are_rejected_with_the_field() {
        let mut c = acquire_cmd();
        c.brand = "  ".into();
        assert_eq!(
            given::<InventoryItem>(&[]).when(ItemCommand::Acquire(c)).then_reject("INVALID").field(),
            Some("brand")
        );
        let mut c = acquire_cmd();
        c.asking_price = usd("0");
        assert_eq!(
            given::<InventoryItem>(&[]).when(ItemCommand::Acquire(c)).then_reject("INVALID").field(),
            Some("askingPrice")
        );
    }

    #[test]
    fn changing_the_price_records_old_and_new_price() {
        let cmd = ChangeItemPrice { asking_price: usd("11900.00"), reason: Some("market".into()) };
        let item = given::<InventoryItem>(&[acquired()]).when(ItemCommand::ChangePrice(cmd)).then_expect(&[
            ItemEvent::ItemPriceChanged {
                item_id: acquire_cmd().item_id,
                previous: usd("12500.00"),
                asking_price: usd("11900.00"),
                reason: Some("market".into()),
            },
        ]);
        assert_eq!(item.state.unwrap().asking_price, usd("11900.00"));
    }

    #[test]
    fn setting_the_same_price_records_nothing() {
        let cmd = ChangeItemPrice { asking_price: usd("12500.00"), reason: None };
        given::<InventoryItem>(&[acquired()]).when(ItemCommand::ChangePrice(cmd)).then_expect(&[]);
    }

    #[test]
    fn changing_the_price_of_an_unknown_item_or_in_another_currency_is_rejected() {
        let cmd = ChangeItemPrice { asking_price: usd("1.00"), reason: None };
        given::<InventoryItem>(&[]).when(ItemCommand::ChangePrice(cmd)).then_reject("NOT_FOUND");
        let cmd = ChangeItemPrice { asking_price: Money::parse("x", "1.00", "EUR").unwrap(), reason: None };
        given::<InventoryItem>(&[acquired()]).when(ItemCommand::ChangePrice(cmd)).then_reject("CURRENCY_MISMATCH");
    }
}
