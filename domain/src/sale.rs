//! Sales, payments and invoice numbers.
//!
//! A sale is drafted with lines (items at a price, less discounts), trade-ins (incoming pieces
//! credited against the total) and tax, then confirmed — which, in the command layer, marks
//! every item SOLD and takes the next invoice number in the same atomic append. Payments are
//! deposits or payments, each with an optional idempotency key (the same key twice records one
//! payment); refunds never exceed what was paid. One currency per sale.
//!
//! The buyer's identity on the invoice is personal data kept for tax/AML after an erasure
//! request: it is encrypted under the customer's `legal_hold` key, not their `profile` key.

use crate::aggregate::{Aggregate, DomainEvent};
use crate::inventory::Category;
use crate::pii::KeyClass;
use crate::values::Text;
use crate::{CustomerId, DomainError, ItemId, Money, Pii, SaleId, StoreId, UserId};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod invoice;
pub use invoice::{InvoiceBook, InvoiceCommand, InvoiceEvent};
mod commands;
mod events;
pub use commands::*;
pub use events::*;

#[derive(Debug, Clone, Default)]
pub struct Sale {
    pub state: Option<SaleState>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SaleState {
    pub id: SaleId,
    pub store_id: StoreId,
    pub customer_id: Option<CustomerId>,
    pub status: SaleStatus,
    pub lines: Vec<SaleLine>,
    pub trade_ins: Vec<TradeIn>,
    pub total: Money,
    pub paid: i64,
    pub refunded: i64,
    pub invoice_number: Option<u64>,
    pub salesperson: Option<UserId>,
    /// Idempotency keys already used, with the payment or refund they recorded and a fingerprint
    /// of its input (a reuse with other input is refused).
    pub keys: Vec<(String, Uuid, String)>,
}

impl SaleState {
    /// Paid less refunded, in minor units.
    pub fn net_paid(&self) -> i64 {
        self.paid - self.refunded
    }
    pub fn balance_due(&self) -> i64 {
        (self.total.minor - self.net_paid()).max(0)
    }
    fn payment_status(&self) -> SaleStatus {
        payment_status(self.total.minor, self.net_paid())
    }
}

/// The status of a confirmed, open sale given its total and what was paid net of refunds.
/// Shared by the aggregate and the read model so both always agree.
pub fn payment_status(total_minor: i64, net_paid_minor: i64) -> SaleStatus {
    match net_paid_minor {
        n if n >= total_minor => SaleStatus::Paid,
        n if n > 0 => SaleStatus::PartiallyPaid,
        _ => SaleStatus::Confirmed,
    }
}

/// The status after a refund: open sales follow the balance, closed ones keep theirs.
pub fn status_after_refund(status: SaleStatus, total_minor: i64, net_paid_minor: i64) -> SaleStatus {
    match status {
        SaleStatus::Confirmed | SaleStatus::PartiallyPaid | SaleStatus::Paid => {
            payment_status(total_minor, net_paid_minor)
        }
        other => other,
    }
}

fn money_in(field: &'static str, m: &Money, currency: &Money) -> Result<(), DomainError> {
    currency.same_currency(m, field)
}

fn create(c: &CreateSale) -> Result<Vec<SaleEvent>, DomainError> {
    let first = c.lines.first().ok_or_else(|| DomainError::invalid("lines", "a sale needs at least one line"))?;
    let currency = first.price;
    let mut subtotal = Money::from_minor(0, currency.currency);
    let mut seen = Vec::new();
    for line in &c.lines {
        money_in("lines.price", &line.price, &currency)?;
        if !line.price.is_positive() {
            return Err(DomainError::invalid("lines.price", "must be greater than zero"));
        }
        if seen.contains(&line.item_id) {
            return Err(DomainError::invalid("lines.itemId", "an item appears twice"));
        }
        seen.push(line.item_id);
        let discount = line.discount.unwrap_or(Money::from_minor(0, currency.currency));
        money_in("lines.discount", &discount, &currency)?;
        if discount.minor < 0 || discount.minor > line.price.minor {
            return Err(DomainError::invalid("lines.discount", "must be between zero and the price"));
        }
        subtotal =
            subtotal.checked_add(Money::from_minor(line.price.minor - discount.minor, currency.currency), "lines")?;
    }
    let mut total = subtotal;
    if let Some(tax) = &c.tax {
        money_in("tax", tax, &currency)?;
        if tax.minor < 0 {
            return Err(DomainError::invalid("tax", "must not be negative"));
        }
        total = total.checked_add(*tax, "tax")?;
    }
    let mut trade_ins = Vec::new();
    for t in &c.trade_ins {
        money_in("tradeIns.credit", &t.credit, &currency)?;
        if !t.credit.is_positive() {
            return Err(DomainError::invalid("tradeIns.credit", "must be greater than zero"));
        }
        total = total.checked_add(Money::from_minor(-t.credit.minor, currency.currency), "tradeIns")?;
        trade_ins.push(TradeIn {
            brand: Text::parse("tradeIns.brand", &t.brand, 100)?.into_inner(),
            model: Text::parse("tradeIns.model", &t.model, 200)?.into_inner(),
            ..t.clone()
        });
    }
    if total.minor < 0 {
        return Err(DomainError::invalid("tradeIns", "trade-in credit exceeds the sale total"));
    }
    let legal_hold =
        |raw: &Option<String>, field: &'static str, max: usize| -> Result<Option<Pii<String>>, DomainError> {
            match raw.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(_) if c.customer_id.is_none() => {
                    Err(DomainError::invalid(field, "buyer identity needs a customer (it is erased with them)"))
                }
                Some(v) => {
                    Ok(Some(Pii::Clear { class: KeyClass::LegalHold, value: Text::parse(field, v, max)?.into_inner() }))
                }
            }
        };
    Ok(vec![SaleEvent::SaleDrafted {
        sale_id: c.sale_id,
        store_id: c.store_id,
        customer_id: c.customer_id,
        salesperson: c.salesperson,
        lines: c.lines.clone(),
        trade_ins,
        tax: c.tax,
        total,
        buyer_name: legal_hold(&c.buyer_name, "buyerName", 200)?,
        buyer_address: legal_hold(&c.buyer_address, "buyerAddress", 500)?,
    }])
}

