//! GraphQL types: scalars, objects, inputs and payloads, mapped from read-model rows and domain
//! values. Resolvers stay thin; conversions live here.

use crate::auth::Permission;
use crate::graphql::require;
use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{
    Context, Enum, InputObject, InputValueError, InputValueResult, Object, Scalar, ScalarType, SimpleObject, Value, ID,
};
use chrono::{DateTime, Utc};
use domain::{DomainError, Money};
use projections::rows::{CustomerRow, ItemRow};

/// A decimal amount as a string (`"12500.00"`): exact, never a float.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal(pub String);

#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => Ok(Decimal(s)),
            other => Err(InputValueError::custom(format!(
                "Decimal must be a string such as \"12500.00\", not {}",
                match other {
                    Value::Number(_) => "a number (floats lose cents)",
                    _ => "this value",
                }
            ))),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

#[derive(SimpleObject, Debug, Clone)]
#[graphql(name = "Money")]
pub struct MoneyObject {
    pub amount: Decimal,
    pub currency: String,
}

impl From<Money> for MoneyObject {
    fn from(m: Money) -> Self {
        Self { amount: Decimal(m.amount_string()), currency: m.currency.code().to_owned() }
    }
}

#[derive(InputObject, Debug, Clone)]
pub struct MoneyInput {
    pub amount: Decimal,
    pub currency: String,
}

impl MoneyInput {
    pub fn parse(&self, field: &'static str) -> Result<Money, DomainError> {
        Money::parse(field, self.amount.0.trim(), self.currency.trim())
    }
}

/// A rejected input or command: data in the payload, not a GraphQL error.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct UserError {
    pub field: Option<String>,
    pub code: String,
    pub message: String,
}

impl From<&DomainError> for UserError {
    fn from(e: &DomainError) -> Self {
        Self { field: e.field().map(str::to_owned), code: e.code().to_owned(), message: e.to_string() }
    }
}

impl UserError {
    pub fn invalid_id(field: &str) -> Self {
        Self { field: Some(field.to_owned()), code: "INVALID".into(), message: format!("{field}: is not a valid id") }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "domain::inventory::Category")]
pub enum Category {
    Watch,
    Handbag,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "domain::inventory::AcquisitionSource")]
