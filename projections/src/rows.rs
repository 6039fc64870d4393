//! Read-model rows and query shapes, shared by both backends.

use chrono::{DateTime, Utc};
use domain::inventory::{AcquisitionSource, Category, ConditionGrade, ItemStatus};
use domain::sale::SaleStatus;
use domain::staff::Role;
use domain::Money;
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct ItemRow {
    pub id: Uuid,
    pub store_id: Uuid,
    pub status: ItemStatus,
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
    pub created_seq: i64,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub floor_price: Option<Money>,
    pub condition: Option<ConditionGrade>,
    /// Watch/handbag details, authentication, photos, consignor terms, counterparty (JSON).
    pub details: serde_json::Value,
    pub notes: Option<String>,
    pub held_for: Option<Uuid>,
    pub sold_in: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SaleRow {
    pub id: Uuid,
    pub store_id: Uuid,
    pub customer_id: Option<Uuid>,
    pub status: SaleStatus,
    pub invoice_number: Option<i64>,
    pub total: Money,
    pub paid: Money,
    pub refunded: Money,
    pub lines: serde_json::Value,
    pub trade_ins: serde_json::Value,
    pub payments: serde_json::Value,
    pub created_seq: i64,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub salesperson: Option<Uuid>,
}

#[derive(Debug, Clone, Default)]
pub struct SaleFilter {
    pub status: Option<SaleStatus>,
    pub customer_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRow {
    pub id: Uuid,
    pub store_id: Uuid,
    /// `None` when erased.
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub notes: Option<String>,
    pub tags: Vec<String>,
    pub erased: bool,
    pub created_seq: i64,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// Total of confirmed, not cancelled or returned, sales; `None` before the first.
    pub lifetime_value: Option<Money>,
    pub order_count: i64,
    pub last_purchase_at: Option<DateTime<Utc>>,
    pub address: Option<String>,
    pub birthday: Option<chrono::NaiveDate>,
    pub assigned_to: Option<Uuid>,
    pub source: Option<String>,
    pub external_ids: BTreeMap<String, String>,
    /// Set on a merged duplicate: the customer it was merged into.
    pub merged_into: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StaffRow {
    pub user_id: Uuid,
    pub store_id: Uuid,
    pub role: Role,
    /// Lower-cased; `None` once erased.
    pub email: Option<String>,
    pub name: Option<String>,
    pub active: bool,
    /// Microseconds since the Unix epoch.
    pub created_at: i64,
    /// The last change (microseconds since the Unix epoch).
    pub updated_at: i64,
}

/// A keyset cursor: the sort value of the last row seen and its id (the tie-breaker).
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pub value: CursorValue,
    pub id: Uuid,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CursorValue {
    Int(i64),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ItemSortField {
    #[default]
    CreatedAt,
    AskingPrice,
    Brand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CustomerSortField {
    #[default]
    CreatedAt,
    Name,
}

#[derive(Debug, Clone, Default)]
pub struct ItemFilter {
    pub status: Option<ItemStatus>,
    pub category: Option<Category>,
    pub brand: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    pub tag: Option<String>,
    /// Case-insensitive exact email.
    pub email: Option<String>,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ListQuery<F, S> {
    pub store_id: Uuid,
    pub first: usize,
    pub after: Option<Cursor>,
    pub filter: F,
    pub sort: S,
    pub descending: bool,
    /// Whether the caller wants `totalCount` (counted only when asked).
    pub with_total: bool,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub rows: Vec<(T, Cursor)>,
    pub has_next: bool,
    /// Present when asked for (`ListQuery::with_total`).
    pub total: Option<i64>,
}
