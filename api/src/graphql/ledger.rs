//! The verifiable log over GraphQL: signed tree heads, inclusion and consistency proofs, the
//! verifier key, and sealing on demand. Hashes are lowercase hex; `checkpoint` is the C2SP
//! signed note, the same text `inventory-connect verify --trusted-head` reads.

use super::state;
use super::types::UserError;
use crate::error::ApiError;
use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use eventstore::ledger::Head;
use uuid::Uuid;

/// A signed tree head: the log's size and root, signed as a C2SP checkpoint.
#[derive(SimpleObject, Debug, Clone)]
pub struct SignedTreeHead {
    pub tree_size: i64,
    pub root_hash: String,
    pub timestamp: DateTime<Utc>,
    /// The signed note (C2SP tlog-checkpoint, Ed25519): keep it to verify later.
    pub checkpoint: String,
}

impl From<Head> for SignedTreeHead {
    fn from(h: Head) -> Self {
        Self {
            tree_size: h.tree_size as i64,
            root_hash: ledger::hex(&h.root_hash),
            timestamp: h.sealed_at,
            checkpoint: h.checkpoint,
        }
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct InclusionProof {
    pub leaf_index: i64,
    pub tree_size: i64,
    /// SHA-256(0x00 ‖ the event's stored chain hash).
    pub leaf_hash: String,
    pub audit_path: Vec<String>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct ConsistencyProof {
    pub from_size: i64,
    pub to_size: i64,
    pub path: Vec<String>,
}

#[derive(SimpleObject, Debug, Clone, Default)]
pub struct SignedTreeHeadPayload {
    pub head: Option<SignedTreeHead>,
    pub errors: Vec<UserError>,
}

pub type SignedTreeHeadConnection = Connection<String, SignedTreeHead, EmptyFields, EmptyFields>;

fn internal(e: eventstore::StoreError) -> async_graphql::Error {
    ApiError::internal("ledger", &e).into()
}

fn size(v: i64, what: &str) -> Result<u64, async_graphql::Error> {
    u64::try_from(v).map_err(|_| ApiError::BadUserInput(format!("{what} must not be negative")).into())
}

#[derive(Default)]
pub struct LedgerQuery;

#[Object]
impl LedgerQuery {
    /// The newest signed tree head (sealing the first one if none exists yet).
    async fn ledger_head(&self, ctx: &Context<'_>) -> async_graphql::Result<SignedTreeHead> {
        let ledger = &state(ctx).ledger;
        let head = match ledger.head().await.map_err(internal)? {
            Some(h) => h,
            None => ledger.seal().await.map_err(internal)?,
        };
        Ok(head.into())
    }

    /// Every head kept, newest first.
    async fn ledger_heads(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<SignedTreeHeadConnection> {
        let first = super::page_size(first)?;
        let before = match after {
            None => None,
            Some(a) => Some(
                a.parse::<u64>().map_err(|_| ApiError::BadUserInput("after is not a cursor from this list".into()))?,
            ),
        };
        let mut heads = state(ctx).ledger.heads(before, first + 1).await.map_err(internal)?;
        let has_next = heads.len() > first;
        heads.truncate(first);
        let mut conn = Connection::new(before.is_some(), has_next);
        conn.edges.extend(heads.into_iter().map(|h| Edge::new(h.tree_size.to_string(), h.into())));
        Ok(conn)
    }

    /// The signed-note verifier key of the ledger (`<name>+<hex key hash>+<base64 key>`); also at
    /// `GET /.well-known/inventory-connect/ledger-key`.
    async fn ledger_public_key(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(state(ctx).ledger.signer().await.map_err(internal)?.verifier_key())
    }

    /// Proves that an event is in the tree of `treeSize` (a sealed head's size; the newest head
    /// by default). `NOT_FOUND` when the event is not in that tree or no head has that size.
    async fn inclusion_proof(
        &self,
        ctx: &Context<'_>,
        event_id: ID,
        tree_size: Option<i64>,
    ) -> async_graphql::Result<InclusionProof> {
        let id = Uuid::parse_str(event_id.as_str())
            .map_err(|_| ApiError::BadUserInput("eventId is not a valid id".into()))?;
        let ledger = &state(ctx).ledger;
        let tree_size = match tree_size {
            Some(s) => size(s, "treeSize")?,
            None => ledger.head().await.map_err(internal)?.map_or(0, |h| h.tree_size),
        };
        let p = ledger.inclusion_proof(id, tree_size).await.map_err(internal)?.ok_or(ApiError::NotFound)?;
        Ok(InclusionProof {
            leaf_index: p.leaf_index as i64,
            tree_size: p.tree_size as i64,
            leaf_hash: ledger::hex(&p.leaf_hash),
            audit_path: p.audit_path.iter().map(|h| ledger::hex(h)).collect(),
        })
    }

    /// Proves that the tree of `toSize` extends the tree of `fromSize` (both sealed heads).
    async fn consistency_proof(
        &self,
        ctx: &Context<'_>,
        from_size: i64,
        to_size: i64,
    ) -> async_graphql::Result<ConsistencyProof> {
        let (from, to) = (size(from_size, "fromSize")?, size(to_size, "toSize")?);
        let path = state(ctx).ledger.consistency_proof(from, to).await.map_err(internal)?.ok_or(ApiError::NotFound)?;
        Ok(ConsistencyProof { from_size, to_size, path: path.iter().map(|h| ledger::hex(h)).collect() })
    }
}

#[derive(Default)]
pub struct LedgerMutation;

#[Object]
impl LedgerMutation {
    /// Seals every event committed so far into a new signed head (OWNER, AUDITOR).
    async fn seal_ledger_head(&self, ctx: &Context<'_>) -> async_graphql::Result<SignedTreeHeadPayload> {
        let head = state(ctx).ledger.seal_all(std::time::Duration::from_secs(10)).await.map_err(internal)?;
        Ok(SignedTreeHeadPayload { head: Some(head.into()), errors: vec![] })
    }
}
