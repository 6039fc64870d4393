//! Rebuilding a read model from the whole log without taking it away from readers.
//!
//! The log is applied into shadow tables while the live model keeps serving (and keeps being
//! followed by its runner). When the shadow has caught up, one transaction that holds the live
//! checkpoint applies the last few events to the shadow and swaps it in with the checkpoint the
//! shadow reached, so a reader sees the old model or the new one, never an empty or partial one,
//! and never a model behind a position it was already told about.
//!
//! - **PostgreSQL**: the shadow is a schema of its own (`ic_rebuild_<name>_<id>`) holding copies
//!   of the model's tables (same columns, constraints and index names) and of the checkpoint
//!   table; a pool whose `search_path` puts it first runs the model's ordinary SQL against it.
//!   The swap moves the live tables out and the shadow ones in (`ALTER TABLE … SET SCHEMA`,
//!   waiting at most `lock_timeout` for readers), then drops the old ones. A session advisory
//!   lock keeps two rebuilds of one model apart; the holder drops what a crashed rebuild left.
//! - **SQLite**: the shadow is TEMP tables on a connection of its own (TEMP comes first in name
//!   resolution, so the same SQL fills them). The swap is one `BEGIN IMMEDIATE` transaction that
//!   replaces the live rows with the shadow's; readers keep their WAL snapshot until it commits.

use crate::{readmodels, Kind, ProjectionError, ReadDb, Result, Runner};
use chrono::Utc;
use eventstore::{EventStore, Position, RecordedEvent};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events a rebuild applies per transaction.
pub const REBUILD_BATCH: usize = 2_000;

/// How long the swap may wait for the live tables (readers finishing) before it gives up and
/// tries again; readers arriving meanwhile queue behind it.
const SWAP_LOCK_TIMEOUT: &str = "5s";

/// Swap attempts before the rebuild fails (the shadow is dropped, the live model is untouched).
const SWAP_ATTEMPTS: u32 = 3;

/// What a rebuild did.
#[derive(Debug, Clone, Copy)]
pub struct Rebuilt {
    /// Events applied to the shadow before the swap (the swap applies whatever arrived since).
    pub applied: u64,
    /// How long the swap held the live checkpoint (the live model's writers wait that long).
    pub swap: Duration,
}

/// Applies the whole log to a shadow copy of `kind` and swaps it in, reporting `(applied,
/// total)` after each batch. Queries are served from the live model throughout.
pub async fn rebuild(db: &ReadDb, store: &EventStore, kind: Kind, progress: impl FnMut(u64, u64)) -> Result<Rebuilt> {
    rebuild_with(db, store, kind, REBUILD_BATCH, progress, std::future::ready(())).await
}

