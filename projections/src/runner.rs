//! Runners: each follows the log for one projection from its checkpoint, applying batches in
//! transactions that move the checkpoint by compare-and-set; on PostgreSQL only the holder of
//! a projection's lease applies. In a server one follower (`follow.rs`, `Projections`) reads
//! the log for all of them and drives them; CLI commands and rebuilds run a runner alone.

use crate::{readmodels, Kind, ProjectionError, ReadDb, Result};
use eventstore::{EventStore, Position, RecordedEvent};
use sqlx::postgres::PgPool;
use std::time::Duration;
use tokio::sync::watch;

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
    /// Test record: every event given to `apply_read`, counted (each should be given once).
    #[cfg(any(test, feature = "testing"))]
    pub given: usize,
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
            batch: LIVE_BATCH,
            progress: watch::channel(checkpoint).0,
            leading: watch::channel(false).0,
            #[cfg(any(test, feature = "testing"))]
            fail_after: None,
            #[cfg(any(test, feature = "testing"))]
            given: 0,
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
        let events = self.store.read_tail(self.checkpoint, self.batch).await?;
        self.apply_read(&events).await
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
    /// stored checkpoint (their `minPosition` waits), so every batch stores it; one with nothing
    /// for this model does so in a single round trip.
    pub async fn apply_read(&mut self, events: &[RecordedEvent]) -> Result<usize> {
        let Some(last) = events.last() else { return Ok(0) };
        #[cfg(any(test, feature = "testing"))]
        {
            self.given += events.len();
        }
        let (from, to, kind) = (self.stored, last.position, self.kind);
        if !events.iter().any(|e| kind.cares_about(e)) {
            match &self.db {
                ReadDb::Sqlite { .. } => {
                    self.checkpoint = to;
                    self.progress.send_replace(to);
                    return Ok(events.len());
                }
                // Only the checkpoint moves: one round trip instead of a transaction's four.
                ReadDb::Postgres(pool) => {
                    let moved = readmodels::pg_advance_alone(pool, kind.name(), from, to).await?;
                    return self.moved(moved, to, events.len()).await;
                }
            }
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
                m::apply_batch(&mut tx, kind, events).await?;
                tx.commit().await?;
                true
            } else {
                false
            }
        });
        self.moved(moved, to, events.len()).await
    }

    /// Applies each runner's part (read from the log right after its checkpoint) in one
    /// transaction: on SQLite one turn of the one writer instead of one per model (an
    /// `acquireItem` batch writes the inventory and the audit trail); on PostgreSQL one
    /// transaction instead of one per model, the checkpoints of the runners with nothing for
    /// their model in the parts moved by one statement. Every checkpoint still moves by its own
    /// compare-and-set. `Ok(false)`, with nothing applied and nothing changed, when one of them
    /// had been moved by another runner: the caller then applies each alone (which reloads the
    /// moved one). On an error nothing is applied either.
    pub(crate) async fn apply_together(group: &mut [(&mut Runner, &[RecordedEvent])]) -> Result<bool> {
        let Some((first, _)) = group.first() else { return Ok(true) };
        let db = first.db.clone();
        // Every part ends at the batch's last event.
        let Some(to) = group.iter().filter_map(|(_, part)| part.last()).map(|e| e.position).max() else {
            return Ok(true);
        };
        with_writer!(&db, m, pool => {
            let mut tx = m::begin(pool).await?;
            let mut idle = Vec::new();
            for (runner, part) in group.iter() {
                let Some(last) = part.last() else { continue };
                if last.position != to {
                    return Err(ProjectionError::Invalid("parts of one batch end apart".into()));
                }
                if !runner.cares_about_any(part) {
                    idle.push((runner.kind.name(), runner.stored));
                    continue;
                }
                // Dropping the transaction rolls back what the others applied.
                if !m::advance(&mut tx, runner.kind.name(), runner.stored, to).await? {
                    return Ok(false);
                }
                m::apply_batch(&mut tx, runner.kind, part).await?;
            }
            if !idle.is_empty() && !m::advance_many(&mut tx, &idle, to).await? {
                return Ok(false);
            }
            tx.commit().await?;
        });
        for (runner, part) in group.iter_mut() {
            if part.is_empty() {
                continue;
            }
            #[cfg(any(test, feature = "testing"))]
            {
                runner.given += part.len();
            }
            runner.stored_at(to);
        }
        Ok(true)
    }

    /// Whether `events` hold any for this model (a batch without any moves the checkpoint
    /// only; see `apply_read`).
    pub(crate) fn cares_about_any(&self, events: &[RecordedEvent]) -> bool {
        events.iter().any(|e| self.kind.cares_about(e))
    }

    /// Whether this runner may be applied together with others (not when a test has it fail
    /// on purpose: `apply_read` is where that happens).
    pub(crate) fn joins(&self) -> bool {
        #[cfg(any(test, feature = "testing"))]
        {
            self.fail_after.is_none()
        }
        #[cfg(not(any(test, feature = "testing")))]
        {
            true
        }
    }

    /// After a compare-and-set of the stored checkpoint to `to`: follow it, or, when another
    /// runner had moved it first, reload it (0 events applied).
    async fn moved(&mut self, moved: bool, to: Position, applied: usize) -> Result<usize> {
        if !moved {
            self.follow_stored().await?;
            return Ok(0);
        }
        self.stored_at(to);
        Ok(applied)
    }

    /// After this runner stored its checkpoint at `to`.
    fn stored_at(&mut self, to: Position) {
        (self.checkpoint, self.stored, self.flushed) = (to, to, tokio::time::Instant::now());
        self.progress.send_replace(to);
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
            self.follow_stored().await?;
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

    /// Takes the stored checkpoint as its own: after another runner moved it, or without
    /// applying (a PostgreSQL server that does not hold this projection's lease, so
    /// `minPosition` waits work here too).
    pub(crate) async fn follow_stored(&mut self) -> Result<()> {
        let at = self.db.checkpoint(self.kind).await?;
        (self.checkpoint, self.stored) = (at, at);
        self.progress.send_replace(at);
        Ok(())
    }

    pub(crate) fn set_leading(&self, leading: bool) {
        self.leading.send_replace(leading);
    }

    /// Whether the checkpoint is stored behind the applied one for `FLUSH_EVERY` or longer.
    pub(crate) fn flush_due(&self) -> bool {
        self.stored != self.checkpoint && self.flushed.elapsed() >= FLUSH_EVERY
    }

    pub(crate) fn db(&self) -> &ReadDb {
        &self.db
    }
}

/// Advisory-lock key of a projection's lease (per database: PostgreSQL scopes advisory locks
/// to the current database).
fn lease_key(kind: Kind) -> i64 {
    0x1c_0000_0000 + Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0) as i64
}

/// Tries to take the lease of `kind` on a connection of its own: held while the connection
/// lives, released by PostgreSQL when the session ends (a crashed leader frees it). The
/// connection is detached from the pool so the lock can never linger in a pooled session.
pub(crate) async fn try_lease(pool: &PgPool, kind: Kind) -> Result<Option<sqlx::PgConnection>> {
    let mut conn = pool.acquire().await?.detach();
    let got: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(lease_key(kind)).fetch_one(&mut conn).await?;
    Ok(got.then_some(conn))
}

/// Events a running projection applies per transaction.
pub(crate) const LIVE_BATCH: usize = 500;

/// An idle runner stores a checkpoint that batches for other models moved in memory at most
/// this long after (SQLite; see `Runner::apply_read`).
pub(crate) const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// A start-up catch-up of at least this many events refreshes its tables' statistics.
pub(crate) const ANALYZE_AFTER: u64 = 1_000;

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
