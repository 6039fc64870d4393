//! Staff lifecycle: invitations, joining, roles, deactivation, passwords.
//!
//! Membership decisions go to the store's roster (`domain::store`), credential facts to the
//! member's own stream (`domain::staff`); secrets (password hashes, invitation and reset tokens,
//! sessions) go to the account store and never into the log.
//!
//! A change that narrows what a member may do (role change, deactivation, password change or
//! reset) revokes their sessions twice: before the event is appended, and again after it, so a
//! login that slipped in between (and read the old state) is closed too. The very next request
//! with an old token is refused.

use crate::idempotency::Once;
use crate::password::{self, Password, PasswordContext};
use crate::{execute, execute_once, load, CommandContext, CommandError};
use chrono::{DateTime, Duration, Utc};
use domain::staff::{Role, StaffCommand, StaffMember};
use domain::store::{Invite, RosterActor, Store, StoreCommand};
use domain::{Aggregate, DomainError, StoreId, UserId};
use eventstore::accounts::{new_token, OneTimeToken, TokenPurpose};
use eventstore::{Accounts, Actor, EventStore, Position};
use uuid::Uuid;

/// How long an invitation can be accepted, unless the inviter says otherwise.
pub const INVITATION_TTL: Duration = Duration::days(7);
/// How long a password-reset token is valid.
pub const RESET_TTL: Duration = Duration::hours(24);

/// The store's roster, rebuilt from its stream (the write side's own source of truth).
pub async fn roster(store: &EventStore, store_id: StoreId) -> Result<Store, CommandError> {
    Ok(load::<Store>(store, store_id, &store_id.stream_id()).await?.0)
}

/// Hashes off the async workers (argon2 is deliberately slow).
async fn hash(password: Password) -> Result<String, CommandError> {
    tokio::task::spawn_blocking(move || password.hash())
        .await
        .map_err(|_| CommandError::Store(eventstore::StoreError::Invalid("password hashing was cancelled".into())))
}

/// Adds a member with a password directly (store creation, operator tools, tests). Returns the
/// new member's id and the log position.
pub async fn add_staff(
    store: &EventStore,
    accounts: &Accounts,
    ctx: &CommandContext,
    email: &str,
    name: Option<&str>,
    password: &str,
    role: Role,
) -> Result<(UserId, Position), CommandError> {
    let roster = roster(store, ctx.store_id).await?;
    let password =
        Password::parse(password, PasswordContext { email: Some(email), name, store_name: roster.name.as_deref() })?;
    let user_id = UserId::new_v7();
    let cmd = StoreCommand::AddMember { user_id, email: email.to_owned(), name: name.map(str::to_owned), role };
    // Validate before hashing and before writing anything.
    roster.decide(&cmd)?;
    accounts.put_credential(user_id.as_uuid(), ctx.store_id.as_uuid(), &hash(password).await?).await?;
    let out = execute::<Store>(store, ctx, &ctx.store_id.stream_id(), &cmd).await?;
    Ok((user_id, out.position.expect("adding staff always records an event")))
}

/// An invitation as issued. `token` is `None` when an idempotent retry replayed an earlier
/// invitation: the token is shown once and kept only as a hash.
#[derive(Debug, Clone)]
pub struct Invited {
    pub invitation_id: Uuid,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
    pub token: Option<String>,
    pub position: Option<Position>,
}

pub struct InviteRequest<'a> {
    pub by: RosterActor,
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub ttl: Duration,
    pub idempotency_key: Option<&'a str>,
}

pub async fn invite(
    store: &EventStore,
    accounts: &Accounts,
    ctx: &CommandContext,
    req: InviteRequest<'_>,
) -> Result<Invited, CommandError> {
    let now = Utc::now();
    let invitation_id = Uuid::now_v7();
    let user_id = UserId::new_v7();
    let expires_at = now + req.ttl;
    let cmd = StoreCommand::Invite(Invite {
        by: req.by,
        invitation_id,
        user_id,
        email: req.email.to_owned(),
        name: req.name.to_owned(),
        role: req.role,
        now,
        expires_at,
    });
    // The token row first: harmless if the append then fails (it points at no invitation).
    let (token, _) = new_token("ici");
    let record = OneTimeToken {
        store_id: ctx.store_id.as_uuid(),
        user_id: user_id.as_uuid(),
        ref_id: Some(invitation_id),
        expires_at,
    };
    accounts.put_token(&token, TokenPurpose::Invitation, &record).await?;
    let once: Once = execute_once::<Store>(
        store,
        ctx,
        req.idempotency_key,
        "inviteStaff",
        invitation_id,
        &ctx.store_id.stream_id(),
        &cmd,
    )
    .await?;
    if once.replayed {
        let roster = roster(store, ctx.store_id).await?;
        let inv = roster.invitations.get(&once.entity_id).ok_or(DomainError::NotFound { kind: "invitation" })?;
        return Ok(Invited {
            invitation_id: once.entity_id,
            role: inv.role,
            expires_at: inv.expires_at,
            token: None,
            position: once.position,
        });
    }
    Ok(Invited { invitation_id, role: req.role, expires_at, token: Some(token), position: once.position })
}