fn illegal(action: &'static str, status: SaleStatus) -> DomainError {
    DomainError::IllegalTransition { action, state: status.as_str().to_owned() }
}

/// Whether a payment or refund key was used before: `Ok(true)` for the same request again,
/// `IdempotencyKeyReused` when the key came with a different amount, method or kind.
fn key_used(s: &SaleState, key: &Option<String>, fingerprint: &str) -> Result<bool, DomainError> {
    let Some(k) = key else { return Ok(false) };
    match s.keys.iter().find(|(used, _, _)| used == k) {
        None => Ok(false),
        Some((_, _, f)) if f == fingerprint => Ok(true),
        Some(_) => Err(DomainError::IdempotencyKeyReused),
    }
}

fn payment_fingerprint(amount: &Money, method: &PaymentMethod, kind: &PaymentKind) -> String {
    format!("payment:{}:{}:{method:?}:{kind:?}", amount.minor, amount.currency)
}

fn refund_fingerprint(amount: &Money) -> String {
    format!("refund:{}:{}", amount.minor, amount.currency)
}

impl Aggregate for Sale {
    type Command = SaleCommand;
    type Event = SaleEvent;
    const KIND: &'static str = "sale";

    fn decide(&self, command: &SaleCommand) -> Result<Vec<SaleEvent>, DomainError> {
        use SaleStatus::*;
        let s = match (&self.state, command) {
            (None, SaleCommand::Create(c)) => return create(c),
            (Some(_), SaleCommand::Create(_)) => return Err(DomainError::AlreadyExists { kind: Self::KIND }),
            (None, _) => return Err(DomainError::NotFound { kind: Self::KIND }),
            (Some(s), _) => s,
        };
        let id = s.id;
        Ok(match command {
            SaleCommand::Create(_) => unreachable!("handled above"),
            SaleCommand::Confirm { invoice_number } => {
                if s.status != Draft {
                    return Err(illegal("confirm", s.status));
                }
                vec![SaleEvent::SaleConfirmed {
                    sale_id: id,
                    invoice_number: *invoice_number,
                    customer_id: s.customer_id,
                    total: s.total,
                }]
            }
            SaleCommand::RecordPayment(p) => {
                if key_used(s, &p.idempotency_key, &payment_fingerprint(&p.amount, &p.method, &p.kind))? {
                    return Ok(vec![]); // the same request again: already recorded once
                }
                match (p.kind, s.status) {
                    (PaymentKind::Deposit, Draft | Confirmed | PartiallyPaid) => {}
                    (PaymentKind::Payment, Confirmed | PartiallyPaid) => {}
                    (_, other) => return Err(illegal("take a payment", other)),
                }
                s.total.same_currency(&p.amount, "amount")?;
                if !p.amount.is_positive() {
                    return Err(DomainError::invalid("amount", "must be greater than zero"));
                }
                if p.amount.minor > s.balance_due() {
                    return Err(DomainError::Amount { field: "amount", reason: "exceeds the balance due".into() });
                }
                vec![SaleEvent::PaymentRecorded {
                    sale_id: id,
                    payment_id: p.payment_id,
                    amount: p.amount,
                    method: p.method,
                    kind: p.kind,
                    idempotency_key: p.idempotency_key.clone(),
                    provider_reference: p.provider_reference.clone(),
                }]
            }
            SaleCommand::RefundPayment(r) => {
                if key_used(s, &r.idempotency_key, &refund_fingerprint(&r.amount))? {
                    return Ok(vec![]);
                }
                s.total.same_currency(&r.amount, "amount")?;
                if !r.amount.is_positive() {
                    return Err(DomainError::invalid("amount", "must be greater than zero"));
                }
                if r.amount.minor > s.net_paid() {
                    return Err(DomainError::Amount {
                        field: "amount",
                        reason: "a refund cannot exceed what was paid".into(),
                    });
                }
                vec![SaleEvent::PaymentRefunded {
                    sale_id: id,
                    refund_id: r.refund_id,
                    amount: r.amount,
                    idempotency_key: r.idempotency_key.clone(),
                    reason: r.reason.clone(),
                }]
            }
            SaleCommand::Fulfil => {
                if s.status != Paid {
                    return Err(illegal("fulfil", s.status));
                }
                vec![SaleEvent::SaleFulfilled { sale_id: id }]
            }
            SaleCommand::Cancel { reason } => {
                if !matches!(s.status, Draft | Confirmed | PartiallyPaid) {
                    return Err(illegal("cancel", s.status));
                }
                if s.net_paid() > 0 {
                    return Err(DomainError::Amount {
                        field: "saleId",
                        reason: "refund the payments before cancelling".into(),
                    });
                }
                vec![SaleEvent::SaleCancelled {
                    sale_id: id,
                    reason: reason.clone(),
                    voided_invoice: s.invoice_number,
                    customer_id: s.customer_id,
                    total: s.total,
                }]
            }
            SaleCommand::Return { reason } => {
                if !matches!(s.status, PartiallyPaid | Paid | Fulfilled) {
                    return Err(illegal("return", s.status));
                }
                let refund_due = Money::from_minor(s.net_paid(), s.total.currency);
                vec![SaleEvent::SaleReturned {
                    sale_id: id,
                    reason: reason.clone(),
                    refund_due,
                    customer_id: s.customer_id,
                    total: s.total,
                }]
            }
        })
    }

