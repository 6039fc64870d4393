//! Staff members: their roles, and the facts about their credentials.
//!
//! Membership (joined, role changed, deactivated) is decided by the store's roster
//! ([`crate::store`]), where the rules that span members live. A member's own stream records what
//! happens to their credentials — password changed, reset issued, reset completed — so the audit
//! trail shows it, while the password hashes and tokens themselves live in the account store,
//! never in the log. Streams written before the roster existed start with `StaffMemberAdded`.

use crate::aggregate::{Aggregate, DomainEvent};
use crate::{DomainError, Pii, StoreId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Least-privilege roles. What each may do is decided in one place, in the API's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Owner,
    Manager,
    Sales,
    Technician,
    Auditor,
    Compliance,
}

impl Role {
    pub const ALL: [Role; 6] =
        [Self::Owner, Self::Manager, Self::Sales, Self::Technician, Self::Auditor, Self::Compliance];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Owner => "OWNER",
            Self::Manager => "MANAGER",
            Self::Sales => "SALES",
            Self::Technician => "TECHNICIAN",
            Self::Auditor => "AUDITOR",
            Self::Compliance => "COMPLIANCE",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone)]
pub enum StaffCommand {
    ChangePassword { user_id: UserId },
    IssuePasswordReset { user_id: UserId, issued_by: Option<UserId>, expires_at: DateTime<Utc> },
    CompletePasswordReset { user_id: UserId },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum StaffEvent {
    /// Written before the roster existed (membership now lives in the store stream).
    StaffMemberAdded {
        user_id: UserId,
        store_id: StoreId,
        email: Pii<String>,
        role: Role,
    },
    PasswordChanged {
        user_id: UserId,
    },
    PasswordResetIssued {
        user_id: UserId,
        issued_by: Option<UserId>,
        expires_at: DateTime<Utc>,
    },
    PasswordResetCompleted {
        user_id: UserId,
    },
}

impl DomainEvent for StaffEvent {
    fn data_subject(&self) -> Option<uuid::Uuid> {
        match self {
            Self::StaffMemberAdded { user_id, .. } => Some(user_id.as_uuid()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct StaffMember {
    /// Only for streams written before the roster existed.
    pub legacy: Option<(UserId, Role)>,
    pub pending_reset: bool,
}

impl Aggregate for StaffMember {
    type Command = StaffCommand;
    type Event = StaffEvent;
    const KIND: &'static str = "staff member";

    fn decide(&self, command: &StaffCommand) -> Result<Vec<StaffEvent>, DomainError> {
        match command {
            StaffCommand::ChangePassword { user_id } => Ok(vec![StaffEvent::PasswordChanged { user_id: *user_id }]),
            StaffCommand::IssuePasswordReset { user_id, issued_by, expires_at } => {
                Ok(vec![StaffEvent::PasswordResetIssued {
                    user_id: *user_id,
                    issued_by: *issued_by,
                    expires_at: *expires_at,
                }])
            }
            StaffCommand::CompletePasswordReset { .. } if !self.pending_reset => Err(DomainError::IllegalTransition {
                action: "reset the password",
                state: "no reset was issued".into(),
            }),
            StaffCommand::CompletePasswordReset { user_id } => {
                Ok(vec![StaffEvent::PasswordResetCompleted { user_id: *user_id }])
            }
        }
    }

    fn evolve(mut self, event: &StaffEvent) -> Self {
        match event {
            StaffEvent::StaffMemberAdded { user_id, role, .. } => self.legacy = Some((*user_id, *role)),
            StaffEvent::PasswordResetIssued { .. } => self.pending_reset = true,
            StaffEvent::PasswordResetCompleted { .. } | StaffEvent::PasswordChanged { .. } => {
                self.pending_reset = false
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::given;

    #[test]
    fn a_reset_completes_only_after_one_was_issued() {
        let user_id = UserId::from_uuid(uuid::Uuid::from_u128(3));
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        given::<StaffMember>(&[])
            .when(StaffCommand::CompletePasswordReset { user_id })
            .then_reject("ILLEGAL_TRANSITION");
        let issued = StaffEvent::PasswordResetIssued { user_id, issued_by: None, expires_at: at };
        given::<StaffMember>(std::slice::from_ref(&issued))
            .when(StaffCommand::CompletePasswordReset { user_id })
            .then_expect(&[StaffEvent::PasswordResetCompleted { user_id }]);
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("owner"), None);
    }
}
