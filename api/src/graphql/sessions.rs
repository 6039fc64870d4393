//! Logging in and out: `login`, `me`, `mySessions`, `logout`, `logoutEverywhere`,
//! `revokeSession`. Sessions themselves are in `crate::sessions`; throttling in
//! `crate::throttle`.

use super::types::{Role, UserError};
use super::{parse_id, state, viewer, RequestContext};
use crate::auth::{allows, Permission};
use crate::error::{ApiError, ApiResult};
use crate::sessions::ClientInfo;
use async_graphql::{Context, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::staff::Role as DomainRole;
use domain::{StoreId, UserId};
use projections::rows::StaffRow;
use std::time::Duration;
use uuid::Uuid;

/// The logged-in staff member, their store, role and what the role allows.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(name = "Viewer")]
pub struct ViewerObject {
    pub user_id: ID,
    pub store_id: ID,
    pub store_name: Option<String>,
    pub role: Role,
    /// Every permission of the role (`VIEW_COSTS`, `MANAGE_STAFF`, …), from the one table.
    pub permissions: Vec<String>,
    pub session_id: ID,
}

pub(crate) async fn viewer_object(
    ctx: &Context<'_>,
    user_id: Uuid,
    store_id: Uuid,
    role: DomainRole,
    session_id: Uuid,
) -> ApiResult<ViewerObject> {
    let store_name = state(ctx).read.store_name(store_id).await?;
    Ok(ViewerObject {
        user_id: ID(user_id.to_string()),
        store_id: ID(store_id.to_string()),
        store_name,
        role: role.into(),
        permissions: Permission::ALL.into_iter().filter(|p| allows(role, *p)).map(|p| p.name().to_owned()).collect(),
        session_id: ID(session_id.to_string()),
    })
}

#[derive(InputObject, Debug, Clone)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
    /// Needed only when the email is staff of several stores: login then answers with those
    /// stores (`stores`) and the error `STORE_REQUIRED` instead of picking one.
    pub store_id: Option<ID>,
}

/// A store a login may enter.
#[derive(SimpleObject, Debug, Clone)]
pub struct StoreChoice {
    pub id: ID,
    pub name: Option<String>,
}

#[derive(SimpleObject, Debug, Clone, Default)]
pub struct LoginPayload {
    pub token: Option<String>,
    pub viewer: Option<ViewerObject>,
    /// When the email and password match in several stores: the stores to choose from.
    pub stores: Vec<StoreChoice>,
    pub errors: Vec<UserError>,
}

/// One of the caller's live sessions.
#[derive(SimpleObject, Debug, Clone)]
pub struct Session {
    pub id: ID,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The absolute end of the session (it ends earlier if left idle).
    pub expires_at: DateTime<Utc>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// True for the session making this request.
    pub current: bool,
}

#[derive(InputObject, Debug, Clone)]
pub struct RevokeSessionInput {
    pub session_id: ID,
}

#[derive(SimpleObject, Debug, Clone, Default)]
pub struct LogoutPayload {
    /// How many sessions were ended.
    pub revoked: i32,
    pub errors: Vec<UserError>,
}

pub(crate) fn client(ctx: &Context<'_>) -> ClientInfo {
    let r = ctx.data_opt::<RequestContext>();
    ClientInfo {
        ip: r.and_then(|r| r.client_ip).map(|ip| ip.to_string()),
        user_agent: r.and_then(|r| r.user_agent.clone()),
    }
}

/// Checks a password against each candidate's hash under the global hashing cap; returns the
/// candidates it opens. With no candidates, a dummy hash is checked, so an unknown email takes
/// as long as a wrong password.
async fn matching(ctx: &Context<'_>, candidates: Vec<StaffRow>, password: String) -> ApiResult<Vec<StaffRow>> {
    let s = state(ctx);
    let mut hashes = Vec::new();
    for c in candidates {
        if let Some((_, hash)) =
            s.accounts.credential(c.user_id).await.map_err(|e| ApiError::internal("credential", &e))?
        {
            hashes.push((c, hash));
        }
    }
    let Some(_permit) = s.login_throttle.hashing_permit(Duration::from_secs(5)).await else {
        return Err(ApiError::RateLimited { retry_after_seconds: 1 });
    };
    tokio::task::spawn_blocking(move || {
        if hashes.is_empty() {
            commands::password::verify(&password, commands::password::dummy_hash());
            return Vec::new();
        }
        hashes.into_iter().filter(|(_, h)| commands::password::verify(&password, h)).map(|(c, _)| c).collect()
    })
    .await
    .map_err(|e| ApiError::internal("login", &e))
}

#[derive(Default)]
pub struct SessionQuery;