/// [`rebuild`] with `batch` events per transaction, awaiting `before_swap` once the shadow has
/// caught up and before the swap starts (tests use it to move the live model ahead).
pub async fn rebuild_with(
    db: &ReadDb,
    store: &EventStore,
    kind: Kind,
    batch: usize,
    mut progress: impl FnMut(u64, u64),
    before_swap: impl std::future::Future<Output = ()>,
) -> Result<Rebuilt> {
    let shadow = Shadow::create(db, kind).await?;
    let result: Result<Rebuilt> = async {
        let mut runner = Runner::new(kind, &shadow.db(), store).await?.with_batch_size(batch);
        let done = fill(&mut runner, store, batch, &mut progress).await?;
        // What arrived while filling, outside the swap's lock, so the swap has little to do.
        runner.catch_up().await?;
        shadow.db().analyze(kind).await?;
        before_swap.await;
        let mut attempt = 1;
        let swapped = loop {
            let started = Instant::now();
            match shadow.swap(db, store, kind).await {
                Ok(()) => break started.elapsed(),
                Err(ProjectionError::Database(e)) if attempt < SWAP_ATTEMPTS => {
                    tracing::warn!(projection = kind.name(), attempt, error = %e, "rebuild swap failed; retrying");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        };
        tracing::info!(projection = kind.name(), swap_ms = swapped.as_millis() as u64, "rebuilt model swapped in");
        Ok(Rebuilt { applied: done, swap: swapped })
    }
    .await;
    shadow.drop(db).await;
    result
}

/// Applies the log to `runner`'s model from its checkpoint, reading the next batch while one
/// is applied (reading and writing wait on different connections, and on SQLite on different
/// threads).
async fn fill(
    runner: &mut Runner,
    store: &EventStore,
    batch: usize,
    progress: &mut impl FnMut(u64, u64),
) -> Result<u64> {
    let total = store.count_after(Position::START).await?;
    let (batches, mut read) = tokio::sync::mpsc::channel::<Result<Vec<RecordedEvent>>>(2);
    let reader = {
        let (store, from) = (store.clone(), runner.checkpoint());
        tokio::spawn(async move {
            let (mut at, mut seen, mut idle) = (from, 0u64, 0);
            // On PostgreSQL the newest events wait for older transactions in the cluster.
            while seen < total && idle < 100 {
                let next = store.read_all(at, batch).await.map_err(ProjectionError::from);
                if let Ok(events) = &next {
                    match events.last() {
                        Some(last) => (at, seen) = (last.position, seen + events.len() as u64),
                        None => {
                            idle += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    }
                }
                let failed = next.is_err();
                if batches.send(next).await.is_err() || failed {
                    return;
                }
            }
        })
    };
    let mut done = 0u64;
    while let Some(events) = read.recv().await {
        done += runner.apply_read(&events?).await? as u64;
        progress(done, total);
    }
    reader.await.map_err(|_| ProjectionError::Invalid("the rebuild's log reader stopped".into()))?;
    Ok(done)
}

/// The tables a shadow copies: the model's and the checkpoint table (the shadow's runner keeps
/// its own checkpoint).
fn shadow_tables(kind: Kind) -> impl Iterator<Item = &'static str> {
    kind.tables().iter().copied().chain(["projection_checkpoints"])
}

/// Applies to the shadow, inside the swap's transaction `$tx`, every event after `$at` until
/// the log has nothing more and the shadow has reached `$live` (the live model's checkpoint,
/// which the transaction holds). Evaluates to the position reached.
macro_rules! finish_in_swap {
    ($m:ident, $tx:expr, $store:expr, $kind:expr, $at:expr, $live:expr) => {{
        let (mut at, deadline) = ($at, Instant::now() + Duration::from_secs(30));
        loop {
            let events = $store.read_all(at, REBUILD_BATCH).await?;
            match events.last() {
                Some(last) => {
                    let to = last.position;
                    if !readmodels::$m::advance(&mut $tx, $kind.name(), at, to).await? {
                        return Err(ProjectionError::Invalid("the rebuild's shadow checkpoint moved".into()));
                    }
                    readmodels::$m::apply_batch(&mut $tx, $kind, &events).await?;
                    at = to;
                }
                None if at >= $live => break at,
                None if Instant::now() > deadline => return Err(ProjectionError::ConsistencyTimeout),
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }};
}

enum Shadow {
    /// TEMP tables on the one connection of `pool`.
    Sqlite { pool: SqlitePool },
    /// Schema `schema` beside the live schema `live`; `pool` resolves names in it first;
    /// `lease` holds the advisory lock of this model's rebuilds.
    Postgres { pool: PgPool, schema: String, live: String, lease: sqlx::PgConnection },
}

/// A double-quoted SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Advisory-lock key of a model's rebuilds (beside the runners' lease keys).
fn rebuild_key(kind: Kind) -> i64 {
    0x1d_0000_0000 + Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0) as i64
}

impl Shadow {
    async fn create(db: &ReadDb, kind: Kind) -> Result<Self> {
        match db {
            ReadDb::Sqlite { writer, .. } => Self::create_sqlite(writer, kind).await,
            ReadDb::Postgres(pool) => Self::create_postgres(pool, kind).await,
        }
    }

    fn db(&self) -> ReadDb {
        match self {
            Self::Sqlite { pool } => ReadDb::Sqlite { writer: pool.clone(), reader: pool.clone() },
            Self::Postgres { pool, .. } => ReadDb::Postgres(pool.clone()),
        }
    }

    async fn create_sqlite(writer: &SqlitePool, kind: Kind) -> Result<Self> {
        readmodels::sqlite::ensure_checkpoint(writer, kind.name()).await?;
        let schema: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT type, tbl_name, sql FROM main.sqlite_master
             WHERE sql IS NOT NULL AND type IN ('table', 'index') ORDER BY type = 'index'",
        )
        .fetch_all(writer)
        .await?;
        let mut ddl = Vec::new();
        for (kind_of, table, sql) in schema {
            if !shadow_tables(kind).any(|t| t == table) {
                continue;
            }
            if kind_of == "index" {
                // An unqualified index on a TEMP table is created in TEMP, beside it.
                ddl.push(sql);
                continue;
            }
            const CREATE: &str = "CREATE TABLE ";
            match sql.get(..CREATE.len()) {
                Some(head) if head.eq_ignore_ascii_case(CREATE) => {
                    ddl.push(format!("CREATE TEMP TABLE {}", &sql[CREATE.len()..]))
                }
                _ => return Err(ProjectionError::Invalid(format!("unexpected definition of {table}"))),
            }
        }
        // Should the connection ever be replaced, its fresh TEMP tables start again from the
        // beginning of the log, with a checkpoint that says so (never a model that skips).
        ddl.push(format!(
            "INSERT INTO temp.projection_checkpoints (name, commit_pos, seq_pos, updated_at) VALUES ('{}', 0, 0, 0)",
            kind.name()
        ));
        let ddl = Arc::new(ddl);
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                let ddl = ddl.clone();
                Box::pin(async move {
                    for statement in ddl.iter() {
                        sqlx::Executor::execute(&mut *conn, statement.as_str()).await?;
                    }
                    Ok(())
                })
            })
            .connect_with((*writer.connect_options()).clone())
            .await?;
        Ok(Self::Sqlite { pool })
    }

    async fn create_postgres(live_pool: &PgPool, kind: Kind) -> Result<Self> {
        readmodels::postgres::ensure_checkpoint(live_pool, kind.name()).await?;
        let mut lease = live_pool.acquire().await?.detach();
        let got: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(rebuild_key(kind)).fetch_one(&mut lease).await?;
        if !got {
            return Err(ProjectionError::Invalid(format!("a rebuild of {} is already running", kind.name())));
        }
        let live: String = sqlx::query_scalar("SELECT current_schema()::text").fetch_one(&mut lease).await?;
        // Connection options take the path unquoted: both names must be plain
        // (checked before anything is created).
        if !live.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(ProjectionError::Invalid(format!("cannot rebuild in schema {live:?}: not a plain name")));
        }
        // What a crashed rebuild of this model left (none can be running: we hold the lock).
        let prefix = format!("ic_rebuild_{}_", kind.name());
        let stale: Vec<String> =
            sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname::text, $1)")
                .bind(&prefix)
                .fetch_all(&mut lease)
                .await?;
        for schema in stale {
            sqlx::raw_sql(&format!("DROP SCHEMA {} CASCADE", ident(&schema))).execute(&mut lease).await?;
        }
        let schema = format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        sqlx::raw_sql(&format!("CREATE SCHEMA {}", ident(&schema))).execute(&mut lease).await?;
        for table in shadow_tables(kind) {
            let (from, to) =
                (format!("{}.{}", ident(&live), ident(table)), format!("{}.{}", ident(&schema), ident(table)));
            // Columns, defaults and CHECKs; keys and indexes below, under their live names.
            sqlx::raw_sql(&format!("CREATE TABLE {to} (LIKE {from} INCLUDING ALL EXCLUDING INDEXES)"))
                .execute(&mut lease)
                .await?;
            let keys: Vec<(String, String)> = sqlx::query_as(
                "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint
                 WHERE conrelid = $1::regclass AND contype IN ('p', 'u', 'x')",
            )
            .bind(&from)
            .fetch_all(&mut lease)
            .await?;
            for (name, def) in keys {
                sqlx::raw_sql(&format!("ALTER TABLE {to} ADD CONSTRAINT {} {def}", ident(&name)))
                    .execute(&mut lease)
                    .await?;
            }
            let indexes: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT pg_get_indexdef(x.indexrelid), format(' ON %I.%I ', $2::text, $3::text),
                        format(' ON %I.%I ', $4::text, $3::text)
                 FROM pg_index x
                 WHERE x.indrelid = $1::regclass
                   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
            )
            .bind(&from)
            .bind(&live)
            .bind(table)
            .bind(&schema)
            .fetch_all(&mut lease)
            .await?;
            for (def, on_live, on_shadow) in indexes {
                if !def.contains(&on_live) {
                    return Err(ProjectionError::Invalid(format!("unexpected index definition on {table}")));
                }
                sqlx::raw_sql(&def.replacen(&on_live, &on_shadow, 1)).execute(&mut lease).await?;
            }
        }
        let options = (*live_pool.connect_options()).clone().options([("search_path", format!("{schema},{live}"))]);
        let pool = PgPoolOptions::new().max_connections(2).connect_with(options).await?;
        Ok(Self::Postgres { pool, schema, live, lease })
    }

    /// Finishes the shadow under the live checkpoint's lock and puts it in the live model's place.
    async fn swap(&self, db: &ReadDb, store: &EventStore, kind: Kind) -> Result<()> {
        let now = readmodels::micros(Utc::now());
        match (self, db) {
            (Self::Sqlite { pool }, ReadDb::Sqlite { .. }) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let checkpoint = "SELECT commit_pos, seq_pos FROM {schema}.projection_checkpoints WHERE name = $1";
                let (c, s): (i64, i64) = sqlx::query_as(&checkpoint.replace("{schema}", "main"))
                    .bind(kind.name())
                    .fetch_one(&mut *tx)
                    .await?;
                let live = Position { commit: c, seq: s };
                let (c, s): (i64, i64) = sqlx::query_as(&checkpoint.replace("{schema}", "temp"))
                    .bind(kind.name())
                    .fetch_one(&mut *tx)
                    .await?;
                let at = finish_in_swap!(sqlite, tx, store, kind, Position { commit: c, seq: s }, live);
                for table in kind.tables() {
                    let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info($1, 'main')")
                        .bind(table)
                        .fetch_all(&mut *tx)
                        .await?;
                    let columns = columns.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
                    sqlx::raw_sql(&format!(
                        "DELETE FROM main.{table}; INSERT INTO main.{table} ({columns}) SELECT {columns} FROM temp.{table}"
                    ))
                    .execute(&mut *tx)
                    .await?;
                }
                let set = set_checkpoint("main");
                sqlx::query(&set).bind(at.commit).bind(at.seq).bind(now).bind(kind.name()).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            (Self::Postgres { schema, live, .. }, ReadDb::Postgres(live_pool)) => {
                let (shadow, live) = (ident(schema), ident(live));
                let mut tx = live_pool.begin().await?;
                sqlx::query(&format!("SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")).execute(&mut *tx).await?;
                // The live runner claims its next range on this row first: it waits here.
                let (c, s): (i64, i64) = sqlx::query_as(&format!(
                    "SELECT commit_pos, seq_pos FROM {live}.projection_checkpoints WHERE name = $1 FOR UPDATE"
                ))
                .bind(kind.name())
                .fetch_one(&mut *tx)
                .await?;
                let held = Position { commit: c, seq: s };
                let (c, s): (i64, i64) = sqlx::query_as(&format!(
                    "SELECT commit_pos, seq_pos FROM {shadow}.projection_checkpoints WHERE name = $1"
                ))
                .bind(kind.name())
                .fetch_one(&mut *tx)
                .await?;
                sqlx::query(&format!("SET LOCAL search_path = {shadow}, {live}")).execute(&mut *tx).await?;
                let at = finish_in_swap!(postgres, tx, store, kind, Position { commit: c, seq: s }, held);
                let old = ident(&old_schema(self.schema_name()));
                sqlx::raw_sql(&format!("CREATE SCHEMA {old}")).execute(&mut *tx).await?;
                for table in kind.tables() {
                    sqlx::raw_sql(&format!(
                        "ALTER TABLE {live}.{table} SET SCHEMA {old}; ALTER TABLE {shadow}.{table} SET SCHEMA {live}"
                    ))
                    .execute(&mut *tx)
                    .await?;
                }
                let set = set_checkpoint(&live);
                sqlx::query(&set).bind(at.commit).bind(at.seq).bind(now).bind(kind.name()).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            _ => return Err(ProjectionError::Invalid("the shadow is on another backend".into())),
        }
        Ok(())
    }

    fn schema_name(&self) -> &str {
        match self {
            Self::Postgres { schema, .. } => schema,
            Self::Sqlite { .. } => "temp",
        }
    }

    /// Removes the shadow (and, on PostgreSQL, the swapped-out tables); failures are logged,
    /// never fatal: a later rebuild of the model drops what is left.
    async fn drop(self, db: &ReadDb) {
        match (self, db) {
            (Self::Sqlite { pool }, _) => pool.close().await,
            (Self::Postgres { pool, schema, mut lease, .. }, _) => {
                pool.close().await;
                for name in [old_schema(&schema), schema] {
                    let dropped = sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(&name)))
                        .execute(&mut lease)
                        .await;
                    if let Err(e) = dropped {
                        tracing::warn!(schema = %name, error = %e, "cannot drop a rebuild's shadow schema");
                    }
                }
                // Closing the session releases the advisory lock.
                drop(lease);
            }
        }
    }
}

/// Sets the checkpoint of a model in `schema` (`$1` commit, `$2` seq, `$3` now, `$4` name).
fn set_checkpoint(schema: &str) -> String {
    format!("UPDATE {schema}.projection_checkpoints SET commit_pos = $1, seq_pos = $2, updated_at = $3 WHERE name = $4")
}

/// Where a swap moves the live tables it replaces (dropped with the shadow).
fn old_schema(shadow: &str) -> String {
    format!("{shadow}_old")
}
