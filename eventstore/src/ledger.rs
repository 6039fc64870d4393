//! The verifiable ledger, stored: the RFC 6962 tree over the whole log (leaf i = the i-th event
//! in log order, hashed from its stored chain hash, so erasure never changes it), sealed
//! incrementally into signed heads, and proofs served from the stored subtree hashes.
//!
//! One sealer at a time (SQLite's single writer; an advisory transaction lock on PostgreSQL).
//! Sealing N new events writes N leaves and at most N interior nodes and reads O(log n) old
//! ones. A backlog (a restored or generated log) is sealed in steps of at most [`STEP`] events,
//! each its own transaction with its own signed head: appends are never blocked on PostgreSQL
//! and wait at most one step on SQLite (sealing 913k events in one transaction held SQLite's
//! writer for 19 s).

use crate::error::{Result, StoreError};
use crate::types::Position;
use crate::{Database, MasterKey};
use chrono::{DateTime, Utc};
use ledger::tree::{self, Hash};
use ledger::{Checkpoint, NoteSigner};
use sqlx::Row;
use std::collections::HashMap;
use uuid::Uuid;

/// A signed tree head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub tree_size: u64,
    pub root_hash: Hash,
    pub sealed_at: DateTime<Utc>,
    /// The C2SP signed note.
    pub checkpoint: String,
}

/// An inclusion proof: the leaf, its index, and the audit path to the root of `tree_size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub leaf_hash: Hash,
    pub audit_path: Vec<Hash>,
}

const KEY_NAME: &str = "ledger";
const PAGE: usize = 1000;
/// Events one sealing transaction takes in at most.
pub const STEP: u64 = 20_000;
/// PostgreSQL advisory lock key for the sealer ("ledger" in ASCII).
const SEAL_LOCK: i64 = 0x6c65_6467_6572;

