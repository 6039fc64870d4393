//! One physical piece of inventory: a watch or a handbag, from acquisition to sale.

use crate::aggregate::{Aggregate, DomainEvent};
use crate::values::Text;
use crate::{CustomerId, DomainError, ItemId, Money, SaleId, StoreId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod values;
pub use values::*;
mod commands;
mod events;
pub use commands::*;
pub use events::*;

/// The decision state of an item: only what the rules need.
#[derive(Debug, Clone, Default)]
pub struct InventoryItem {
    pub state: Option<ItemState>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ItemState {
    pub id: ItemId,
    pub store_id: StoreId,
    pub category: Category,
    pub source: AcquisitionSource,
    pub status: ItemStatus,
    pub asking_price: Money,
    pub floor_price: Option<Money>,
    pub cost: Option<Money>,
    /// The customer it is reserved for or out on memo to.
    pub held_for: Option<CustomerId>,
    /// When a reservation lapses (it then no longer blocks other buyers).
    pub held_until: Option<DateTime<Utc>>,
    /// The sale it was sold in, while sold.
    pub sold_in: Option<SaleId>,
}

const MAX_ATTRIBUTES: usize = 50;

fn optional_text(field: &'static str, raw: &Option<String>, max: usize) -> Result<Option<String>, DomainError> {
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => Text::parse(field, s, max).map(|t| Some(t.into_inner())),
    }
}

fn positive_price(field: &'static str, m: &Money) -> Result<(), DomainError> {
    if m.is_positive() {
        Ok(())
    } else {
        Err(DomainError::invalid(field, "must be greater than zero"))
    }
}

fn check_floor(floor: &Option<Money>, asking: &Money) -> Result<(), DomainError> {
    if let Some(f) = floor {
        asking.same_currency(f, "floorPrice")?;
        if f.minor < 0 || f.minor > asking.minor {
            return Err(DomainError::invalid("floorPrice", "must be between zero and the asking price"));
        }
    }
    Ok(())
}

fn check_details(
    category: Category,
    watch: &Option<WatchDetails>,
    handbag: &Option<HandbagDetails>,
) -> Result<(), DomainError> {
    match (category, watch, handbag) {
        (Category::Watch, _, Some(_)) => Err(DomainError::invalid("handbag", "a watch has no handbag details")),
        (Category::Handbag, Some(_), _) => Err(DomainError::invalid("watch", "a handbag has no watch details")),
        _ => Ok(()),
    }
}

fn check_photos(photos: &[Photo]) -> Result<(), DomainError> {
    if photos.len() > 50 {
        return Err(DomainError::invalid("photos", "at most 50 photos"));
    }
    for p in photos {
        Text::parse("photos", &p.key, 500)?;
    }
    Ok(())
}

fn acquire(cmd: &AcquireItem) -> Result<Vec<ItemEvent>, DomainError> {
    let brand = Text::parse("brand", &cmd.brand, 100)?.into_inner();
    let model = Text::parse("model", &cmd.model, 200)?.into_inner();
    let reference_number = optional_text("referenceNumber", &cmd.reference_number, 100)?;
    let serial_number = optional_text("serialNumber", &cmd.serial_number, 100)?;
    positive_price("askingPrice", &cmd.asking_price)?;
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
    match (cmd.source, &cmd.consignor_payout) {
        (AcquisitionSource::Consignment, None) => {
            return Err(DomainError::invalid("consignorPayout", "is required for consignment"))
        }
        (AcquisitionSource::Consignment, Some(ConsignorPayout::Fixed { amount })) => {
            cmd.asking_price.same_currency(amount, "consignorPayout")?;
            if amount.minor < 0 {
                return Err(DomainError::invalid("consignorPayout", "must not be negative"));
            }
        }
        (AcquisitionSource::Consignment, Some(ConsignorPayout::Percentage { basis_points }))
            if *basis_points > 10_000 =>
        {
            return Err(DomainError::invalid("consignorPayout", "a percentage is at most 100%"))
        }
        (AcquisitionSource::Consignment, Some(_)) => {}
        (_, Some(_)) => return Err(DomainError::invalid("consignorPayout", "only consignments have payout terms")),
        (_, None) => {}
    }
    if let Some(cost) = &cmd.cost {
        if cost.minor < 0 {
            return Err(DomainError::invalid("cost", "must not be negative"));
        }
        cmd.asking_price.same_currency(cost, "cost")?;
    }
    check_floor(&cmd.floor_price, &cmd.asking_price)?;
    check_details(cmd.category, &cmd.watch, &cmd.handbag)?;
    if cmd.counterparty.is_some() && cmd.vendor.as_deref().is_some_and(|v| !v.trim().is_empty()) {
        return Err(DomainError::invalid("vendor", "give a customer or a vendor as the counterparty, not both"));
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
        floor_price: cmd.floor_price,
        counterparty: cmd.counterparty,
        vendor: optional_text("vendor", &cmd.vendor, 200)?,
        consignor_payout: cmd.consignor_payout.clone(),
        condition: cmd.condition,
        watch: cmd.watch.clone(),
        handbag: cmd.handbag.clone(),
        notes: optional_text("notes", &cmd.notes, 5000)?,
    }])
}

