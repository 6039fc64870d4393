//! Staff members of a store and their roles. A staff member is also a data subject: their email
//! is personal data under their own `profile` key. Credentials (password hashes) are not events:
//! they live in the credential table, so a rotated or leaked hash never stays in the log forever.

use crate::aggregate::{Aggregate, DomainEvent};
use crate::values::Email;
use crate::{DomainError, Pii, StoreId, UserId};
use serde::{Deserialize, Serialize};

/// Least-privilege roles. What each may do is decided in one place, in the API's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
        [Self::Owner, Self::Manager, Self::Sales, Self::Technician, Self::Auditor, Self::Compliance]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone)]
pub enum StaffCommand {
    Add { user_id: UserId, store_id: StoreId, email: String, role: Role },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum StaffEvent {
    StaffMemberAdded { user_id: UserId, store_id: StoreId, email: Pii<String>, role: Role },
}

impl DomainEvent for StaffEvent {
    fn data_subject(&self) -> Option<uuid::Uuid> {
        match self {
            Self::StaffMemberAdded { user_id, .. } => Some(user_id.as_uuid()),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct StaffMember {
    pub added: Option<(UserId, Role)>,
}

impl Aggregate for StaffMember {
    type Command = StaffCommand;
    type Event = StaffEvent;
    const KIND: &'static str = "staff member";

    fn decide(&self, command: &StaffCommand) -> Result<Vec<StaffEvent>, DomainError> {
        match command {
            StaffCommand::Add { .. } if self.added.is_some() => Err(DomainError::AlreadyExists { kind: Self::KIND }),
            StaffCommand::Add { user_id, store_id, email, role } => Ok(vec![StaffEvent::StaffMemberAdded {
                user_id: *user_id,
                store_id: *store_id,
                email: Pii::profile(Email::parse(email)?.as_str().to_owned()),
                role: *role,
            }]),
        }
    }

    fn evolve(mut self, event: &StaffEvent) -> Self {
        match event {
            StaffEvent::StaffMemberAdded { user_id, role, .. } => self.added = Some((*user_id, *role)),
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::given;

    #[test]
    fn adding_a_staff_member_encrypts_their_email_under_their_own_subject() {
        let user_id = UserId::from_uuid(uuid::Uuid::from_u128(3));
        let store_id = StoreId::from_uuid(uuid::Uuid::from_u128(4));
        let cmd = StaffCommand::Add { user_id, store_id, email: "Owner@Shop.com".into(), role: Role::Owner };
        let events = given::<StaffMember>(&[]).when(cmd.clone()).then_expect(&[StaffEvent::StaffMemberAdded {
            user_id,
            store_id,
            email: Pii::profile("Owner@shop.com".into()),
            role: Role::Owner,
        }]);
        assert!(events.added.is_some());
        given::<StaffMember>(&[StaffEvent::StaffMemberAdded {
            user_id,
            store_id,
            email: Pii::profile("x@y.com".into()),
            role: Role::Sales,
        }])
        .when(cmd)
        .then_reject("ALREADY_EXISTS");
    }
}