pub enum AcquisitionSource {
    Purchase,
    TradeIn,
    Consignment,
    MemoIn,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "domain::inventory::ItemStatus")]
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

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "domain::staff::Role")]
pub enum Role {
    Owner,
    Manager,
    Sales,
    Technician,
    Auditor,
    Compliance,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct Attribute {
    pub key: String,
    pub value: String,
}

#[derive(InputObject, Debug, Clone)]
pub struct AttributeInput {
    pub key: String,
    pub value: String,
}

/// One physical piece of inventory.
pub struct InventoryItem(pub ItemRow);

#[Object]
impl InventoryItem {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn status(&self) -> ItemStatus {
        self.0.status.into()
    }
    async fn category(&self) -> Category {
        self.0.category.into()
    }
    async fn brand(&self) -> &str {
        &self.0.brand
    }
    async fn model(&self) -> &str {
        &self.0.model
    }
    async fn reference_number(&self) -> Option<&str> {
        self.0.reference_number.as_deref()
    }
    async fn serial_number(&self) -> Option<&str> {
        self.0.serial_number.as_deref()
    }
    async fn asking_price(&self) -> MoneyObject {
        self.0.asking_price.into()
    }
    /// Acquisition cost. Only roles allowed to see costs (owner, manager, auditor); others get a
    /// `FORBIDDEN` error on this field and the rest of the item.
    async fn cost(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<MoneyObject>> {
        require(ctx, Permission::ViewCosts)?;
        Ok(self.0.cost.map(Into::into))
    }
    async fn acquisition_source(&self) -> AcquisitionSource {
        self.0.source.into()
    }
    async fn attributes(&self) -> Vec<Attribute> {
        self.0.attributes.iter().map(|(k, v)| Attribute { key: k.clone(), value: v.clone() }).collect()
    }
    async fn acquired_at(&self) -> DateTime<Utc> {
        self.0.acquired_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Number of events in the item's history.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// Lowest acceptable price (gated like `cost`).
    async fn floor_price(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<MoneyObject>> {
        require(ctx, Permission::ViewCosts)?;
        Ok(self.0.floor_price.map(Into::into))
    }
    /// Internal notes (gated like `cost`).
    async fn notes(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        require(ctx, Permission::ViewCosts)?;
        Ok(self.0.notes.as_deref())
    }
    /// Consignor payout terms, for consigned pieces (gated like `cost`).
    async fn consignor_payout(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ConsignorPayout>> {
        require(ctx, Permission::ViewCosts)?;
        Ok(detail::<domain::inventory::ConsignorPayout>(&self.0.details, "consignorPayout").map(|p| match p {
            domain::inventory::ConsignorPayout::Fixed { amount } => {
                ConsignorPayout { fixed_amount: Some(amount.into()), basis_points: None }
            }
            domain::inventory::ConsignorPayout::Percentage { basis_points } => {
                ConsignorPayout { fixed_amount: None, basis_points: Some(basis_points) }
            }
        }))
    }
    async fn condition(&self) -> Option<ConditionGrade> {
        self.0.condition.map(Into::into)
    }
    async fn watch(&self) -> Option<WatchDetails> {
        detail(&self.0.details, "watch")
    }
    async fn handbag(&self) -> Option<HandbagDetails> {
        detail(&self.0.details, "handbag")
    }
    async fn photos(&self) -> Vec<Photo> {
        detail(&self.0.details, "photos").unwrap_or_default()
    }
    async fn authentication(&self) -> Option<AuthenticationRecord> {
        detail::<domain::inventory::Authentication>(&self.0.details, "authentication").map(|a| AuthenticationRecord {
            status: a.status.into(),
            method: a.method,
            by: a.by,
            at: a.at,
            certificate: a.certificate,
        })
    }
    /// The customer (or vendor when absent) the piece came from.
    async fn counterparty_id(&self) -> Option<ID> {
        detail::<uuid::Uuid>(&self.0.details, "counterparty").map(|u| ID(u.to_string()))
    }
    /// The dealer, auction house or supplier it came from, when not a customer.
    async fn vendor(&self) -> Option<String> {
        detail(&self.0.details, "vendor")
    }
    /// The customer it is reserved for or out on memo to.
    async fn held_for_customer_id(&self) -> Option<ID> {
        self.0.held_for.map(|u| ID(u.to_string()))
    }
    /// The sale it was sold in, while sold.
    async fn sold_in_sale_id(&self) -> Option<ID> {
        self.0.sold_in.map(|u| ID(u.to_string()))
    }
}

/// A customer. Personal fields are `null` once the customer has been erased (`erased: true`).
pub struct Customer(pub CustomerRow);

#[Object]
impl Customer {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn notes(&self) -> Option<&str> {
        self.0.notes.as_deref()
    }
    async fn tags(&self) -> &[String] {
        &self.0.tags
    }
    async fn erased(&self) -> bool {
        self.0.erased
    }
    /// Total of confirmed sales that were not cancelled or returned, derived from the sales
    /// log (never entered); `null` before the first confirmed sale.
    async fn lifetime_value(&self) -> Option<MoneyObject> {
        self.0.lifetime_value.map(Into::into)
    }
    async fn order_count(&self) -> i64 {
        self.0.order_count
    }
    async fn address(&self) -> Option<&str> {
        self.0.address.as_deref()
    }
    async fn birthday(&self) -> Option<chrono::NaiveDate> {
        self.0.birthday
    }
    /// The staff member who looks after this customer.
    async fn assigned_to_id(&self) -> Option<ID> {
        self.0.assigned_to.map(|a| ID(a.to_string()))
    }
    /// How the customer came to the store.
    async fn source(&self) -> Option<&str> {
        self.0.source.as_deref()
    }
    /// Ids in other systems (Shopify, QuickBooks…).
    async fn external_ids(&self) -> Vec<ExternalId> {
        self.0.external_ids.iter().map(|(system, id)| ExternalId { system: system.clone(), id: id.clone() }).collect()
    }
    /// Set when this customer was merged into another: use that one.
    async fn merged_into_id(&self) -> Option<ID> {
        self.0.merged_into.map(|m| ID(m.to_string()))
    }
    async fn last_purchase_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_purchase_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn version(&self) -> i64 {
        self.0.version
    }
}

#[derive(SimpleObject, Debug, Clone, Default)]
pub struct ConnectionFields {
    pub total_count: i64,
}

pub type InventoryItemConnection = Connection<String, InventoryItem, ConnectionFields, EmptyFields>;
pub type CustomerConnection = Connection<String, Customer, ConnectionFields, EmptyFields>;

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
pub enum SortDirection {
    #[default]
    Asc,
    Desc,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum InventoryItemSortField {
    CreatedAt,
    AskingPrice,
    Brand,
}

#[derive(InputObject, Debug, Clone)]
pub struct InventoryItemSort {
    pub field: InventoryItemSortField,
    #[graphql(default)]
    pub direction: SortDirection,
}

#[derive(InputObject, Debug, Clone, Default)]
pub struct InventoryItemWhere {
    pub status: Option<ItemStatus>,
    pub category: Option<Category>,
    /// Exact brand, case-insensitive.
    pub brand: Option<String>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum CustomerSortField {
    CreatedAt,
    Name,
}

#[derive(InputObject, Debug, Clone)]
pub struct CustomerSort {
    pub field: CustomerSortField,
    #[graphql(default)]
    pub direction: SortDirection,
}

#[derive(InputObject, Debug, Clone, Default)]
pub struct CustomerWhere {
    pub tag: Option<String>,
    /// Exact email, case-insensitive.
    pub email: Option<String>,
    /// Substring of the name, case-insensitive.
    pub name_contains: Option<String>,
}

#[derive(InputObject, Debug, Clone)]
pub struct AcquisitionInput {
    pub source: AcquisitionSource,
    /// When the piece came in; defaults to now.
    pub acquired_at: Option<DateTime<Utc>>,
}

#[derive(InputObject, Debug, Clone)]
pub struct AcquireItemInput {
    pub category: Category,
    pub brand: String,
    pub model: String,
    pub reference_number: Option<String>,
    pub serial_number: Option<String>,
    /// Required for PURCHASE and TRADE_IN, absent for CONSIGNMENT.
    pub cost: Option<MoneyInput>,
    pub asking_price: MoneyInput,
    pub acquisition: AcquisitionInput,
    pub attributes: Option<Vec<AttributeInput>>,
    pub floor_price: Option<MoneyInput>,
    /// The customer the piece came from (trade-in, consignment, purchase from a private seller).
    pub counterparty_id: Option<ID>,
    /// The dealer, auction house or supplier it came from, when not a customer.
    pub vendor: Option<String>,
    /// Required for CONSIGNMENT.
    pub consignor_payout: Option<ConsignorPayoutInput>,
    pub condition: Option<ConditionGrade>,
    pub watch: Option<WatchDetails>,
    pub handbag: Option<HandbagDetails>,
    pub notes: Option<String>,
    /// A retried request with the same key returns the first result and writes nothing.
    pub idempotency_key: Option<String>,
}

#[derive(InputObject, Debug, Clone)]
pub struct ChangeItemPriceInput {
    pub item_id: ID,
    pub asking_price: MoneyInput,
    pub floor_price: Option<MoneyInput>,
    pub reason: Option<String>,
    pub idempotency_key: Option<String>,
}

#[derive(SimpleObject, Default)]
pub struct InventoryItemPayload {
    pub item: Option<InventoryItem>,
    /// Log position written (opaque); pass as `minPosition` to read your write.
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

/// An id of the customer in another system.
#[derive(SimpleObject, InputObject, Debug, Clone)]
#[graphql(input_name = "ExternalIdInput")]
pub struct ExternalId {
    /// e.g. `shopify`, `quickbooks`.
    pub system: String,
    pub id: String,
}

#[derive(InputObject, Debug, Clone)]
pub struct CreateCustomerInput {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub notes: Option<String>,
    pub tags: Option<Vec<String>>,
    pub address: Option<String>,
    pub birthday: Option<chrono::NaiveDate>,
    pub assigned_to_id: Option<ID>,
    pub source: Option<String>,
    /// Replaces the whole set when given.
    pub external_ids: Option<Vec<ExternalId>>,
    pub idempotency_key: Option<String>,
}

/// Omitted fields stay as they are; an empty string clears `email`, `phone` or `notes`.
#[derive(InputObject, Debug, Clone)]
pub struct UpdateCustomerInput {
    pub customer_id: ID,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub notes: Option<String>,
    pub tags: Option<Vec<String>>,
    pub address: Option<String>,
    pub birthday: Option<chrono::NaiveDate>,
    pub assigned_to_id: Option<ID>,
    pub source: Option<String>,
    /// Replaces the whole set when given.
    pub external_ids: Option<Vec<ExternalId>>,
    pub idempotency_key: Option<String>,
}

#[derive(SimpleObject, Default)]
pub struct CustomerPayload {
    pub customer: Option<Customer>,
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

// ---- Dealer domain: item details -------------------------------------------------------

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "domain::inventory::ConditionGrade")]
pub enum ConditionGrade {
    New,
    Unworn,
    Excellent,
    VeryGood,
    Good,
    Fair,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "domain::inventory::AuthenticationStatus")]
pub enum AuthenticationStatus {
    Pending,
    Authenticated,
    Failed,
}

/// Watch specifics.
#[derive(SimpleObject, InputObject, Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[graphql(input_name = "WatchDetailsInput")]
pub struct WatchDetails {
    pub year: Option<i32>,
    pub dial: Option<String>,
    pub bezel: Option<String>,
    pub bracelet: Option<String>,
    #[graphql(default)]
    pub has_box: bool,
    #[graphql(default)]
    pub has_papers: bool,
}

/// Handbag specifics.
#[derive(SimpleObject, InputObject, Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[graphql(input_name = "HandbagDetailsInput")]
pub struct HandbagDetails {
    pub material: Option<String>,
    pub hardware: Option<String>,
    pub colour: Option<String>,
    pub date_stamp: Option<String>,
    /// Box, dustbag, lock, key, strap, papers…
    #[graphql(default)]
    pub includes: Vec<String>,
}

/// Photo metadata; the bytes live in object storage under `key`.
#[derive(SimpleObject, InputObject, Debug, Clone, serde::Serialize, serde::Deserialize)]
#[graphql(input_name = "PhotoInput")]
pub struct Photo {
    pub key: String,
    pub order: u32,
    pub caption: Option<String>,
}

/// Converts between the API's and the domain's copies of a plain struct (same field names).
pub fn convert<A: serde::Serialize, B: serde::de::DeserializeOwned>(a: &A) -> Option<B> {
    serde_json::to_value(a).ok().and_then(|v| serde_json::from_value(v).ok())
}

#[derive(InputObject, Debug, Clone)]
#[graphql(name = "AuthenticationInput")]
pub struct AuthenticationInput {
    pub status: AuthenticationStatus,
    pub method: Option<String>,
    pub by: Option<String>,
    pub at: Option<DateTime<Utc>>,
    pub certificate: Option<String>,
}

impl AuthenticationInput {
    pub fn to_domain(&self) -> domain::inventory::Authentication {
        domain::inventory::Authentication {
            status: self.status.into(),
            method: self.method.clone(),
            by: self.by.clone(),
            at: self.at,
            certificate: self.certificate.clone(),
        }
    }
}

/// How a consignor is paid: a fixed amount or a share of the sale price.
#[derive(InputObject, Debug, Clone)]
pub struct ConsignorPayoutInput {
    pub fixed_amount: Option<MoneyInput>,
    /// Share of the sale price in basis points (8000 = 80%).
    pub basis_points: Option<u32>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct ConsignorPayout {
    pub fixed_amount: Option<MoneyObject>,
    pub basis_points: Option<u32>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct AuthenticationRecord {
    pub status: AuthenticationStatus,
    pub method: Option<String>,
    pub by: Option<String>,
    pub at: Option<DateTime<Utc>>,
    pub certificate: Option<String>,
}

fn detail<T: serde::de::DeserializeOwned>(details: &serde_json::Value, key: &str) -> Option<T> {
    details.get(key).filter(|v| !v.is_null()).and_then(|v| serde_json::from_value(v.clone()).ok())
}

#[derive(InputObject, Debug, Clone)]
pub struct MergeCustomersInput {
    /// The duplicate, merged away.
    pub customer_id: ID,
    /// The customer that remains.
    pub survivor_id: ID,
    pub idempotency_key: Option<String>,
}
