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

/// Parses a stored enum name (`"IN_STOCK"`) through the domain enum's serde form.
fn stored<T: serde::de::DeserializeOwned>(s: &str) -> async_graphql::Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
        tracing::error!(value = s, "read model holds an unknown enum value");
        crate::error::ApiError::Internal.into()
    })
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
    async fn status(&self) -> async_graphql::Result<ItemStatus> {
        Ok(stored::<domain::inventory::ItemStatus>(&self.0.status)?.into())
    }
    async fn category(&self) -> async_graphql::Result<Category> {
        Ok(stored::<domain::inventory::Category>(&self.0.category)?.into())
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
    async fn acquisition_source(&self) -> async_graphql::Result<AcquisitionSource> {
        Ok(stored::<domain::inventory::AcquisitionSource>(&self.0.source)?.into())
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
    /// Total of confirmed sales. `null` while the customer has none; sales are not recorded
    /// by this version yet, so it is always `null` for now.
    async fn lifetime_value(&self) -> Option<MoneyObject> {
        None
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn version(&self) -> i64 {
        self.0.version
    }
}

/// The logged-in staff member.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(name = "Viewer")]
pub struct ViewerObject {
    pub user_id: ID,
    pub store_id: ID,
    pub store_name: Option<String>,
    pub role: Role,
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
pub struct LoginInput {
    pub email: String,
    pub password: String,
}

#[derive(SimpleObject, Debug, Clone, Default)]
pub struct LoginPayload {
    pub token: Option<String>,
    pub viewer: Option<ViewerObject>,
    pub errors: Vec<UserError>,
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
}

#[derive(InputObject, Debug, Clone)]
pub struct ChangeItemPriceInput {
    pub item_id: ID,
    pub asking_price: MoneyInput,
    pub reason: Option<String>,
}

#[derive(SimpleObject, Default)]
pub struct InventoryItemPayload {
    pub item: Option<InventoryItem>,
    /// Log position written (opaque); pass as `minPosition` to read your write.
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

#[derive(InputObject, Debug, Clone)]
pub struct CreateCustomerInput {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub notes: Option<String>,
    pub tags: Option<Vec<String>>,
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
}

#[derive(SimpleObject, Default)]
pub struct CustomerPayload {
    pub customer: Option<Customer>,
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}