macro_rules! ledger_sql {
    ($module:ident, $db:ty) => {
        mod $module {
            use super::*;
            pub type Conn = <$db as sqlx::Database>::Connection;

            pub async fn last_leaf(c: &mut Conn) -> Result<Option<(i64, i64, i64)>> {
                Ok(sqlx::query_as("SELECT leaf_index, commit_pos, seq_pos FROM ledger_leaves ORDER BY leaf_index DESC LIMIT 1")
                    .fetch_optional(&mut *c)
                    .await?)
            }

            /// Inserts leaves and nodes as multi-row INSERTs (a seal writes thousands at once).
            pub async fn insert_many(c: &mut Conn, leaves: &[(i64, Uuid, Position)], nodes: &[(u32, u64, Hash)]) -> Result<()> {
                for chunk in leaves.chunks(1000) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("INSERT INTO ledger_leaves (leaf_index, event_id, commit_pos, seq_pos) ");
                    qb.push_values(chunk, |mut b, (i, id, p)| {
                        b.push_bind(*i).push_bind(*id).push_bind(p.commit).push_bind(p.seq);
                    });
                    qb.build().execute(&mut *c).await?;
                }
                for chunk in nodes.chunks(1000) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("INSERT INTO ledger_nodes (level, node_index, hash) ");
                    qb.push_values(chunk, |mut b, (l, i, h)| {
                        b.push_bind(*l as i32).push_bind(*i as i64).push_bind(h.to_vec());
                    });
                    qb.build().execute(&mut *c).await?;
                }
                Ok(())
            }

            /// Many nodes in one query.
            pub async fn nodes(c: &mut Conn, wanted: &[(u32, u64)]) -> Result<HashMap<(u32, u64), Hash>> {
                let mut out = HashMap::new();
                for chunk in wanted.chunks(400) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT level, node_index, hash FROM ledger_nodes WHERE (level, node_index) IN (");
                    let mut sep = qb.separated(", ");
                    for (l, i) in chunk {
                        sep.push("(").push_bind_unseparated(*l as i32).push_unseparated(", ").push_bind_unseparated(*i as i64).push_unseparated(")");
                    }
                    qb.push(")");
                    let rows: Vec<(i32, i64, Vec<u8>)> = qb.build_query_as().fetch_all(&mut *c).await?;
                    for (l, i, h) in rows {
                        let h: Hash = h.try_into().map_err(|_| StoreError::Invalid("stored ledger node is not 32 bytes".into()))?;
                        out.insert((l as u32, i as u64), h);
                    }
                }
                Ok(out)
            }

            pub async fn node(c: &mut Conn, level: u32, index: u64) -> Result<Option<Hash>> {
                let h: Option<Vec<u8>> = sqlx::query_scalar("SELECT hash FROM ledger_nodes WHERE level = $1 AND node_index = $2")
                    .bind(level as i32)
                    .bind(index as i64)
                    .fetch_optional(&mut *c)
                    .await?;
                h.map(|h| h.try_into().map_err(|_| StoreError::Invalid("stored ledger node is not 32 bytes".into()))).transpose()
            }

            pub async fn insert_head(c: &mut Conn, h: &Head) -> Result<()> {
                sqlx::query("INSERT INTO ledger_heads (tree_size, root_hash, sealed_at, checkpoint) VALUES ($1, $2, $3, $4)")
                    .bind(h.tree_size as i64)
                    .bind(&h.root_hash[..])
                    .bind(h.sealed_at.timestamp_micros())
                    .bind(&h.checkpoint)
                    .execute(&mut *c)
                    .await?;
                Ok(())
            }

            fn head(r: &<$db as sqlx::Database>::Row) -> Result<Head> {
                let root: Vec<u8> = r.try_get("root_hash")?;
                Ok(Head {
                    tree_size: r.try_get::<i64, _>("tree_size")? as u64,
                    root_hash: root.try_into().map_err(|_| StoreError::Invalid("stored root is not 32 bytes".into()))?,
                    sealed_at: DateTime::from_timestamp_micros(r.try_get("sealed_at")?).unwrap_or_default(),
                    checkpoint: r.try_get("checkpoint")?,
                })
            }

            /// Heads, newest first, with tree size below `before` (all when `None`).
            pub async fn heads(c: &mut Conn, before: Option<u64>, limit: usize) -> Result<Vec<Head>> {
                let rows = sqlx::query(
                    "SELECT tree_size, root_hash, sealed_at, checkpoint FROM ledger_heads
                     WHERE tree_size < $1 ORDER BY tree_size DESC LIMIT $2",
                )
                .bind(before.map_or(i64::MAX, |b| b as i64))
                .bind(limit as i64)
                .fetch_all(&mut *c)
                .await?;
                rows.iter().map(head).collect()
            }

            /// The first head whose tree has at least `size` leaves.
            pub async fn head_covering(c: &mut Conn, size: u64) -> Result<Option<Head>> {
                let r = sqlx::query(
                    "SELECT tree_size, root_hash, sealed_at, checkpoint FROM ledger_heads
                     WHERE tree_size >= $1 ORDER BY tree_size LIMIT 1",
                )
                .bind(size as i64)
                .fetch_optional(&mut *c)
                .await?;
                r.as_ref().map(head).transpose()
            }

            pub async fn head_at(c: &mut Conn, size: u64) -> Result<Option<Head>> {
                let r = sqlx::query("SELECT tree_size, root_hash, sealed_at, checkpoint FROM ledger_heads WHERE tree_size = $1")
                    .bind(size as i64)
                    .fetch_optional(&mut *c)
                    .await?;
                r.as_ref().map(head).transpose()
            }

            pub async fn leaf_index(c: &mut Conn, event_id: Uuid) -> Result<Option<u64>> {
                let i: Option<i64> = sqlx::query_scalar("SELECT leaf_index FROM ledger_leaves WHERE event_id = $1")
                    .bind(event_id)
                    .fetch_optional(&mut *c)
                    .await?;
                Ok(i.map(|i| i as u64))
            }

            /// Every sealed leaf: (index, event id, leaf hash), in order.
            pub async fn leaves(c: &mut Conn) -> Result<Vec<(i64, Uuid, Vec<u8>)>> {
                Ok(sqlx::query_as(
                    "SELECT l.leaf_index, l.event_id, n.hash FROM ledger_leaves l
                     JOIN ledger_nodes n ON n.level = 0 AND n.node_index = l.leaf_index ORDER BY l.leaf_index",
                )
                .fetch_all(&mut *c)
                .await?)
            }

            /// The hashes of these ranges, from their stored subtrees fetched in one query.
            pub async fn ranges_to_hashes(c: &mut Conn, ranges: Vec<(u64, u64)>) -> Result<Vec<Hash>> {
                let wanted: Vec<(u32, u64)> = ranges.iter().flat_map(|(a, b)| tree::subtrees(*a, *b)).collect();
                let found = nodes(c, &wanted).await?;
                ranges
                    .iter()
                    .map(|(a, b)| {
                        let mut hashes = tree::subtrees(*a, *b).into_iter().map(|k| found.get(&k).copied());
                        let mut all = std::iter::from_fn(|| hashes.next().flatten());
                        tree::combine(*a, *b, &mut all).ok_or_else(|| StoreError::Invalid("ledger node missing".into()))
                    })
                    .collect()
            }

            pub async fn key(c: &mut Conn) -> Result<Option<(String, Vec<u8>)>> {
                Ok(sqlx::query_as("SELECT origin, wrapped_key FROM ledger_keys WHERE name = $1")
                    .bind(KEY_NAME)
                    .fetch_optional(&mut *c)
                    .await?)
            }

            pub async fn put_key(c: &mut Conn, origin: &str, wrapped: &[u8], public: &[u8]) -> Result<()> {
                sqlx::query(
                    "INSERT INTO ledger_keys (name, origin, wrapped_key, public_key, created_at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(KEY_NAME)
                .bind(origin)
                .bind(wrapped)
                .bind(public)
                .bind(Utc::now().timestamp_micros())
                .execute(&mut *c)
                .await?;
                Ok(())
            }
        }
    };
}

