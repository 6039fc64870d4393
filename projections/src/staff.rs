//! The `directory` projection: the stores (`rm_stores`) and who works in each (`rm_staff`),
//! their role and whether they are active, folded from the store roster's events (and from
//! `StaffMemberAdded` in streams written before the roster existed) with `views::member_view`.
//! Login uses it only to find candidate accounts by email; whether a member may log in is
//! decided from the roster itself.
//!
//! Applied a batch at a time, like the other row models: the members a batch touches are loaded
//! in one query, folded in memory and written back with one multi-row upsert. The property test
//! in `tests/models.rs` holds it to the write side's own roster (the `Store` aggregate) and to a
//! fresh rebuild, for random roster histories.

use crate::readmodels::{micros, upsert_set};
use crate::rows::StaffRow;
use crate::views::View;
use crate::{stream_kind, Kind, ProjectionError};
use domain::aggregate::decode;
use domain::staff::Role;
use domain::store::StoreEvent;
use eventstore::RecordedEvent;
use uuid::Uuid;

/// Rows one statement writes: 8 values a row stays well under SQLite's 32,766 variables.
const CHUNK: usize = 500;

/// Filter and page of `staffMembers`.
#[derive(Debug, Clone, Default)]
pub struct StaffQuery {
    pub store_id: Uuid,
    pub role: Option<Role>,
    pub active: Option<bool>,
    pub first: usize,
    /// Keyset cursor: (created_at, user_id) of the last row seen.
    pub after: Option<(i64, Uuid)>,
}

