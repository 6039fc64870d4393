//! The `privacy` projection: privacy requests as cases (`rm_privacy_requests`), for the
//! compliance desk's list of what is open, what is due and who handled it. No personal data:
//! the subject is an id; notes and identity checks stay encrypted in the request's stream.

use crate::readmodels::micros;
use crate::ProjectionError;
use domain::aggregate::decode;
use domain::privacy::{PrivacyRequestEvent, RequestKind, RequestStatus};
use eventstore::RecordedEvent;
use uuid::Uuid;

/// One privacy request as the list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivacyRequestRow {
    pub request_id: Uuid,
    pub store_id: Uuid,
    /// `customer` or `staff`.
    pub subject_kind: String,
    pub subject_id: Uuid,
    /// `ERASURE`, `ACCESS`, … (the domain's names).
    pub kind: String,
    /// `OPEN`, `IN_PROGRESS`, `COMPLETED`.
    pub status: String,
    pub received_via: String,
    /// Microseconds since the Unix epoch.
    pub received_at: i64,
    pub due_at: i64,
    pub completed_at: Option<i64>,
    pub opened_by: Option<Uuid>,
    /// Whoever took the latest step.
    pub handled_by: Option<Uuid>,
    /// JSON array of `{class, key_id, fingerprint}`.
    pub destroyed_keys: String,
    pub created_seq: i64,
}

/// Filter and page of `privacyRequests`.
#[derive(Debug, Clone, Default)]
pub struct PrivacyQuery {
    pub store_id: Uuid,
    pub kind: Option<RequestKind>,
    pub status: Option<RequestStatus>,
    pub subject_id: Option<Uuid>,
    pub first: usize,
    /// Keyset cursor: (created_seq, request_id) of the last row seen.
    pub after: Option<(i64, Uuid)>,
}

/// The stored name of a domain enum (`"ERASURE"`).
pub fn name<T: serde::Serialize>(v: &T) -> String {
    crate::readmodels::enum_str(v)
}

