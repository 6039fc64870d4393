//! What a sale is made of and what can be asked of it: statuses, payment kinds, lines,
//! trade-ins and the commands.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SaleStatus {
    Draft,
    Confirmed,
    PartiallyPaid,
    Paid,
    Fulfilled,
    Cancelled,
    Returned,
}

impl SaleStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Draft => "DRAFT",
            Self::Confirmed => "CONFIRMED",
            Self::PartiallyPaid => "PARTIALLY_PAID",
            Self::Paid => "PAID",
            Self::Fulfilled => "FULFILLED",
            Self::Cancelled => "CANCELLED",
            Self::Returned => "RETURNED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentMethod {
    Card,
    Wire,
    Cash,
    Financing,
    TradeCredit,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentKind {
    Deposit,
    Payment,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleLine {
    pub item_id: ItemId,
    pub price: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount: Option<Money>,
}

impl SaleLine {
    /// What the piece sells for: the price less any discount.
    pub fn net(&self) -> Money {
        Money::from_minor(self.price.minor - self.discount.map_or(0, |d| d.minor), self.price.currency)
    }
}

/// An incoming piece taken in part-exchange; it becomes inventory (source TRADE_IN, cost =
/// credit) when the sale is confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeIn {
    pub item_id: ItemId,
    pub category: Category,
    pub brand: String,
    pub model: String,
    pub serial_number: Option<String>,
    pub credit: Money,
}

#[derive(Debug, Clone)]
pub struct CreateSale {
    pub sale_id: SaleId,
    pub store_id: StoreId,
    pub customer_id: Option<CustomerId>,
    pub salesperson: Option<UserId>,
    pub lines: Vec<SaleLine>,
    pub trade_ins: Vec<TradeIn>,
    pub tax: Option<Money>,
    /// Name and address printed on the invoice (legal-hold personal data; needs a customer).
    pub buyer_name: Option<String>,
    pub buyer_address: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RecordPayment {
    pub payment_id: Uuid,
    pub amount: Money,
    pub method: PaymentMethod,
    pub kind: PaymentKind,
    pub idempotency_key: Option<String>,
    pub provider_reference: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RefundPayment {
    pub refund_id: Uuid,
    pub amount: Money,
    pub idempotency_key: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
pub enum SaleCommand {
    Create(CreateSale),
    /// `invoice_number` comes from the store's invoice book, taken in the same append.
    Confirm {
        invoice_number: u64,
    },
    RecordPayment(RecordPayment),
    RefundPayment(RefundPayment),
    Fulfil,
    Cancel {
        reason: Option<String>,
    },
    Return {
        reason: Option<String>,
    },
}
