//! Appending on PostgreSQL: a group of appends is one statement, so one round trip and one
//! commit (one WAL flush) for everything queued while the previous group was written.
//!
//! The chain needs each stream's head (version, hash) before its events can be hashed. Heads
//! come from a cache filled by reads of streams and by our own appends; one that is missing is
//! read in one query for the whole group. A cached head may be stale (another server wrote), so
//! the statement re-checks every head itself: a job is inserted only if each of its streams'
//! current last version is the one its events were chained onto. A job that fails this check is
//! not written, its heads are read again, and it is decided once more against them — where the
//! command's expected version then fails, that is its conflict. Expected versions are only ever
//! judged against heads read from the database, never against the cache alone.

use super::{is_concurrency_failure, CHANNEL};
use crate::backend::{check_expected, is_duplicate_event, is_version_conflict, StreamBatch};
use crate::chain::{link, Link};
use crate::crypto::KeyRecord;
use crate::error::{Result, StoreError};
use crate::group::{GroupWriter, Head, Heads, Job};
use crate::types::{now_micros, AppendResult, ExpectedVersion, Position};
use async_trait::async_trait;
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};
use std::collections::HashMap;
use tokio::sync::{mpsc, watch};

/// Rounds a group makes before a job still beaten by other writers is answered with a conflict.
const ROUNDS: usize = 6;
pub(crate) struct PgWriter {
    pub(crate) pool: PgPool,
    pub(crate) heads: Heads,
    pub(crate) wake: watch::Sender<u64>,
    /// Asks the announcer to tell other servers (see [`announce`]).
    pub(crate) announce: mpsc::Sender<()>,
}

/// Tells other servers that events were written: `pg_notify` on a connection of its own, after
/// the commit. Not inside the append: a transaction that notifies takes a cluster-wide lock at
/// commit, which serialises every notifying commit (measured: the 1-writer append went from
/// 0.81 to 1.03 of a raw INSERT without it). Requests that arrive while one is sent fold into
/// the next, so a burst of groups costs one or two notifications. Readers in this process are
/// woken directly; other servers also poll, so a lost notification only delays them.
pub(crate) async fn announce(pool: PgPool, mut requests: mpsc::Receiver<()>) {
    while requests.recv().await.is_some() {
        if let Err(e) = sqlx::query("SELECT pg_notify($1, '')").bind(CHANNEL).execute(&pool).await {
            tracing::debug!(error = %e, "could not announce appended events");
        }
    }
}

/// What a stream's head is known to be during one group.
#[derive(Clone)]
enum Known {
    /// Read from the database during this group.
    Read(Option<Head>),
    /// From the cache, or assumed absent for a `NoStream` append: the statement will tell.
    Hint(Option<Head>),
}

impl Known {
    fn head(&self) -> &Option<Head> {
        match self {
            Known::Read(h) | Known::Hint(h) => h,
        }
    }
}

/// The rows of one group statement, column by column.
#[derive(Default)]
struct Columns {
    guard_job: Vec<i32>,
    guard_stream: Vec<String>,
    guard_prev: Vec<Option<i64>>,
    job: Vec<i32>,
    stream_id: Vec<String>,
    version: Vec<i64>,
    event_id: Vec<uuid::Uuid>,
    store_id: Vec<uuid::Uuid>,
    event_type: Vec<String>,
    schema_version: Vec<i32>,
    payload: Vec<String>,
    metadata: Vec<String>,
    recorded_at: Vec<chrono::DateTime<chrono::Utc>>,
    prev_hash: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
}

impl Columns {
    fn push(
        &mut self,
        job: usize,
        batch: &StreamBatch,
        head: &Option<Head>,
        links: &[Link],
        at: chrono::DateTime<chrono::Utc>,
    ) {
        self.guard_job.push(job as i32);
        self.guard_stream.push(batch.stream_id.clone());
        self.guard_prev.push(head.as_ref().map(|(v, _)| *v as i64));
        for (e, l) in batch.events.iter().zip(links) {
            self.job.push(job as i32);
            self.stream_id.push(batch.stream_id.clone());
            self.version.push(l.version as i64);
            self.event_id.push(e.event_id);
            self.store_id.push(e.store_id);
            self.event_type.push(e.event_type.clone());
            self.schema_version.push(e.schema_version as i32);
            self.payload.push(e.payload.clone());
            self.metadata.push(e.metadata.clone());
            self.recorded_at.push(at);
            self.prev_hash.push(l.prev_hash.clone());
            self.hash.push(l.hash.to_vec());
        }
    }
}

