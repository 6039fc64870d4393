//! Subscriptions (over `/graphql/ws`, see `crate::ws`): the live feed of events, and entity
//! feeds that carry an item's or a sale's new state. The feed itself is `crate::live`.

use super::audit::unmark;
use super::sales::Sale;
use super::types::InventoryItem;
use super::{parse_id, require, RequestContext};
use crate::app::AppState;
use crate::auth::{allows, check, stream_permission, Permission, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::live::Lagged;
use crate::ws::{close, ConnectionControl};
use async_graphql::{Context, InputObject, Object, Subscription, ID};
use chrono::{DateTime, Utc};
use eventstore::{Position, StoredEvent};
use futures_util::future::ready;
use futures_util::stream::{self, Stream, StreamExt};
use std::sync::Arc;
use uuid::Uuid;

/// Which events a feed carries. All conditions must hold; an empty filter carries every event
/// the caller's role may read.
#[derive(InputObject, Default, Clone)]
pub struct EventWhere {
    /// Events of streams whose id starts with this (`item-`, `sale-`, `customer-0190…`).
    pub stream_prefix: Option<String>,
    /// Events about this entity (the id in its stream's name).
    pub entity_id: Option<ID>,
    /// Events of these types only (`ItemAcquired`, `PriceChanged`, …).
    pub event_types: Option<Vec<String>>,
}

impl EventWhere {
    fn matches(&self, e: &StoredEvent) -> bool {
        self.stream_prefix.as_deref().is_none_or(|p| e.stream_id.starts_with(p))
            && self.entity_id.as_ref().is_none_or(|id| entity_id(&e.stream_id) == Some(id.as_str()))
            && self.event_types.as_ref().is_none_or(|t| t.contains(&e.event_type))
    }
}

fn entity_id(stream_id: &str) -> Option<&str> {
    stream_id.split_once('-').map(|(_, id)| id)
}

/// One event of the log as it passes: what happened to which entity, where in the log. Its
/// payload is shown only to roles that may audit (`payload`).
pub struct RecordedEventNotice(Arc<StoredEvent>);

#[Object]
impl RecordedEventNotice {
    async fn event_id(&self) -> ID {
        ID(self.0.event_id.to_string())
    }
    /// Where it is in the log; give the last one seen as `fromPosition` to resume.
    async fn position(&self) -> String {
        self.0.position.to_string()
    }
    async fn stream_id(&self) -> &str {
        &self.0.stream_id
    }
    async fn version(&self) -> i64 {
        self.0.version as i64
    }
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.0.recorded_at
    }
    /// The kind of entity (`item`, `customer`, `sale`, …: its stream's prefix).
    async fn entity_type(&self) -> &str {
        self.0.stream_id.split_once('-').map_or(self.0.stream_id.as_str(), |(t, _)| t)
    }
    async fn entity_id(&self) -> Option<ID> {
        entity_id(&self.0.stream_id).map(|id| ID(id.to_owned()))
    }
    /// The payload as JSON text, personal data opened (or marked erased). Needs `VIEW_AUDIT`.
    async fn payload(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        require(ctx, Permission::ViewAudit)?;
        let s = super::state(ctx);
        let opened =
            s.store.open_batch(vec![(*self.0).clone()]).await.map_err(|e| ApiError::internal("event payload", &e))?;
        Ok(opened.first().map(|e| unmark(&e.payload).to_string()).unwrap_or_default())
    }
}

#[derive(Default)]
pub struct Subscription;

/// The caller, if the access table lets them open this feed.
fn open(ctx: &Context<'_>, field: &str) -> ApiResult<(Viewer, Arc<AppState>)> {
    let viewer = ctx.data_opt::<RequestContext>().and_then(|r| r.viewer.clone());
    match check(viewer.as_ref(), "Subscription", field) {
        Ok(()) => {}
        Err("UNAUTHENTICATED") => return Err(ApiError::Unauthenticated),
        Err(_) => return Err(ApiError::Forbidden),
    }
    let viewer = viewer.ok_or(ApiError::Unauthenticated)?;
    Ok((viewer, ctx.data_unchecked::<Arc<AppState>>().clone()))
}

/// Ends a feed that fell behind, asking its socket to close with 4431.
fn until_lagged<T>(ctx: &Context<'_>) -> impl FnMut(&Result<T, Lagged>) -> futures_util::future::Ready<bool> {
    let control = ctx.data_opt::<ConnectionControl>().cloned();
    move |item| {
        if item.is_err() {
            if let Some(c) = &control {
                c.close(close::SLOW_CONSUMER, "Subscriber fell behind the live feed; resume with fromPosition");
            }
        }
        ready(item.is_ok())
    }
}