/// The member an accepted invitation made.
#[derive(Debug, Clone)]
pub struct Joined {
    pub user_id: UserId,
    pub store_id: StoreId,
    pub role: Role,
    pub position: Position,
}

fn invitation_not_found() -> CommandError {
    DomainError::NotFound { kind: "invitation (unknown, used or expired)" }.into()
}

/// Accepts an invitation: the invitee sets their password and joins the store. The token is
/// single use even when two requests race: it is consumed before anything else is written.
pub async fn accept_invitation(
    store: &EventStore,
    accounts: &Accounts,
    token: &str,
    password: &str,
    name: Option<&str>,
    source: &str,
) -> Result<Joined, CommandError> {
    let record = accounts.token(token, TokenPurpose::Invitation).await?.ok_or_else(invitation_not_found)?;
    let store_id = StoreId::from_uuid(record.store_id);
    let invitation_id = record.ref_id.ok_or_else(invitation_not_found)?;
    let roster = roster(store, store_id).await?;
    let inv = roster.invitations.get(&invitation_id).ok_or_else(invitation_not_found)?.clone();
    let password = Password::parse(
        password,
        PasswordContext {
            email: inv.email.as_deref(),
            name: name.or(inv.name.as_deref()),
            store_name: roster.name.as_deref(),
        },
    )?;
    let cmd = StoreCommand::AcceptInvitation { invitation_id, name: name.map(str::to_owned), now: Utc::now() };
    roster.decide(&cmd)?; // reject before consuming the token
    if !accounts.consume_token(token, TokenPurpose::Invitation).await? {
        return Err(invitation_not_found());
    }
    let user_id = inv.user_id;
    accounts.put_credential(user_id.as_uuid(), store_id.as_uuid(), &hash(password).await?).await?;
    let mut ctx = CommandContext::system(store_id, source);
    ctx.actor = Actor { kind: "user".into(), id: Some(user_id.as_uuid()), role: Some(inv.role.as_str().into()) };
    let out = execute::<Store>(store, &ctx, &store_id.stream_id(), &cmd).await?;
    Ok(Joined { user_id, store_id, role: inv.role, position: out.position.expect("joining always records an event") })
}

/// Which roster change narrows a member's access.
#[derive(Debug, Clone, Copy)]
pub enum RosterChange {
    Role(Role),
    Deactivate,
    Reactivate,
}

/// Changes a member's role or active state; revokes their sessions around the change.
pub async fn change_member(
    store: &EventStore,
    accounts: &Accounts,
    ctx: &CommandContext,
    by: RosterActor,
    user_id: UserId,
    change: RosterChange,
) -> Result<Option<Position>, CommandError> {
    let cmd = match change {
        RosterChange::Role(role) => StoreCommand::ChangeRole { by, user_id, role },
        RosterChange::Deactivate => StoreCommand::Deactivate { by, user_id },
        RosterChange::Reactivate => StoreCommand::Reactivate { by, user_id },
    };
    let narrows = !matches!(change, RosterChange::Reactivate);
    // Validate first: a rejected change must not log anybody out.
    roster(store, ctx.store_id).await?.decide(&cmd)?;
    if narrows {
        accounts.revoke_all_sessions(user_id.as_uuid(), None).await?;
    }
    let out = execute::<Store>(store, ctx, &ctx.store_id.stream_id(), &cmd).await?;
    if narrows {
        accounts.revoke_all_sessions(user_id.as_uuid(), None).await?;
    }
    Ok(out.position)
}

/// A member's new password, checked against the policy with their email and the store's name;
/// errors name the `newPassword` field.
async fn new_password(
    store: &EventStore,
    store_id: StoreId,
    user_id: UserId,
    raw: &str,
) -> Result<Password, CommandError> {
    let roster = roster(store, store_id).await?;
    let email = roster.members.get(&user_id).and_then(|m| m.email.clone());
    let context = PasswordContext { email: email.as_deref(), name: None, store_name: roster.name.as_deref() };
    Password::parse(raw, context).map_err(|e| match e {
        DomainError::Invalid { reason, .. } => DomainError::Invalid { field: "newPassword", reason }.into(),
        other => other.into(),
    })
}