/// Inserts every job whose streams' last versions are still the ones it was chained onto;
/// returns one row per inserted event. One statement: one round trip, one commit.
const GROUP_INSERT: &str = "
WITH g AS (
    SELECT * FROM UNNEST($1::int[], $2::text[], $3::bigint[]) AS g(job, stream_id, prev)
), moved AS (
    SELECT g.job FROM g
    WHERE (SELECT max(e.version) FROM events e WHERE e.stream_id = g.stream_id) IS DISTINCT FROM g.prev
), ins AS (
    INSERT INTO events (stream_id, version, event_id, store_id, event_type, schema_version, payload, metadata, recorded_at, prev_hash, hash)
    SELECT u.stream_id, u.version, u.event_id, u.store_id, u.event_type, u.schema_version, u.payload, u.metadata, u.recorded_at, u.prev_hash, u.hash
    FROM UNNEST($4::int[], $5::text[], $6::bigint[], $7::uuid[], $8::uuid[], $9::text[], $10::int[], $11::text[], $12::text[], $13::timestamptz[], $14::bytea[], $15::bytea[])
         WITH ORDINALITY AS u(job, stream_id, version, event_id, store_id, event_type, schema_version, payload, metadata, recorded_at, prev_hash, hash, ord)
    WHERE u.job NOT IN (SELECT job FROM moved)
    ORDER BY u.ord
    RETURNING stream_id, version, position, tx_id::text::bigint AS commit_pos
)
SELECT ins.stream_id, ins.version, ins.position, ins.commit_pos FROM ins";

impl PgWriter {
    /// Reads the heads of these streams from the database, in one query.
    async fn read_heads(&self, streams: &[String]) -> Result<HashMap<String, Option<Head>>> {
        let rows: Vec<(String, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT s.id, h.version, h.hash FROM UNNEST($1::text[]) AS s(id)
             CROSS JOIN LATERAL (SELECT version, hash FROM events e WHERE e.stream_id = s.id ORDER BY version DESC LIMIT 1) h",
        )
        .bind(streams)
        .fetch_all(&self.pool)
        .await?;
        let mut out: HashMap<String, Option<Head>> = streams.iter().map(|s| (s.clone(), None)).collect();
        for (id, version, hash) in rows {
            self.heads.put(&id, (version as u64, hash.clone()));
            out.insert(id, Some((version as u64, hash)));
        }
        Ok(out)
    }

    /// Writes the batches in an open transaction, checking and chaining each stream on the head
    /// read inside it; `commit` makes them visible.
    pub(crate) async fn append_uncommitted(
        &self,
        batches: Vec<StreamBatch>,
        new_keys: Vec<KeyRecord>,
    ) -> Result<PendingAppend> {
        let mut tx = self.pool.begin().await?;
        for k in &new_keys {
            insert_new_key(&mut tx, k).await?;
        }
        // Streams are written in the caller's order, so positions follow it (the last batch gets
        // the highest positions). Two appends that lock the same streams in opposite orders can
        // deadlock; PostgreSQL detects it and the loser's error maps to a conflict, retried.
        let mut results = Vec::with_capacity(batches.len());
        for batch in &batches {
            results.push(insert_stream(&mut tx, batch).await?);
        }
        Ok(PendingAppend { tx, results })
    }
}

/// The outcomes so far when a round fails: earlier rounds may have committed, so decided jobs
/// keep their outcomes and only the undecided ones are written alone (never a job twice).
fn undecided(
    outcomes: Vec<Option<Result<Vec<AppendResult>>>>,
    error: &StoreError,
) -> Vec<Option<Result<Vec<AppendResult>>>> {
    tracing::debug!(error = %error, "a later round of a group failed; its undecided appends go alone");
    outcomes
}

