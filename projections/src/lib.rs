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
mod items;
pub mod privacy;
pub mod readmodels;
mod rebuild;
pub mod rows;
mod sales;
pub mod staff;
pub mod views;

use eventstore::{Database, EventStore, Position, RecordedEvent, StoreError};
use rows::*;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

pub use rebuild::{rebuild, rebuild_with, Rebuilt, REBUILD_BATCH};

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

/// Follows the log for one projection.
pub struct Runner {
    kind: Kind,
    db: ReadDb,
    store: EventStore,
    /// Every event up to here is applied.
    checkpoint: Position,
    /// The checkpoint as stored. Behind `checkpoint` only on SQLite, by batches with nothing
    /// for this model (see `apply_read`).
    stored: Position,
    /// When `stored` was last brought up to `checkpoint`.
    flushed: tokio::time::Instant,
    batch: usize,
    progress: watch::Sender<Position>,
    leading: watch::Sender<bool>,
    /// Test hook: fail after applying this many events of the next batch. Compiled only with
    /// the `testing` feature, never into the release binary.
    #[cfg(any(test, feature = "testing"))]
    pub fail_after: Option<usize>,
}

/// Advisory-lock key of a projection's lease (per database: PostgreSQL scopes advisory locks
/// to the current database).
fn lease_key(kind: Kind) -> i64 {
    0x1c_0000_0000 + Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0) as i64
}

/// Tries to take the lease of `kind` on a connection of its own: held while the connection
/// lives, released by PostgreSQL when the session ends (a crashed leader frees it). The
/// connection is detached from the pool so the lock can never linger in a pooled session.
async fn try_lease(pool: &PgPool, kind: Kind) -> Result<Option<sqlx::PgConnection>> {
    let mut conn = pool.acquire().await?.detach();
    let got: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(lease_key(kind)).fetch_one(&mut conn).await?;
    Ok(got.then_some(conn))
}

impl Runner {
    pub async fn new(kind: Kind, db: &ReadDb, store: &EventStore) -> Result<Self> {
        let checkpoint = with_writer!(db, m, pool => m::ensure_checkpoint(pool, kind.name()).await)?;
        Ok(Self {
            kind,
            db: db.clone(),
            store: store.clone(),
            checkpoint,
            stored: checkpoint,
            flushed: tokio::time::Instant::now(),
            batch: 500,
            progress: watch::channel(checkpoint).0,
            leading: watch::channel(false).0,
            #[cfg(any(test, feature = "testing"))]
            fail_after: None,
        })
    }

    pub fn with_batch_size(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn checkpoint(&self) -> Position {
        self.checkpoint
    }

    pub fn progress(&self) -> watch::Receiver<Position> {
        self.progress.subscribe()
    }

    /// Whether this runner currently holds its projection's lease (always, on SQLite).
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// Applies the next batch. Returns how many events it applied (0: caught up, or another
    /// runner had moved the checkpoint, which is then reloaded).
    #[tracing::instrument(skip_all, fields(projection = self.kind.name(), from = %self.checkpoint), err)]
    pub async fn run_batch(&mut self) -> Result<usize> {
        let events = self.store.read_all(self.checkpoint, self.batch).await?;
        self.apply_read(events).await
    }

    /// Applies `events`, read from the log right after this runner's checkpoint (as
    /// `run_batch` reads them). Same outcome as `run_batch`.
    ///
    /// On SQLite (one server, and one writer that the appends share) a batch with nothing for
    /// this model moves the checkpoint in memory only: no write transaction for the events of
    /// other models, which on a dashboard's writes spared five of seven projection commits per
    /// append. The next batch that writes claims the whole range from the stored checkpoint by
    /// compare-and-set, as always (what lies between changes nothing here), and an idle runner
    /// stores its checkpoint within `FLUSH_EVERY`. On PostgreSQL other servers follow the
    /// stored checkpoint (their `minPosition` waits), so every batch stores it.
    pub async fn apply_read(&mut self, events: Vec<RecordedEvent>) -> Result<usize> {
        let Some(last) = events.last() else { return Ok(0) };
        let (from, to, kind) = (self.stored, last.position, self.kind);
        if matches!(self.db, ReadDb::Sqlite { .. }) && !events.iter().any(|e| kind.cares_about(e)) {
            self.checkpoint = to;
            self.progress.send_replace(to);
            return Ok(events.len());
        }
        #[cfg(any(test, feature = "testing"))]
        let fail_after = self.fail_after.take();
        let moved = with_writer!(&self.db, m, pool => {
            let mut tx = m::begin(pool).await?;
            // Claim the range first: a racing runner blocks here, then finds the row moved.
            if m::advance(&mut tx, kind.name(), from, to).await? {
                #[cfg(any(test, feature = "testing"))]
                if let Some(n) = fail_after {
                    m::apply_batch(&mut tx, kind, &events[..n.min(events.len())]).await?;
                    return Err(ProjectionError::Injected);
                }
                m::apply_batch(&mut tx, kind, &events).await?;
                tx.commit().await?;
                true
            } else {
                false
            }
        });
        if !moved {
            self.checkpoint = self.db.checkpoint(kind).await?;
            self.stored = self.checkpoint;
            self.progress.send_replace(self.checkpoint);
            return Ok(0);
        }
        (self.checkpoint, self.stored, self.flushed) = (to, to, tokio::time::Instant::now());
        self.progress.send_replace(to);
        Ok(events.len())
    }

    /// Stores the checkpoint if batches with nothing for this model moved it in memory only.
    pub async fn flush(&mut self) -> Result<()> {
        if self.stored == self.checkpoint {
            return Ok(());
        }
        let (from, to, kind) = (self.stored, self.checkpoint, self.kind);
        let moved = with_writer!(&self.db, m, pool => {
            let mut tx = m::begin(pool).await?;
            let moved = m::advance(&mut tx, kind.name(), from, to).await?;
            tx.commit().await?;
            moved
        });
        if moved {
            (self.stored, self.flushed) = (to, tokio::time::Instant::now());
        } else {
            // Another runner moved it: follow the stored one.
            self.checkpoint = self.db.checkpoint(kind).await?;
            self.stored = self.checkpoint;
            self.progress.send_replace(self.checkpoint);
        }
        Ok(())
    }

    /// Applies batches until the log has nothing more to give right now.
    pub async fn catch_up(&mut self) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = self.run_batch().await?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    }