#[Object]
impl SessionQuery {
    /// The logged-in staff member.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<ViewerObject> {
        let v = viewer(ctx)?;
        Ok(viewer_object(ctx, v.user_id, v.store_id, v.role, v.session_id).await?)
    }

    /// The caller's live sessions, newest first.
    async fn my_sessions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Session>> {
        let v = viewer(ctx)?;
        let sessions =
            state(ctx).sessions.live_sessions_of(v.user_id).await.map_err(|e| ApiError::internal("sessions", &e))?;
        Ok(sessions
            .into_iter()
            .map(|s| Session {
                id: ID(s.session_id.to_string()),
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                expires_at: s.expires_at,
                client_ip: s.client_ip,
                user_agent: s.user_agent,
                current: s.session_id == v.session_id,
            })
            .collect())
    }
}

#[derive(Default)]
pub struct SessionMutation;

#[Object]
impl SessionMutation {
    /// Exchanges email and password for a session token. Wrong credentials are an
    /// `UNAUTHENTICATED` error; the answer does not reveal whether the email exists. Repeated
    /// failures are `RATE_LIMITED` with `retryAfterSeconds`.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> async_graphql::Result<LoginPayload> {
        let s = state(ctx);
        let ip = ctx.data_opt::<RequestContext>().and_then(|r| r.client_ip);
        let now = Utc::now();
        let store_filter = match &input.store_id {
            None => None,
            Some(id) => Some(parse_id(id, "storeId")?),
        };
        let throttle = |e: eventstore::StoreError| ApiError::internal("login throttle", &e);
        if let Err(retry_after_seconds) = s.login_throttle.check(&input.email, ip, now).await.map_err(throttle)? {
            return Err(ApiError::RateLimited { retry_after_seconds }.into());
        }
        let candidates: Vec<StaffRow> = s
            .read
            .staff_by_email(&input.email)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .filter(|c| c.active && store_filter.is_none_or(|f| f == c.store_id))
            .collect();
        let mut matched = matching(ctx, candidates, input.password).await?;
        // The roster decides who may log in now and with which role (the directory may lag).
        let mut entries = Vec::new();
        for m in matched.drain(..) {
            let role =
                commands::staff::login_role(&s.store, StoreId::from_uuid(m.store_id), UserId::from_uuid(m.user_id))
                    .await
                    .map_err(ApiError::from)?;
            if let Some(role) = role {
                entries.push((m, role));
            }
        }
        if entries.is_empty() {
            s.login_throttle.failed(&input.email, ip, now).await.map_err(throttle)?;
            return Err(ApiError::InvalidCredentials.into());
        }
        s.login_throttle.succeeded(&input.email, ip).await.map_err(throttle)?;
        if entries.len() > 1 {
            let mut stores = Vec::new();
            for (m, _) in &entries {
                stores.push(StoreChoice {
                    id: ID(m.store_id.to_string()),
                    name: s.read.store_name(m.store_id).await.map_err(ApiError::from)?,
                });
            }
            return Ok(LoginPayload {
                stores,
                errors: vec![UserError {
                    field: Some("storeId".into()),
                    code: "STORE_REQUIRED".into(),
                    message: "this email is staff of several stores: choose one with storeId".into(),
                }],
                ..Default::default()
            });
        }
        let (staff, role) = entries.remove(0);
        let (token, session) = s
            .sessions
            .open(staff.user_id, staff.store_id, role, client(ctx))
            .await
            .map_err(|e| ApiError::internal("session", &e))?;
        Ok(LoginPayload {
            token: Some(token),
            viewer: Some(viewer_object(ctx, staff.user_id, staff.store_id, role, session.session_id).await?),
            stores: vec![],
            errors: vec![],
        })
    }

    /// Ends the session making this request.
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<LogoutPayload> {
        let v = viewer(ctx)?;
        let done =
            state(ctx).sessions.revoke(v.user_id, v.session_id).await.map_err(|e| ApiError::internal("logout", &e))?;
        Ok(LogoutPayload { revoked: i32::from(done), errors: vec![] })
    }

    /// Ends every session of the caller, this one included.
    async fn logout_everywhere(&self, ctx: &Context<'_>) -> async_graphql::Result<LogoutPayload> {
        let v = viewer(ctx)?;
        let n = state(ctx).sessions.revoke_all(v.user_id).await.map_err(|e| ApiError::internal("logout", &e))?;
        Ok(LogoutPayload { revoked: n as i32, errors: vec![] })
    }

    /// Ends one of the caller's own sessions (another device). Someone else's session id is
    /// `NOT_FOUND`.
    async fn revoke_session(
        &self,
        ctx: &Context<'_>,
        input: RevokeSessionInput,
    ) -> async_graphql::Result<LogoutPayload> {
        let v = viewer(ctx)?;
        let Ok(id) = Uuid::parse_str(input.session_id.as_str()) else {
            return Ok(LogoutPayload { revoked: 0, errors: vec![UserError::invalid_id("sessionId")] });
        };
        let done = state(ctx).sessions.revoke(v.user_id, id).await.map_err(|e| ApiError::internal("revoke", &e))?;
        if !done {
            return Ok(LogoutPayload {
                revoked: 0,
                errors: vec![UserError {
                    field: Some("sessionId".into()),
                    code: "NOT_FOUND".into(),
                    message: "no such session of yours".into(),
                }],
            });
        }
        Ok(LogoutPayload { revoked: 1, errors: vec![] })
    }
}
