//! The dealer domain, pure and synchronous.
//!
//! Everything here is a value or a function: typed ids, value objects that parse their input,
//! events (past-tense facts) and aggregates written as `decide(&State, &Command) -> Result<Vec<Event>>`
//! and `evolve(State, &Event) -> State`. No IO, no clock, no randomness: anything a decision needs
//! from outside (ids, times, prices) arrives in the command. The event log, encryption and the API
//! live in other crates and depend on this one, never the other way round.
#![forbid(unsafe_code)]

pub mod aggregate;
pub mod consent;
pub mod customer;
pub mod error;
pub mod ids;
pub mod inventory;
pub mod money;
pub mod pii;
pub mod privacy;
pub mod restriction;
pub mod retention;
pub mod sale;
pub mod staff;
pub mod store;
pub mod values;

pub use aggregate::{Aggregate, DomainEvent};
pub use error::DomainError;
pub use ids::{CustomerId, ItemId, SaleId, StoreId, UserId};
pub use money::{Currency, Money};
pub use pii::{KeyClass, Pii};
