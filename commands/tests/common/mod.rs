//! Fixtures shared by the command tests.
#![allow(dead_code)] // each test crate uses its own part

use commands::CommandContext;
use domain::inventory::{AcquireItem, Category, ItemCommand};
use domain::{ItemId, Money, StoreId};
use eventstore::testing::TestDatabase;
use eventstore::{Database, EventStore, MasterKey, Upcasters};

pub fn usd(s: &str) -> Money {
    Money::parse("x", s, "USD").unwrap()
}

/// A store on the test database and a command context for a new tenant.
pub async fn setup(tdb: &TestDatabase) -> (EventStore, CommandContext) {
    let db = Database::connect(&tdb.url).await.unwrap();
    (
        EventStore::new(&db, MasterKey::generate(), Upcasters::default()),
        CommandContext::system(StoreId::new_v7(), "test"),
    )
}

/// Acquiring a Rolex GMT-Master II as `id`, bought for 10,000 and asking 15,000.
pub fn acquire_command(ctx: &CommandContext, id: ItemId) -> ItemCommand {
    ItemCommand::Acquire(AcquireItem::purchase(
        id,
        ctx.store_id,
        Category::Watch,
        "Rolex",
        "GMT-Master II",
        Some(usd("10000.00")),
        usd("15000.00"),
    ))
}
