//! The GraphQL schema: query and mutation roots. Resolvers are thin: parse input, check the
//! role (in `auth::allows`, nowhere else), call `commands` or read `projections`, map results.

pub mod audit;
pub mod consent;
pub mod history;
pub mod inventory;
pub mod ledger;
pub mod live;
pub mod loaders;
pub mod marketing;
pub mod privacy;
pub mod retention;
pub mod sales;
pub mod sessions;
pub mod staff;
pub mod types;
mod writes;

use crate::app::AppState;
use crate::auth::{allows, Guarded, Permission, Viewer};
use crate::error::{ApiError, ApiResult};
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, MergedObject, Object, Schema, ID};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use commands::{CommandContext, CommandError};
use domain::customer::{CustomerCommand, RegisterCustomer, UpdateCustomer};
use domain::inventory::{AcquireItem, ChangeItemPrice, ItemCommand};
use domain::{CustomerId, ItemId, StoreId};
use eventstore::{Actor, Position};
use projections::rows::{Cursor, CursorValue, CustomerFilter, CustomerSortField, ItemFilter, ItemSortField, ListQuery};
use std::sync::Arc;
use types::*;
use uuid::Uuid;
pub(crate) use writes::{customer_payload, item_payload, outcome, ran, read_after, run, Idem};

pub type AppSchema = Schema<Guarded<Query>, Guarded<Mutation>, live::Subscription>;

#[derive(MergedObject, Default)]
pub struct Query(
    CoreQuery,
    sales::SaleQuery,
    consent::ConsentQuery,
    sessions::SessionQuery,
    staff::StaffQuery,
    ledger::LedgerQuery,
    audit::AuditQuery,
    privacy::PrivacyQuery,
    marketing::MarketingQuery,
    retention::RetentionQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    CoreMutation,
    inventory::ItemMutation,
    sales::SaleMutation,
    consent::ConsentMutation,
    sessions::SessionMutation,
    staff::StaffMutation,
    ledger::LedgerMutation,
    privacy::PrivacyMutation,
    marketing::MarketingMutation,
    retention::RetentionMutation,
);

/// Per-request data: the caller (if the token was valid) and a request id.
#[derive(Clone)]
pub struct RequestContext {
    pub viewer: Option<Viewer>,
    pub request_id: Uuid,
    /// From the client's `X-Correlation-Id` header (a UUID), or the request id.
    pub correlation_id: Uuid,
    /// The client's address (from `X-Forwarded-For` only behind a trusted proxy).
    pub client_ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
}

pub fn build_schema(state: Option<Arc<AppState>>) -> AppSchema {
    let mut builder = Schema::build(Guarded::<Query>::default(), Guarded::<Mutation>::default(), live::Subscription)
        .limit_depth(12)
        .limit_complexity(2000);
    if let Some(state) = state {
        builder = builder.data(state);
    }
    builder.finish()
}

pub(crate) fn state<'a>(ctx: &Context<'a>) -> &'a AppState {
    ctx.data_unchecked::<Arc<AppState>>()
}

pub(crate) fn viewer<'a>(ctx: &Context<'a>) -> ApiResult<&'a Viewer> {
    ctx.data_opt::<RequestContext>().and_then(|r| r.viewer.as_ref()).ok_or(ApiError::Unauthenticated)
}

/// The caller, if their role has `permission`. Root fields are checked by the guarded roots
/// (`auth::Guarded`); this is for object fields that expose sensitive values.
pub(crate) fn require<'a>(ctx: &Context<'a>, permission: Permission) -> ApiResult<&'a Viewer> {
    let v = viewer(ctx)?;
    if allows(v.role, permission) {
        Ok(v)
    } else {
        Err(ApiError::Forbidden)
    }
}

pub(crate) fn command_context(ctx: &Context<'_>, v: &Viewer, reason: Option<String>) -> CommandContext {
    let (request_id, correlation_id) = ctx
        .data_opt::<RequestContext>()
        .map_or_else(|| (Uuid::now_v7(), Uuid::now_v7()), |r| (r.request_id, r.correlation_id));
    CommandContext {
        store_id: StoreId::from_uuid(v.store_id),
        actor: Actor { kind: "user".into(), id: Some(v.user_id), role: Some(v.role.as_str().into()) },
        // Correlation follows a flow across requests and systems; the cause of these events is
        // this request.
        correlation_id,
        causation_id: Some(request_id),
        request_id: Some(request_id),
        source: "graphql".into(),
        reason,
        input_hash: input_hash(ctx),
    }
}

