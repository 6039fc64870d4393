//! Sales: drafting, atomic confirmation (items SOLD, invoice number taken), payments with
//! idempotency keys, refunds, fulfilment, cancellation and returns.

use super::loaders::{CustomerLoader, ItemLoader};
use super::types::*;
use super::{
    command_context, connection, decode_cursor, outcome, page_size, parse_id, reach, read_after, require, run, state,
    viewer, Idem,
};
use crate::auth::{Permission, Viewer};
use crate::error::ApiError;
use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use commands::idempotency::Once;
use commands::CommandError;
use domain::sale::{
    CreateSale, RecordPayment, RefundPayment, Sale as SaleAggregate, SaleCommand, SaleLine as DomainLine, TradeIn,
};
use domain::{CustomerId, ItemId, Money, SaleId, StoreId, UserId};
use eventstore::Position;
use projections::rows::{SaleFilter, SaleRow};
use uuid::Uuid;

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "domain::sale::SaleStatus")]
pub enum SaleStatus {
    Draft,
    Confirmed,
    PartiallyPaid,
    Paid,
    Fulfilled,
    Cancelled,
    Returned,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "domain::sale::PaymentMethod")]
pub enum PaymentMethod {
    Card,
    Wire,
    Cash,
    Financing,
    TradeCredit,
    Other,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "domain::sale::PaymentKind")]
pub enum PaymentKind {
    Deposit,
    Payment,
}

/// A sale and, once confirmed, its invoice.
pub struct Sale(pub SaleRow);

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct SaleLine {
    pub item_id: ID,
    pub price: MoneyObject,
    pub discount: Option<MoneyObject>,
}

