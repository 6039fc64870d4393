//! The `consent` projection: every consent fact (`rm_consent_facts`) and every restriction of
//! processing (`rm_restrictions`), kept whole so the marketing audience can be answered as of
//! any instant with the same rules as `domain::consent::state_as_of` and
//! `domain::restriction::restricted_as_of`.

use crate::readmodels::{enum_str, micros};
use crate::ProjectionError;
use domain::aggregate::decode;
use domain::consent::{Channel, ConsentEvent, Purpose};
use domain::restriction::RestrictionEvent;
use eventstore::RecordedEvent;
use uuid::Uuid;

/// One page of `marketingAudience`.
#[derive(Debug, Clone)]
pub struct AudienceQuery {
    pub store_id: Uuid,
    pub purpose: Purpose,
    pub channel: Channel,
    /// Microseconds since the Unix epoch.
    pub as_of: i64,
    pub first: usize,
    /// Keyset cursor: the last customer id seen.
    pub after: Option<Uuid>,
}

/// A customer in the audience, with the grant in force (the receipt a newsletter sync keeps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceMember {
    pub customer_id: Uuid,
    pub consent_event_id: Uuid,
}

/// The grant of each customer in force at `$4` for (`$2`, `$3`), not restricted, customer not
/// erased. A later fact (or, at the same instant, a withdrawal or an earlier-recorded grant)
/// supersedes a grant; a restriction is in force unless lifted after it.
const AUDIENCE: &str = "FROM rm_consent_facts f
    JOIN rm_customers c ON c.customer_id = f.customer_id AND c.erased = $5
    WHERE f.store_id = $1 AND f.purpose = $2 AND f.channel = $3 AND f.granted = $6 AND f.effective_at <= $4
      AND NOT EXISTS (SELECT 1 FROM rm_consent_facts g
          WHERE g.customer_id = f.customer_id AND g.purpose = f.purpose AND g.channel = f.channel
            AND g.event_id <> f.event_id AND g.effective_at <= $4
            AND (g.effective_at > f.effective_at OR (g.effective_at = f.effective_at AND (g.granted = $5 OR g.seq < f.seq))))
      AND NOT EXISTS (SELECT 1 FROM rm_restrictions r
          WHERE r.customer_id = f.customer_id AND r.purpose = f.purpose AND r.restricted = $6 AND r.effective_at <= $4
            AND NOT EXISTS (SELECT 1 FROM rm_restrictions l
                WHERE l.customer_id = r.customer_id AND l.purpose = r.purpose AND l.restricted = $5
                  AND l.effective_at > r.effective_at AND l.effective_at <= $4))";

macro_rules! consent_sql {
    ($module:ident, $db:ty) => {
        pub mod $module {
            use super::*;
            use sqlx::{Row, Transaction};

            type Db = $db;
            type Pool = sqlx::Pool<Db>;
            type Tx<'c> = Transaction<'c, Db>;
            type Result<T> = std::result::Result<T, ProjectionError>;

            fn corrupt(e: &RecordedEvent) -> impl Fn(domain::aggregate::CodecError) -> ProjectionError + '_ {
                move |err| ProjectionError::Corrupt { position: e.position, reason: err.to_string() }
            }

            /// Applies an event of a `consent-…` or `restriction-…` stream.
            pub async fn apply(tx: &mut Tx<'_>, e: &RecordedEvent, stream_kind: &str) -> Result<()> {
                match stream_kind {
                    "consent" => {
                        let event: ConsentEvent = decode(&e.event_type, &e.payload).map_err(corrupt(e))?;
                        let f = event.fact();
                        sqlx::query(
                            "INSERT INTO rm_consent_facts (event_id, store_id, customer_id, purpose, channel, granted, effective_at, seq)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING",
                        )
                        .bind(e.event_id)
                        .bind(e.store_id)
                        .bind(f.customer_id.as_uuid())
                        .bind(enum_str(&f.purpose))
                        .bind(enum_str(&f.channel))
                        .bind(event.granted())
                        .bind(micros(f.effective_at))
                        .bind(e.position.seq)
                        .execute(&mut **tx)
                        .await?;
                    }
                    "restriction" => {
                        let event: RestrictionEvent = decode(&e.event_type, &e.payload).map_err(corrupt(e))?;
                        let (purposes, at, restricted) = match &event {
                            RestrictionEvent::ProcessingRestricted { purposes, at, .. } => (purposes, *at, true),
                            RestrictionEvent::RestrictionLifted { purposes, at, .. } => (purposes, *at, false),
                        };
                        for p in purposes {
                            sqlx::query(
                                "INSERT INTO rm_restrictions (event_id, store_id, customer_id, purpose, restricted, effective_at, seq)
                                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id, purpose) DO NOTHING",
                            )
                            .bind(e.event_id)
                            .bind(e.store_id)
                            .bind(event.customer_id().as_uuid())
                            .bind(enum_str(p))
                            .bind(restricted)
                            .bind(micros(at))
                            .bind(e.position.seq)
                            .execute(&mut **tx)
                            .await?;
                        }
                    }
                    _ => {}
                }
                Ok(())
            }

            /// One page of the audience, by customer id, and whether more follow.
            pub async fn audience(pool: &Pool, q: &AudienceQuery) -> Result<(Vec<AudienceMember>, bool)> {
                let sql = format!(
                    "SELECT f.customer_id, f.event_id {AUDIENCE} AND f.customer_id > $7 ORDER BY f.customer_id LIMIT $8"
                );
                let rows = sqlx::query(&sql)
                    .bind(q.store_id)
                    .bind(enum_str(&q.purpose))
                    .bind(enum_str(&q.channel))
                    .bind(q.as_of)
                    .bind(false)
                    .bind(true)
                    .bind(q.after.unwrap_or(Uuid::nil()))
                    .bind(q.first as i64 + 1)
                    .fetch_all(pool)
                    .await?;
                let mut members = rows
                    .iter()
                    .map(|r| Ok(AudienceMember { customer_id: r.try_get(0)?, consent_event_id: r.try_get(1)? }))
                    .collect::<Result<Vec<_>>>()?;
                let more = members.len() > q.first;
                members.truncate(q.first);
                Ok((members, more))
            }

            /// How many customers the whole audience has.
            pub async fn audience_count(pool: &Pool, q: &AudienceQuery) -> Result<i64> {
                Ok(sqlx::query_scalar(&format!("SELECT COUNT(*) {AUDIENCE}"))
                    .bind(q.store_id)
                    .bind(enum_str(&q.purpose))
                    .bind(enum_str(&q.channel))
                    .bind(q.as_of)
                    .bind(false)
                    .bind(true)
                    .fetch_one(pool)
                    .await?)
            }
        }
    };
}

consent_sql!(sqlite, sqlx::Sqlite);
consent_sql!(postgres, sqlx::Postgres);