macro_rules! privacy_sql {
    ($module:ident, $db:ty) => {
        pub mod $module {
            use super::*;
            use sqlx::{QueryBuilder, Row, Transaction};

            type Db = $db;
            type Pool = sqlx::Pool<Db>;
            type Tx<'c> = Transaction<'c, Db>;
            type Result<T> = std::result::Result<T, ProjectionError>;

            const COLS: &str = "request_id, store_id, subject_kind, subject_id, kind, status, received_via, received_at, due_at, completed_at, opened_by, handled_by, destroyed_keys, created_seq";

            fn row(r: &<Db as sqlx::Database>::Row) -> Result<PrivacyRequestRow> {
                Ok(PrivacyRequestRow {
                    request_id: r.try_get("request_id")?,
                    store_id: r.try_get("store_id")?,
                    subject_kind: r.try_get("subject_kind")?,
                    subject_id: r.try_get("subject_id")?,
                    kind: r.try_get("kind")?,
                    status: r.try_get("status")?,
                    received_via: r.try_get("received_via")?,
                    received_at: r.try_get("received_at")?,
                    due_at: r.try_get("due_at")?,
                    completed_at: r.try_get("completed_at")?,
                    opened_by: r.try_get("opened_by")?,
                    handled_by: r.try_get("handled_by")?,
                    destroyed_keys: r.try_get("destroyed_keys")?,
                    created_seq: r.try_get("created_seq")?,
                })
            }

            /// Applies one event of a `privacy_request-…` stream.
            pub async fn apply(tx: &mut Tx<'_>, e: &RecordedEvent) -> Result<()> {
                let event = decode::<PrivacyRequestEvent>(&e.event_type, &e.payload)
                    .map_err(|err| ProjectionError::Corrupt { position: e.position, reason: err.to_string() })?;
                let at = micros(e.recorded_at);
                let actor = e.metadata.actor.id;
                let done = matches!(event, PrivacyRequestEvent::ErasureCompleted { .. });
                match event {
                    PrivacyRequestEvent::PrivacyRequestOpened {
                        request_id, store_id, subject, kind, received_via, received_at, due_at, ..
                    } => {
                        sqlx::query(
                            "INSERT INTO rm_privacy_requests (request_id, store_id, subject_kind, subject_id, kind, status,
                               received_via, received_at, due_at, opened_by, handled_by, destroyed_keys, created_seq, updated_at)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, '[]', $11, $12)
                             ON CONFLICT (request_id) DO NOTHING",
                        )
                        .bind(request_id.as_uuid())
                        .bind(store_id.as_uuid())
                        .bind(subject.kind())
                        .bind(subject.as_uuid())
                        .bind(name(&kind))
                        .bind(name(&RequestStatus::Open))
                        .bind(received_via)
                        .bind(micros(received_at))
                        .bind(micros(due_at))
                        .bind(actor)
                        .bind(e.position.seq)
                        .bind(at)
                        .execute(&mut **tx)
                        .await?;
                    }
                    PrivacyRequestEvent::SubjectDataExported { request_id, .. } => {
                        sqlx::query(
                            "UPDATE rm_privacy_requests SET status = $2, handled_by = COALESCE($3, handled_by),
                               completed_at = $4, updated_at = $4 WHERE request_id = $1",
                        )
                        .bind(request_id.as_uuid())
                        .bind(name(&RequestStatus::Completed))
                        .bind(actor)
                        .bind(at)
                        .execute(&mut **tx)
                        .await?;
                    }
                    PrivacyRequestEvent::ErasureStarted { request_id, keys, .. }
                    | PrivacyRequestEvent::ErasureCompleted { request_id, keys, .. } => {
                        let status = if done { RequestStatus::Completed } else { RequestStatus::InProgress };
                        sqlx::query(
                            "UPDATE rm_privacy_requests SET status = $2, destroyed_keys = $3, handled_by = COALESCE($4, handled_by),
                               completed_at = CASE WHEN $5 THEN $6 ELSE completed_at END, updated_at = $6
                             WHERE request_id = $1",
                        )
                        .bind(request_id.as_uuid())
                        .bind(name(&status))
                        .bind(serde_json::to_string(&keys).expect("keys serialise"))
                        .bind(actor)
                        .bind(done)
                        .bind(at)
                        .execute(&mut **tx)
                        .await?;
                    }
                }
                Ok(())
            }

            pub async fn get(pool: &Pool, store_id: Uuid, id: Uuid) -> Result<Option<PrivacyRequestRow>> {
                let r = sqlx::query(&format!("SELECT {COLS} FROM rm_privacy_requests WHERE store_id = $1 AND request_id = $2"))
                    .bind(store_id)
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
                r.as_ref().map(row).transpose()
            }

            /// One page, oldest request first, and the total matching the filter.
            pub async fn list(pool: &Pool, q: &PrivacyQuery) -> Result<(Vec<PrivacyRequestRow>, bool, i64)> {
                let filter = |qb: &mut QueryBuilder<'_, Db>| {
                    qb.push(" WHERE store_id = ").push_bind(q.store_id);
                    if let Some(kind) = q.kind {
                        qb.push(" AND kind = ").push_bind(name(&kind));
                    }
                    if let Some(status) = q.status {
                        qb.push(" AND status = ").push_bind(name(&status));
                    }
                    if let Some(subject) = q.subject_id {
                        qb.push(" AND subject_id = ").push_bind(subject);
                    }
                };
                let mut count = QueryBuilder::<Db>::new("SELECT COUNT(*) FROM rm_privacy_requests");
                filter(&mut count);
                let total: i64 = count.build_query_scalar().fetch_one(pool).await?;
                let mut qb = QueryBuilder::<Db>::new(format!("SELECT {COLS} FROM rm_privacy_requests"));
                filter(&mut qb);
                if let Some((seq, id)) = q.after {
                    qb.push(" AND (created_seq > ").push_bind(seq);
                    qb.push(" OR (created_seq = ").push_bind(seq).push(" AND request_id > ").push_bind(id).push("))");
                }
                qb.push(" ORDER BY created_seq, request_id LIMIT ").push_bind(q.first as i64 + 1);
                let mut rows = qb.build().fetch_all(pool).await?.iter().map(row).collect::<Result<Vec<_>>>()?;
                let has_next = rows.len() > q.first;
                rows.truncate(q.first);
                Ok((rows, has_next, total))
            }
        }
    };
}

privacy_sql!(sqlite, sqlx::Sqlite);
privacy_sql!(postgres, sqlx::Postgres);