/// SHA-256 of the field's arguments (variables substituted) as canonical JSON — object keys
/// sorted, the idempotency key left out — so a retry with the same input matches and a reuse of
/// the key with other input does not.
fn input_hash(ctx: &Context<'_>) -> Option<String> {
    use sha2::{Digest, Sha256};
    let args = ctx.field().arguments().ok()?;
    let mut canonical = serde_json::Map::new();
    for (name, value) in args {
        let mut json = value.into_json().ok()?;
        if let Some(obj) = json.as_object_mut() {
            obj.remove("idempotencyKey");
        }
        canonical.insert(name.to_string(), json);
    }
    // serde_json's map is ordered by key, so this text is canonical.
    let text = serde_json::Value::Object(canonical).to_string();
    Some(Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect())
}

pub(crate) fn parse_id(id: &ID, what: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(id.as_str()).map_err(|_| ApiError::BadUserInput(format!("{what} is not a valid id")))
}

/// Waits until every read model has applied `min_position` and the last position the caller's
/// session wrote through this server (read-your-writes: mutation payloads do not wait for the
/// read models, the queries that follow them do).
pub(crate) async fn reach(ctx: &Context<'_>, min_position: Option<&str>) -> ApiResult<()> {
    let asked = min_position
        .map(|p| p.parse::<Position>())
        .transpose()
        .map_err(|_| ApiError::BadUserInput("minPosition is not a position returned by this API".into()))?;
    let s = state(ctx);
    let written = viewer(ctx).ok().and_then(|v| s.sessions.last_write(v.session_id));
    match asked.max(written) {
        Some(position) => Ok(s.projections.wait_for(position, s.consistency_timeout).await?),
        None => Ok(()),
    }
}

/// `asOf` (an instant) or `asOfVersion` (1 = after the first event), not both.
pub(crate) fn history_point(as_of: Option<DateTime<Utc>>, version: Option<i64>) -> ApiResult<Option<history::AsOf>> {
    match (as_of, version) {
        (None, None) => Ok(None),
        (Some(t), None) => Ok(Some(history::AsOf::Time(t))),
        (None, Some(v)) if v >= 0 => Ok(Some(history::AsOf::Version(v as u64))),
        (None, Some(_)) => Err(ApiError::BadUserInput("asOfVersion must not be negative".into())),
        (Some(_), Some(_)) => Err(ApiError::BadUserInput("give asOf or asOfVersion, not both".into())),
    }
}

const DEFAULT_PAGE: i32 = 20;
const MAX_PAGE: i32 = 100;

pub(crate) fn page_size(first: Option<i32>) -> ApiResult<usize> {
    match first.unwrap_or(DEFAULT_PAGE) {
        n @ 0..=MAX_PAGE => Ok(n as usize),
        _ => Err(ApiError::BadUserInput(format!("first must be between 0 and {MAX_PAGE}"))),
    }
}

/// A Relay connection over one page of rows, with cursors for `sort_key`.
pub(crate) fn connection<R, N: async_graphql::OutputType>(
    page: projections::rows::Page<R>,
    sort_key: &str,
    has_previous: bool,
    node: impl Fn(R) -> N,
) -> Connection<String, N, ConnectionFields, async_graphql::connection::EmptyFields> {
    let mut conn = Connection::with_additional_fields(
        has_previous,
        page.has_next,
        ConnectionFields { total_count: page.total.unwrap_or_default() },
    );
    conn.edges.extend(page.rows.into_iter().map(|(row, c)| Edge::new(encode_cursor(sort_key, &c), node(row))));
    conn
}

pub(crate) fn encode_cursor(sort: &str, c: &Cursor) -> String {
    let v = match &c.value {
        CursorValue::Int(i) => serde_json::json!(i),
        CursorValue::Text(t) => serde_json::json!(t),
    };
    B64.encode(serde_json::json!({"s": sort, "v": v, "id": c.id}).to_string())
}