ledger_sql!(sqlite_sql, sqlx::Sqlite);
ledger_sql!(postgres_sql, sqlx::Postgres);

/// Runs `$body` with `$m` the backend's SQL module and `$c` a pooled connection.
macro_rules! with_conn {
    ($db:expr, $m:ident, $c:ident => $body:expr) => {
        match $db {
            Database::Sqlite(b) => {
                use sqlite_sql as $m;
                let mut $c = b.reader().acquire().await?;
                let $c: &mut $m::Conn = &mut $c;
                $body
            }
            Database::Postgres(b) => {
                use postgres_sql as $m;
                let mut $c = b.pool().acquire().await?;
                let $c: &mut $m::Conn = &mut $c;
                $body
            }
        }
    };
}

/// The ledger of one database.
#[derive(Clone)]
pub struct Ledger {
    db: Database,
    master: MasterKey,
    step: u64,
}

impl Ledger {
    pub fn new(db: &Database, master: &MasterKey) -> Self {
        Self { db: db.clone(), master: master.clone(), step: STEP }
    }

    /// The same ledger sealing at most `events` per transaction (tests use small steps).
    pub fn in_steps_of(mut self, events: u64) -> Self {
        self.step = events.max(1);
        self
    }

    /// The signing key, created (wrapped by the master key) the first time it is needed.
    pub async fn signer(&self) -> Result<NoteSigner> {
        let existing = with_conn!(&self.db, m, c => m::key(c).await?);
        let (origin, wrapped) = match existing {
            Some(k) => k,
            None => {
                let secret = MasterKey::random_secret();
                let public = NoteSigner::new("x", &secret).public_key();
                let origin = format!(
                    "inventory-connect/{}",
                    &ledger::hex(&<sha2::Sha256 as sha2::Digest>::digest(public))[..16]
                );
                let wrapped = self.master.wrap_secret(KEY_NAME, &secret);
                match &self.db {
                    Database::Sqlite(b) => {
                        sqlite_sql::put_key(&mut *b.writer().acquire().await?, &origin, &wrapped, &public).await?
                    }
                    Database::Postgres(b) => {
                        postgres_sql::put_key(&mut *b.pool().acquire().await?, &origin, &wrapped, &public).await?
                    }
                }
                // Two first sealers may race: whichever wrote first is the key.
                with_conn!(&self.db, m, c => m::key(c).await?)
                    .ok_or_else(|| StoreError::Invalid("ledger key vanished".into()))?
            }
        };
        let secret: [u8; 32] = self
            .master
            .unwrap_secret(KEY_NAME, &wrapped)?
            .try_into()
            .map_err(|_| StoreError::Crypto("ledger key has the wrong length".into()))?;
        Ok(NoteSigner::new(&origin, &secret))
    }