#[async_trait]
impl GroupWriter for PgWriter {
    async fn write_group(&self, jobs: &[&Job]) -> Result<Vec<Option<Result<Vec<AppendResult>>>>> {
        let mut outcomes: Vec<Option<Result<Vec<AppendResult>>>> = (0..jobs.len()).map(|_| None).collect();
        let mut known: HashMap<String, Known> = HashMap::new();
        for j in jobs {
            for b in &j.batches {
                let hint = self.heads.get(&b.stream_id);
                if hint.is_some() || b.expected == ExpectedVersion::NoStream {
                    known.insert(b.stream_id.clone(), Known::Hint(hint));
                }
            }
        }
        for _ in 0..ROUNDS {
            let open: Vec<usize> = (0..jobs.len()).filter(|i| outcomes[*i].is_none()).collect();
            if open.is_empty() {
                break;
            }
            let unknown: Vec<String> = open
                .iter()
                .flat_map(|i| jobs[*i].batches.iter())
                .filter(|b| !known.contains_key(&b.stream_id))
                .map(|b| b.stream_id.clone())
                .collect();
            if !unknown.is_empty() {
                match self.read_heads(&unknown).await {
                    Ok(heads) => heads.into_iter().for_each(|(id, head)| drop(known.insert(id, Known::Read(head)))),
                    Err(e) => return Ok(undecided(outcomes, &e)),
                }
            }
            // Decide each open job against its heads; chain the ones that pass.
            let at = now_micros();
            let mut cols = Columns::default();
            let mut chained: Vec<(usize, Vec<Vec<Link>>)> = Vec::new();
            for &i in &open {
                let job = jobs[i];
                let verdict = job.batches.iter().try_for_each(|b| {
                    check_expected(&b.stream_id, b.expected, known[&b.stream_id].head().as_ref().map(|(v, _)| *v))
                });
                if let Err(conflict) = verdict {
                    if job.batches.iter().all(|b| matches!(known[&b.stream_id], Known::Read(_))) {
                        outcomes[i] = Some(Err(conflict));
                    } else {
                        // Judged on a hint: read the heads and decide again next round.
                        job.batches.iter().for_each(|b| drop(known.remove(&b.stream_id)));
                    }
                    continue;
                }
                let mut links = Vec::with_capacity(job.batches.len());
                for b in &job.batches {
                    let head = known[&b.stream_id].head().clone();
                    let l = link(&b.stream_id, head.clone(), &b.events, at);
                    cols.push(i, b, &head, &l, at);
                    links.push(l);
                }
                chained.push((i, links));
            }
            if cols.job.is_empty() {
                continue;
            }
            let rows: sqlx::Result<Vec<(String, i64, i64, i64)>> = sqlx::query_as(GROUP_INSERT)
                .bind(&cols.guard_job)
                .bind(&cols.guard_stream)
                .bind(&cols.guard_prev)
                .bind(&cols.job)
                .bind(&cols.stream_id)
                .bind(&cols.version)
                .bind(&cols.event_id)
                .bind(&cols.store_id)
                .bind(&cols.event_type)
                .bind(&cols.schema_version)
                .bind(&cols.payload)
                .bind(&cols.metadata)
                .bind(&cols.recorded_at)
                .bind(&cols.prev_hash)
                .bind(&cols.hash)
                .fetch_all(&self.pool)
                .await;
            let rows = match rows {
                Ok(rows) => rows,
                Err(e) => return Ok(undecided(outcomes, &e.into())),
            };
            let written: HashMap<(String, i64), Position> =
                rows.into_iter().map(|(s, v, seq, commit)| ((s, v), Position { commit, seq })).collect();
            for (i, links) in chained {
                let job = jobs[i];
                // A job is inserted whole or not at all; its events' positions ascend, so each
                // stream's last event holds the highest.
                let results: Option<Vec<AppendResult>> = job
                    .batches
                    .iter()
                    .zip(&links)
                    .map(|(b, l)| {
                        let last = l.last().expect("a non-empty batch");
                        let position = written.get(&(b.stream_id.clone(), last.version as i64))?;
                        Some(AppendResult { version: last.version, position: *position, recorded_at: at })
                    })
                    .collect();
                match results {
                    Some(results) => {
                        for (b, l) in job.batches.iter().zip(&links) {
                            let last = l.last().expect("a non-empty batch");
                            let head = (last.version, last.hash.to_vec());
                            self.heads.put(&b.stream_id, head.clone());
                            known.insert(b.stream_id.clone(), Known::Read(Some(head)));
                        }
                        outcomes[i] = Some(Ok(results));
                    }
                    // A head moved under us: read it again and decide again.
                    None => job.batches.iter().for_each(|b| drop(known.remove(&b.stream_id))),
                }
            }
        }
        // Still beaten by other writers after every round: a conflict.
        Ok(outcomes
            .into_iter()
            .zip(jobs)
            .map(|(o, job)| {
                Some(o.unwrap_or_else(|| {
                    let b = &job.batches[0];
                    Err(StoreError::Conflict {
                        stream_id: b.stream_id.clone(),
                        expected: b.expected.to_string(),
                        actual: "changed concurrently".into(),
                    })
                }))
            })
            .collect())
    }

