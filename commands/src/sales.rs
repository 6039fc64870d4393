//! Sale workflows that span aggregates. Each runs as one [`MultiDecision`]: the sale, the
//! store's invoice book and every item involved are loaded, decided on, and appended in one
//! transaction with the versions they were loaded at. If any of them changed meanwhile (another
//! sale took the item, another confirmation took the invoice number) the append conflicts and
//! the whole decision is made again on fresh state — so an item is never sold twice and invoice
//! numbers have no gaps.

use crate::idempotency::{once, Once};
use crate::{CommandContext, CommandError};
use domain::customer::Customer;
use domain::ids::invoice_stream;
use domain::inventory::{AcquireItem, AcquisitionSource, InventoryItem, ItemCommand};
use domain::sale::{CreateSale, InvoiceBook, InvoiceCommand, Sale, SaleCommand, SaleState, SaleStatus};
use domain::{Aggregate, DomainError, SaleId};
use eventstore::EventStore;

/// Drafts a sale after checking that its customer and items exist in this store, and that no
/// line is below its item's floor price unless the seller may approve discounts
/// (`approve_discounts`; checked again at confirmation, where it decides).
pub async fn create_sale(
    store: &EventStore,
    ctx: &CommandContext,
    cmd: CreateSale,
    approve_discounts: bool,
    key: Option<&str>,
) -> Result<Once, CommandError> {
    let cmd = &cmd;
    once(store, ctx, key, "createSale", cmd.sale_id.as_uuid(), |mut d| async move {
        for line in &cmd.lines {
            crate::references::item(store, ctx, line.item_id, "lines.itemId").await?;
            let (item, _) = crate::load::<InventoryItem>(store, ctx.store_id, &line.item_id.stream_id()).await?;
            let floor = item.state.and_then(|i| i.floor_price);
            if let Some(floor) = floor {
                if floor.currency == line.price.currency && line.net().minor < floor.minor && !approve_discounts {
                    return Err(DomainError::BelowFloorPrice { kind: InventoryItem::KIND }.into());
                }
            }
        }
        if let Some(customer) = cmd.customer_id {
            crate::references::customer(store, ctx, customer, "customerId").await?;
            let (c, _) = crate::load::<Customer>(store, ctx.store_id, &customer.stream_id()).await?;
            match &c.state {
                None => return Err(DomainError::UnknownReference { field: "customerId", kind: Customer::KIND }.into()),
                Some(s) if s.merged_into.is_some() => {
                    return Err(DomainError::invalid(
                        "customerId",
                        "was merged into another customer; use the survivor",
                    )
                    .into())
                }
                Some(_) => {}
            }
        }
        d.decide::<Sale>(&cmd.sale_id.stream_id(), &[SaleCommand::Create(cmd.clone())]).await?;
        Ok(d)
    })
    .await
}

fn open_sale(sale: &Sale) -> Result<&SaleState, CommandError> {
    sale.state.as_ref().ok_or_else(|| DomainError::NotFound { kind: Sale::KIND }.into())
}

/// Confirms a draft: items become SOLD, trade-ins become inventory, the next invoice number is
/// taken — all in one atomic append. A line below its item's floor price needs
/// `approve_discounts` (the confirming staff member's APPROVE_DISCOUNTS).
#[tracing::instrument(skip_all, fields(sale_id = %sale_id), err(level = "info"))]
pub async fn confirm_sale(
    store: &EventStore,
    ctx: &CommandContext,
    sale_id: SaleId,
    approve_discounts: bool,
    key: Option<&str>,
) -> Result<Once, CommandError> {
    once(store, ctx, key, "confirmSale", sale_id.as_uuid(), |mut d| async move {
        let (draft, _) = crate::load::<Sale>(store, ctx.store_id, &sale_id.stream_id()).await?;
        let draft = open_sale(&draft)?.clone();
        if draft.status != SaleStatus::Draft {
            return Err(
                DomainError::IllegalTransition { action: "confirm", state: draft.status.as_str().into() }.into()
            );
        }
        let book: InvoiceBook = d.decide(&invoice_stream(ctx.store_id), &[InvoiceCommand::Assign { sale_id }]).await?;
        d.decide::<Sale>(&sale_id.stream_id(), &[SaleCommand::Confirm { invoice_number: book.last }]).await?;
        let now = chrono::Utc::now();
        for line in &draft.lines {
            let sell = ItemCommand::MarkSold {
                sale_id,
                customer_id: draft.customer_id,
                price: line.net(),
                below_floor_approved: approve_discounts,
                now,
            };
            d.decide::<InventoryItem>(&line.item_id.stream_id(), &[sell]).await?;
        }
        for t in &draft.trade_ins {
            let acquire = ItemCommand::Acquire(AcquireItem {
                serial_number: t.serial_number.clone(),
                source: AcquisitionSource::TradeIn,
                counterparty: draft.customer_id,
                // Priced at the credit until someone reprices it.
                ..AcquireItem::purchase(
                    t.item_id,
                    ctx.store_id,
                    t.category,
                    &t.brand,
                    &t.model,
                    Some(t.credit),
                    t.credit,
                )
            });
            d.decide::<InventoryItem>(&t.item_id.stream_id(), &[acquire]).await?;
        }
        Ok(d)
    })
    .await
}

/// Cancels a sale. If it was confirmed, its invoice is voided (the number is never reused) and
/// its items go back to stock, atomically.
#[tracing::instrument(skip_all, fields(sale_id = %sale_id), err(level = "info"))]
pub async fn cancel_sale(
    store: &EventStore,
    ctx: &CommandContext,
    sale_id: SaleId,
    reason: Option<String>,
    key: Option<&str>,
) -> Result<Once, CommandError> {
    let reason = &reason;
    once(store, ctx, key, "cancelSale", sale_id.as_uuid(), |mut d| async move {
        let (before, _) = crate::load::<Sale>(store, ctx.store_id, &sale_id.stream_id()).await?;
        let before = open_sale(&before)?.clone();
        d.decide::<Sale>(&sale_id.stream_id(), &[SaleCommand::Cancel { reason: reason.clone() }]).await?;
        if let Some(number) = before.invoice_number {
            d.decide::<InvoiceBook>(
                &invoice_stream(ctx.store_id),
                &[InvoiceCommand::Void { number, sale_id, reason: reason.clone() }],
            )
            .await?;
            for line in &before.lines {
                d.decide::<InventoryItem>(
                    &line.item_id.stream_id(),
                    &[ItemCommand::MarkReturned { sale_id }, ItemCommand::Restock],
                )
                .await?;
            }
        }
        Ok(d)
    })
    .await
}

/// Takes a sale back: the sale is RETURNED (refund due) and its items RETURNED, to be inspected
/// and restocked.
#[tracing::instrument(skip_all, fields(sale_id = %sale_id), err(level = "info"))]
pub async fn return_sale(
    store: &EventStore,
    ctx: &CommandContext,
    sale_id: SaleId,
    reason: Option<String>,
    key: Option<&str>,
) -> Result<Once, CommandError> {
    let reason = &reason;
    once(store, ctx, key, "returnSale", sale_id.as_uuid(), |mut d| async move {
        let sale: Sale = d.decide(&sale_id.stream_id(), &[SaleCommand::Return { reason: reason.clone() }]).await?;
        let state = open_sale(&sale)?.clone();
        for line in &state.lines {
            d.decide::<InventoryItem>(&line.item_id.stream_id(), &[ItemCommand::MarkReturned { sale_id }]).await?;
        }
        Ok(d)
    })
    .await
}