pub(crate) fn decode_cursor(sort: &str, raw: Option<&str>) -> ApiResult<Option<Cursor>> {
    let Some(raw) = raw else { return Ok(None) };
    let bad = || ApiError::BadUserInput("after is not a cursor from this list and sort order".into());
    let json: serde_json::Value = serde_json::from_slice(&B64.decode(raw).map_err(|_| bad())?).map_err(|_| bad())?;
    if json["s"].as_str() != Some(sort) {
        return Err(bad());
    }
    let id = json["id"].as_str().and_then(|s| Uuid::parse_str(s).ok()).ok_or_else(bad)?;
    let value = match &json["v"] {
        serde_json::Value::Number(n) => CursorValue::Int(n.as_i64().ok_or_else(bad)?),
        serde_json::Value::String(s) => CursorValue::Text(s.clone()),
        _ => return Err(bad()),
    };
    Ok(Some(Cursor { value, id }))
}

#[derive(Default)]
pub struct CoreQuery;

#[Object]
impl CoreQuery {
    async fn inventory_items(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(name = "where")] filter: Option<InventoryItemWhere>,
        sort_by: Option<InventoryItemSort>,
        min_position: Option<String>,
    ) -> async_graphql::Result<InventoryItemConnection> {
        let v = viewer(ctx)?;
        reach(ctx, min_position.as_deref()).await?;
        let (sort, descending) = match sort_by {
            None => (ItemSortField::CreatedAt, false),
            Some(s) => (
                match s.field {
                    InventoryItemSortField::CreatedAt => ItemSortField::CreatedAt,
                    InventoryItemSortField::AskingPrice => ItemSortField::AskingPrice,
                    InventoryItemSortField::Brand => ItemSortField::Brand,
                },
                s.direction == SortDirection::Desc,
            ),
        };
        let sort_key = format!("{sort:?}{descending}");
        let f = filter.unwrap_or_default();
        let q = ListQuery {
            store_id: v.store_id,
            first: page_size(first)?,
            after: decode_cursor(&sort_key, after.as_deref())?,
            filter: ItemFilter {
                status: f.status.map(Into::into),
                category: f.category.map(Into::into),
                brand: f.brand,
            },
            sort,
            descending,
            with_total: ctx.look_ahead().field("totalCount").exists(),
        };
        let page = state(ctx).read.items(&q).await.map_err(ApiError::from)?;
        Ok(connection(page, &sort_key, q.after.is_some(), InventoryItem))
    }

    /// One item; with `asOf`, as it was at that instant, rebuilt from its events.
    async fn inventory_item(
        &self,
        ctx: &Context<'_>,
        id: ID,
        as_of: Option<DateTime<Utc>>,
        as_of_version: Option<i64>,
        min_position: Option<String>,
    ) -> async_graphql::Result<Option<InventoryItem>> {
        let v = viewer(ctx)?;
        let id = parse_id(&id, "id")?;
        if let Some(at) = history_point(as_of, as_of_version)? {
            return Ok(history::item_as_of(&state(ctx).store, v.store_id, ItemId::from_uuid(id), at)
                .await?
                .map(InventoryItem));
        }
        reach(ctx, min_position.as_deref()).await?;
        Ok(state(ctx).read.item(v.store_id, id).await.map_err(ApiError::from)?.map(InventoryItem))
    }

    async fn customers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(name = "where")] filter: Option<CustomerWhere>,
        sort_by: Option<CustomerSort>,
        min_position: Option<String>,
    ) -> async_graphql::Result<CustomerConnection> {
        let v = viewer(ctx)?;
        reach(ctx, min_position.as_deref()).await?;
        let (sort, descending) = match sort_by {
            None => (CustomerSortField::CreatedAt, false),
            Some(s) => (
                match s.field {
                    types::CustomerSortField::CreatedAt => CustomerSortField::CreatedAt,
                    types::CustomerSortField::Name => CustomerSortField::Name,
                },
                s.direction == SortDirection::Desc,
            ),
        };
        let sort_key = format!("{sort:?}{descending}");
        let f = filter.unwrap_or_default();
        let q = ListQuery {
            store_id: v.store_id,
            first: page_size(first)?,
            after: decode_cursor(&sort_key, after.as_deref())?,
            filter: CustomerFilter { tag: f.tag, email: f.email, name_contains: f.name_contains },
            sort,
            descending,
            with_total: ctx.look_ahead().field("totalCount").exists(),
        };
        let page = state(ctx).read.customers(&q).await.map_err(ApiError::from)?;
        Ok(connection(page, &sort_key, q.after.is_some(), Customer))
    }

    /// One customer; with `asOf`, as they were at that instant (erased fields stay erased).
    async fn customer(
        &self,
        ctx: &Context<'_>,
        id: ID,
        as_of: Option<DateTime<Utc>>,
        as_of_version: Option<i64>,
        min_position: Option<String>,
    ) -> async_graphql::Result<Option<Customer>> {
        let v = viewer(ctx)?;
        let id = parse_id(&id, "id")?;
        if let Some(at) = history_point(as_of, as_of_version)? {
            return Ok(history::customer_as_of(&state(ctx).store, v.store_id, CustomerId::from_uuid(id), at)
                .await?
                .map(Customer));
        }
        reach(ctx, min_position.as_deref()).await?;
        Ok(state(ctx).read.customer(v.store_id, id).await.map_err(ApiError::from)?.map(Customer))
    }
}

