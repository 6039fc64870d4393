//! What happened to a sale: its events, as the log stores them.

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum SaleEvent {
    SaleDrafted {
        sale_id: SaleId,
        store_id: StoreId,
        customer_id: Option<CustomerId>,
        salesperson: Option<UserId>,
        lines: Vec<SaleLine>,
        trade_ins: Vec<TradeIn>,
        tax: Option<Money>,
        total: Money,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        buyer_name: Option<Pii<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        buyer_address: Option<Pii<String>>,
    },
    /// Carries customer and total so read models (lifetime value) need no lookups.
    SaleConfirmed {
        sale_id: SaleId,
        invoice_number: u64,
        customer_id: Option<CustomerId>,
        total: Money,
    },
    PaymentRecorded {
        sale_id: SaleId,
        payment_id: Uuid,
        amount: Money,
        method: PaymentMethod,
        kind: PaymentKind,
        idempotency_key: Option<String>,
        provider_reference: Option<String>,
    },
    PaymentRefunded {
        sale_id: SaleId,
        refund_id: Uuid,
        amount: Money,
        idempotency_key: Option<String>,
        reason: Option<String>,
    },
    SaleFulfilled {
        sale_id: SaleId,
    },
    SaleCancelled {
        sale_id: SaleId,
        reason: Option<String>,
        /// The invoice number voided (never reused), if it had been confirmed.
        voided_invoice: Option<u64>,
        customer_id: Option<CustomerId>,
        total: Money,
    },
    SaleReturned {
        sale_id: SaleId,
        reason: Option<String>,
        refund_due: Money,
        customer_id: Option<CustomerId>,
        total: Money,
    },
}

impl DomainEvent for SaleEvent {
    fn data_subject(&self) -> Option<Uuid> {
        match self {
            Self::SaleDrafted { customer_id, .. } => customer_id.map(|c| c.as_uuid()),
            _ => None,
        }
    }
}