    /// Runs until `shutdown` turns true. On PostgreSQL only the holder of the projection's
    /// lease applies events; the others follow the stored checkpoint (so `minPosition` waits work
    /// on every server) and try for the lease every few seconds. On SQLite (one server) it always
    /// leads. Either way the compare-and-set checkpoint keeps application exactly-once.
    /// Wakes on appends and polls every 250 ms regardless (a lost notification, or events held
    /// back by an older transaction, only delays).
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut wake = self.store.wakeups();
        let mut failures = 0u32;
        let mut lease: Option<sqlx::PgConnection> = None;
        let mut next_try = tokio::time::Instant::now();
        while !*shutdown.borrow() {
            if let ReadDb::Postgres(pool) = &self.db {
                if lease.is_none() && tokio::time::Instant::now() >= next_try {
                    lease = try_lease(pool, self.kind).await.unwrap_or_else(|e| {
                        tracing::warn!(projection = self.kind.name(), error = %e, "cannot try for the projection lease");
                        None
                    });
                    next_try = tokio::time::Instant::now() + Duration::from_secs(2);
                    self.leading.send_replace(lease.is_some());
                }
                if lease.is_none() {
                    if let Ok(at) = self.db.checkpoint(self.kind).await {
                        self.checkpoint = at;
                        self.progress.send_replace(at);
                    }
                    tokio::select! {
                        _ = wake.changed() => {}
                        _ = shutdown.changed() => {}
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    }
                    continue;
                }
            } else {
                self.leading.send_replace(true);
            }
            let caught_up = match self.catch_up().await {
                Ok(_) if self.flushed.elapsed() >= FLUSH_EVERY => self.flush().await,
                other => other.map(drop),
            };
            match caught_up {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures += 1;
                    tracing::error!(projection = self.kind.name(), error = %e, "projection batch failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(failures.min(50)))).await;
                    continue;
                }
            }
            tokio::select! {
                _ = wake.changed() => {}
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
        if let Err(e) = self.flush().await {
            tracing::warn!(projection = self.kind.name(), error = %e, "cannot store the checkpoint at shutdown");
        }
        // Dropping the lease connection ends its session and frees the lease at once.
        drop(lease);
    }
}

/// The running projections of this process.
#[derive(Clone)]
pub struct Projections {
    progress: Vec<(Kind, watch::Receiver<Position>)>,
    leading: Vec<(Kind, watch::Receiver<bool>)>,
}

impl Projections {
    /// Catches every projection up, then runs them in the background until `shutdown`.
    pub async fn start(db: &ReadDb, store: &EventStore, shutdown: watch::Receiver<bool>) -> Result<Self> {
        let (mut progress, mut leading) = (Vec::new(), Vec::new());
        for kind in Kind::ALL {
            let mut runner = Runner::new(kind, db, store).await?;
            // Start from a caught-up state whoever leads (the checkpoint CAS keeps it exact).
            if runner.catch_up().await? >= ANALYZE_AFTER {
                db.analyze(kind).await?;
            }
            progress.push((kind, runner.progress()));
            leading.push((kind, runner.leading()));
            tokio::spawn(runner.run(shutdown.clone()));
        }
        Ok(Self { progress, leading })
    }

    /// Current checkpoint of every projection.
    pub fn status(&self) -> Vec<(Kind, Position)> {
        self.progress.iter().map(|(k, rx)| (*k, *rx.borrow())).collect()
    }

    /// Which projections this process currently leads.
    pub fn leading(&self) -> Vec<(Kind, bool)> {
        self.leading.iter().map(|(k, rx)| (*k, *rx.borrow())).collect()
    }

    /// Waits until every projection has applied the event at `position`.
    pub async fn wait_for(&self, position: Position, timeout: Duration) -> Result<()> {
        let wait_all = async {
            for (_, rx) in &self.progress {
                let mut rx = rx.clone();
                if rx.wait_for(|p| *p >= position).await.is_err() {
                    return Err(ProjectionError::ConsistencyTimeout);
                }
            }
            Ok(())
        };
        tokio::time::timeout(timeout, wait_all).await.map_err(|_| ProjectionError::ConsistencyTimeout)?
    }
}

/// An idle runner stores a checkpoint that batches for other models moved in memory at most
/// this long after (SQLite; see `Runner::apply_read`).
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// A start-up catch-up of at least this many events refreshes its tables' statistics.
const ANALYZE_AFTER: u64 = 1_000;

/// Catches every projection up once (for CLI commands that write and exit).
pub async fn catch_up_all(db: &ReadDb, store: &EventStore) -> Result<()> {
    for kind in Kind::ALL {
        let mut runner = Runner::new(kind, db, store).await?;
        // On PostgreSQL a transaction open anywhere in the cluster holds newer events back from
        // readers for a moment: keep going until everything committed has been applied.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            runner.catch_up().await?;
            if store.count_after(runner.checkpoint()).await? == 0 {
                runner.flush().await?;
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(ProjectionError::ConsistencyTimeout);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    Ok(())
}