#[derive(Default)]
pub struct CoreMutation;

#[Object]
impl CoreMutation {
    async fn acquire_item(
        &self,
        ctx: &Context<'_>,
        input: AcquireItemInput,
    ) -> async_graphql::Result<InventoryItemPayload> {
        let v = viewer(ctx)?;
        let mut errors = Vec::new();
        let asking = input.asking_price.parse("askingPrice").map_err(|e| errors.push(UserError::from(&e))).ok();
        let cost = match &input.cost {
            None => None,
            Some(c) => match c.parse("cost") {
                Ok(m) => Some(m),
                Err(e) => {
                    errors.push((&e).into());
                    None
                }
            },
        };
        let floor_price = match input.floor_price.as_ref().map(|f| f.parse("floorPrice")).transpose() {
            Ok(f) => f,
            Err(e) => {
                errors.push((&e).into());
                None
            }
        };
        let counterparty = match input.counterparty_id.as_ref().map(|id| Uuid::parse_str(id.as_str())).transpose() {
            Ok(c) => c.map(CustomerId::from_uuid),
            Err(_) => {
                errors.push(UserError::invalid_id("counterpartyId"));
                None
            }
        };
        let consignor_payout = match &input.consignor_payout {
            None => None,
            Some(p) => match (&p.fixed_amount, p.basis_points) {
                (Some(m), None) => match m.parse("consignorPayout") {
                    Ok(amount) => Some(domain::inventory::ConsignorPayout::Fixed { amount }),
                    Err(e) => {
                        errors.push((&e).into());
                        None
                    }
                },
                (None, Some(basis_points)) => Some(domain::inventory::ConsignorPayout::Percentage { basis_points }),
                _ => {
                    errors.push(UserError {
                        field: Some("consignorPayout".into()),
                        code: "INVALID".into(),
                        message: "consignorPayout: give exactly one of fixedAmount or basisPoints".into(),
                    });
                    None
                }
            },
        };
        let Some(asking_price) = asking.filter(|_| errors.is_empty()) else {
            return Ok(InventoryItemPayload { errors, ..Default::default() });
        };
        let cctx = command_context(ctx, v, None);
        if let Some(c) = counterparty {
            let check = commands::references::customer(&state(ctx).store, &cctx, c, "counterpartyId").await;
            if let Err(errors) = outcome(check)? {
                return Ok(InventoryItemPayload { errors, ..Default::default() });
            }
        }
        let item_id = ItemId::new_v7();
        let cmd = ItemCommand::Acquire(AcquireItem {
            item_id,
            store_id: StoreId::from_uuid(v.store_id),
            category: input.category.into(),
            brand: input.brand,
            model: input.model,
            reference_number: input.reference_number,
            serial_number: input.serial_number,
            cost,
            asking_price,
            source: input.acquisition.source.into(),
            attributes: input.attributes.unwrap_or_default().into_iter().map(|a| (a.key, a.value)).collect(),
            acquired_at: input.acquisition.acquired_at.unwrap_or_else(Utc::now),
            floor_price,
            counterparty,
            vendor: input.vendor,
            consignor_payout,
            condition: input.condition.map(Into::into),
            watch: input.watch.as_ref().and_then(convert),
            handbag: input.handbag.as_ref().and_then(convert),
            notes: input.notes,
        });
        let idem = Idem { key: input.idempotency_key.as_deref(), mutation: "acquireItem", entity: item_id.as_uuid() };
        // The item id was generated above: decided without reading its stream.
        let store = &state(ctx).store;
        let done = commands::execute_new::<domain::inventory::InventoryItem>(
            store,
            &cctx,
            idem.key,
            idem.mutation,
            idem.entity,
            &item_id.stream_id(),
            &cmd,
        )
        .await;
        match ran(ctx, done)? {
            Err(errors) => Ok(InventoryItemPayload { errors, ..Default::default() }),
            Ok(once) => item_payload(ctx, v, ItemId::from_uuid(once.entity_id), &once).await,
        }
    }