/// Checks the current password, sets a new one, and ends every other session of the member.
pub async fn change_password(
    store: &EventStore,
    accounts: &Accounts,
    ctx: &CommandContext,
    user_id: UserId,
    current_session: Option<Uuid>,
    current: &str,
    new: &str,
) -> Result<Position, CommandError> {
    let (_, stored) =
        accounts.credential(user_id.as_uuid()).await?.ok_or(DomainError::NotFound { kind: "staff member" })?;
    let current = current.to_owned();
    let ok = tokio::task::spawn_blocking(move || password::verify(&current, &stored)).await.unwrap_or(false);
    if !ok {
        return Err(DomainError::invalid("currentPassword", "is not your current password").into());
    }
    let hashed = hash(new_password(store, ctx.store_id, user_id, new).await?).await?;
    let out =
        execute::<StaffMember>(store, ctx, &user_id.stream_id(), &StaffCommand::ChangePassword { user_id }).await?;
    accounts.put_credential(user_id.as_uuid(), ctx.store_id.as_uuid(), &hashed).await?;
    accounts.revoke_all_sessions(user_id.as_uuid(), current_session).await?;
    Ok(out.position.expect("a password change always records an event"))
}

/// A one-time password-reset token for a member, shown once to whoever issued it (an owner or
/// manager in the app, or the operator's CLI for a locked-out owner). Older reset tokens of the
/// member stop working.
pub async fn issue_password_reset(
    store: &EventStore,
    accounts: &Accounts,
    ctx: &CommandContext,
    by: RosterActor,
    user_id: UserId,
) -> Result<(String, DateTime<Utc>, Position), CommandError> {
    let roster = roster(store, ctx.store_id).await?;
    // Whoever may manage the member may reset their password; nobody resets their own this
    // way (they change it, knowing the current one).
    roster.check_may_manage(by, user_id)?;
    if matches!(by, RosterActor::Member { user_id: me, .. } if me == user_id) {
        return Err(DomainError::NotAllowed { reason: "use changePassword for your own password" }.into());
    }
    let expires_at = Utc::now() + RESET_TTL;
    accounts.retire_tokens(user_id.as_uuid(), TokenPurpose::PasswordReset).await?;
    let (token, _) = new_token("icr");
    let record =
        OneTimeToken { store_id: ctx.store_id.as_uuid(), user_id: user_id.as_uuid(), ref_id: None, expires_at };
    accounts.put_token(&token, TokenPurpose::PasswordReset, &record).await?;
    let issued_by = match by {
        RosterActor::Member { user_id, .. } => Some(user_id),
        RosterActor::System => None,
    };
    let out = execute::<StaffMember>(
        store,
        ctx,
        &user_id.stream_id(),
        &StaffCommand::IssuePasswordReset { user_id, issued_by, expires_at },
    )
    .await?;
    Ok((token, expires_at, out.position.expect("issuing a reset always records an event")))
}

/// Sets a new password with a reset token (single use) and ends every session of the member.
pub async fn reset_password(
    store: &EventStore,
    accounts: &Accounts,
    token: &str,
    new: &str,
    source: &str,
) -> Result<(UserId, StoreId, Position), CommandError> {
    let not_found = || CommandError::from(DomainError::NotFound { kind: "reset token (unknown, used or expired)" });
    let record = accounts.token(token, TokenPurpose::PasswordReset).await?.ok_or_else(not_found)?;
    let (user_id, store_id) = (UserId::from_uuid(record.user_id), StoreId::from_uuid(record.store_id));
    let password = new_password(store, store_id, user_id, new).await?;
    if !accounts.consume_token(token, TokenPurpose::PasswordReset).await? {
        return Err(not_found());
    }
    accounts.revoke_all_sessions(user_id.as_uuid(), None).await?;
    accounts.put_credential(user_id.as_uuid(), store_id.as_uuid(), &hash(password).await?).await?;
    let mut ctx = CommandContext::system(store_id, source);
    ctx.actor = Actor { kind: "user".into(), id: Some(user_id.as_uuid()), role: None };
    let out =
        execute::<StaffMember>(store, &ctx, &user_id.stream_id(), &StaffCommand::CompletePasswordReset { user_id })
            .await?;
    accounts.revoke_all_sessions(user_id.as_uuid(), None).await?;
    Ok((user_id, store_id, out.position.expect("a reset always records an event")))
}

/// Whether a member may log in now, and with which role: from the roster (the write side's
/// truth), so a deactivation or role change applies to the very next login even before the
/// read models have caught up. Members added before the roster existed carry their role in
/// their own stream.
pub async fn login_role(store: &EventStore, store_id: StoreId, user_id: UserId) -> Result<Option<Role>, CommandError> {
    let roster = roster(store, store_id).await?;
    if let Some(m) = roster.members.get(&user_id) {
        return Ok(m.active.then_some(m.role));
    }
    let legacy = load::<StaffMember>(store, store_id, &user_id.stream_id()).await?.0.legacy;
    Ok(legacy.map(|(_, role)| role))
}
