//! The store's invoice book: gap-free invoice numbers, voided but never reused.

use crate::aggregate::{Aggregate, DomainEvent};
use crate::{DomainError, SaleId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A store's invoice numbers. Its stream's version is the count of numbers issued, so taking a
/// number in the same atomic append as the sale confirmation makes numbering gap-free: a failed
/// confirmation takes no number, and a concurrent one conflicts and retries with the next.
#[derive(Debug, Clone, Default)]
pub struct InvoiceBook {
    pub last: u64,
}

#[derive(Debug, Clone)]
pub enum InvoiceCommand {
    Assign { sale_id: SaleId },
    Void { number: u64, sale_id: SaleId, reason: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum InvoiceEvent {
    InvoiceNumberAssigned {
        number: u64,
        sale_id: SaleId,
        at: Option<DateTime<Utc>>,
    },
    /// Voided, never deleted or reused.
    InvoiceVoided {
        number: u64,
        sale_id: SaleId,
        reason: Option<String>,
    },
}

impl DomainEvent for InvoiceEvent {}

impl Aggregate for InvoiceBook {
    type Command = InvoiceCommand;
    type Event = InvoiceEvent;
    const KIND: &'static str = "invoice book";
    /// Invoice numbers and sale ids only; one event per confirmed sale, for ever.
    const KEEP_STATE: bool = true;

    fn decide(&self, command: &InvoiceCommand) -> Result<Vec<InvoiceEvent>, DomainError> {
        Ok(match command {
            InvoiceCommand::Assign { sale_id } => {
                vec![InvoiceEvent::InvoiceNumberAssigned { number: self.last + 1, sale_id: *sale_id, at: None }]
            }
            InvoiceCommand::Void { number, sale_id, reason } => {
                if *number == 0 || *number > self.last {
                    return Err(DomainError::invalid("invoiceNumber", "was never issued"));
                }
                vec![InvoiceEvent::InvoiceVoided { number: *number, sale_id: *sale_id, reason: reason.clone() }]
            }
        })
    }

    fn evolve(mut self, event: &InvoiceEvent) -> Self {
        if let InvoiceEvent::InvoiceNumberAssigned { number, .. } = event {
            self.last = self.last.max(*number);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::given;
    use uuid::Uuid;

    #[test]
    fn invoice_numbers_count_up_from_one_and_voids_keep_the_number() {
        let sale = SaleId::from_uuid(Uuid::from_u128(1));
        let e = given::<InvoiceBook>(&[]).when(InvoiceCommand::Assign { sale_id: sale }).events();
        assert!(matches!(e[0], InvoiceEvent::InvoiceNumberAssigned { number: 1, .. }));
        let book = InvoiceBook::replay(&e);
        assert_eq!(book.last, 1);
        given::<InvoiceBook>(&e)
            .when(InvoiceCommand::Void { number: 2, sale_id: sale, reason: None })
            .then_reject("INVALID");
        let v = given::<InvoiceBook>(&e).when(InvoiceCommand::Void { number: 1, sale_id: sale, reason: None }).events();
        let mut all = e.clone();
        all.extend(v);
        assert_eq!(InvoiceBook::replay(&all).last, 1, "a void never frees a number");
    }
}