    fn evolve(mut self, event: &SaleEvent) -> Self {
        if let SaleEvent::SaleDrafted { sale_id, store_id, customer_id, lines, trade_ins, total, salesperson, .. } =
            event
        {
            self.state = Some(SaleState {
                id: *sale_id,
                store_id: *store_id,
                customer_id: *customer_id,
                status: SaleStatus::Draft,
                lines: lines.clone(),
                trade_ins: trade_ins.clone(),
                total: *total,
                paid: 0,
                refunded: 0,
                invoice_number: None,
                salesperson: *salesperson,
                keys: vec![],
            });
            return self;
        }
        let Some(s) = self.state.as_mut() else { return self };
        match event {
            SaleEvent::SaleDrafted { .. } => {}
            SaleEvent::SaleConfirmed { invoice_number, .. } => {
                s.invoice_number = Some(*invoice_number);
                s.status = s.payment_status();
            }
            SaleEvent::PaymentRecorded { payment_id, amount, idempotency_key, method, kind, .. } => {
                s.paid += amount.minor;
                if let Some(k) = idempotency_key {
                    s.keys.push((k.clone(), *payment_id, payment_fingerprint(amount, method, kind)));
                }
                if s.status != SaleStatus::Draft {
                    s.status = s.payment_status();
                }
            }
            SaleEvent::PaymentRefunded { refund_id, amount, idempotency_key, .. } => {
                s.refunded += amount.minor;
                if let Some(k) = idempotency_key {
                    s.keys.push((k.clone(), *refund_id, refund_fingerprint(amount)));
                }
                s.status = status_after_refund(s.status, s.total.minor, s.net_paid());
            }
            SaleEvent::SaleFulfilled { .. } => s.status = SaleStatus::Fulfilled,
            SaleEvent::SaleCancelled { .. } => s.status = SaleStatus::Cancelled,
            SaleEvent::SaleReturned { .. } => s.status = SaleStatus::Returned,
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::given;

    fn usd(s: &str) -> Money {
        Money::parse("x", s, "USD").unwrap()
    }

    fn create_cmd() -> CreateSale {
        CreateSale {
            sale_id: SaleId::from_uuid(Uuid::from_u128(1)),
            store_id: StoreId::from_uuid(Uuid::from_u128(2)),
            customer_id: Some(CustomerId::from_uuid(Uuid::from_u128(3))),
            salesperson: None,
            lines: vec![
                SaleLine {
                    item_id: ItemId::from_uuid(Uuid::from_u128(10)),
                    price: usd("1000.00"),
                    discount: Some(usd("100.00")),
                },
                SaleLine { item_id: ItemId::from_uuid(Uuid::from_u128(11)), price: usd("500.00"), discount: None },
            ],
            trade_ins: vec![],
            tax: Some(usd("50.00")),
            buyer_name: Some("Ann Buyer".into()),
            buyer_address: None,
        }
    }

    fn drafted() -> Vec<SaleEvent> {
        given::<Sale>(&[]).when(SaleCommand::Create(create_cmd())).events()
    }

    fn pay(amount: &str, key: Option<&str>, kind: PaymentKind) -> SaleCommand {
        SaleCommand::RecordPayment(RecordPayment {
            payment_id: Uuid::now_v7(),
            amount: usd(amount),
            method: PaymentMethod::Card,
            kind,
            idempotency_key: key.map(Into::into),
            provider_reference: None,
        })
    }

    fn confirmed() -> Vec<SaleEvent> {
        let mut e = drafted();
        e.push(SaleEvent::SaleConfirmed {
            sale_id: create_cmd().sale_id,
            invoice_number: 7,
            customer_id: create_cmd().customer_id,
            total: usd("1450.00"),
        });
        e
    }

    #[test]
    fn a_draft_totals_lines_less_discounts_plus_tax_and_puts_the_buyer_under_legal_hold() {
        let events = drafted();
        let SaleEvent::SaleDrafted { total, buyer_name, .. } = &events[0] else { panic!() };
        assert_eq!(*total, usd("1450.00"));
        assert_eq!(buyer_name.as_ref().unwrap().class(), KeyClass::LegalHold);
        assert_eq!(events[0].data_subject(), Some(Uuid::from_u128(3)));
    }

    #[test]
    fn mixing_currencies_in_one_sale_is_rejected() {
        let mut c = create_cmd();
        c.lines[1].price = Money::parse("x", "500.00", "EUR").unwrap();
        given::<Sale>(&[]).when(SaleCommand::Create(c)).then_reject("CURRENCY_MISMATCH");
        let mut c = create_cmd();
        c.tax = Some(Money::parse("x", "1.00", "CHF").unwrap());
        given::<Sale>(&[]).when(SaleCommand::Create(c)).then_reject("CURRENCY_MISMATCH");
    }

    #[test]
    fn empty_sales_duplicate_items_and_oversized_discounts_are_rejected() {
        let mut c = create_cmd();
        c.lines.clear();
        given::<Sale>(&[]).when(SaleCommand::Create(c)).then_reject("INVALID");
        let mut c = create_cmd();
        c.lines[1].item_id = c.lines[0].item_id;
        given::<Sale>(&[]).when(SaleCommand::Create(c)).then_reject("INVALID");
        let mut c = create_cmd();
        c.lines[0].discount = Some(usd("2000.00"));
        given::<Sale>(&[]).when(SaleCommand::Create(c)).then_reject("INVALID");
    }

    #[test]
    fn trade_in_credit_reduces_the_total_but_not_below_zero() {
        let mut c = create_cmd();
        let t = TradeIn {
            item_id: ItemId::from_uuid(Uuid::from_u128(20)),
            category: Category::Watch,
            brand: "Omega".into(),
            model: "Seamaster".into(),
            serial_number: None,
            credit: usd("400.00"),
        };
        c.trade_ins = vec![t.clone()];
        let e = given::<Sale>(&[]).when(SaleCommand::Create(c.clone())).events();
        let SaleEvent::SaleDrafted { total, .. } = &e[0] else { panic!() };
        assert_eq!(*total, usd("1050.00"));
        c.trade_ins = vec![TradeIn { credit: usd("5000.00"), ..t }];
        given::<Sale>(&[]).when(SaleCommand::Create(c)).then_reject("INVALID");
    }

    #[test]
    fn buyer_identity_needs_a_customer() {
        let mut c = create_cmd();
        c.customer_id = None;
        let e = given::<Sale>(&[]).when(SaleCommand::Create(c)).then_reject("INVALID");
        assert_eq!(e.field(), Some("buyerName"));
    }

    #[test]
    fn payments_move_confirmed_to_partially_paid_to_paid_then_fulfilled() {
        let s = given::<Sale>(&confirmed()).when(pay("450.00", None, PaymentKind::Payment)).events();
        let mut history = confirmed();
        history.extend(s);
        let state = Sale::replay(&history).state.unwrap();
        assert_eq!(state.status, SaleStatus::PartiallyPaid);
        assert_eq!(state.balance_due(), 100_000);
        given::<Sale>(&history).when(pay("1000.01", None, PaymentKind::Payment)).then_reject("AMOUNT_NOT_ALLOWED");
        history.extend(given::<Sale>(&history).when(pay("1000.00", None, PaymentKind::Payment)).events());
        assert_eq!(Sale::replay(&history).state.unwrap().status, SaleStatus::Paid);
        given::<Sale>(&history).when(pay("0.01", None, PaymentKind::Payment)).then_reject("ILLEGAL_TRANSITION");
        history.extend(given::<Sale>(&history).when(SaleCommand::Fulfil).events());
        assert_eq!(Sale::replay(&history).state.unwrap().status, SaleStatus::Fulfilled);
    }

    #[test]
    fn the_same_idempotency_key_records_one_payment() {
        let mut history = confirmed();
        history.extend(given::<Sale>(&history).when(pay("100.00", Some("k1"), PaymentKind::Payment)).events());
        given::<Sale>(&history).when(pay("100.00", Some("k1"), PaymentKind::Payment)).then_expect(&[]);
        assert_eq!(Sale::replay(&history).state.unwrap().paid, 10_000);
        // The same key with another amount is not a retry.
        given::<Sale>(&history)
            .when(pay("900.00", Some("k1"), PaymentKind::Payment))
            .then_reject("IDEMPOTENCY_KEY_REUSED");
    }

    #[test]
    fn refunds_never_exceed_what_was_paid() {
        let mut history = confirmed();
        history.extend(given::<Sale>(&history).when(pay("300.00", None, PaymentKind::Payment)).events());
        let refund = |amount: &str| {
            SaleCommand::RefundPayment(RefundPayment {
                refund_id: Uuid::now_v7(),
                amount: usd(amount),
                idempotency_key: None,
                reason: None,
            })
        };
        given::<Sale>(&history).when(refund("300.01")).then_reject("AMOUNT_NOT_ALLOWED");
        history.extend(given::<Sale>(&history).when(refund("200.00")).events());
        given::<Sale>(&history).when(refund("100.01")).then_reject("AMOUNT_NOT_ALLOWED");
        assert_eq!(Sale::replay(&history).state.unwrap().net_paid(), 10_000);
    }

    #[test]
    fn layaway_deposits_are_taken_on_a_draft_but_payments_only_once_confirmed() {
        let mut history = drafted();
        history.extend(given::<Sale>(&history).when(pay("200.00", None, PaymentKind::Deposit)).events());
        assert_eq!(Sale::replay(&history).state.unwrap().status, SaleStatus::Draft);
        given::<Sale>(&history).when(pay("200.00", None, PaymentKind::Payment)).then_reject("ILLEGAL_TRANSITION");
        history.push(SaleEvent::SaleConfirmed {
            sale_id: create_cmd().sale_id,
            invoice_number: 1,
            customer_id: None,
            total: usd("1450.00"),
        });
        assert_eq!(Sale::replay(&history).state.unwrap().status, SaleStatus::PartiallyPaid);
    }

    #[test]
    fn a_sale_is_confirmed_once_and_cancelled_only_without_payments() {
        given::<Sale>(&confirmed()).when(SaleCommand::Confirm { invoice_number: 8 }).then_reject("ILLEGAL_TRANSITION");
        let e = given::<Sale>(&confirmed()).when(SaleCommand::Cancel { reason: None }).events();
        assert!(matches!(&e[..], [SaleEvent::SaleCancelled { voided_invoice: Some(7), .. }]), "{e:?}");
        let mut paid = confirmed();
        paid.extend(given::<Sale>(&paid).when(pay("10.00", None, PaymentKind::Payment)).events());
        given::<Sale>(&paid).when(SaleCommand::Cancel { reason: None }).then_reject("AMOUNT_NOT_ALLOWED");
        let e = given::<Sale>(&paid).when(SaleCommand::Return { reason: None }).events();
        assert!(matches!(&e[0], SaleEvent::SaleReturned { refund_due, .. } if refund_due.minor == 1000));
    }

    mod replay {
        use super::*;
        use crate::aggregate::{decode, encode};
        use proptest::prelude::*;

        fn command() -> impl Strategy<Value = SaleCommand> {
            let key =
                || proptest::option::of(prop::sample::select(vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]));
            prop_oneof![
                (1u64..5).prop_map(|n| SaleCommand::Confirm { invoice_number: n }),
                (1i64..200_000, any::<bool>(), key()).prop_map(|(m, deposit, k)| SaleCommand::RecordPayment(
                    RecordPayment {
                        payment_id: Uuid::from_u128(m as u128),
                        amount: Money::from_minor(m, crate::Currency::parse("USD").unwrap()),
                        method: PaymentMethod::Cash,
                        kind: if deposit { PaymentKind::Deposit } else { PaymentKind::Payment },
                        idempotency_key: k,
                        provider_reference: None,
                    }
                )),
                (1i64..200_000, key()).prop_map(|(m, k)| SaleCommand::RefundPayment(RefundPayment {
                    refund_id: Uuid::from_u128(m as u128 + 1_000_000),
                    amount: Money::from_minor(m, crate::Currency::parse("USD").unwrap()),
                    idempotency_key: k,
                    reason: None,
                })),
                Just(SaleCommand::Fulfil),
                Just(SaleCommand::Cancel { reason: None }),
                Just(SaleCommand::Return { reason: None }),
            ]
        }

        proptest! {
            /// Any sequence of sale commands (rejected ones skipped) replays — from scratch and
            /// through stored JSON — to the state decided step by step, and the money rules
            /// hold at every step.
            #[test]
            fn any_sequence_of_sale_commands_replays_and_keeps_the_money_rules(cmds in proptest::collection::vec(command(), 0..40)) {
                let mut state = Sale::default();
                let mut log = Vec::new();
                for cmd in std::iter::once(SaleCommand::Create(create_cmd())).chain(cmds) {
                    if let Ok(events) = state.decide(&cmd) {
                        for e in events {
                            state = state.evolve(&e);
                            log.push(e);
                        }
                    }
                    let s = state.state.as_ref().unwrap();
                    prop_assert!(s.refunded <= s.paid, "refunded more than paid");
                    prop_assert!(s.net_paid() <= s.total.minor, "paid beyond the total");
                    if s.status == SaleStatus::Paid {
                        prop_assert_eq!(s.balance_due(), 0);
                    }
                }
                prop_assert_eq!(&Sale::replay(&log).state, &state.state);
                let stored: Vec<SaleEvent> = log.iter().map(|e| {
                    let enc = encode(e);
                    decode(&enc.event_type, &serde_json::from_str(&enc.payload.to_string()).unwrap()).unwrap()
                }).collect();
                prop_assert_eq!(&Sale::replay(&stored).state, &state.state);
            }
        }
    }
}