macro_rules! staff_sql {
    ($module:ident, $db:ty) => {
        pub mod $module {
            use super::*;
            use crate::batch::Folded;
            use crate::readmodels::$module::load_rows;
            use sqlx::{QueryBuilder, Row, Transaction};

            type Db = $db;
            type Pool = sqlx::Pool<Db>;
            type Tx<'c> = Transaction<'c, Db>;
            type Result<T> = std::result::Result<T, ProjectionError>;

            const COLS: &str = "user_id, store_id, role, email_lookup, name, active, created_at, updated_at";

            fn row(r: &<Db as sqlx::Database>::Row) -> Result<StaffRow> {
                let role: String = r.try_get("role")?;
                let created_at: i64 = r.try_get("created_at")?;
                Ok(StaffRow {
                    user_id: r.try_get("user_id")?,
                    store_id: r.try_get("store_id")?,
                    role: Role::parse(&role).ok_or_else(|| ProjectionError::Invalid("stored role".into()))?,
                    email: r.try_get("email_lookup")?,
                    name: r.try_get("name")?,
                    active: r.try_get("active")?,
                    created_at,
                    // Rows written before the column existed: unchanged since they were made.
                    updated_at: r.try_get::<Option<i64>, _>("updated_at")?.unwrap_or(created_at),
                })
            }

            /// Applies the directory's events of `events` (others are ignored), in log order:
            /// the stores opened, and every member the batch touches loaded in one query, folded
            /// in memory with `views::member_view` and written back with one multi-row upsert.
            pub async fn apply_batch(tx: &mut Tx<'_>, events: &[RecordedEvent]) -> Result<()> {
                let mut stores = Vec::new();
                let (mut mine, mut ids) = (Vec::new(), Vec::new());
                for e in events {
                    if !Kind::Directory.cares(stream_kind(&e.stream_id)) {
                        continue;
                    }
                    if let Some((user, _)) = StaffRow::about(e)? {
                        mine.push(e);
                        if !ids.contains(&user) {
                            ids.push(user);
                        }
                    } else if e.stream_id.starts_with("store-") {
                        let event = decode::<StoreEvent>(&e.event_type, &e.payload).map_err(|err| {
                            ProjectionError::Corrupt { position: e.position, reason: err.to_string() }
                        })?;
                        if let StoreEvent::StoreOpened { store_id, name } = event {
                            stores.push((store_id.as_uuid(), name, micros(e.recorded_at)));
                        }
                    }
                }
                for chunk in stores.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<Db>::new("INSERT INTO rm_stores (store_id, name, created_at) ");
                    qb.push_values(chunk, |mut b, (id, name, at)| {
                        b.push_bind(*id).push_bind(name.clone()).push_bind(*at);
                    });
                    qb.build().execute(&mut **tx).await?;
                }
                if mine.is_empty() {
                    return Ok(());
                }
                let loaded = load_rows(tx, "rm_staff", COLS, "user_id", &ids, row, |r| r.user_id).await?;
                let mut folded = Folded::new(ids, loaded, |_| ());
                folded.apply(&mine)?;
                for chunk in folded.changed().chunks(CHUNK) {
                    let mut qb = QueryBuilder::<Db>::new(format!("INSERT INTO rm_staff ({COLS}) "));
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.user_id)
                            .push_bind(r.store_id)
                            .push_bind(r.role.as_str())
                            .push_bind(r.email.clone())
                            .push_bind(r.name.clone())
                            .push_bind(r.active)
                            .push_bind(r.created_at)
                            .push_bind(r.updated_at);
                    });
                    qb.push(format!(" ON CONFLICT (user_id) DO UPDATE SET {}", upsert_set(COLS, "user_id")));
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// Every member of every store, by id (for comparing the model with a replay).
            pub async fn all(pool: &Pool) -> Result<Vec<StaffRow>> {
                let rows =
                    sqlx::query(&format!("SELECT {COLS} FROM rm_staff ORDER BY user_id")).fetch_all(pool).await?;
                rows.iter().map(row).collect()
            }

            pub async fn by_email(pool: &Pool, email: &str) -> Result<Vec<StaffRow>> {
                let rows = sqlx::query(&format!("SELECT {COLS} FROM rm_staff WHERE email_lookup = $1"))
                    .bind(email.trim().to_lowercase())
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(row).collect()
            }

            pub async fn member(pool: &Pool, store_id: Uuid, user_id: Uuid) -> Result<Option<StaffRow>> {
                let r = sqlx::query(&format!("SELECT {COLS} FROM rm_staff WHERE store_id = $1 AND user_id = $2"))
                    .bind(store_id)
                    .bind(user_id)
                    .fetch_optional(pool)
                    .await?;
                r.as_ref().map(row).transpose()
            }

            /// One page, oldest member first, and the total matching the filter.
            pub async fn list(pool: &Pool, q: &StaffQuery) -> Result<(Vec<StaffRow>, bool, i64)> {
                let filter = |qb: &mut QueryBuilder<'_, Db>| {
                    qb.push(" WHERE store_id = ").push_bind(q.store_id);
                    if let Some(role) = q.role {
                        qb.push(" AND role = ").push_bind(role.as_str());
                    }
                    if let Some(active) = q.active {
                        qb.push(" AND active = ").push_bind(active);
                    }
                };
                let mut count = QueryBuilder::<Db>::new("SELECT COUNT(*) FROM rm_staff");
                filter(&mut count);
                let total: i64 = count.build_query_scalar().fetch_one(pool).await?;
                let mut qb = QueryBuilder::<Db>::new(format!("SELECT {COLS} FROM rm_staff"));
                filter(&mut qb);
                if let Some((at, id)) = q.after {
                    qb.push(" AND (created_at > ").push_bind(at);
                    qb.push(" OR (created_at = ").push_bind(at).push(" AND user_id > ").push_bind(id).push("))");
                }
                qb.push(" ORDER BY created_at, user_id LIMIT ").push_bind(q.first as i64 + 1);
                let mut rows = qb.build().fetch_all(pool).await?.iter().map(row).collect::<Result<Vec<_>>>()?;
                let has_next = rows.len() > q.first;
                rows.truncate(q.first);
                Ok((rows, has_next, total))
            }
        }
    };
}

staff_sql!(sqlite, sqlx::Sqlite);
staff_sql!(postgres, sqlx::Postgres);
