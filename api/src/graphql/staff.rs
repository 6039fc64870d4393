//! Staff lifecycle over GraphQL: invitations, roles, deactivation, passwords, and the staff
//! directory. Rules live in `domain::store` (the roster) and `commands::staff`; this file parses,
//! calls and maps.

use super::sessions::{client, viewer_object, ViewerObject};
use super::types::{ConnectionFields, Role, UserError};
use super::{command_context, outcome, page_size, parse_id, read_after, state, viewer};
use crate::auth::Viewer;
use crate::error::ApiError;
use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Duration, Utc};
use commands::staff::{InviteRequest, RosterChange};
use domain::store::RosterActor;
use domain::UserId;
use eventstore::Position;
use projections::rows::{Cursor, CursorValue, StaffRow};
use projections::staff::StaffQuery as StaffPage;
use uuid::Uuid;

/// A member of the store's staff.
#[derive(SimpleObject, Debug, Clone)]
pub struct StaffMember {
    pub id: ID,
    /// `null` once the member's personal data was erased.
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Role,
    pub active: bool,
    pub joined_at: DateTime<Utc>,
}

impl StaffMember {
    fn from_row(r: StaffRow) -> Self {
        Self {
            id: ID(r.user_id.to_string()),
            email: r.email,
            name: r.name,
            role: r.role.into(),
            active: r.active,
            joined_at: DateTime::from_timestamp_micros(r.created_at).unwrap_or_default(),
        }
    }
}

pub type StaffMemberConnection = Connection<String, StaffMember, ConnectionFields, EmptyFields>;

#[derive(InputObject, Debug, Clone, Default)]
pub struct StaffWhere {
    pub role: Option<Role>,
    pub active: Option<bool>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct StaffInvitation {
    pub id: ID,
    pub email: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
}

#[derive(InputObject, Debug, Clone)]
pub struct InviteStaffInput {
    pub email: String,
    pub name: String,
    pub role: Role,
    /// Days the invitation can be accepted (1–30, default 7).
    pub expires_in_days: Option<i32>,
    pub idempotency_key: Option<String>,
}

#[derive(SimpleObject, Debug, Clone, Default)]
pub struct InviteStaffPayload {
    pub invitation: Option<StaffInvitation>,
    /// Shown once: hand it to the invitee, who accepts with it. `null` on an idempotent retry.
    pub invitation_token: Option<String>,
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

#[derive(InputObject, Debug, Clone)]
pub struct AcceptInvitationInput {
    pub invitation_token: String,
    pub password: String,
    /// The name to show; defaults to the one the inviter gave.
    pub name: Option<String>,
}

#[derive(SimpleObject, Debug, Clone, Default)]
pub struct AcceptInvitationPayload {
    /// A session for the new member.
    pub token: Option<String>,
    pub viewer: Option<ViewerObject>,
    pub staff_member: Option<StaffMember>,
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

#[derive(InputObject, Debug, Clone)]
pub struct ChangeStaffRoleInput {
    pub staff_id: ID,
    pub role: Role,
    pub reason: Option<String>,
}

#[derive(InputObject, Debug, Clone)]
pub struct DeactivateStaffInput {
    pub staff_id: ID,
    pub reason: Option<String>,
}

#[derive(InputObject, Debug, Clone)]
pub struct ReactivateStaffInput {
    pub staff_id: ID,
    pub reason: Option<String>,
}

#[derive(SimpleObject, Debug, Clone, Default)]
pub struct StaffMemberPayload {
    pub staff_member: Option<StaffMember>,
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

#[derive(InputObject, Debug, Clone)]
pub struct ChangePasswordInput {
    pub current_password: String,
    pub new_password: String,
}

#[derive(InputObject, Debug, Clone)]
pub struct IssuePasswordResetInput {
    pub staff_id: ID,
    pub reason: Option<String>,
}

#[derive(SimpleObject, Debug, Clone, Default)]
pub struct IssuePasswordResetPayload {
    /// Shown once: hand it to the member, who sets a new password with `resetPassword`.
    pub reset_token: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

#[derive(InputObject, Debug, Clone)]
pub struct ResetPasswordInput {
    pub reset_token: String,
    pub new_password: String,
}

/// The outcome of a password change or reset: every other session has ended.
#[derive(SimpleObject, Debug, Clone, Default)]
pub struct PasswordPayload {
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

fn actor(v: &Viewer) -> RosterActor {
    RosterActor::Member { user_id: UserId::from_uuid(v.user_id), role: v.role }
}

fn staff_id(id: &ID) -> Result<UserId, Vec<UserError>> {
    Uuid::parse_str(id.as_str()).map(UserId::from_uuid).map_err(|_| vec![UserError::invalid_id("staffId")])
}

async fn member_payload(
    ctx: &Context<'_>,
    store_id: Uuid,
    user_id: UserId,
    position: Option<Position>,
) -> async_graphql::Result<StaffMemberPayload> {
    let row = read_after(ctx, position, state(ctx).read.staff_member(store_id, user_id.as_uuid())).await?;
    Ok(StaffMemberPayload {
        staff_member: row.map(StaffMember::from_row),
        position: position.map(|p| p.to_string()),
        errors: vec![],
    })
}

/// The list's sort key, for the shared cursor helpers (`super::encode_cursor`).
const STAFF_ORDER: &str = "staff-joined";

fn staff_cursor(c: &Cursor) -> Result<(i64, Uuid), ApiError> {
    match c.value {
        CursorValue::Int(at) => Ok((at, c.id)),
        CursorValue::Text(_) => Err(ApiError::BadUserInput("after is not a cursor from this list".into())),
    }
}

#[derive(Default)]
pub struct StaffQuery;

#[Object]
impl StaffQuery {
    /// The store's staff, oldest member first.
    async fn staff_members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(name = "where")] filter: Option<StaffWhere>,
    ) -> async_graphql::Result<StaffMemberConnection> {
        let v = viewer(ctx)?;
        let f = filter.unwrap_or_default();
        let q = StaffPage {
            store_id: v.store_id,
            role: f.role.map(Into::into),
            active: f.active,
            first: page_size(first)?,
            after: super::decode_cursor(STAFF_ORDER, after.as_deref())?.as_ref().map(staff_cursor).transpose()?,
        };
        let (rows, has_next, total) = state(ctx).read.staff(&q).await.map_err(ApiError::from)?;
        let mut conn =
            Connection::with_additional_fields(q.after.is_some(), has_next, ConnectionFields { total_count: total });
        for r in rows {
            let cursor =
                super::encode_cursor(STAFF_ORDER, &Cursor { value: CursorValue::Int(r.created_at), id: r.user_id });
            conn.edges.push(Edge::new(cursor, StaffMember::from_row(r)));
        }
        Ok(conn)
    }

