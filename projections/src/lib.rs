//! The read side: projections that turn the event log into queryable read models.
//!
//! A [`Runner`] follows the log from its checkpoint in batches. Each batch is applied in one
//! database transaction that also moves the checkpoint — by compare-and-set, so if two runners
//! ever race (two servers), one of them rolls back: every event's effect lands exactly once.
//! Runners publish their checkpoint, so a query can wait until the read models have caught up
//! with a position a mutation returned (read-your-writes).
#![forbid(unsafe_code)]

pub mod audit;
mod batch;
pub mod consent;
mod customers;
mod follow;
mod items;
pub mod privacy;
pub mod readmodels;
mod rebuild;
pub mod rows;
mod sales;
pub mod staff;
pub mod views;

use eventstore::{Database, Position, RecordedEvent, StoreError};
use rows::*;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use uuid::Uuid;

pub use follow::Projections;
pub use rebuild::{rebuild, rebuild_with, Rebuilt, REBUILD_BATCH};
pub use runner::{catch_up_all, Runner};

/// The projections this system maintains; each has its own tables and checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Stores and staff (login lookup).
    Directory,
    /// Inventory items.
    Inventory,
    /// Customers (with lifetime value from sales).
    Customers,
    /// Sales, payments and invoice numbers.
    Sales,
    /// The audit trail: one entry per event.
    Audit,
    /// Privacy requests (access, erasure, …) as cases.
    Privacy,
    /// Consent facts and restrictions of processing (the marketing audience).
    Consent,
}

impl Kind {
    pub const ALL: [Kind; 7] =
        [Kind::Directory, Kind::Inventory, Kind::Customers, Kind::Sales, Kind::Audit, Kind::Privacy, Kind::Consent];

    pub fn name(&self) -> &'static str {
        match self {
            Self::Directory => "directory",
            Self::Inventory => "inventory",
            Self::Customers => "customers",
            Self::Sales => "sales",
            Self::Audit => "audit",
            Self::Privacy => "privacy",
            Self::Consent => "consent",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether events of streams of `stream_kind` (`item` for `item-<id>`) change this model.
    /// Authoritative: `readmodels::apply` ignores the rest, and runners on SQLite skip writing
    /// a checkpoint for batches with none of them (see `Runner::apply_read`).
    pub fn cares(&self, stream_kind: &str) -> bool {
        match self {
            Self::Directory => matches!(stream_kind, "store" | "staff"),
            Self::Inventory => stream_kind == "item",
            Self::Customers => matches!(stream_kind, "customer" | "sale"),
            Self::Sales => stream_kind == "sale",
            Self::Audit => true,
            Self::Privacy => stream_kind == "privacy_request",
            Self::Consent => matches!(stream_kind, "consent" | "restriction"),
        }
    }

    fn cares_about(&self, e: &RecordedEvent) -> bool {
        self.cares(stream_kind(&e.stream_id))
    }

    pub fn tables(&self) -> &'static [&'static str] {
        match self {
            Self::Directory => &["rm_stores", "rm_staff"],
            Self::Inventory => &["rm_inventory_items", "rm_item_counts"],
            Self::Customers => &["rm_customers", "rm_customer_counts"],
            Self::Sales => &["rm_sales", "rm_sale_counts"],
            Self::Audit => &["rm_audit", "rm_audit_memo"],
            Self::Privacy => &["rm_privacy_requests"],
            Self::Consent => &["rm_consent_facts", "rm_restrictions"],
        }
    }
}

