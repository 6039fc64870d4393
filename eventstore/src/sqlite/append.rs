//! Appending on SQLite: one writer connection, so a group is one `BEGIN IMMEDIATE` transaction
//! holding the write lock. Each job's heads are read inside it and all its streams are checked
//! before any of its rows is written, so a job that fails its check writes nothing and the
//! others carry on; a database error rolls back the whole group (the committer then writes each
//! job alone).
//!
//! A group of one append to one stream whose head this process remembers (or that must not
//! exist yet) is a single statement instead: the INSERT re-checks the head itself and inserts
//! nothing if it moved (another process wrote), in which case the append takes the transaction
//! path above. Its expected version is judged on the remembered head only when that passes;
//! a failure is always re-judged on the head read under the write lock.

use super::micros;
use crate::backend::{check_expected, is_duplicate_event, is_version_conflict, StreamBatch};
use crate::chain::{link, Link};
use crate::crypto::KeyRecord;
use crate::error::{Result, StoreError};
use crate::group::{self, GroupWriter, Heads, Job};
use crate::types::{now_micros, AppendResult, ExpectedVersion, Position, SealedEvent};
use async_trait::async_trait;
use sqlx::sqlite::SqlitePool;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, Transaction};
use std::collections::HashMap;
use tokio::sync::watch;

pub(crate) struct SqliteWriter {
    pub(crate) pool: SqlitePool,
    pub(crate) wake: watch::Sender<u64>,
    pub(crate) heads: Heads,
}

/// A stream's last event (version and hash), or none.
type Head = Option<group::Head>;

/// The head of a multi-row insert of events (rows from [`event_row`]).
const INSERT_EVENTS: &str = "INSERT INTO events (stream_id, version, event_id, store_id, event_type, schema_version, payload, metadata, recorded_at, prev_hash, hash) ";

/// Most events one statement inserts (11 binds a row, far below SQLite's 32766 variables).
const CHUNK: usize = 500;

async fn read_head(tx: &mut SqliteConnection, stream_id: &str) -> Result<Head> {
    let last: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, hash FROM events WHERE stream_id = ?1 ORDER BY version DESC LIMIT 1")
            .bind(stream_id)
            .fetch_optional(&mut *tx)
            .await?;
    Ok(last.map(|(v, h)| (v as u64, h)))
}

/// Checks every stream of one job and, when all pass, writes them: `Ok(Err(conflict))` when a
/// check fails (nothing written), `Err` on a database error (the transaction must roll back).
async fn write_job(
    tx: &mut Transaction<'_, Sqlite>,
    batches: &[StreamBatch],
    known: &Heads,
) -> Result<Result<Vec<AppendResult>>> {
    if let Some(written) = write_on_hint(&mut *tx, batches, known).await? {
        return Ok(Ok(written));
    }
    let distinct = batches.iter().map(|b| b.stream_id.as_str()).collect::<std::collections::HashSet<_>>().len();
    if batches.len() > 1 && distinct == batches.len() {
        return write_streams(tx, batches, known).await;
    }
    let mut heads = Vec::with_capacity(batches.len());
    for b in batches {
        let head = read_head(&mut *tx, &b.stream_id).await?;
        if let Err(conflict) = check_expected(&b.stream_id, b.expected, head.as_ref().map(|(v, _)| *v)) {
            return Ok(Err(conflict));
        }
        heads.push(head);
    }
    let mut results = Vec::with_capacity(batches.len());
    for (b, head) in batches.iter().zip(heads) {
        let (result, hash) = insert_stream(&mut *tx, b, head, None).await?.expect("an unguarded insert writes");
        known.put(&b.stream_id, (result.version, hash.to_vec()));
        results.push(result);
    }
    Ok(Ok(results))
}