    async fn write_one(&self, batches: &[StreamBatch], new_keys: &[KeyRecord]) -> Result<Vec<AppendResult>> {
        for b in batches {
            self.heads.forget(&b.stream_id);
        }
        // With `Any` everywhere, a concurrent writer taking our version is not a conflict: retry.
        let all_any = batches.iter().all(|b| b.expected == ExpectedVersion::Any);
        let mut attempt = 0;
        loop {
            let r = match self.append_uncommitted(batches.to_vec(), new_keys.to_vec()).await {
                Ok(pending) => pending.commit().await.map_err(|e| match e {
                    StoreError::Database(ref db) if is_concurrency_failure(db) => StoreError::Conflict {
                        stream_id: "(several)".into(),
                        expected: "unchanged".into(),
                        actual: "changed concurrently".into(),
                    },
                    other => other,
                }),
                Err(e) => Err(e),
            };
            match r {
                Err(StoreError::Conflict { .. }) if all_any && attempt < 10 => attempt += 1,
                r => return r,
            }
        }
    }

    fn written(&self) {
        self.wake.send_modify(|v| *v = v.wrapping_add(1));
        let _ = self.announce.try_send(());
    }
}

/// An append whose transaction is still open. Tests use it to commit out of order. Committing
/// it wakes no one: the committer announces the appends it writes (readers also poll).
pub struct PendingAppend {
    tx: Transaction<'static, Postgres>,
    /// One result per stream, in input order.
    pub results: Vec<AppendResult>,
}

impl PendingAppend {
    pub async fn commit(self) -> Result<Vec<AppendResult>> {
        self.tx.commit().await?;
        Ok(self.results)
    }
}

/// Checks one stream's version and inserts its events, inside the caller's transaction.
async fn insert_stream(tx: &mut Transaction<'static, Postgres>, batch: &StreamBatch) -> Result<AppendResult> {
    let (stream_id, expected, events) = (batch.stream_id.as_str(), batch.expected, &batch.events);
    let last: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, hash FROM events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1")
            .bind(stream_id)
            .fetch_optional(&mut **tx)
            .await?;
    check_expected(stream_id, expected, last.as_ref().map(|(v, _)| *v as u64))?;
    let recorded_at = now_micros();
    let n = events.len();
    let links = link(stream_id, last.map(|(v, h)| (v as u64, h)), events, recorded_at);
    let versions: Vec<i64> = links.iter().map(|l| l.version as i64).collect();
    let prevs: Vec<&[u8]> = links.iter().map(|l| l.prev_hash.as_slice()).collect();
    let hashes: Vec<&[u8]> = links.iter().map(|l| l.hash.as_slice()).collect();
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "INSERT INTO events (stream_id, version, event_id, store_id, event_type, schema_version, payload, metadata, recorded_at, prev_hash, hash)
         SELECT $1, u.* FROM UNNEST($2::bigint[], $3::uuid[], $4::uuid[], $5::text[], $6::int[], $7::text[], $8::text[], $9::timestamptz[], $10::bytea[], $11::bytea[]) AS u
         RETURNING position, tx_id::text::bigint",
    )
    .bind(stream_id)
    .bind(&versions)
    .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.store_id).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.event_type.clone()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.schema_version as i32).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.payload.clone()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.metadata.clone()).collect::<Vec<_>>())
    .bind(vec![recorded_at; n])
    .bind(&prevs)
    .bind(&hashes)
    .fetch_all(&mut **tx)
    .await
    .map_err(|err| {
        if is_duplicate_event(&err) {
            StoreError::DuplicateEvent
        } else if is_version_conflict(&err) || is_concurrency_failure(&err) {
            StoreError::Conflict { stream_id: stream_id.into(), expected: expected.to_string(), actual: "changed concurrently".into() }
        } else {
            err.into()
        }
    })?;
    let position = rows
        .iter()
        .map(|(seq, commit)| Position { commit: *commit, seq: *seq })
        .max()
        .expect("a non-empty batch returns rows");
    Ok(AppendResult { version: links.last().expect("a non-empty batch").version, position, recorded_at })
}

/// Inserts a data key created for this append; `KeyRace` if the subject got one meanwhile.
async fn insert_new_key(tx: &mut sqlx::Transaction<'static, Postgres>, k: &KeyRecord) -> Result<()> {
    let inserted = sqlx::query(
        "INSERT INTO data_keys (store_id, subject_id, key_class, key_id, wrapped_key, fingerprint, created_at, destroyed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) ON CONFLICT (store_id, subject_id, key_class) DO NOTHING",
    )
    .bind(k.store_id)
    .bind(k.subject_id)
    .bind(k.class.as_str())
    .bind(k.key_id)
    .bind(&k.wrapped)
    .bind(&k.fingerprint)
    .bind(k.created_at)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        Ok(())
    } else {
        Err(StoreError::KeyRace)
    }
}