#[async_graphql::ComplexObject]
impl SaleLine {
    async fn item(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<InventoryItem>> {
        require(ctx, Permission::ReadInventory)?;
        let id = parse_id(&self.item_id, "itemId")?;
        let loader = ctx.data_unchecked::<DataLoader<ItemLoader>>();
        let row = loader.load_one(id).await.map_err(|e| ApiError::internal("item loader", e.as_ref()))?;
        Ok(row.map(InventoryItem))
    }
}

#[derive(SimpleObject)]
pub struct TradeInLine {
    pub item_id: ID,
    pub category: Category,
    pub brand: String,
    pub model: String,
    pub serial_number: Option<String>,
    pub credit: MoneyObject,
}

#[derive(SimpleObject)]
pub struct PaymentRecord {
    pub id: ID,
    /// DEPOSIT, PAYMENT or REFUND.
    pub kind: String,
    pub method: Option<String>,
    pub amount: MoneyObject,
    pub provider_reference: Option<String>,
    pub reason: Option<String>,
    pub at: Option<DateTime<Utc>>,
}

impl Sale {
    /// Name and address from the sale's draft event, read from the log (not kept in any read
    /// model, so nothing has to purge them).
    async fn buyer_identity(&self, ctx: &Context<'_>) -> async_graphql::Result<(Option<String>, Option<String>)> {
        require(ctx, Permission::ReadBuyerIdentity)?;
        let events = super::state(ctx)
            .store
            .read_stream(&domain::SaleId::from_uuid(self.0.id).stream_id(), 0)
            .await
            .map_err(|e| ApiError::internal("sale stream", &e))?;
        for e in events.iter().filter(|e| e.store_id == self.0.store_id) {
            if let Ok(domain::sale::SaleEvent::SaleDrafted { buyer_name, buyer_address, .. }) =
                domain::aggregate::decode(&e.event_type, &e.payload)
            {
                let clear = |p: Option<domain::Pii<String>>| p.and_then(|p| p.clear().cloned());
                return Ok((clear(buyer_name), clear(buyer_address)));
            }
        }
        Ok((None, None))
    }
}

#[Object]
impl Sale {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn status(&self) -> SaleStatus {
        self.0.status.into()
    }
    /// Per-store, gap-free, never reused; set on confirmation.
    async fn invoice_number(&self) -> Option<i64> {
        self.0.invoice_number
    }
    async fn customer_id(&self) -> Option<ID> {
        self.0.customer_id.map(|c| ID(c.to_string()))
    }
    /// The buyer's name as printed on the invoice (OWNER, COMPLIANCE). Kept under legal hold
    /// after the customer is erased, until its retention ends; `null` once that key is gone.
    async fn buyer_name(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(self.buyer_identity(ctx).await?.0)
    }
    /// The buyer's address as printed on the invoice (OWNER, COMPLIANCE), like `buyerName`.
    async fn buyer_address(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(self.buyer_identity(ctx).await?.1)
    }
    /// The staff member who made the sale.
    async fn salesperson_id(&self) -> Option<ID> {
        self.0.salesperson.map(|u| ID(u.to_string()))
    }
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Customer>> {
        let Some(id) = self.0.customer_id else { return Ok(None) };
        require(ctx, Permission::ReadCustomers)?;
        let loader = ctx.data_unchecked::<DataLoader<CustomerLoader>>();
        let row = loader.load_one(id).await.map_err(|e| ApiError::internal("customer loader", e.as_ref()))?;
        Ok(row.map(Customer))
    }
    async fn lines(&self) -> Vec<SaleLine> {
        serde_json::from_value::<Vec<DomainLine>>(self.0.lines.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|l| SaleLine {
                item_id: ID(l.item_id.to_string()),
                price: l.price.into(),
                discount: l.discount.map(Into::into),
            })
            .collect()
    }
    async fn trade_ins(&self) -> Vec<TradeInLine> {
        serde_json::from_value::<Vec<TradeIn>>(self.0.trade_ins.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|t| TradeInLine {
                item_id: ID(t.item_id.to_string()),
                category: t.category.into(),
                brand: t.brand,
                model: t.model,
                serial_number: t.serial_number,
                credit: t.credit.into(),
            })
            .collect()
    }
    /// Lines less discounts, plus tax, less trade-in credit.
    async fn total(&self) -> MoneyObject {
        self.0.total.into()
    }
    /// Paid less refunded.
    async fn amount_paid(&self) -> MoneyObject {
        Money::from_minor(self.0.paid.minor - self.0.refunded.minor, self.0.total.currency).into()
    }
    async fn amount_refunded(&self) -> MoneyObject {
        self.0.refunded.into()
    }
    async fn balance_due(&self) -> MoneyObject {
        let net = self.0.paid.minor - self.0.refunded.minor;
        Money::from_minor((self.0.total.minor - net).max(0), self.0.total.currency).into()
    }
    /// What is owed back to the customer: for a RETURNED sale, what was paid net of refunds.
    async fn refund_due(&self) -> MoneyObject {
        let net = if self.0.status == domain::sale::SaleStatus::Returned {
            self.0.paid.minor - self.0.refunded.minor
        } else {
            0
        };
        Money::from_minor(net.max(0), self.0.total.currency).into()
    }
    async fn payments(&self) -> Vec<PaymentRecord> {
        self.0
            .payments
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| {
                        let amount: Money = serde_json::from_value(p["amount"].clone()).ok()?;
                        Some(PaymentRecord {
                            id: ID(p["id"].as_str()?.to_owned()),
                            kind: p["kind"].as_str()?.to_owned(),
                            method: p["method"].as_str().map(str::to_owned),
                            amount: amount.into(),
                            provider_reference: p["providerReference"].as_str().map(str::to_owned),
                            reason: p["reason"].as_str().map(str::to_owned),
                            at: serde_json::from_value(p["at"].clone()).ok(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn version(&self) -> i64 {
        self.0.version
    }
}

pub type SaleConnection = Connection<String, Sale, ConnectionFields, EmptyFields>;

#[derive(InputObject, Default)]
pub struct SaleWhere {
    pub status: Option<SaleStatus>,
    pub customer_id: Option<ID>,
}

#[derive(Default)]
pub struct SaleQuery;

#[Object]
impl SaleQuery {
    async fn sales(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(name = "where")] filter: Option<SaleWhere>,
        min_position: Option<String>,
    ) -> async_graphql::Result<SaleConnection> {
        let v = viewer(ctx)?;
        reach(ctx, min_position.as_deref()).await?;
        let f = filter.unwrap_or_default();
        let sort_key = "CreatedAtfalse";
        let q = projections::rows::ListQuery {
            store_id: v.store_id,
            first: page_size(first)?,
            after: decode_cursor(sort_key, after.as_deref())?,
            filter: SaleFilter {
                status: f.status.map(domain::sale::SaleStatus::from),
                customer_id: f.customer_id.as_ref().map(|c| parse_id(c, "customerId")).transpose()?,
            },
            sort: (),
            descending: false,
            with_total: ctx.look_ahead().field("totalCount").exists(),
        };
        let page = state(ctx).read.sales(&q).await.map_err(ApiError::from)?;
        Ok(connection(page, sort_key, q.after.is_some(), Sale))
    }

    /// One sale; with `asOf`, as it was at that instant, rebuilt from its events.
    async fn sale(
        &self,
        ctx: &Context<'_>,
        id: ID,
        as_of: Option<DateTime<Utc>>,
        as_of_version: Option<i64>,
        min_position: Option<String>,
    ) -> async_graphql::Result<Option<Sale>> {
        let v = viewer(ctx)?;
        let id = parse_id(&id, "id")?;
        if let Some(at) = super::history_point(as_of, as_of_version)? {
            return Ok(super::history::sale_as_of(&state(ctx).store, v.store_id, SaleId::from_uuid(id), at)
                .await?
                .map(Sale));
        }
        reach(ctx, min_position.as_deref()).await?;
        Ok(state(ctx).read.sale(v.store_id, id).await.map_err(ApiError::from)?.map(Sale))
    }
}

#[derive(InputObject)]
pub struct SaleLineInput {
    pub item_id: ID,
    pub price: MoneyInput,
    pub discount: Option<MoneyInput>,
}

#[derive(InputObject)]
pub struct TradeInInput {
    pub category: Category,
    pub brand: String,
    pub model: String,
    pub serial_number: Option<String>,
    pub credit: MoneyInput,
}

#[derive(InputObject)]
pub struct CreateSaleInput {
    pub customer_id: Option<ID>,
    pub lines: Vec<SaleLineInput>,
    #[graphql(default)]
    pub trade_ins: Vec<TradeInInput>,
    pub tax: Option<MoneyInput>,
    /// Printed on the invoice; kept for tax/AML after an erasure request (needs a customer).
    pub buyer_name: Option<String>,
    pub buyer_address: Option<String>,
    /// A retried request with the same key returns the first result and writes nothing.
    pub idempotency_key: Option<String>,
}

#[derive(InputObject)]
pub struct SaleActionInput {
    pub sale_id: ID,
    pub reason: Option<String>,
    /// A retried request with the same key returns the first result and writes nothing.
    pub idempotency_key: Option<String>,
}

#[derive(InputObject)]
pub struct RecordPaymentInput {
    pub sale_id: ID,
    pub amount: MoneyInput,
    pub method: PaymentMethod,
    #[graphql(default_with = "PaymentKind::Payment")]
    pub kind: PaymentKind,
    /// The same key twice records one payment.
    pub idempotency_key: Option<String>,
    pub provider_reference: Option<String>,
}

#[derive(InputObject)]
pub struct RefundPaymentInput {
    pub sale_id: ID,
    pub amount: MoneyInput,
    pub idempotency_key: Option<String>,
    pub reason: Option<String>,
}

#[derive(SimpleObject, Default)]
pub struct SalePayload {
    pub sale: Option<Sale>,
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

fn rejected(errors: Vec<UserError>) -> SalePayload {
    SalePayload { errors, ..Default::default() }
}

async fn sale_payload(
    ctx: &Context<'_>,
    v: &Viewer,
    id: SaleId,
    position: Option<Position>,
) -> async_graphql::Result<SalePayload> {
    let sale = read_after(ctx, position, state(ctx).read.sale(v.store_id, id.as_uuid())).await?.map(Sale);
    Ok(SalePayload { sale, position: position.map(|p| p.to_string()), errors: vec![] })
}

fn sale_id(id: &ID) -> Result<SaleId, UserError> {
    Uuid::parse_str(id.as_str()).map(SaleId::from_uuid).map_err(|_| UserError::invalid_id("saleId"))
}

/// Maps a workflow result: rejections become payload errors, the rest GraphQL errors.
async fn finish(
    ctx: &Context<'_>,
    v: &Viewer,
    result: Result<Once, CommandError>,
) -> async_graphql::Result<SalePayload> {
    match outcome(result)? {
        Ok(once) => sale_payload(ctx, v, SaleId::from_uuid(once.entity_id), once.position).await,
        Err(errors) => Ok(rejected(errors)),
    }
}

async fn single(
    ctx: &Context<'_>,
    mutation: &'static str,
    id: &ID,
    reason: Option<String>,
    command: SaleCommand,
) -> async_graphql::Result<SalePayload> {
    let v = viewer(ctx)?;
    let id = match sale_id(id) {
        Ok(id) => id,
        Err(e) => return Ok(rejected(vec![e])),
    };
    let cctx = command_context(ctx, v, reason);
    // Payments and refunds carry their own, domain-level idempotency keys.
    let idem = Idem { key: None, mutation, entity: id.as_uuid() };
    match run::<SaleAggregate>(ctx, &cctx, idem, &id.stream_id(), &command).await? {
        Err(errors) => Ok(rejected(errors)),
        Ok(once) => sale_payload(ctx, v, id, once.position).await,
    }
}

/// Whether the caller may sell below an item's floor price (the permission table decides).
fn approve_discounts(v: &Viewer) -> bool {
    crate::auth::allows(v.role, Permission::ApproveDiscounts)
}

#[derive(Default)]
pub struct SaleMutation;

#[Object]
impl SaleMutation {
    /// Drafts a sale. Nothing is sold until `confirmSale`.
    async fn create_sale(&self, ctx: &Context<'_>, input: CreateSaleInput) -> async_graphql::Result<SalePayload> {
        let v = viewer(ctx)?;
        let mut errors = Vec::new();
        let customer_id = match input.customer_id.as_ref().map(|c| Uuid::parse_str(c.as_str())).transpose() {
            Ok(c) => c.map(CustomerId::from_uuid),
            Err(_) => {
                errors.push(UserError::invalid_id("customerId"));
                None
            }
        };
        let mut lines = Vec::new();
        for l in &input.lines {
            let item = Uuid::parse_str(l.item_id.as_str()).map(ItemId::from_uuid);
            let price = l.price.parse("lines.price");
            let discount = l.discount.as_ref().map(|d| d.parse("lines.discount")).transpose();
            match (item, price, discount) {
                (Ok(item_id), Ok(price), Ok(discount)) => lines.push(DomainLine { item_id, price, discount }),
                (Err(_), _, _) => errors.push(UserError::invalid_id("lines.itemId")),
                (_, Err(e), _) | (_, _, Err(e)) => errors.push((&e).into()),
            }
        }
        let mut trade_ins = Vec::new();
        for t in &input.trade_ins {
            match t.credit.parse("tradeIns.credit") {
                Ok(credit) => trade_ins.push(TradeIn {
                    item_id: ItemId::new_v7(),
                    category: t.category.into(),
                    brand: t.brand.clone(),
                    model: t.model.clone(),
                    serial_number: t.serial_number.clone(),
                    credit,
                }),
                Err(e) => errors.push((&e).into()),
            }
        }
        let tax = match input.tax.as_ref().map(|t| t.parse("tax")).transpose() {
            Ok(t) => t,
            Err(e) => {
                errors.push((&e).into());
                None
            }
        };
        if !errors.is_empty() {
            return Ok(rejected(errors));
        }
        let id = SaleId::new_v7();
        let cmd = CreateSale {
            sale_id: id,
            store_id: StoreId::from_uuid(v.store_id),
            customer_id,
            salesperson: Some(UserId::from_uuid(v.user_id)),
            lines,
            trade_ins,
            tax,
            buyer_name: input.buyer_name,
            buyer_address: input.buyer_address,
        };
        let cctx = command_context(ctx, v, None);
        let result = commands::sales::create_sale(
            &state(ctx).store,
            &cctx,
            cmd,
            approve_discounts(v),
            input.idempotency_key.as_deref(),
        )
        .await;
        finish(ctx, v, result).await
    }

    /// Confirms a draft: its items become SOLD and it takes the next invoice number, atomically.
    /// If another sale took an item first, this is rejected and nothing is written.
    async fn confirm_sale(&self, ctx: &Context<'_>, input: SaleActionInput) -> async_graphql::Result<SalePayload> {
        let v = viewer(ctx)?;
        let id = match sale_id(&input.sale_id) {
            Ok(id) => id,
            Err(e) => return Ok(rejected(vec![e])),
        };
        let cctx = command_context(ctx, v, input.reason);
        let result = commands::sales::confirm_sale(
            &state(ctx).store,
            &cctx,
            id,
            approve_discounts(v),
            input.idempotency_key.as_deref(),
        )
        .await;
        finish(ctx, v, result).await
    }

    async fn record_payment(&self, ctx: &Context<'_>, input: RecordPaymentInput) -> async_graphql::Result<SalePayload> {
        let amount = match input.amount.parse("amount") {
            Ok(a) => a,
            Err(e) => return Ok(rejected(vec![(&e).into()])),
        };
        let cmd = SaleCommand::RecordPayment(RecordPayment {
            payment_id: Uuid::now_v7(),
            amount,
            method: input.method.into(),
            kind: input.kind.into(),
            idempotency_key: input.idempotency_key,
            provider_reference: input.provider_reference,
        });
        single(ctx, "recordPayment", &input.sale_id, None, cmd).await
    }

    /// Refunds never exceed what was paid.
    async fn refund_payment(&self, ctx: &Context<'_>, input: RefundPaymentInput) -> async_graphql::Result<SalePayload> {
        let amount = match input.amount.parse("amount") {
            Ok(a) => a,
            Err(e) => return Ok(rejected(vec![(&e).into()])),
        };
        let cmd = SaleCommand::RefundPayment(RefundPayment {
            refund_id: Uuid::now_v7(),
            amount,
            idempotency_key: input.idempotency_key,
            reason: input.reason.clone(),
        });
        single(ctx, "refundPayment", &input.sale_id, input.reason, cmd).await
    }

    /// A paid sale is handed over.
    async fn fulfil_sale(&self, ctx: &Context<'_>, input: SaleActionInput) -> async_graphql::Result<SalePayload> {
        single(ctx, "fulfilSale", &input.sale_id, input.reason, SaleCommand::Fulfil).await
    }

    /// Cancels an unpaid sale; a confirmed one voids its invoice and restocks its items.
    async fn cancel_sale(&self, ctx: &Context<'_>, input: SaleActionInput) -> async_graphql::Result<SalePayload> {
        let v = viewer(ctx)?;
        let id = match sale_id(&input.sale_id) {
            Ok(id) => id,
            Err(e) => return Ok(rejected(vec![e])),
        };
        let cctx = command_context(ctx, v, input.reason.clone());
        let result =
            commands::sales::cancel_sale(&state(ctx).store, &cctx, id, input.reason, input.idempotency_key.as_deref())
                .await;
        finish(ctx, v, result).await
    }

    /// Takes a sale back: items RETURNED (to inspect and restock), refund due.
    async fn return_sale(&self, ctx: &Context<'_>, input: SaleActionInput) -> async_graphql::Result<SalePayload> {
        let v = viewer(ctx)?;
        let id = match sale_id(&input.sale_id) {
            Ok(id) => id,
            Err(e) => return Ok(rejected(vec![e])),
        };
        let cctx = command_context(ctx, v, input.reason.clone());
        let result =
            commands::sales::return_sale(&state(ctx).store, &cctx, id, input.reason, input.idempotency_key.as_deref())
                .await;
        finish(ctx, v, result).await
    }
}
