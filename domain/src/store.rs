//! A tenant: one dealer's store, and its staff roster.
//!
//! The roster lives in the store's own stream so that every rule that spans members — a store
//! always keeps an active owner, an email joins a store once, a manager cannot make owners — is
//! decided on one aggregate and committed with one expected version: two owners demoting each
//! other at the same moment cannot both succeed. A member's email and name are personal data
//! under the member's own `profile` key (the member is the data subject of those events).

use crate::aggregate::{Aggregate, DomainEvent};
use crate::privacy::PrivacyRequestId;
use crate::retention::RetentionPolicy;
use crate::staff::Role;
use crate::values::{Email, PersonName, Text};
use crate::{DomainError, Pii, StoreId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Who is acting on the roster: a staff member with a role, or the system (CLI, seeding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RosterActor {
    System,
    Member { user_id: UserId, role: Role },
}

#[derive(Debug, Clone)]
pub enum StoreCommand {
    Open {
        store_id: StoreId,
        name: String,
    },
    /// Adds a member directly (store creation, operator tools). Staff join through invitations.
    AddMember {
        user_id: UserId,
        email: String,
        name: Option<String>,
        role: Role,
    },
    Invite(Invite),
    AcceptInvitation {
        invitation_id: Uuid,
        name: Option<String>,
        now: DateTime<Utc>,
    },
    ChangeRole {
        by: RosterActor,
        user_id: UserId,
        role: Role,
    },
    Deactivate {
        by: RosterActor,
        user_id: UserId,
    },
    Reactivate {
        by: RosterActor,
        user_id: UserId,
    },
    /// Erasure of a former member's personal data (policy §1.1): only once deactivated. Their
    /// id stays in the audit trail as a pseudonym.
    EraseMember {
        user_id: UserId,
        request_id: PrivacyRequestId,
    },
    /// The account is closed (policy §4): its data stays for the export window, then every
    /// customer's profile is shredded by the retention job.
    Close {
        at: DateTime<Utc>,
    },
    /// Reopened within the export window (nothing was shredded yet).
    Reopen {
        at: DateTime<Utc>,
    },
    /// The store's retention periods (the privacy policy's unless set).
    SetRetentionPolicy(RetentionPolicy),
}

#[derive(Debug, Clone)]
pub struct Invite {
    pub by: RosterActor,
    pub invitation_id: Uuid,
    /// The id the member will have once they accept (the data subject of the invitation).
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum StoreEvent {
    StoreOpened {
        store_id: StoreId,
        name: String,
    },
    StaffInvited {
        invitation_id: Uuid,
        user_id: UserId,
        email: Pii<String>,
        name: Pii<String>,
        role: Role,
        expires_at: DateTime<Utc>,
        invited_by: Option<UserId>,
    },
    StaffJoined {
        user_id: UserId,
        email: Pii<String>,
        name: Option<Pii<String>>,
        role: Role,
        invitation_id: Option<Uuid>,
    },
    StaffRoleChanged {
        user_id: UserId,
        from: Role,
        to: Role,
    },
    StaffDeactivated {
        user_id: UserId,
    },
    StaffReactivated {
        user_id: UserId,
    },
    /// The member's name and email were erased (their key destroyed) under `request_id`.
    StaffErased {
        user_id: UserId,
        request_id: PrivacyRequestId,
    },
    StoreClosed {
        at: DateTime<Utc>,
    },
    StoreReopened {
        at: DateTime<Utc>,
    },
    RetentionPolicySet {
        policy: RetentionPolicy,
    },
}

impl DomainEvent for StoreEvent {
    fn data_subject(&self) -> Option<Uuid> {
        match self {
            Self::StaffInvited { user_id, .. } | Self::StaffJoined { user_id, .. } => Some(user_id.as_uuid()),
            _ => None,
        }
    }
}

/// A member as the roster knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub role: Role,
    pub active: bool,
    /// Lowercased, for "joins once"; `None` once erased.
    pub email: Option<String>,
    pub erased: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub user_id: UserId,
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
    pub accepted: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Store {
    pub opened: Option<StoreId>,
    /// The name the store was opened with (the password policy keeps it out of passwords).
    pub name: Option<String>,
    pub members: BTreeMap<UserId, Member>,
    pub invitations: BTreeMap<Uuid, Invitation>,
    /// When the account was closed, while it is.
    pub closed_at: Option<DateTime<Utc>>,
    pub retention: RetentionPolicy,
}

/// Owners outrank managers, who outrank everyone else. Nobody moves themselves up this scale.
fn rank(role: Role) -> u8 {
    match role {
        Role::Owner => 3,
        Role::Manager => 2,
        Role::Sales | Role::Technician | Role::Auditor | Role::Compliance => 1,
    }
}

fn lower(email: &Pii<String>) -> Option<String> {
    email.clear().map(|e| e.to_lowercase())
}

impl Store {
    pub fn active_owners(&self) -> usize {
        self.members.values().filter(|m| m.active && m.role == Role::Owner).count()
    }

    /// A member who can still be changed (not erased).
    fn member(&self, user_id: UserId) -> Result<&Member, DomainError> {
        match self.members.get(&user_id) {
            None => Err(DomainError::NotFound { kind: "staff member" }),
            Some(m) if m.erased => Err(DomainError::Erased { kind: "staff member" }),
            Some(m) => Ok(m),
        }
    }

    fn require_open(&self) -> Result<StoreId, DomainError> {
        self.opened.ok_or(DomainError::NotFound { kind: "store" })
    }

    /// A manager acts only on, and only grants, roles below manager.
    fn may_manage(by: RosterActor, target_role: Role) -> Result<(), DomainError> {
        match by {
            RosterActor::System => Ok(()),
            RosterActor::Member { role: Role::Owner, .. } => Ok(()),
            RosterActor::Member { role: Role::Manager, .. } if rank(target_role) < rank(Role::Manager) => Ok(()),
            RosterActor::Member { role: Role::Manager, .. } => {
                Err(DomainError::NotAllowed { reason: "a manager cannot grant or change owner or manager roles" })
            }
            RosterActor::Member { .. } => {
                Err(DomainError::NotAllowed { reason: "only owners and managers manage staff" })
            }
        }
    }

    /// The member's role, if `by` may manage them (change their role, reset their password).
    pub fn check_may_manage(&self, by: RosterActor, user_id: UserId) -> Result<Role, DomainError> {
        let member = self.member(user_id)?;
        Self::may_manage(by, member.role)?;
        Ok(member.role)
    }

    /// True when removing `user_id` from the active owners would leave none.
    fn is_last_owner(&self, user_id: UserId) -> bool {
        self.members.get(&user_id).is_some_and(|m| m.active && m.role == Role::Owner) && self.active_owners() == 1
    }

    fn email_taken(&self, email: &str, now: DateTime<Utc>) -> bool {
        self.members.values().any(|m| m.email.as_deref() == Some(email))
            || self.invitations.values().any(|i| !i.accepted && i.expires_at > now && i.email.as_deref() == Some(email))
    }
}

impl Aggregate for Store {
    type Command = StoreCommand;
    type Event = StoreEvent;
    const KIND: &'static str = "store";

    fn decide(&self, command: &StoreCommand) -> Result<Vec<StoreEvent>, DomainError> {
        match command {
            StoreCommand::Open { .. } if self.opened.is_some() => Err(DomainError::AlreadyExists { kind: Self::KIND }),
            StoreCommand::Open { store_id, name } => Ok(vec![StoreEvent::StoreOpened {
                store_id: *store_id,
                name: Text::parse("name", name, 200)?.into_inner(),
            }]),
            StoreCommand::AddMember { user_id, email, name, role } => {
                self.require_open()?;
                let email = Email::parse(email)?.as_str().to_owned();
                if self.members.contains_key(user_id)
                    || self.email_taken(&email.to_lowercase(), DateTime::<Utc>::MIN_UTC)
                {
                    return Err(DomainError::AlreadyExists { kind: "staff member" });
                }
                let name = name.as_deref().map(PersonName::parse).transpose()?;
                Ok(vec![StoreEvent::StaffJoined {
                    user_id: *user_id,
                    email: Pii::profile(email),
                    name: name.map(|n| Pii::profile(n.as_str().to_owned())),
                    role: *role,
                    invitation_id: None,
                }])
            }
            StoreCommand::Invite(i) => {
                self.require_open()?;
                Self::may_manage(i.by, i.role)?;
                let email = Email::parse(&i.email)?.as_str().to_owned();
                let name = PersonName::parse(&i.name)?;
                if i.expires_at <= i.now {
                    return Err(DomainError::invalid("expiresAt", "must be in the future"));
                }
                if self.invitations.contains_key(&i.invitation_id) || self.email_taken(&email.to_lowercase(), i.now) {
                    return Err(DomainError::AlreadyExists { kind: "staff member or invitation for this email" });
                }
                Ok(vec![StoreEvent::StaffInvited {
                    invitation_id: i.invitation_id,
                    user_id: i.user_id,
                    email: Pii::profile(email),
                    name: Pii::profile(name.as_str().to_owned()),
                    role: i.role,
                    expires_at: i.expires_at,
                    invited_by: match i.by {
                        RosterActor::Member { user_id, .. } => Some(user_id),
                        RosterActor::System => None,
                    },
                }])
            }
            StoreCommand::AcceptInvitation { invitation_id, name, now } => {
                self.require_open()?;
                let inv = self.invitations.get(invitation_id).ok_or(DomainError::NotFound { kind: "invitation" })?;
                if inv.accepted {
                    return Err(DomainError::IllegalTransition {
                        action: "accept the invitation",
                        state: "it was already accepted".into(),
                    });
                }
                if inv.expires_at <= *now {
                    return Err(DomainError::Expired { kind: "invitation" });
                }
                let email = inv.email.clone().ok_or(DomainError::Erased { kind: "invitation" })?;
                let name = match name {
                    Some(n) => Some(PersonName::parse(n)?.as_str().to_owned()),
                    None => inv.name.clone(),
                };
                Ok(vec![StoreEvent::StaffJoined {
                    user_id: inv.user_id,
                    email: Pii::profile(email),
                    name: name.map(Pii::profile),
                    role: inv.role,
                    invitation_id: Some(*invitation_id),
                }])
            }
            StoreCommand::ChangeRole { by, user_id, role } => {
                let member = self.member(*user_id)?;
                if member.role == *role {
                    return Ok(vec![]);
                }
                let own = matches!(by, RosterActor::Member { user_id: me, .. } if me == user_id);
                if own && rank(*role) >= rank(member.role) {
                    return Err(DomainError::NotAllowed { reason: "nobody raises or changes their own role sideways" });
                }
                // Stepping down is always one's own choice; anything else needs the authority.
                if !own {
                    Self::may_manage(*by, member.role)?;
                    Self::may_manage(*by, *role)?;
                }
                if *role != Role::Owner && self.is_last_owner(*user_id) {
                    return Err(DomainError::LastOwner);
                }
                Ok(vec![StoreEvent::StaffRoleChanged { user_id: *user_id, from: member.role, to: *role }])
            }
            StoreCommand::Deactivate { by, user_id } => {
                let member = self.member(*user_id)?;
                if !member.active {
                    return Err(DomainError::IllegalTransition { action: "deactivate", state: "inactive".into() });
                }
                Self::may_manage(*by, member.role)?;
                if self.is_last_owner(*user_id) {
                    return Err(DomainError::LastOwner);
                }
                Ok(vec![StoreEvent::StaffDeactivated { user_id: *user_id }])
            }
            StoreCommand::EraseMember { user_id, request_id } => match self.members.get(user_id) {
                None => Err(DomainError::NotFound { kind: "staff member" }),
                Some(m) if m.erased => Ok(vec![]),
                Some(m) if m.active => {
                    Err(DomainError::IllegalTransition { action: "erase a staff member", state: "ACTIVE".into() })
                }
                Some(_) => Ok(vec![StoreEvent::StaffErased { user_id: *user_id, request_id: *request_id }]),
            },
            StoreCommand::Close { at } => {
                self.require_open()?;
                match self.closed_at {
                    Some(_) => Ok(vec![]),
                    None => Ok(vec![StoreEvent::StoreClosed { at: *at }]),
                }
            }
            StoreCommand::SetRetentionPolicy(p) => {
                self.require_open()?;
                p.validate()?;
                Ok(if *p == self.retention { vec![] } else { vec![StoreEvent::RetentionPolicySet { policy: *p }] })
            }
            StoreCommand::Reopen { at } => match self.closed_at {
                None => Ok(vec![]),
                Some(closed) if *at >= self.retention.closure_shred_at(closed) => {
                    Err(DomainError::Expired { kind: "export window of the closed store" })
                }
                Some(_) => Ok(vec![StoreEvent::StoreReopened { at: *at }]),
            },
            StoreCommand::Reactivate { by, user_id } => {
                let member = self.member(*user_id)?;
                if member.active {
                    return Err(DomainError::IllegalTransition { action: "reactivate", state: "active".into() });
                }
                Self::may_manage(*by, member.role)?;
                Ok(vec![StoreEvent::StaffReactivated { user_id: *user_id }])
            }
        }
    }

    fn evolve(mut self, event: &StoreEvent) -> Self {
        match event {
            StoreEvent::StoreOpened { store_id, name } => {
                self.opened = Some(*store_id);
                self.name = Some(name.clone());
            }
            StoreEvent::StaffInvited { invitation_id, user_id, email, name, role, expires_at, .. } => {
                self.invitations.insert(
                    *invitation_id,
                    Invitation {
                        user_id: *user_id,
                        email: lower(email),
                        name: name.clear().cloned(),
                        role: *role,
                        expires_at: *expires_at,
                        accepted: false,
                    },
                );
            }
            StoreEvent::StaffJoined { user_id, email, role, invitation_id, .. } => {
                if let Some(inv) = invitation_id.and_then(|id| self.invitations.get_mut(&id)) {
                    inv.accepted = true;
                }
                self.members.insert(*user_id, Member { role: *role, active: true, email: lower(email), erased: false });
            }
            StoreEvent::StaffRoleChanged { user_id, to, .. } => {
                if let Some(m) = self.members.get_mut(user_id) {
                    m.role = *to;
                }
            }
            StoreEvent::StaffDeactivated { user_id } => {
                if let Some(m) = self.members.get_mut(user_id) {
                    m.active = false;
                }
            }
            StoreEvent::StaffReactivated { user_id } => {
                if let Some(m) = self.members.get_mut(user_id) {
                    m.active = true;
                }
            }
            StoreEvent::StaffErased { user_id, .. } => {
                if let Some(m) = self.members.get_mut(user_id) {
                    m.erased = true;
                    m.email = None;
                }
            }
            StoreEvent::StoreClosed { at } => self.closed_at = Some(*at),
            StoreEvent::StoreReopened { .. } => self.closed_at = None,
            StoreEvent::RetentionPolicySet { policy } => self.retention = *policy,
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::given;

    fn id(n: u128) -> UserId {
        UserId::from_uuid(Uuid::from_u128(n))
    }
    fn store() -> StoreId {
        StoreId::from_uuid(Uuid::from_u128(1))
    }
    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }
    fn opened() -> StoreEvent {
        StoreEvent::StoreOpened { store_id: store(), name: "Tick Tock".into() }
    }
    fn joined(n: u128, role: Role) -> StoreEvent {
        StoreEvent::StaffJoined {
            user_id: id(n),
            email: Pii::profile(format!("m{n}@shop.com")),
            name: None,
            role,
            invitation_id: None,
        }
    }
    fn member(n: u128, role: Role) -> RosterActor {
        RosterActor::Member { user_id: id(n), role }
    }
    fn invite(by: RosterActor, role: Role, email: &str) -> StoreCommand {
        StoreCommand::Invite(Invite {
            by,
            invitation_id: Uuid::from_u128(77),
            user_id: id(50),
            email: email.into(),
            name: "Ada Lovelace".into(),
            role,
            now: now(),
            expires_at: now() + chrono::Duration::days(7),
        })
    }

    #[test]
    fn a_store_opens_once_with_a_non_empty_name() {
        let opened = opened();
        given::<Store>(&[])
            .when(StoreCommand::Open { store_id: store(), name: " Tick Tock ".into() })
            .then_expect(std::slice::from_ref(&opened));
        given::<Store>(&[opened])
            .when(StoreCommand::Open { store_id: store(), name: "X".into() })
            .then_reject("ALREADY_EXISTS");
        given::<Store>(&[]).when(StoreCommand::Open { store_id: store(), name: "".into() }).then_reject("INVALID");
    }

    #[test]
    fn an_invitation_is_accepted_once_before_it_expires() {
        let history = [opened(), joined(1, Role::Owner)];
        let events =
            given::<Store>(&history).when(invite(member(1, Role::Owner), Role::Auditor, "Ada@Audit.com")).events();
        let mut all = history.to_vec();
        all.extend(events);
        let accept = |at: DateTime<Utc>| StoreCommand::AcceptInvitation {
            invitation_id: Uuid::from_u128(77),
            name: None,
            now: at,
        };
        given::<Store>(&all).when(accept(now() + chrono::Duration::days(8))).then_reject("EXPIRED");
        let joined_events = given::<Store>(&all).when(accept(now())).events();
        assert!(matches!(
            &joined_events[0],
            StoreEvent::StaffJoined { user_id, role: Role::Auditor, invitation_id: Some(_), .. } if *user_id == id(50)
        ));
        all.extend(joined_events);
        given::<Store>(&all).when(accept(now())).then_reject("ILLEGAL_TRANSITION");
        // The email is now a member's: it cannot be invited again, whatever its case.
        given::<Store>(&all)
            .when(invite(member(1, Role::Owner), Role::Sales, "ada@audit.com"))
            .then_reject("ALREADY_EXISTS");
    }

    #[test]
    fn managers_cannot_grant_or_touch_owner_and_manager_roles() {
        let history = [opened(), joined(1, Role::Owner), joined(2, Role::Manager), joined(3, Role::Sales)];
        let m = member(2, Role::Manager);
        given::<Store>(&history).when(invite(m, Role::Owner, "x@y.com")).then_reject("FORBIDDEN");
        given::<Store>(&history).when(invite(m, Role::Manager, "x@y.com")).then_reject("FORBIDDEN");
        given::<Store>(&history).when(invite(m, Role::Technician, "x@y.com")).events();
        given::<Store>(&history)
            .when(StoreCommand::ChangeRole { by: m, user_id: id(3), role: Role::Manager })
            .then_reject("FORBIDDEN");
        given::<Store>(&history).when(StoreCommand::Deactivate { by: m, user_id: id(1) }).then_reject("FORBIDDEN");
        given::<Store>(&history)
            .when(StoreCommand::ChangeRole { by: m, user_id: id(3), role: Role::Auditor })
            .then_expect(&[StoreEvent::StaffRoleChanged { user_id: id(3), from: Role::Sales, to: Role::Auditor }]);
        // Sales staff manage nobody.
        given::<Store>(&history).when(invite(member(3, Role::Sales), Role::Sales, "x@y.com")).then_reject("FORBIDDEN");
    }

    #[test]
    fn nobody_raises_their_own_role() {
        let history = [opened(), joined(1, Role::Owner), joined(2, Role::Manager)];
        given::<Store>(&history)
            .when(StoreCommand::ChangeRole { by: member(2, Role::Manager), user_id: id(2), role: Role::Owner })
            .then_reject("FORBIDDEN");
        // Stepping down is fine.
        given::<Store>(&history)
            .when(StoreCommand::ChangeRole { by: member(2, Role::Manager), user_id: id(2), role: Role::Sales })
            .events();
    }

    #[test]
    fn a_store_always_keeps_an_active_owner() {
        let history = [opened(), joined(1, Role::Owner), joined(2, Role::Owner)];
        let by = member(1, Role::Owner);
        let demote_two = given::<Store>(&history)
            .when(StoreCommand::ChangeRole { by, user_id: id(2), role: Role::Sales })
            .then_expect(&[StoreEvent::StaffRoleChanged { user_id: id(2), from: Role::Owner, to: Role::Sales }]);
        assert_eq!(demote_two.active_owners(), 1);
        let mut after = history.to_vec();
        after.push(StoreEvent::StaffRoleChanged { user_id: id(2), from: Role::Owner, to: Role::Sales });
        given::<Store>(&after).when(StoreCommand::Deactivate { by, user_id: id(1) }).then_reject("LAST_OWNER");
        given::<Store>(&after)
            .when(StoreCommand::ChangeRole { by, user_id: id(1), role: Role::Manager })
            .then_reject("LAST_OWNER");
        // Deactivated owners do not count.
        let two_owners_one_inactive =
            [opened(), joined(1, Role::Owner), joined(2, Role::Owner), StoreEvent::StaffDeactivated { user_id: id(2) }];
        given::<Store>(&two_owners_one_inactive)
            .when(StoreCommand::Deactivate { by, user_id: id(1) })
            .then_reject("LAST_OWNER");
        given::<Store>(&two_owners_one_inactive)
            .when(StoreCommand::Deactivate { by, user_id: id(2) })
            .then_reject("ILLEGAL_TRANSITION");
        given::<Store>(&two_owners_one_inactive)
            .when(StoreCommand::Reactivate { by, user_id: id(2) })
            .then_expect(&[StoreEvent::StaffReactivated { user_id: id(2) }]);
    }

    #[test]
    fn a_closed_store_reopens_only_within_its_export_window() {
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let opened =
            [StoreEvent::StoreOpened { store_id: StoreId::from_uuid(Uuid::from_u128(1)), name: "Shop".into() }];
        let closed = given::<Store>(&opened).when(StoreCommand::Close { at: t0 }).events();
        let all: Vec<_> = opened.iter().chain(&closed).cloned().collect();
        given::<Store>(&all).when(StoreCommand::Close { at: t0 }).then_expect(&[]);
        let day = chrono::Duration::days(1);
        given::<Store>(&all)
            .when(StoreCommand::Reopen { at: t0 + day * 89 })
            .then_expect(&[StoreEvent::StoreReopened { at: t0 + day * 89 }]);
        given::<Store>(&all).when(StoreCommand::Reopen { at: t0 + day * 90 }).then_reject("EXPIRED");
        // A longer window set by the owner lets it reopen later.
        let longer = RetentionPolicy { closure_export_days: 120, ..RetentionPolicy::default() };
        let set = given::<Store>(&all).when(StoreCommand::SetRetentionPolicy(longer)).events();
        let all: Vec<_> = all.into_iter().chain(set).collect();
        given::<Store>(&all).when(StoreCommand::Reopen { at: t0 + day * 100 }).events();
        let short = RetentionPolicy { legal_hold_years: 2, ..RetentionPolicy::default() };
        given::<Store>(&all).when(StoreCommand::SetRetentionPolicy(short)).then_reject("INVALID");
    }

    #[test]
    fn only_a_deactivated_member_is_erased_and_then_never_changes_again() {
        let request_id = PrivacyRequestId::from_uuid(Uuid::from_u128(9));
        let history = [
            StoreEvent::StoreOpened { store_id: StoreId::from_uuid(Uuid::from_u128(1)), name: "Shop".into() },
            StoreEvent::StaffJoined {
                user_id: id(1),
                email: Pii::profile("o@x.test".into()),
                name: None,
                role: Role::Owner,
                invitation_id: None,
            },
            StoreEvent::StaffJoined {
                user_id: id(2),
                email: Pii::profile("s@x.test".into()),
                name: None,
                role: Role::Sales,
                invitation_id: None,
            },
        ];
        let erase = StoreCommand::EraseMember { user_id: id(2), request_id };
        given::<Store>(&history).when(erase.clone()).then_reject("ILLEGAL_TRANSITION");
        let mut all = history.to_vec();
        all.push(StoreEvent::StaffDeactivated { user_id: id(2) });
        let erased = given::<Store>(&all)
            .when(erase.clone())
            .then_expect(&[StoreEvent::StaffErased { user_id: id(2), request_id }]);
        assert_eq!(erased.members[&id(2)].email, None);
        all.push(StoreEvent::StaffErased { user_id: id(2), request_id });
        given::<Store>(&all).when(erase).then_expect(&[]);
        let by = RosterActor::Member { user_id: id(1), role: Role::Owner };
        given::<Store>(&all).when(StoreCommand::Reactivate { by, user_id: id(2) }).then_reject("ERASED");
    }

    #[test]
    fn unknown_members_are_not_found_and_same_role_changes_nothing() {
        let history = [opened(), joined(1, Role::Owner)];
        let by = member(1, Role::Owner);
        given::<Store>(&history).when(StoreCommand::Deactivate { by, user_id: id(9) }).then_reject("NOT_FOUND");
        given::<Store>(&history)
            .when(StoreCommand::ChangeRole { by, user_id: id(1), role: Role::Owner })
            .then_expect(&[]);
    }
}
