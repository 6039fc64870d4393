//! Opening a store (tenant) with its owner, and adding staff.

use crate::password::Password;
use crate::{execute, CommandContext, CommandError, MultiDecision};
use domain::staff::{Role, StaffCommand, StaffMember};
use domain::store::{Store, StoreCommand};
use domain::{StoreId, UserId};
use eventstore::{EventStore, Position};

/// Adds a staff member with a password. The credential is stored only after the staff event is
/// accepted, so a rejected command leaves no credential behind.
pub async fn add_staff(
    store: &EventStore,
    ctx: &CommandContext,
    email: &str,
    password: &str,
    role: Role,
) -> Result<(UserId, Position), CommandError> {
    let password = Password::parse(password)?;
    let user_id = UserId::new_v7();
    let cmd = StaffCommand::Add { user_id, store_id: ctx.store_id, email: email.to_owned(), role };
    // Validate before hashing (argon2 is deliberately slow) and before writing anything.
    StaffMember::default().decide_check(&cmd)?;
    let hash = password.hash();
    store.backend().put_credential(user_id.as_uuid(), ctx.store_id.as_uuid(), &hash).await?;
    let out = execute::<StaffMember>(store, ctx, &user_id.stream_id(), &cmd).await?;
    Ok((user_id, out.position.expect("adding staff always records an event")))
}

/// Opens a new store and its owner account, in one atomic append (a store never exists without
/// its owner). Returns the ids and the log position.
pub async fn create_store(
    store: &EventStore,
    source: &str,
    name: &str,
    owner_email: &str,
    owner_password: &str,
) -> Result<(StoreId, UserId, Position), CommandError> {
    let store_id = StoreId::new_v7();
    let owner = UserId::new_v7();
    let ctx = CommandContext::system(store_id, source);
    let password = Password::parse(owner_password)?;
    let open = StoreCommand::Open { store_id, name: name.to_owned() };
    let add = StaffCommand::Add { user_id: owner, store_id, email: owner_email.to_owned(), role: Role::Owner };
    // Validate everything before the (deliberately slow) hash and before writing anything.
    Store::default().decide_check(&open)?;
    StaffMember::default().decide_check(&add)?;
    store.backend().put_credential(owner.as_uuid(), store_id.as_uuid(), &password.hash()).await?;
    let mut d = MultiDecision::new(store, &ctx);
    d.decide::<Store>(&store_id.stream_id(), &[open]).await?;
    d.decide::<StaffMember>(&owner.stream_id(), &[add]).await?;
    let position = d.commit().await?.expect("opening a store always writes");
    Ok((store_id, owner, position))
}

/// Runs `decide` only to validate input up front, discarding the events.
trait DecideCheck: domain::Aggregate {
    fn decide_check(&self, cmd: &Self::Command) -> Result<(), domain::DomainError> {
        self.decide(cmd).map(|_| ())
    }
}
impl<A: domain::Aggregate> DecideCheck for A {}
