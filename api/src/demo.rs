//! `serve --demo`: a demo store with sample inventory and customers, created once.

use crate::app::anyhow_free::Result;
use crate::app::AppState;
use commands::{execute, CommandContext};
use domain::customer::{Customer, CustomerCommand, RegisterCustomer};
use domain::inventory::{AcquireItem, AcquisitionSource, Category, InventoryItem, ItemCommand};
use domain::{CustomerId, ItemId, Money, StoreId};
use eventstore::Actor;

pub const DEMO_EMAIL: &str = "owner@demo.inventoryconnect.test";
pub const DEMO_PASSWORD: &str = "vintage-showroom-2026";

/// Seeds the demo store unless it exists. Returns whether it was created now.
pub async fn seed(state: &AppState) -> Result<bool> {
    if !state.read.staff_by_email(DEMO_EMAIL).await?.is_empty() {
        return Ok(false);
    }
    let (store_id, owner, mut last) = commands::stores::create_store(
        &state.store,
        &state.accounts,
        "demo-seed",
        "Demo Watches & Bags",
        DEMO_EMAIL,
        DEMO_PASSWORD,
    )
    .await?;
    let ctx = CommandContext {
        actor: Actor { kind: "user".into(), id: Some(owner.as_uuid()), role: Some("OWNER".into()) },
        ..CommandContext::system(store_id, "demo-seed")
    };
    let usd = |s: &str| Money::parse("amount", s, "USD").expect("demo amounts are valid");
    let items = [
        (
            Category::Watch,
            "Rolex",
            "Submariner Date",
            Some("126610LN"),
            "9800.00",
            "12500.00",
            AcquisitionSource::Purchase,
        ),
        (
            Category::Watch,
            "Omega",
            "Speedmaster Professional",
            Some("310.30.42.50.01.001"),
            "4200.00",
            "5900.00",
            AcquisitionSource::TradeIn,
        ),
        (
            Category::Watch,
            "Patek Philippe",
            "Nautilus",
            Some("5711/1A"),
            "98000.00",
            "129000.00",
            AcquisitionSource::Purchase,
        ),
        (Category::Handbag, "Hermès", "Birkin 30 Togo", None, "14000.00", "21500.00", AcquisitionSource::Purchase),
        (Category::Handbag, "Chanel", "Classic Flap Medium", None, "0", "7800.00", AcquisitionSource::Consignment),
    ];
    for (category, brand, model, reference, cost, price, source) in items {
        let item_id = ItemId::new_v7();
        let cmd = ItemCommand::Acquire(AcquireItem {
            item_id,
            store_id,
            category,
            brand: brand.into(),
            model: model.into(),
            reference_number: reference.map(Into::into),
            serial_number: None,
            cost: (source != AcquisitionSource::Consignment).then(|| usd(cost)),
            asking_price: usd(price),
            source,
            attributes: Default::default(),
            acquired_at: chrono::Utc::now(),
            floor_price: None,
            counterparty: None,
            vendor: None,
            consignor_payout: (source == AcquisitionSource::Consignment)
                .then_some(domain::inventory::ConsignorPayout::Percentage { basis_points: 8000 }),
            condition: Some(domain::inventory::ConditionGrade::Excellent),
            watch: None,
            handbag: None,
            notes: None,
        });
        last = last.max(
            execute::<InventoryItem>(&state.store, &ctx, &item_id.stream_id(), &cmd).await?.position.unwrap_or(last),
        );
    }
    for (name, email, tags) in [
        ("Avery Collector", "avery@example.com", vec!["vip", "rolex"]),
        ("Jordan Buyer", "jordan@example.com", vec!["handbags"]),
    ] {
        let customer_id = CustomerId::new_v7();
        let cmd = CustomerCommand::Register(RegisterCustomer {
            customer_id,
            store_id: StoreId::from_uuid(store_id.as_uuid()),
            name: name.into(),
            email: Some(email.into()),
            phone: None,
            notes: None,
            tags: tags.into_iter().map(Into::into).collect(),
            address: None,
            birthday: None,
            assigned_to: None,
            source: None,
            external_ids: Default::default(),
        });
        last = last.max(
            execute::<Customer>(&state.store, &ctx, &customer_id.stream_id(), &cmd).await?.position.unwrap_or(last),
        );
    }
    // Read your own writes: the login printed next must work at once.
    state.projections.wait_for(last, std::time::Duration::from_secs(60)).await?;
    Ok(true)
}