    async fn staff_member(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<StaffMember>> {
        let v = viewer(ctx)?;
        let id = parse_id(&id, "id")?;
        Ok(state(ctx).read.staff_member(v.store_id, id).await.map_err(ApiError::from)?.map(StaffMember::from_row))
    }
}

#[derive(Default)]
pub struct StaffMutation;

#[Object]
impl StaffMutation {
    /// Invites someone to the store with a role. There is no mail server: the token in the
    /// payload is shown once to the inviter, who hands it on. A manager cannot invite owners or
    /// managers.
    async fn invite_staff(
        &self,
        ctx: &Context<'_>,
        input: InviteStaffInput,
    ) -> async_graphql::Result<InviteStaffPayload> {
        let v = viewer(ctx)?;
        let days = input.expires_in_days.unwrap_or(7);
        if !(1..=30).contains(&days) {
            return Ok(InviteStaffPayload {
                errors: vec![UserError {
                    field: Some("expiresInDays".into()),
                    code: "INVALID".into(),
                    message: "expiresInDays: must be between 1 and 30".into(),
                }],
                ..Default::default()
            });
        }
        let s = state(ctx);
        let cctx = command_context(ctx, v, None);
        let req = InviteRequest {
            by: actor(v),
            email: &input.email,
            name: &input.name,
            role: input.role.into(),
            ttl: Duration::days(i64::from(days)),
            idempotency_key: input.idempotency_key.as_deref(),
        };
        match outcome(commands::staff::invite(&s.store, &s.accounts, &cctx, req).await)? {
            Err(errors) => Ok(InviteStaffPayload { errors, ..Default::default() }),
            Ok(inv) => Ok(InviteStaffPayload {
                invitation: Some(StaffInvitation {
                    id: ID(inv.invitation_id.to_string()),
                    email: input.email.trim().to_owned(),
                    role: inv.role.into(),
                    expires_at: inv.expires_at,
                }),
                invitation_token: inv.token,
                position: inv.position.map(|p| p.to_string()),
                errors: vec![],
            }),
        }
    }

    /// Accepts an invitation (no session needed): sets the password and signs the new member in.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        input: AcceptInvitationInput,
    ) -> async_graphql::Result<AcceptInvitationPayload> {
        let s = state(ctx);
        let joined = commands::staff::accept_invitation(
            &s.store,
            &s.accounts,
            &input.invitation_token,
            &input.password,
            input.name.as_deref(),
            "graphql",
        )
        .await;
        let joined = match outcome(joined)? {
            Err(errors) => return Ok(AcceptInvitationPayload { errors, ..Default::default() }),
            Ok(j) => j,
        };
        let (token, session) = s
            .sessions
            .open(joined.user_id.as_uuid(), joined.store_id.as_uuid(), joined.role, client(ctx))
            .await
            .map_err(|e| ApiError::internal("session", &e))?;
        let member = member_payload(ctx, joined.store_id.as_uuid(), joined.user_id, Some(joined.position)).await?;
        Ok(AcceptInvitationPayload {
            token: Some(token),
            viewer: Some(
                viewer_object(
                    ctx,
                    joined.user_id.as_uuid(),
                    joined.store_id.as_uuid(),
                    joined.role,
                    session.session_id,
                )
                .await?,
            ),
            staff_member: member.staff_member,
            position: member.position,
            errors: vec![],
        })
    }

