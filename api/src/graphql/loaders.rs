//! Per-request DataLoaders: the items and customers a response refers to (sale lines, sale
//! customers) are read in one query per kind instead of one per row. Each loader is created
//! for one request and scoped to the caller's store, so it can never return another tenant's
//! rows.

use async_graphql::dataloader::{DataLoader, Loader};
use projections::rows::{CustomerRow, ItemRow};
use projections::{ProjectionError, ReadDb};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

pub struct ItemLoader {
    read: ReadDb,
    store_id: Uuid,
}

pub struct CustomerLoader {
    read: ReadDb,
    store_id: Uuid,
}

impl Loader<Uuid> for ItemLoader {
    type Value = ItemRow;
    type Error = Arc<ProjectionError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, ItemRow>, Self::Error> {
        let rows = self.read.items_by_ids(self.store_id, keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }
}

impl Loader<Uuid> for CustomerLoader {
    type Value = CustomerRow;
    type Error = Arc<ProjectionError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, CustomerRow>, Self::Error> {
        let rows = self.read.customers_by_ids(self.store_id, keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }
}

/// The loaders of one request by a caller of `store_id`.
pub fn for_request(read: &ReadDb, store_id: Uuid) -> (DataLoader<ItemLoader>, DataLoader<CustomerLoader>) {
    (
        DataLoader::new(ItemLoader { read: read.clone(), store_id }, tokio::spawn),
        DataLoader::new(CustomerLoader { read: read.clone(), store_id }, tokio::spawn),
    )
}