    /// Adds every event the log has that the tree does not, and signs a head for the new size.
    /// Returns the newest head (a fresh one only if the tree grew, or none existed yet). A
    /// backlog is sealed in steps (see the module's note), each step's head signed.
    pub async fn seal(&self) -> Result<Head> {
        let signer = self.signer().await?;
        loop {
            let (head, more) = match &self.db {
                Database::Sqlite(b) => {
                    let mut tx = b.writer().begin_with("BEGIN IMMEDIATE").await?;
                    let sealed = seal_sqlite(self, &signer, &mut tx).await?;
                    tx.commit().await?;
                    sealed
                }
                Database::Postgres(b) => {
                    let mut tx = b.pool().begin().await?;
                    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(SEAL_LOCK).execute(&mut *tx).await?;
                    let sealed = seal_postgres(self, &signer, &mut tx).await?;
                    tx.commit().await?;
                    sealed
                }
            };
            if !more {
                return Ok(head);
            }
        }
    }

    /// Seals until the tree covers every event committed when it was called (on PostgreSQL a
    /// seal stops below the oldest running transaction, so this may take a few rounds), or
    /// until `wait` has passed; returns the newest head.
    pub async fn seal_all(&self, wait: std::time::Duration) -> Result<Head> {
        let mut target = 0u64;
        let mut after = Position::START;
        loop {
            let page = self.db.backend().read_committed(after, 10_000).await?;
            let Some(last) = page.last() else { break };
            after = last.position;
            target += page.len() as u64;
        }
        let deadline = std::time::Instant::now() + wait;
        loop {
            let head = self.seal().await?;
            if head.tree_size >= target || std::time::Instant::now() >= deadline {
                return Ok(head);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The newest signed head, if any was sealed.
    pub async fn head(&self) -> Result<Option<Head>> {
        Ok(with_conn!(&self.db, m, c => m::heads(c, None, 1).await?).into_iter().next())
    }

    /// Heads newest first, below tree size `before`.
    pub async fn heads(&self, before: Option<u64>, limit: usize) -> Result<Vec<Head>> {
        with_conn!(&self.db, m, c => m::heads(c, before, limit).await)
    }

    pub async fn head_at(&self, size: u64) -> Result<Option<Head>> {
        with_conn!(&self.db, m, c => m::head_at(c, size).await)
    }

    /// The earliest signed head whose tree has at least `size` leaves (so a proof against it
    /// never changes once it exists).
    pub async fn head_covering(&self, size: u64) -> Result<Option<Head>> {
        with_conn!(&self.db, m, c => m::head_covering(c, size).await)
    }

    /// The leaf index of an event, once sealed.
    pub async fn leaf_index(&self, event_id: Uuid) -> Result<Option<u64>> {
        with_conn!(&self.db, m, c => m::leaf_index(c, event_id).await)
    }

    /// The audit path of an event's leaf in the tree of `tree_size` (a sealed head's size).
    /// `None` when the event is not in that tree.
    pub async fn inclusion_proof(&self, event_id: Uuid, tree_size: u64) -> Result<Option<InclusionProof>> {
        with_conn!(&self.db, m, c => {
            let Some(index) = m::leaf_index(c, event_id).await? else { return Ok(None) };
            if index >= tree_size || m::head_at(c, tree_size).await?.is_none() {
                return Ok(None);
            }
            let leaf = m::node(c, 0, index).await?.ok_or_else(|| StoreError::Invalid("ledger leaf missing".into()))?;
            let path = m::ranges_to_hashes(c, tree::inclusion_ranges(index, tree_size)).await?;
            Ok(Some(InclusionProof { leaf_index: index, tree_size, leaf_hash: leaf, audit_path: path }))
        })
    }

    /// PROOF(from, D[to]) between two sealed sizes; `None` unless both are heads and from ≤ to.
    pub async fn consistency_proof(&self, from: u64, to: u64) -> Result<Option<Vec<Hash>>> {
        with_conn!(&self.db, m, c => {
            if from > to || m::head_at(c, to).await?.is_none() || (from > 0 && m::head_at(c, from).await?.is_none()) {
                return Ok(None);
            }
            Ok(Some(m::ranges_to_hashes(c, tree::consistency_ranges(from, to)).await?))
        })
    }
}

/// What a ledger check found wrong. Each names where to look.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerProblem {
    #[error("the log has {log_size} events but the ledger sealed {sealed_size}: sealed events were deleted (the first missing is leaf {first_missing}, event {event_id})")]
    EventsMissing { log_size: u64, sealed_size: u64, first_missing: u64, event_id: Uuid },
    #[error("leaf {index} was sealed as event {sealed} but the log now has event {found} there: events were removed, inserted or reordered")]
    EventReplaced { index: u64, sealed: Uuid, found: Uuid },
    #[error("event {event_id} (leaf {index}) no longer hashes to what was sealed: it was changed")]
    EventChanged { index: u64, event_id: Uuid },
    #[error("the trusted head covers {trusted_size} events but the log has only {log_size}: events were deleted")]
    ShorterThanTrustedHead { trusted_size: u64, log_size: u64 },
    #[error("the log's first {size} events do not hash to the trusted head's root: the log was rewritten (events changed, removed or reordered)")]
    NotAnExtensionOfTrustedHead { size: u64 },
}

impl Ledger {
    /// Recomputes the tree from every committed event and checks it against the stored leaves
    /// and, if given, a trusted head (whose signature the caller has checked). `Ok(Ok(size))` is
    /// the verified log size.
    pub async fn check(&self, trusted: Option<&Checkpoint>) -> Result<std::result::Result<u64, LedgerProblem>> {
        let mut events = Vec::new();
        let mut after = Position::START;
        loop {
            let page = self.db.backend().read_committed(after, 10_000).await?;
            let Some(last) = page.last() else { break };
            after = last.position;
            events.extend(page.into_iter().map(|e| (e.event_id, tree::leaf_hash(&e.hash))));
        }
        let sealed = with_conn!(&self.db, m, c => m::leaves(c).await?);
        let log_size = events.len() as u64;
        for (index, event_id, hash) in &sealed {
            let index = *index as u64;
            let Some((found, leaf)) = events.get(index as usize) else {
                return Ok(Err(LedgerProblem::EventsMissing {
                    log_size,
                    sealed_size: sealed.len() as u64,
                    first_missing: index,
                    event_id: *event_id,
                }));
            };
            if found != event_id {
                return Ok(Err(LedgerProblem::EventReplaced { index, sealed: *event_id, found: *found }));
            }
            if &leaf[..] != hash.as_slice() {
                return Ok(Err(LedgerProblem::EventChanged { index, event_id: *event_id }));
            }
        }
        if let Some(t) = trusted {
            if t.size > log_size {
                return Ok(Err(LedgerProblem::ShorterThanTrustedHead { trusted_size: t.size, log_size }));
            }
            let leaves: Vec<Hash> = events.iter().take(t.size as usize).map(|(_, l)| *l).collect();
            if tree::root(&leaves) != t.root {
                return Ok(Err(LedgerProblem::NotAnExtensionOfTrustedHead { size: t.size }));
            }
        }
        Ok(Ok(log_size))
    }
}

macro_rules! seal_body {
    ($name:ident, $m:ident, $db:ty) => {
        /// One step: at most `ledger.step` new events; the head, and whether the log may
        /// hold more.
        async fn $name(
            ledger: &Ledger,
            signer: &NoteSigner,
            tx: &mut sqlx::Transaction<'static, $db>,
        ) -> Result<(Head, bool)> {
            let c: &mut $m::Conn = &mut *tx;
            let last = $m::last_leaf(c).await?;
            let mut size = last.map_or(0, |(i, _, _)| i as u64 + 1);
            let mut after = last.map_or(Position::START, |(_, commit, seq)| Position { commit, seq });
            let before = size;
            // The newest complete subtrees (the tree's right edge), so a parent never re-reads a
            // child written moments ago.
            let mut fresh: HashMap<(u32, u64), Hash> = HashMap::new();
            let mut more = false;
            loop {
                let room = (before + ledger.step).saturating_sub(size);
                if room == 0 {
                    more = true;
                    break;
                }
                let page = ledger.db.backend().read_all(after, PAGE.min(room as usize)).await?;
                if page.is_empty() {
                    break;
                }
                let mut leaves = Vec::with_capacity(page.len());
                let mut nodes = Vec::with_capacity(page.len() * 2);
                for e in &page {
                    let chain: &[u8] = &e.hash;
                    let leaf = tree::leaf_hash(chain);
                    leaves.push((size as i64, e.event_id, e.position));
                    nodes.push((0, size, leaf));
                    fresh.insert((0, size), leaf);
                    for (level, index) in tree::completed_by(size) {
                        let child = |i: u64| (level - 1, i);
                        let (l, r) = (child(2 * index), child(2 * index + 1));
                        let left = match fresh.get(&l) {
                            Some(h) => *h,
                            None => $m::node(c, l.0, l.1)
                                .await?
                                .ok_or_else(|| StoreError::Invalid("ledger node missing".into()))?,
                        };
                        let right = fresh[&r];
                        let h = tree::node_hash(&left, &right);
                        nodes.push((level, index, h));
                        // Children are never read again: `fresh` stays the right edge of the
                        // tree (O(log n)), however many events one seal takes in.
                        fresh.remove(&l);
                        fresh.remove(&r);
                        fresh.insert((level, index), h);
                    }
                    size += 1;
                    after = e.position;
                }
                $m::insert_many(c, &leaves, &nodes).await?;
            }
            if size == before {
                if let Some(h) = $m::head_at(c, size).await? {
                    return Ok((h, false));
                }
            }
            let mut nodes = Vec::new();
            for (level, index) in tree::subtrees(0, size) {
                nodes.push(match fresh.get(&(level, index)) {
                    Some(h) => *h,
                    None => $m::node(c, level, index)
                        .await?
                        .ok_or_else(|| StoreError::Invalid("ledger node missing".into()))?,
                });
            }
            let root = tree::combine(0, size, &mut nodes.into_iter())
                .ok_or_else(|| StoreError::Invalid("ledger root".into()))?;
            let checkpoint = signer.sign(&Checkpoint { origin: signer.name().to_owned(), size, root }.body());
            let sealed_at = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default();
            let head = Head { tree_size: size, root_hash: root, sealed_at, checkpoint };
            $m::insert_head(c, &head).await?;
            Ok((head, more))
        }
    };
}

seal_body!(seal_sqlite, sqlite_sql, sqlx::Sqlite);
seal_body!(seal_postgres, postgres_sql, sqlx::Postgres);
