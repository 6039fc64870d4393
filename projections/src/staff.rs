//! The staff directory (part of the `directory` projection): who works in each store, their
//! role and whether they are active, folded from the store roster's events (and from
//! `StaffMemberAdded` in streams written before the roster existed). Login uses it only to find
//! candidate accounts by email; whether a member may log in is decided from the roster itself.

use crate::readmodels::micros;
use crate::rows::StaffRow;
use crate::ProjectionError;
use domain::staff::{Role, StaffEvent};
use domain::store::StoreEvent;
use eventstore::RecordedEvent;
use uuid::Uuid;

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
            use sqlx::{QueryBuilder, Row, Transaction};

            type Db = $db;
            type Pool = sqlx::Pool<Db>;
            type Tx<'c> = Transaction<'c, Db>;
            type Result<T> = std::result::Result<T, ProjectionError>;

            const COLS: &str = "user_id, store_id, role, email_lookup, name, active, created_at";

            fn row(r: &<Db as sqlx::Database>::Row) -> Result<StaffRow> {
                Ok(StaffRow {
                    user_id: r.try_get("user_id")?,
                    store_id: r.try_get("store_id")?,
                    role: r.try_get("role")?,
                    email: r.try_get("email_lookup")?,
                    name: r.try_get("name")?,
                    active: r.try_get("active")?,
                    created_at: r.try_get("created_at")?,
                })
            }

            async fn insert(
                tx: &mut Tx<'_>,
                user_id: Uuid,
                store_id: Uuid,
                email: Option<String>,
                name: Option<String>,
                role: Role,
                at: i64,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO rm_staff (user_id, store_id, email_lookup, name, role, active, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (user_id) DO NOTHING",
                )
                .bind(user_id)
                .bind(store_id)
                .bind(email)
                .bind(name)
                .bind(role.as_str())
                .bind(true)
                .bind(at)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// Applies a roster event of the store stream.
            pub async fn apply_store_event(tx: &mut Tx<'_>, e: &RecordedEvent, event: StoreEvent) -> Result<()> {
                let at = micros(e.recorded_at);
                match event {
                    StoreEvent::StaffJoined { user_id, email, name, role, .. } => {
                        let email = email.clear().map(|s| s.to_lowercase());
                        let name = name.and_then(|n| n.clear().cloned());
                        insert(tx, user_id.as_uuid(), e.store_id, email, name, role, at).await?;
                    }
                    StoreEvent::StaffRoleChanged { user_id, to, .. } => {
                        sqlx::query("UPDATE rm_staff SET role = $2, updated_at = $3 WHERE user_id = $1")
                            .bind(user_id.as_uuid())
                            .bind(to.as_str())
                            .bind(at)
                            .execute(&mut **tx)
                            .await?;
                    }
                    StoreEvent::StaffDeactivated { user_id } | StoreEvent::StaffReactivated { user_id } => {
                        let active = matches!(event, StoreEvent::StaffReactivated { .. });
                        sqlx::query("UPDATE rm_staff SET active = $2, updated_at = $3 WHERE user_id = $1")
                            .bind(user_id.as_uuid())
                            .bind(active)
                            .bind(at)
                            .execute(&mut **tx)
                            .await?;
                    }
                    // The name and email go; the id stays (the audit trail's pseudonym).
                    StoreEvent::StaffErased { user_id, .. } => {
                        sqlx::query(
                            "UPDATE rm_staff SET name = NULL, email_lookup = NULL, updated_at = $2 WHERE user_id = $1",
                        )
                        .bind(user_id.as_uuid())
                        .bind(at)
                        .execute(&mut **tx)
                        .await?;
                    }
                    StoreEvent::StoreOpened { .. }
                    | StoreEvent::StaffInvited { .. }
                    | StoreEvent::StoreClosed { .. }
                    | StoreEvent::StoreReopened { .. }
                    | StoreEvent::RetentionPolicySet { .. } => {}
                }
                Ok(())
            }

            /// Applies a member-stream event (only the pre-roster `StaffMemberAdded` matters).
            pub async fn apply_staff_event(tx: &mut Tx<'_>, e: &RecordedEvent, event: StaffEvent) -> Result<()> {
                if let StaffEvent::StaffMemberAdded { user_id, store_id, email, role } = event {
                    let email = email.clear().map(|s| s.to_lowercase());
                    insert(tx, user_id.as_uuid(), store_id.as_uuid(), email, None, role, micros(e.recorded_at)).await?;
                }
                Ok(())
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