/// [`write_job`] for a job of several distinct streams (a command spanning aggregates, or a
/// generator's batch of hundreds): their heads in one query, their events in one multi-row
/// INSERT per chunk, instead of two statements per stream (each a round trip to SQLite's worker
/// thread). Inside the group's `BEGIN IMMEDIATE` transaction the heads read are the heads, so
/// the rows need no guard.
async fn write_streams(
    tx: &mut Transaction<'_, Sqlite>,
    batches: &[StreamBatch],
    known: &Heads,
) -> Result<Result<Vec<AppendResult>>> {
    let mut heads: HashMap<String, group::Head> = HashMap::with_capacity(batches.len());
    for chunk in batches.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT e.stream_id, e.version, e.hash FROM events e JOIN (SELECT stream_id, max(version) AS v FROM events WHERE stream_id IN (",
        );
        let mut ids = qb.separated(", ");
        for b in chunk {
            ids.push_bind(&b.stream_id);
        }
        qb.push(") GROUP BY stream_id) m ON e.stream_id = m.stream_id AND e.version = m.v");
        let rows: Vec<(String, i64, Vec<u8>)> = qb.build_query_as().fetch_all(&mut **tx).await?;
        heads.extend(rows.into_iter().map(|(s, v, h)| (s, (v as u64, h))));
    }
    for b in batches {
        let head = heads.get(&b.stream_id).map(|(v, _)| *v);
        if let Err(conflict) = check_expected(&b.stream_id, b.expected, head) {
            return Ok(Err(conflict));
        }
    }
    let recorded_at = now_micros();
    let links: Vec<Vec<Link>> =
        batches.iter().map(|b| link(&b.stream_id, heads.remove(&b.stream_id), &b.events, recorded_at)).collect();
    let rows: Vec<_> = batches
        .iter()
        .zip(&links)
        .flat_map(|(b, ls)| b.events.iter().zip(ls).map(move |(e, l)| (b.stream_id.as_str(), e, l)))
        .collect();
    let mut positions: HashMap<(String, i64), i64> = HashMap::with_capacity(batches.len());
    for chunk in rows.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new(INSERT_EVENTS);
        qb.push_values(chunk, |b, (stream_id, e, l)| event_row(b, stream_id, e, l, recorded_at));
        // RETURNING gives rows in no promised order: each says which event it is.
        qb.push(" RETURNING stream_id, version, position");
        let returned: Vec<(String, i64, i64)> = qb.build_query_as().fetch_all(&mut **tx).await.map_err(|err| {
            if is_duplicate_event(&err) {
                StoreError::DuplicateEvent
            } else {
                err.into()
            }
        })?;
        positions.extend(returned.into_iter().map(|(s, v, p)| ((s, v), p)));
    }
    let mut results = Vec::with_capacity(batches.len());
    for (b, ls) in batches.iter().zip(&links) {
        let last = ls.last().expect("a non-empty batch");
        let Some(&position) = positions.get(&(b.stream_id.clone(), last.version as i64)) else {
            return Err(StoreError::Corrupt {
                position: Position::START,
                reason: "an inserted event was not returned".into(),
            });
        };
        known.put(&b.stream_id, (last.version, last.hash.to_vec()));
        results.push(AppendResult {
            version: last.version,
            position: Position { commit: position, seq: position },
            recorded_at,
        });
    }
    Ok(Ok(results))
}

/// One append to one stream whose head is remembered (or that must not exist yet), as a
/// single guarded statement; `None` (nothing written) when it must be decided on the head read
/// from the database instead: no usable hint, the hint fails its expectation, or the head moved.
async fn write_on_hint(
    conn: &mut SqliteConnection,
    batches: &[StreamBatch],
    known: &Heads,
) -> Result<Option<Vec<AppendResult>>> {
    let [b] = batches else { return Ok(None) };
    let hint = match known.get(&b.stream_id) {
        Some(head) => Some(head),
        None if b.expected == ExpectedVersion::NoStream => None,
        None => return Ok(None),
    };
    if b.events.len() > CHUNK || check_expected(&b.stream_id, b.expected, hint.as_ref().map(|h| h.0)).is_err() {
        return Ok(None);
    }
    let guard = Some(hint.as_ref().map(|h| h.0));
    match insert_stream(conn, b, hint, guard).await? {
        Some((result, hash)) => {
            known.put(&b.stream_id, (result.version, hash.to_vec()));
            Ok(Some(vec![result]))
        }
        None => {
            known.forget(&b.stream_id);
            Ok(None)
        }
    }
}

impl SqliteWriter {
    /// A group of one append to one stream with a usable hint: its single guarded statement
    /// needs no transaction (see the module's note). `None` when it must take the
    /// transaction path.
    async fn write_alone_on_hint(&self, job: &Job) -> Result<Option<Vec<AppendResult>>> {
        if job.batches.len() != 1 {
            return Ok(None);
        }
        let mut conn = self.pool.acquire().await?;
        write_on_hint(&mut conn, &job.batches, &self.heads).await
    }
}