fn illegal(action: &'static str, status: ItemStatus) -> DomainError {
    DomainError::IllegalTransition { action, state: status.as_str().to_owned() }
}

/// Requires one of `from`; otherwise the transition is illegal.
/// A reservation whose `until` has passed.
fn lapsed(item: &ItemState, now: DateTime<Utc>) -> bool {
    item.held_until.is_some_and(|u| u <= now)
}

fn require(item: &ItemState, action: &'static str, from: &[ItemStatus]) -> Result<(), DomainError> {
    if from.contains(&item.status) {
        Ok(())
    } else {
        Err(illegal(action, item.status))
    }
}

fn decide_existing(item: &ItemState, command: &ItemCommand) -> Result<Vec<ItemEvent>, DomainError> {
    use ItemStatus::*;
    let id = item.id;
    Ok(match command {
        ItemCommand::Acquire(_) => return Err(DomainError::AlreadyExists { kind: InventoryItem::KIND }),
        ItemCommand::ChangePrice(cmd) => {
            if matches!(item.status, Sold | Archived | ReturnedToConsignor) {
                return Err(illegal("change the price", item.status));
            }
            positive_price("askingPrice", &cmd.asking_price)?;
            item.asking_price.same_currency(&cmd.asking_price, "askingPrice")?;
            let floor = cmd.floor_price.or(item.floor_price);
            check_floor(&floor, &cmd.asking_price)?;
            let reason = optional_text("reason", &cmd.reason, 500)?;
            let floor_changed = cmd.floor_price.is_some() && cmd.floor_price != item.floor_price;
            if cmd.asking_price == item.asking_price && !floor_changed {
                // Setting the same price is not a change: nothing happened, nothing is recorded.
                return Ok(vec![]);
            }
            vec![ItemEvent::ItemPriceChanged {
                item_id: id,
                previous: item.asking_price,
                asking_price: cmd.asking_price,
                floor_price: if floor_changed { cmd.floor_price } else { None },
                reason,
            }]
        }
        ItemCommand::UpdateDetails(u) => {
            if let Some(p) = &u.photos {
                check_photos(p)?;
            }
            check_details(item.category, &u.watch, &u.handbag)?;
            let notes = match &u.notes {
                None => None,
                Some(n) if n.trim().is_empty() => Some(String::new()),
                Some(n) => optional_text("notes", &Some(n.clone()), 5000)?,
            };
            if u.condition.is_none()
                && u.authentication.is_none()
                && notes.is_none()
                && u.photos.is_none()
                && u.watch.is_none()
                && u.handbag.is_none()
            {
                return Ok(vec![]);
            }
            vec![ItemEvent::ItemDetailsUpdated {
                item_id: id,
                condition: u.condition,
                authentication: u.authentication.clone(),
                notes,
                photos: u.photos.clone(),
                watch: u.watch.clone(),
                handbag: u.handbag.clone(),
            }]
        }
        ItemCommand::Reserve { customer_id, until, now } => {
            if until.is_some_and(|u| u <= *now) {
                return Err(DomainError::invalid("until", "must be in the future"));
            }
            if !(item.status == Reserved && lapsed(item, *now)) {
                require(item, "reserve", &[InStock])?;
            }
            vec![ItemEvent::ItemReserved { item_id: id, customer_id: *customer_id, until: *until }]
        }
        ItemCommand::ReleaseReservation => {
            require(item, "release a reservation", &[Reserved])?;
            vec![ItemEvent::ItemReservationReleased { item_id: id }]
        }
        ItemCommand::SendOnMemo { customer_id, due, now } => {
            if *due <= *now {
                return Err(DomainError::invalid("due", "must be in the future"));
            }
            require(item, "send on memo", &[InStock])?;
            vec![ItemEvent::ItemSentOnMemo { item_id: id, customer_id: *customer_id, due: *due }]
        }
        ItemCommand::ReturnFromMemo => {
            require(item, "return from memo", &[OnMemo])?;
            vec![ItemEvent::ItemReturnedFromMemo { item_id: id }]
        }
        ItemCommand::SendToService { provider, reason } => {
            require(item, "send to service", &[InStock])?;
            vec![ItemEvent::ItemSentToService {
                item_id: id,
                provider: Text::parse("provider", provider, 200)?.into_inner(),
                reason: optional_text("reason", reason, 500)?,
            }]
        }
        ItemCommand::ReturnFromService => {
            require(item, "return from service", &[InService])?;
            vec![ItemEvent::ItemReturnedFromService { item_id: id }]
        }
        ItemCommand::ReturnToConsignor => {
            if item.source != AcquisitionSource::Consignment {
                return Err(DomainError::invalid("itemId", "only consigned pieces go back to a consignor"));
            }
            require(item, "return to the consignor", &[InStock, Returned])?;
            vec![ItemEvent::ItemReturnedToConsignor { item_id: id }]
        }
        ItemCommand::Archive => {
            require(item, "archive", &[InStock, Returned])?;
            vec![ItemEvent::ItemArchived { item_id: id }]
        }
        ItemCommand::MarkSold { sale_id, customer_id, price, below_floor_approved, now } => {
            match item.status {
                InStock => {}
                // A reservation or memo converts into a sale only for the same customer; a
                // lapsed reservation no longer blocks anyone.
                Reserved | OnMemo if item.held_for.is_some() && item.held_for == *customer_id => {}
                Reserved if lapsed(item, *now) => {}
                Reserved | OnMemo => return Err(DomainError::ReservedForAnother { kind: InventoryItem::KIND }),
                other => return Err(illegal("sell", other)),
            }
            if let Some(floor) = &item.floor_price {
                price.same_currency(floor, "price")?;
                if price.minor < floor.minor && !below_floor_approved {
                    return Err(DomainError::BelowFloorPrice { kind: InventoryItem::KIND });
                }
            }
            vec![ItemEvent::ItemSold { item_id: id, sale_id: *sale_id, customer_id: *customer_id }]
        }
        ItemCommand::MarkReturned { sale_id } => {
            require(item, "return from a sale", &[Sold])?;
            if item.sold_in != Some(*sale_id) {
                return Err(DomainError::invalid("saleId", "the item was not sold in this sale"));
            }
            vec![ItemEvent::ItemReturned { item_id: id, sale_id: *sale_id }]
        }
        ItemCommand::Restock => {
            require(item, "restock", &[Returned])?;
            vec![ItemEvent::ItemRestocked { item_id: id }]
        }
    })
}

