//! A tenant: one dealer's store.

use crate::aggregate::{Aggregate, DomainEvent};
use crate::values::Text;
use crate::{DomainError, StoreId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone)]
pub enum StoreCommand {
    Open { store_id: StoreId, name: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum StoreEvent {
    StoreOpened { store_id: StoreId, name: String },
}

impl DomainEvent for StoreEvent {}

#[derive(Debug, Clone, Default)]
pub struct Store {
    pub opened: Option<StoreId>,
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
        }
    }

    fn evolve(mut self, event: &StoreEvent) -> Self {
        match event {
            StoreEvent::StoreOpened { store_id, .. } => self.opened = Some(*store_id),
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::given;

    #[test]
    fn a_store_opens_once_with_a_non_empty_name() {
        let id = StoreId::from_uuid(uuid::Uuid::from_u128(1));
        let opened = StoreEvent::StoreOpened { store_id: id, name: "Tick Tock".into() };
        given::<Store>(&[])
            .when(StoreCommand::Open { store_id: id, name: " Tick Tock ".into() })
            .then_expect(std::slice::from_ref(&opened));
        given::<Store>(&[opened])
            .when(StoreCommand::Open { store_id: id, name: "X".into() })
            .then_reject("ALREADY_EXISTS");
        given::<Store>(&[]).when(StoreCommand::Open { store_id: id, name: "".into() }).then_reject("INVALID");
    }
}