#[async_trait]
impl GroupWriter for SqliteWriter {
    async fn write_group(&self, jobs: &[&Job]) -> Result<Vec<Option<Result<Vec<AppendResult>>>>> {
        if let [job] = jobs {
            if let Some(written) = self.write_alone_on_hint(job).await? {
                return Ok(vec![Some(Ok(written))]);
            }
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut outcomes = Vec::with_capacity(jobs.len());
        for job in jobs {
            outcomes.push(Some(write_job(&mut tx, &job.batches, &self.heads).await?));
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn write_one(&self, batches: &[StreamBatch], new_keys: &[KeyRecord]) -> Result<Vec<AppendResult>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for k in new_keys {
            insert_new_key(&mut tx, k).await?;
        }
        let results = write_job(&mut tx, batches, &self.heads).await??;
        tx.commit().await?;
        Ok(results)
    }

    fn written(&self) {
        self.wake.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// Inserts one stream's events chained on `head`; returns the result and the last event's hash.
/// With `guard` (one chunk only), inserts only if the stream's last version is still that
/// (`None`: no event), and returns `None` when it is not.
async fn insert_stream(
    conn: &mut SqliteConnection,
    batch: &StreamBatch,
    head: Head,
    guard: Option<Option<u64>>,
) -> Result<Option<(AppendResult, [u8; 32])>> {
    let (stream_id, expected, events) = (batch.stream_id.as_str(), batch.expected, &batch.events);
    let recorded_at = now_micros();
    let links = link(stream_id, head, events, recorded_at);
    let rows: Vec<_> = events.iter().zip(&links).collect();
    // One multi-row INSERT per chunk: a statement per event costs a round trip to SQLite's
    // worker thread each (measured: 5x slower for 100-event batches). 11 binds per row stays far
    // below SQLite's 32766-variable limit at 500 rows.
    let mut position = 0i64;
    debug_assert!(guard.is_none() || rows.len() <= CHUNK);
    for chunk in rows.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new(INSERT_EVENTS);
        if guard.is_some() {
            qb.push("SELECT * FROM (");
        }
        qb.push_values(chunk, |b, (e, l)| event_row(b, stream_id, e, l, recorded_at));
        if let Some(prev) = guard {
            qb.push(") WHERE (SELECT max(version) FROM events WHERE stream_id = ");
            qb.push_bind(stream_id);
            qb.push(") IS ");
            qb.push_bind(prev.map(|v| v as i64));
        }
        qb.push(" RETURNING position");
        let positions: Vec<i64> = qb.build_query_scalar().fetch_all(&mut *conn).await.map_err(|err| {
            if is_duplicate_event(&err) {
                StoreError::DuplicateEvent
            } else if is_version_conflict(&err) {
                StoreError::Conflict {
                    stream_id: stream_id.into(),
                    expected: expected.to_string(),
                    actual: "changed".into(),
                }
            } else {
                err.into()
            }
        })?;
        if positions.is_empty() {
            return Ok(None);
        }
        position = position.max(positions.into_iter().max().unwrap_or(0));
    }
    let last = links.last().expect("a non-empty batch");
    Ok(Some((
        AppendResult { version: last.version, position: Position { commit: position, seq: position }, recorded_at },
        last.hash,
    )))
}

/// One event's row of an `INSERT INTO events` (the columns of [`INSERT_EVENTS`], in order).
fn event_row<'q>(
    mut b: sqlx::query_builder::Separated<'_, 'q, Sqlite, &'static str>,
    stream_id: &'q str,
    e: &'q SealedEvent,
    l: &'q Link,
    recorded_at: chrono::DateTime<chrono::Utc>,
) {
    b.push_bind(stream_id)
        .push_bind(l.version as i64)
        .push_bind(e.event_id)
        .push_bind(e.store_id)
        .push_bind(&e.event_type)
        .push_bind(e.schema_version as i64)
        .push_bind(&e.payload)
        .push_bind(&e.metadata)
        .push_bind(micros(recorded_at))
        .push_bind(l.prev_hash.as_slice())
        .push_bind(l.hash.as_slice());
}

/// Inserts a data key created for this append; `KeyRace` if the subject got one meanwhile.
async fn insert_new_key(tx: &mut Transaction<'_, Sqlite>, k: &KeyRecord) -> Result<()> {
    let inserted = sqlx::query(
        "INSERT INTO data_keys (store_id, subject_id, key_class, key_id, wrapped_key, fingerprint, created_at, destroyed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL) ON CONFLICT (store_id, subject_id, key_class) DO NOTHING",
    )
    .bind(k.store_id)
    .bind(k.subject_id)
    .bind(k.class.as_str())
    .bind(k.key_id)
    .bind(&k.wrapped)
    .bind(&k.fingerprint)
    .bind(micros(k.created_at))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        Ok(())
    } else {
        Err(StoreError::KeyRace)
    }
}