impl Aggregate for InventoryItem {
    type Command = ItemCommand;
    type Event = ItemEvent;
    const KIND: &'static str = "inventory item";

    fn decide(&self, command: &ItemCommand) -> Result<Vec<ItemEvent>, DomainError> {
        match (&self.state, command) {
            (None, ItemCommand::Acquire(cmd)) => acquire(cmd),
            (None, _) => Err(DomainError::NotFound { kind: Self::KIND }),
            (Some(item), command) => decide_existing(item, command),
        }
    }

    fn evolve(mut self, event: &ItemEvent) -> Self {
        if let ItemEvent::ItemAcquired {
            item_id, store_id, category, source, asking_price, floor_price, cost, ..
        } = event
        {
            self.state = Some(ItemState {
                id: *item_id,
                store_id: *store_id,
                category: *category,
                source: *source,
                status: ItemStatus::InStock,
                asking_price: *asking_price,
                floor_price: *floor_price,
                cost: *cost,
                held_for: None,
                held_until: None,
                sold_in: None,
            });
            return self;
        }
        let Some(s) = self.state.as_mut() else { return self };
        if let Some(status) = event.new_status() {
            s.status = status;
        }
        match event {
            ItemEvent::ItemPriceChanged { asking_price, floor_price, .. } => {
                s.asking_price = *asking_price;
                if floor_price.is_some() {
                    s.floor_price = *floor_price;
                }
            }
            ItemEvent::ItemReserved { customer_id, until, .. } => {
                s.held_for = Some(*customer_id);
                s.held_until = *until;
            }
            ItemEvent::ItemSentOnMemo { customer_id, .. } => {
                s.held_for = Some(*customer_id);
                s.held_until = None;
            }
            ItemEvent::ItemSold { sale_id, .. } => {
                s.held_for = None;
                s.held_until = None;
                s.sold_in = Some(*sale_id);
            }
            ItemEvent::ItemReturned { .. } => s.sold_in = None,
            ItemEvent::ItemReservationReleased { .. } | ItemEvent::ItemReturnedFromMemo { .. } => {
                s.held_for = None;
                s.held_until = None;
            }
            _ => {}
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
            floor_price: None,
            counterparty: None,
            vendor: None,
            consignor_payout: None,
            condition: Some(ConditionGrade::Excellent),
            watch: Some(WatchDetails { year: Some(2021), has_box: true, has_papers: true, ..Default::default() }),
            handbag: None,
            notes: None,
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
            floor_price: None,
            counterparty: None,
            vendor: None,
            consignor_payout: None,
            condition: c.condition,
            watch: c.watch,
            handbag: None,
            notes: None,
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
        c.consignor_payout = Some(ConsignorPayout::Percentage { basis_points: 8000 });
        given::<InventoryItem>(&[]).when(ItemCommand::Acquire(c.clone())).then_reject("INVALID");
        c.cost = None;
        given::<InventoryItem>(&[]).when(ItemCommand::Acquire(c.clone())).events();
        c.consignor_payout = None;
        let e = given::<InventoryItem>(&[]).when(ItemCommand::Acquire(c)).then_reject("INVALID");
        assert_eq!(e.field(), Some("consignorPayout"));
        let mut p = acquire_cmd();
        p.cost = None;
        let e = given::<InventoryItem>(&[]).when(ItemCommand::Acquire(p)).then_reject("INVALID");
        assert_eq!(e.field(), Some("cost"));
    }

    #[test]
    fn a_piece_comes_from_a_customer_or_a_vendor_not_both() {
        let mut c = acquire_cmd();
        c.vendor = Some("Chrono Dealers Ltd".into());
        given::<InventoryItem>(&[]).when(ItemCommand::Acquire(c.clone())).events();
        c.counterparty = Some(CustomerId::from_uuid(uuid::Uuid::from_u128(5)));
        let e = given::<InventoryItem>(&[]).when(ItemCommand::Acquire(c)).then_reject("INVALID");
        assert_eq!(e.field(), Some("vendor"));
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
        let cmd = ChangeItemPrice { asking_price: usd("11900.00"), floor_price: None, reason: Some("market".into()) };
        let item = given::<InventoryItem>(&[acquired()]).when(ItemCommand::ChangePrice(cmd)).then_expect(&[
            ItemEvent::ItemPriceChanged {
                item_id: acquire_cmd().item_id,
                previous: usd("12500.00"),
                asking_price: usd("11900.00"),
                floor_price: None,
                reason: Some("market".into()),
            },
        ]);
        assert_eq!(item.state.unwrap().asking_price, usd("11900.00"));
    }

    #[test]
    fn setting_the_same_price_records_nothing() {
        let cmd = ChangeItemPrice { asking_price: usd("12500.00"), floor_price: None, reason: None };
        given::<InventoryItem>(&[acquired()]).when(ItemCommand::ChangePrice(cmd)).then_expect(&[]);
    }

    #[test]
    fn changing_the_price_of_an_unknown_item_or_in_another_currency_is_rejected() {
        let cmd = ChangeItemPrice { asking_price: usd("1.00"), floor_price: None, reason: None };
        given::<InventoryItem>(&[]).when(ItemCommand::ChangePrice(cmd)).then_reject("NOT_FOUND");
        let cmd = ChangeItemPrice {
            asking_price: Money::parse("x", "1.00", "EUR").unwrap(),
            floor_price: None,
            reason: None,
        };
        given::<InventoryItem>(&[acquired()]).when(ItemCommand::ChangePrice(cmd)).then_reject("CURRENCY_MISMATCH");
    }

    fn cust(n: u128) -> CustomerId {
        CustomerId::from_uuid(uuid::Uuid::from_u128(100 + n))
    }

    fn sale(n: u128) -> SaleId {
        SaleId::from_uuid(uuid::Uuid::from_u128(200 + n))
    }

    /// "Now" in these tests.
    pub(super) fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    /// Sold at the asking price, now.
    pub(super) fn sell(sale_id: SaleId, customer_id: Option<CustomerId>) -> ItemCommand {
        ItemCommand::MarkSold { sale_id, customer_id, price: usd("12500.00"), below_floor_approved: false, now: t0() }
    }

    #[test]
    fn below_the_floor_only_with_approval() {
        let floor = ChangeItemPrice { asking_price: usd("12500.00"), floor_price: Some(usd("11000.00")), reason: None };
        let (h, _) = then_status(&[acquired()], ItemCommand::ChangePrice(floor));
        let cheap = |approved| ItemCommand::MarkSold {
            sale_id: sale(1),
            customer_id: None,
            price: usd("100.00"),
            below_floor_approved: approved,
            now: t0(),
        };
        given::<InventoryItem>(&h).when(cheap(false)).then_reject("BELOW_FLOOR_PRICE");
        let (_, status) = then_status(&h, cheap(true));
        assert_eq!(status, ItemStatus::Sold);
        // At the floor is fine without approval.
        let at_floor = ItemCommand::MarkSold {
            sale_id: sale(1),
            customer_id: None,
            price: usd("11000.00"),
            below_floor_approved: false,
            now: t0(),
        };
        then_status(&h, at_floor);
    }

    #[test]
    fn a_lapsed_reservation_stops_blocking_and_holds_cannot_start_in_the_past() {
        let until = t0() + chrono::Duration::days(2);
        let (h, _) =
            then_status(&[acquired()], ItemCommand::Reserve { customer_id: cust(1), until: Some(until), now: t0() });
        let sell_at = |at| ItemCommand::MarkSold {
            sale_id: sale(1),
            customer_id: Some(cust(2)),
            price: usd("12500.00"),
            below_floor_approved: false,
            now: at,
        };
        given::<InventoryItem>(&h)
            .when(sell_at(t0() + chrono::Duration::days(1)))
            .then_reject("RESERVED_FOR_ANOTHER_CUSTOMER");
        let (_, status) = then_status(&h, sell_at(until + chrono::Duration::seconds(1)));
        assert_eq!(status, ItemStatus::Sold, "the reservation lapsed");
        let later = until + chrono::Duration::hours(1);
        then_status(&h, ItemCommand::Reserve { customer_id: cust(2), until: None, now: later });
        given::<InventoryItem>(&[acquired()])
            .when(ItemCommand::Reserve {
                customer_id: cust(1),
                until: Some(t0() - chrono::Duration::seconds(1)),
                now: t0(),
            })
            .then_reject("INVALID");
        given::<InventoryItem>(&[acquired()])
            .when(ItemCommand::SendOnMemo { customer_id: cust(1), due: t0(), now: t0() })
            .then_reject("INVALID");
    }

    /// Runs `cmd` on `history`; returns the extended history and the resulting status.
    fn then_status(history: &[ItemEvent], cmd: ItemCommand) -> (Vec<ItemEvent>, ItemStatus) {
        let new = given::<InventoryItem>(history).when(cmd).events();
        let all: Vec<_> = history.iter().cloned().chain(new).collect();
        let status = InventoryItem::replay(&all).state.unwrap().status;
        (all, status)
    }

    #[test]
    fn a_reserved_item_sells_only_to_the_customer_it_is_reserved_for() {
        let (h, status) =
            then_status(&[acquired()], ItemCommand::Reserve { customer_id: cust(1), until: None, now: t0() });
        assert_eq!(status, ItemStatus::Reserved);
        given::<InventoryItem>(&h).when(sell(sale(1), Some(cust(2)))).then_reject("RESERVED_FOR_ANOTHER_CUSTOMER");
        given::<InventoryItem>(&h).when(sell(sale(1), None)).then_reject("RESERVED_FOR_ANOTHER_CUSTOMER");
        let (_, status) = then_status(&h, sell(sale(1), Some(cust(1))));
        assert_eq!(status, ItemStatus::Sold);
        given::<InventoryItem>(&h)
            .when(ItemCommand::Reserve { customer_id: cust(2), until: None, now: t0() })
            .then_reject("ILLEGAL_TRANSITION");
    }

    #[test]
    fn a_sold_item_cannot_be_sold_again_and_returns_only_from_its_own_sale() {
        let (h, _) = then_status(&[acquired()], sell(sale(1), None));
        given::<InventoryItem>(&h).when(sell(sale(2), None)).then_reject("ILLEGAL_TRANSITION");
        given::<InventoryItem>(&h).when(ItemCommand::MarkReturned { sale_id: sale(2) }).then_reject("INVALID");
        let (h, status) = then_status(&h, ItemCommand::MarkReturned { sale_id: sale(1) });
        assert_eq!(status, ItemStatus::Returned);
        let (_, status) = then_status(&h, ItemCommand::Restock);
        assert_eq!(status, ItemStatus::InStock);
    }

    #[test]
    fn memo_and_service_go_out_and_come_back() {
        let due = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
        let (h, status) = then_status(&[acquired()], ItemCommand::SendOnMemo { customer_id: cust(1), due, now: t0() });
        assert_eq!(status, ItemStatus::OnMemo);
        given::<InventoryItem>(&h)
            .when(ItemCommand::SendToService { provider: "Rolex SC".into(), reason: None })
            .then_reject("ILLEGAL_TRANSITION");
        let (h, status) = then_status(&h, ItemCommand::ReturnFromMemo);
        assert_eq!(status, ItemStatus::InStock);
        let (h, status) =
            then_status(&h, ItemCommand::SendToService { provider: "Rolex SC".into(), reason: Some("service".into()) });
        assert_eq!(status, ItemStatus::InService);
        given::<InventoryItem>(&h).when(sell(sale(1), None)).then_reject("ILLEGAL_TRANSITION");
        let (_, status) = then_status(&h, ItemCommand::ReturnFromService);
        assert_eq!(status, ItemStatus::InStock);
    }

    #[test]
    fn only_consigned_pieces_return_to_the_consignor_and_archived_pieces_stay_archived() {
        given::<InventoryItem>(&[acquired()]).when(ItemCommand::ReturnToConsignor).then_reject("INVALID");
        let mut c = acquire_cmd();
        c.source = AcquisitionSource::Consignment;
        c.cost = None;
        c.consignor_payout = Some(ConsignorPayout::Percentage { basis_points: 7500 });
        let consigned = given::<InventoryItem>(&[]).when(ItemCommand::Acquire(c)).events();
        let (_, status) = then_status(&consigned, ItemCommand::ReturnToConsignor);
        assert_eq!(status, ItemStatus::ReturnedToConsignor);
        let (h, _) = then_status(&[acquired()], ItemCommand::Archive);
        given::<InventoryItem>(&h)
            .when(ItemCommand::Reserve { customer_id: cust(1), until: None, now: t0() })
            .then_reject("ILLEGAL_TRANSITION");
        let cmd = ChangeItemPrice { asking_price: usd("1.00"), floor_price: None, reason: None };
        given::<InventoryItem>(&h).when(ItemCommand::ChangePrice(cmd)).then_reject("ILLEGAL_TRANSITION");
    }

    #[test]
    fn the_floor_price_never_exceeds_the_asking_price_and_handbag_details_do_not_fit_a_watch() {
        let cmd = ChangeItemPrice { asking_price: usd("1000.00"), floor_price: Some(usd("1000.01")), reason: None };
        given::<InventoryItem>(&[acquired()]).when(ItemCommand::ChangePrice(cmd)).then_reject("INVALID");
        let u = UpdateItemDetails { handbag: Some(HandbagDetails::default()), ..Default::default() };
        given::<InventoryItem>(&[acquired()]).when(ItemCommand::UpdateDetails(u)).then_reject("INVALID");
        let u = UpdateItemDetails {
            authentication: Some(Authentication {
                status: AuthenticationStatus::Authenticated,
                method: Some("movement inspection".into()),
                by: Some("In-house watchmaker".into()),
                at: None,
                certificate: Some("CERT-1".into()),
            }),
            ..Default::default()
        };
        assert_eq!(given::<InventoryItem>(&[acquired()]).when(ItemCommand::UpdateDetails(u)).events().len(), 1);
    }

    mod replay {
        use super::*;
        use crate::aggregate::{decode, encode};
        use proptest::prelude::*;

        fn command() -> impl Strategy<Value = ItemCommand> {
            let c = || (0u128..3).prop_map(cust);
            let s = || (0u128..3).prop_map(sale);
            prop_oneof![
                (1i64..5_000_000).prop_map(|m| ItemCommand::ChangePrice(ChangeItemPrice {
                    asking_price: Money::from_minor(m, crate::Currency::parse("USD").unwrap()),
                    floor_price: None,
                    reason: None,
                })),
                c().prop_map(|customer_id| ItemCommand::Reserve { customer_id, until: None, now: t0() }),
                Just(ItemCommand::ReleaseReservation),
                c().prop_map(|customer_id| ItemCommand::SendOnMemo {
                    customer_id,
                    due: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
                    now: t0(),
                }),
                Just(ItemCommand::ReturnFromMemo),
                Just(ItemCommand::SendToService { provider: "Service centre".into(), reason: None }),
                Just(ItemCommand::ReturnFromService),
                Just(ItemCommand::Archive),
                (s(), proptest::option::of(c())).prop_map(|(sale_id, customer_id)| sell(sale_id, customer_id)),
                s().prop_map(|sale_id| ItemCommand::MarkReturned { sale_id }),
                Just(ItemCommand::Restock),
            ]
        }

        proptest! {
            /// Whatever commands arrive, the accepted ones' events replay — from scratch, and
            /// after a round trip through their stored JSON form — to exactly the state that
            /// deciding step by step produced.
            #[test]
            fn any_sequence_of_commands_replays_to_the_same_state(cmds in proptest::collection::vec(command(), 0..40)) {
                let mut state = InventoryItem::default();
                let mut log = Vec::new();
                for cmd in std::iter::once(ItemCommand::Acquire(acquire_cmd())).chain(cmds) {
                    if let Ok(events) = state.decide(&cmd) {
                        for e in events {
                            state = state.evolve(&e);
                            log.push(e);
                        }
                    }
                }
                let replayed = InventoryItem::replay(&log);
                prop_assert_eq!(&replayed.state, &state.state);
                let stored: Vec<ItemEvent> = log.iter().map(|e| {
                    let enc = encode(e);
                    let text = enc.payload.to_string();
                    decode(&enc.event_type, &serde_json::from_str(&text).unwrap()).unwrap()
                }).collect();
                prop_assert_eq!(&InventoryItem::replay(&stored).state, &state.state);
                // The item is sold at most once per status cycle: never two sales without a return between.
                let mut sold = false;
                for e in &log {
                    match e {
                        ItemEvent::ItemSold { .. } => { prop_assert!(!sold, "sold twice"); sold = true; }
                        ItemEvent::ItemReturned { .. } => sold = false,
                        _ => {}
                    }
                }
            }
        }
    }
}