    async fn change_item_price(
        &self,
        ctx: &Context<'_>,
        input: ChangeItemPriceInput,
    ) -> async_graphql::Result<InventoryItemPayload> {
        let v = viewer(ctx)?;
        let Ok(item_id) = Uuid::parse_str(input.item_id.as_str()).map(ItemId::from_uuid) else {
            return Ok(InventoryItemPayload { errors: vec![UserError::invalid_id("itemId")], ..Default::default() });
        };
        let asking_price = match input.asking_price.parse("askingPrice") {
            Ok(m) => m,
            Err(e) => return Ok(InventoryItemPayload { errors: vec![(&e).into()], ..Default::default() }),
        };
        let floor_price = match input.floor_price.as_ref().map(|f| f.parse("floorPrice")).transpose() {
            Ok(f) => f,
            Err(e) => return Ok(InventoryItemPayload { errors: vec![(&e).into()], ..Default::default() }),
        };
        let cmd = ItemCommand::ChangePrice(ChangeItemPrice { asking_price, floor_price, reason: input.reason.clone() });
        let cctx = command_context(ctx, v, input.reason);
        let idem =
            Idem { key: input.idempotency_key.as_deref(), mutation: "changeItemPrice", entity: item_id.as_uuid() };
        match run::<domain::inventory::InventoryItem>(ctx, &cctx, idem, &item_id.stream_id(), &cmd).await? {
            Err(errors) => Ok(InventoryItemPayload { errors, ..Default::default() }),
            Ok(once) => item_payload(ctx, v, item_id, &once).await,
        }
    }

    async fn create_customer(
        &self,
        ctx: &Context<'_>,
        input: CreateCustomerInput,
    ) -> async_graphql::Result<CustomerPayload> {
        let v = viewer(ctx)?;
        let customer_id = CustomerId::new_v7();
        let key = input.idempotency_key.clone();
        let assigned_to = match staff_id(input.assigned_to_id.as_ref()) {
            Ok(a) => a,
            Err(e) => return Ok(CustomerPayload { errors: vec![e], ..Default::default() }),
        };
        let cctx = command_context(ctx, v, None);
        if let Err(errors) = outcome(assigned_staff(ctx, &cctx, assigned_to).await)? {
            return Ok(CustomerPayload { errors, ..Default::default() });
        }
        let cmd = CustomerCommand::Register(RegisterCustomer {
            customer_id,
            store_id: StoreId::from_uuid(v.store_id),
            name: input.name,
            email: input.email,
            phone: input.phone,
            notes: input.notes,
            tags: input.tags.unwrap_or_default(),
            address: input.address,
            birthday: input.birthday,
            assigned_to,
            source: input.source,
            external_ids: external_ids(input.external_ids),
        });
        let idem = Idem { key: key.as_deref(), mutation: "createCustomer", entity: customer_id.as_uuid() };
        match run::<domain::customer::Customer>(ctx, &cctx, idem, &customer_id.stream_id(), &cmd).await? {
            Err(errors) => Ok(CustomerPayload { errors, ..Default::default() }),
            Ok(once) => customer_payload(ctx, v, CustomerId::from_uuid(once.entity_id), once.position).await,
        }
    }