/// The kind of a stream from its id (`item` for `item-<uuid>`).
pub(crate) fn stream_kind(stream_id: &str) -> &str {
    stream_id.split_once('-').map_or(stream_id, |(k, _)| k)
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The event log failed. Caller: retry later; the runner keeps its checkpoint.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The read-model database failed. Caller: internal error; never shown to clients.
    #[error("read-model database error")]
    Database(#[from] sqlx::Error),
    /// An event could not be decoded: the projection stops rather than skip it.
    #[error("cannot project event at {position}: {reason}")]
    Corrupt { position: Position, reason: String },
    #[error("invalid: {0}")]
    Invalid(String),
    /// Read models did not reach the requested position in time. Caller: `CONSISTENCY_TIMEOUT`.
    #[error("read models did not reach the requested position in time")]
    ConsistencyTimeout,
    /// Failure injected by a test between two events of a batch (the `testing` feature only).
    #[cfg(any(test, feature = "testing"))]
    #[error("injected failure")]
    Injected,
}

pub type Result<T, E = ProjectionError> = std::result::Result<T, E>;

/// The read-model database: on SQLite the single writer connection applies projections and a
/// reader pool serves queries; on PostgreSQL one pool does both.
#[derive(Clone)]
pub enum ReadDb {
    Sqlite { writer: SqlitePool, reader: SqlitePool },
    Postgres(PgPool),
}

macro_rules! with_writer {
    ($db:expr, $m:ident, $pool:ident => $body:expr) => {
        match $db {
            ReadDb::Sqlite { writer: $pool, .. } => {
                use readmodels::sqlite as $m;
                $body
            }
            ReadDb::Postgres($pool) => {
                use readmodels::postgres as $m;
                $body
            }
        }
    };
}

macro_rules! with_reader {
    ($db:expr, $m:ident, $pool:ident => $body:expr) => {
        match $db {
            ReadDb::Sqlite { reader: $pool, .. } => {
                use readmodels::sqlite as $m;
                $body
            }
            ReadDb::Postgres($pool) => {
                use readmodels::postgres as $m;
                $body
            }
        }
    };
}

impl ReadDb {
    pub fn new(db: &Database) -> Self {
        match db {
            Database::Sqlite(b) => Self::Sqlite { writer: b.writer().clone(), reader: b.reader().clone() },
            Database::Postgres(b) => Self::Postgres(b.pool().clone()),
        }
    }

    pub async fn checkpoint(&self, kind: Kind) -> Result<Position> {
        with_reader!(self, m, pool => m::checkpoint(pool, kind.name()).await)
    }
    pub async fn item(&self, store_id: Uuid, id: Uuid) -> Result<Option<ItemRow>> {
        with_reader!(self, m, pool => m::item(pool, store_id, id).await)
    }
    pub async fn items(&self, q: &ListQuery<ItemFilter, ItemSortField>) -> Result<Page<ItemRow>> {
        with_reader!(self, m, pool => m::items(pool, q).await)
    }
    pub async fn items_by_ids(&self, store_id: Uuid, ids: &[Uuid]) -> Result<Vec<ItemRow>> {
        with_reader!(self, m, pool => m::items_by_ids(pool, store_id, ids).await)
    }
    pub async fn customers_by_ids(&self, store_id: Uuid, ids: &[Uuid]) -> Result<Vec<CustomerRow>> {
        with_reader!(self, m, pool => m::customers_by_ids(pool, store_id, ids).await)
    }
    pub async fn customer(&self, store_id: Uuid, id: Uuid) -> Result<Option<CustomerRow>> {
        with_reader!(self, m, pool => m::customer(pool, store_id, id).await)
    }
    pub async fn customers(&self, q: &ListQuery<CustomerFilter, CustomerSortField>) -> Result<Page<CustomerRow>> {
        with_reader!(self, m, pool => m::customers(pool, q).await)
    }
    pub async fn sale(&self, store_id: Uuid, id: Uuid) -> Result<Option<SaleRow>> {
        with_reader!(self, m, pool => m::sale(pool, store_id, id).await)
    }
    pub async fn sales(&self, q: &ListQuery<SaleFilter, ()>) -> Result<Page<SaleRow>> {
        with_reader!(self, m, pool => m::sales(pool, q).await)
    }
    /// Staff accounts with this email, in every store (login candidates).
    pub async fn staff_by_email(&self, email: &str) -> Result<Vec<StaffRow>> {
        match self {
            ReadDb::Sqlite { reader, .. } => staff::sqlite::by_email(reader, email).await,
            ReadDb::Postgres(pool) => staff::postgres::by_email(pool, email).await,
        }
    }
    pub async fn staff_member(&self, store_id: Uuid, user_id: Uuid) -> Result<Option<StaffRow>> {
        match self {
            ReadDb::Sqlite { reader, .. } => staff::sqlite::member(reader, store_id, user_id).await,
            ReadDb::Postgres(pool) => staff::postgres::member(pool, store_id, user_id).await,
        }
    }
    /// A page of the audit trail and whether more follow.
    pub async fn audit(&self, f: &audit::AuditFilter) -> Result<(Vec<audit::AuditRow>, bool)> {
        match self {
            ReadDb::Sqlite { reader, .. } => audit::sqlite::page(reader, f).await,
            ReadDb::Postgres(pool) => audit::postgres::page(pool, f).await,
        }
    }
    pub async fn audit_about(&self, store_id: Uuid, streams: &[String], subject: Uuid) -> Result<Vec<audit::AuditRow>> {
        match self {
            ReadDb::Sqlite { reader, .. } => audit::sqlite::about(reader, store_id, streams, subject).await,
            ReadDb::Postgres(pool) => audit::postgres::about(pool, store_id, streams, subject).await,
        }
    }
    pub async fn audit_count(&self, f: &audit::AuditFilter) -> Result<i64> {
        match self {
            ReadDb::Sqlite { reader, .. } => audit::sqlite::count(reader, f).await,
            ReadDb::Postgres(pool) => audit::postgres::count(pool, f).await,
        }
    }
    /// A page of a store's staff: (rows, has next page, total).
    pub async fn staff(&self, q: &staff::StaffQuery) -> Result<(Vec<StaffRow>, bool, i64)> {
        match self {
            ReadDb::Sqlite { reader, .. } => staff::sqlite::list(reader, q).await,
            ReadDb::Postgres(pool) => staff::postgres::list(pool, q).await,
        }
    }
    pub async fn privacy_request(&self, store_id: Uuid, id: Uuid) -> Result<Option<privacy::PrivacyRequestRow>> {
        match self {
            ReadDb::Sqlite { reader, .. } => privacy::sqlite::get(reader, store_id, id).await,
            ReadDb::Postgres(pool) => privacy::postgres::get(pool, store_id, id).await,
        }
    }
    pub async fn privacy_requests(
        &self,
        q: &privacy::PrivacyQuery,
    ) -> Result<(Vec<privacy::PrivacyRequestRow>, bool, i64)> {
        match self {
            ReadDb::Sqlite { reader, .. } => privacy::sqlite::list(reader, q).await,
            ReadDb::Postgres(pool) => privacy::postgres::list(pool, q).await,
        }
    }
    pub async fn marketing_audience(&self, q: &consent::AudienceQuery) -> Result<(Vec<consent::AudienceMember>, bool)> {
        match self {
            ReadDb::Sqlite { reader, .. } => consent::sqlite::audience(reader, q).await,
            ReadDb::Postgres(pool) => consent::postgres::audience(pool, q).await,
        }
    }
    pub async fn marketing_audience_count(&self, q: &consent::AudienceQuery) -> Result<i64> {
        match self {
            ReadDb::Sqlite { reader, .. } => consent::sqlite::audience_count(reader, q).await,
            ReadDb::Postgres(pool) => consent::postgres::audience_count(pool, q).await,
        }
    }
    /// Every sale of a store (of one customer, when given), oldest first, read page by page.
    pub async fn all_sales(&self, store_id: Uuid, customer: Option<Uuid>) -> Result<Vec<SaleRow>> {
        let mut q = ListQuery {
            store_id,
            first: 500,
            after: None,
            filter: SaleFilter { status: None, customer_id: customer },
            sort: (),
            descending: false,
            with_total: false,
        };
        let mut out = Vec::new();
        loop {
            let page = self.sales(&q).await?;
            let next = page.rows.last().map(|(_, c)| c.clone());
            out.extend(page.rows.into_iter().map(|(r, _)| r));
            match next {
                Some(cursor) if page.has_next => q.after = Some(cursor),
                _ => return Ok(out),
            }
        }
    }
    pub async fn store_ids(&self) -> Result<Vec<Uuid>> {
        with_reader!(self, m, pool => m::store_ids(pool).await)
    }
    /// Retention: removes a store's audit entries recorded before `before` (microseconds).
    pub async fn purge_audit_before(&self, store_id: Uuid, before: i64) -> Result<u64> {
        with_writer!(self, m, pool => m::purge_audit_before(pool, store_id, before).await)
    }
    pub async fn store_name(&self, store_id: Uuid) -> Result<Option<String>> {
        with_reader!(self, m, pool => m::store_name(pool, store_id).await)
    }
    pub async fn dump(&self, kind: Kind) -> Result<Vec<String>> {
        with_reader!(self, m, pool => m::dump(pool, kind).await)
    }

    /// Refreshes the query planner's statistics of `kind`'s tables after a bulk change (a
    /// rebuild, a long catch-up). On PostgreSQL a freshly filled table is otherwise planned as
    /// if it were empty until autovacuum gets to it (measured: the customers page took 4.6 ms
    /// on a bitmap scan and sort instead of 0.04 ms on its index). SQLite plans these queries
    /// well without statistics: nothing to do.
    pub async fn analyze(&self, kind: Kind) -> Result<()> {
        if let ReadDb::Postgres(pool) = self {
            for table in kind.tables() {
                sqlx::query(&format!("ANALYZE {table}")).execute(pool).await?;
            }
        }
        Ok(())
    }

    /// Empties a projection and rewinds it to the start of the log.
    pub async fn reset(&self, kind: Kind) -> Result<()> {
        with_writer!(self, m, pool => {
            m::ensure_checkpoint(pool, kind.name()).await?;
            let mut tx = pool.begin().await?;
            m::reset(&mut tx, kind).await?;
            tx.commit().await?;
            Ok(())
        })
    }
}

mod runner;