    /// Changes a member's role. Their sessions end at once (they sign in again with the new
    /// role). Nobody raises their own role; a store keeps at least one active owner.
    async fn change_staff_role(
        &self,
        ctx: &Context<'_>,
        input: ChangeStaffRoleInput,
    ) -> async_graphql::Result<StaffMemberPayload> {
        change(ctx, &input.staff_id, input.reason, RosterChange::Role(input.role.into())).await
    }

    /// Deactivates a member: their sessions end at once and they can no longer sign in.
    async fn deactivate_staff(
        &self,
        ctx: &Context<'_>,
        input: DeactivateStaffInput,
    ) -> async_graphql::Result<StaffMemberPayload> {
        change(ctx, &input.staff_id, input.reason, RosterChange::Deactivate).await
    }

    async fn reactivate_staff(
        &self,
        ctx: &Context<'_>,
        input: ReactivateStaffInput,
    ) -> async_graphql::Result<StaffMemberPayload> {
        change(ctx, &input.staff_id, input.reason, RosterChange::Reactivate).await
    }

    /// Changes the caller's own password; every other session of theirs ends.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        input: ChangePasswordInput,
    ) -> async_graphql::Result<PasswordPayload> {
        let v = viewer(ctx)?;
        let s = state(ctx);
        let Some(_permit) = s.login_throttle.hashing_permit(std::time::Duration::from_secs(5)).await else {
            return Err(ApiError::RateLimited { retry_after_seconds: 1 }.into());
        };
        let cctx = command_context(ctx, v, None);
        let r = commands::staff::change_password(
            &s.store,
            &s.accounts,
            &cctx,
            UserId::from_uuid(v.user_id),
            Some(v.session_id),
            &input.current_password,
            &input.new_password,
        )
        .await;
        Ok(match outcome(r)? {
            Err(errors) => PasswordPayload { errors, position: None },
            Ok(p) => PasswordPayload { position: Some(p.to_string()), errors: vec![] },
        })
    }

    /// Issues a one-time password-reset token for a member (shown once; valid 24 hours). A
    /// manager cannot reset an owner's or manager's password.
    async fn issue_password_reset(
        &self,
        ctx: &Context<'_>,
        input: IssuePasswordResetInput,
    ) -> async_graphql::Result<IssuePasswordResetPayload> {
        let v = viewer(ctx)?;
        let user_id = match staff_id(&input.staff_id) {
            Ok(id) => id,
            Err(errors) => return Ok(IssuePasswordResetPayload { errors, ..Default::default() }),
        };
        let s = state(ctx);
        let cctx = command_context(ctx, v, input.reason);
        match outcome(commands::staff::issue_password_reset(&s.store, &s.accounts, &cctx, actor(v), user_id).await)? {
            Err(errors) => Ok(IssuePasswordResetPayload { errors, ..Default::default() }),
            Ok((token, expires_at, position)) => Ok(IssuePasswordResetPayload {
                reset_token: Some(token),
                expires_at: Some(expires_at),
                position: Some(position.to_string()),
                errors: vec![],
            }),
        }
    }

    /// Sets a new password with a reset token (no session needed); every session of the member
    /// ends, and they sign in with the new password.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        input: ResetPasswordInput,
    ) -> async_graphql::Result<PasswordPayload> {
        let s = state(ctx);
        let r =
            commands::staff::reset_password(&s.store, &s.accounts, &input.reset_token, &input.new_password, "graphql")
                .await;
        Ok(match outcome(r)? {
            Err(errors) => PasswordPayload { errors, position: None },
            Ok((_, _, p)) => PasswordPayload { position: Some(p.to_string()), errors: vec![] },
        })
    }
}

async fn change(
    ctx: &Context<'_>,
    id: &ID,
    reason: Option<String>,
    what: RosterChange,
) -> async_graphql::Result<StaffMemberPayload> {
    let v = viewer(ctx)?;
    let user_id = match staff_id(id) {
        Ok(id) => id,
        Err(errors) => return Ok(StaffMemberPayload { errors, ..Default::default() }),
    };
    let s = state(ctx);
    let cctx = command_context(ctx, v, reason);
    let r = commands::staff::change_member(&s.store, &s.accounts, &cctx, actor(v), user_id, what).await;
    match outcome(r)? {
        Err(errors) => Ok(StaffMemberPayload { errors, ..Default::default() }),
        Ok(position) => member_payload(ctx, v.store_id, user_id, position).await,
    }
}