    async fn update_customer(
        &self,
        ctx: &Context<'_>,
        input: UpdateCustomerInput,
    ) -> async_graphql::Result<CustomerPayload> {
        let v = viewer(ctx)?;
        let Ok(customer_id) = Uuid::parse_str(input.customer_id.as_str()).map(CustomerId::from_uuid) else {
            return Ok(CustomerPayload { errors: vec![UserError::invalid_id("customerId")], ..Default::default() });
        };
        let key = input.idempotency_key.clone();
        let assigned_to = match staff_id(input.assigned_to_id.as_ref()) {
            Ok(a) => a,
            Err(e) => return Ok(CustomerPayload { errors: vec![e], ..Default::default() }),
        };
        let cctx = command_context(ctx, v, None);
        if let Err(errors) = outcome(assigned_staff(ctx, &cctx, assigned_to).await)? {
            return Ok(CustomerPayload { errors, ..Default::default() });
        }
        let cmd = CustomerCommand::Update(UpdateCustomer {
            name: input.name,
            email: input.email,
            phone: input.phone,
            notes: input.notes,
            tags: input.tags,
            address: input.address,
            birthday: input.birthday,
            assigned_to,
            source: input.source,
            external_ids: input.external_ids.map(|ids| external_ids(Some(ids))),
        });
        let idem = Idem { key: key.as_deref(), mutation: "updateCustomer", entity: customer_id.as_uuid() };
        match run::<domain::customer::Customer>(ctx, &cctx, idem, &customer_id.stream_id(), &cmd).await? {
            Err(errors) => Ok(CustomerPayload { errors, ..Default::default() }),
            Ok(once) => customer_payload(ctx, v, customer_id, once.position).await,
        }
    }

    /// Merges a duplicate customer into the survivor (both in one atomic append). The duplicate
    /// then points to the survivor (`mergedIntoId`) and is hidden from lists; its history, sales
    /// and consent stay replayable; the survivor takes over its lifetime value.
    async fn merge_customers(
        &self,
        ctx: &Context<'_>,
        input: MergeCustomersInput,
    ) -> async_graphql::Result<CustomerPayload> {
        let v = viewer(ctx)?;
        let parse = |id: &ID, field: &str| {
            Uuid::parse_str(id.as_str()).map(CustomerId::from_uuid).map_err(|_| UserError::invalid_id(field))
        };
        let (merged, survivor) =
            match (parse(&input.customer_id, "customerId"), parse(&input.survivor_id, "survivorId")) {
                (Ok(m), Ok(s)) => (m, s),
                (Err(e), _) | (_, Err(e)) => return Ok(CustomerPayload { errors: vec![e], ..Default::default() }),
            };
        let cctx = command_context(ctx, v, None);
        for (id, field) in [(merged, "customerId"), (survivor, "survivorId")] {
            if let Err(errors) = outcome(commands::references::customer(&state(ctx).store, &cctx, id, field).await)? {
                return Ok(CustomerPayload { errors, ..Default::default() });
            }
        }
        let result = commands::customers::merge_customers(
            &state(ctx).store,
            &cctx,
            merged,
            survivor,
            input.idempotency_key.as_deref(),
        )
        .await;
        match outcome(result)? {
            Err(errors) => Ok(CustomerPayload { errors, ..Default::default() }),
            Ok(once) => customer_payload(ctx, v, survivor, once.position).await,
        }
    }
}

/// The assigned staff member, if any, must belong to this store.
async fn assigned_staff(
    ctx: &Context<'_>,
    cctx: &CommandContext,
    assigned_to: Option<domain::UserId>,
) -> Result<(), CommandError> {
    match assigned_to {
        None => Ok(()),
        Some(id) => commands::references::staff_member(&state(ctx).store, cctx, id, "assignedToId").await,
    }
}

fn staff_id(id: Option<&ID>) -> Result<Option<domain::UserId>, UserError> {
    id.map(|i| {
        Uuid::parse_str(i.as_str()).map(domain::UserId::from_uuid).map_err(|_| UserError::invalid_id("assignedToId"))
    })
    .transpose()
}

fn external_ids(ids: Option<Vec<ExternalId>>) -> std::collections::BTreeMap<String, String> {
    ids.unwrap_or_default().into_iter().map(|e| (e.system, e.id)).collect()
}