#[Subscription]
impl Subscription {
    /// Events as they are appended, in log order, each once: those of the store the caller
    /// may read (by role), matching `where`. With `fromPosition` (an event's `position`), first
    /// every such event after it, then live with no gap and no duplicate.
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "where")] filter: Option<EventWhere>,
        from_position: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = RecordedEventNotice>> {
        let (viewer, state) = open(ctx, "events")?;
        let from = from_position
            .map(|p| p.parse::<Position>())
            .transpose()
            .map_err(|_| ApiError::BadUserInput("fromPosition is not a position returned by this API".into()))?;
        let filter = filter.unwrap_or_default();
        Ok(state.live.replay_then_live(from).take_while(until_lagged(ctx)).filter_map(move |e| {
            let e = e.expect("take_while ends the feed at the first lag");
            let visible = e.store_id == viewer.store_id
                && allows(viewer.role, stream_permission(&e.stream_id))
                && filter.matches(&e);
            ready(visible.then_some(RecordedEventNotice(e)))
        }))
    }

    /// The item as it is now, then its new state after every change.
    async fn inventory_item_changed(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<InventoryItem>>> {
        let (viewer, state) = open(ctx, "inventoryItemChanged")?;
        let id = parse_id(&id, "id")?;
        let stream = format!("{}-{id}", domain::ItemId::STREAM_PREFIX);
        Ok(entity_feed(ctx, state, viewer.store_id, stream, move |s, store| async move {
            Ok(s.read.item(store, id).await.map_err(ApiError::from)?.map(|r| (r.version, InventoryItem(r))))
        }))
    }

    /// The sale as it is now, then its new state after every change (lines, payments, status).
    async fn sale_changed(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Sale>>> {
        let (viewer, state) = open(ctx, "saleChanged")?;
        let id = parse_id(&id, "id")?;
        let stream = format!("{}-{id}", domain::SaleId::STREAM_PREFIX);
        Ok(entity_feed(ctx, state, viewer.store_id, stream, move |s, store| async move {
            Ok(s.read.sale(store, id).await.map_err(ApiError::from)?.map(|r| (r.version, Sale(r))))
        }))
    }
}

/// The current state of one entity, then its state after each event of its stream: read from
/// the read models once they have applied that event. Joins the feed before the first read, so
/// a change between the two is not missed; an event the state already reflects (by stream
/// version) is not sent again.
fn entity_feed<T, F, Fut>(
    ctx: &Context<'_>,
    state: Arc<AppState>,
    store_id: Uuid,
    stream_id: String,
    load: F,
) -> impl Stream<Item = async_graphql::Result<T>>
where
    T: Send + 'static,
    F: Fn(Arc<AppState>, Uuid) -> Fut + Clone + Send + Sync + 'static,
    // The state and how many events of its stream it reflects.
    Fut: std::future::Future<Output = ApiResult<Option<(i64, T)>>> + Send + 'static,
{
    use std::sync::atomic::{AtomicI64, Ordering};
    let (rx, joined) = state.live.join();
    let reflected = Arc::new(AtomicI64::new(0));
    let at = {
        let reflected = reflected.clone();
        move |state: Arc<AppState>, load: F, position: Position| {
            let reflected = reflected.clone();
            async move {
                state.projections.wait_for(position, state.consistency_timeout).await.map_err(ApiError::from)?;
                Ok(load(state, store_id).await?.map(|(version, t)| {
                    reflected.fetch_max(version, Ordering::SeqCst);
                    t
                }))
            }
        }
    };
    let first = stream::once(at(state.clone(), load.clone(), joined));
    let changes = crate::live::Feed::live(rx, joined)
        .take_while(until_lagged(ctx))
        .filter_map(move |e| {
            let e = e.expect("take_while ends the feed at the first lag");
            let new = e.store_id == store_id
                && e.stream_id == stream_id
                && e.version as i64 >= reflected.load(Ordering::SeqCst);
            ready(new.then_some(e.position))
        })
        .then(move |position| at(state.clone(), load.clone(), position));
    first.chain(changes).filter_map(|r: ApiResult<Option<T>>| ready(r.map_err(async_graphql::Error::from).transpose()))
}
