//! Opening a store (tenant) with its owner.

use crate::password::{Password, PasswordContext};
use crate::{CommandContext, CommandError};
use domain::staff::Role;
use domain::store::{Store, StoreCommand};
use domain::{Aggregate, StoreId, UserId};
use eventstore::{Accounts, EventStore, Position};

/// Opens a new store and its owner account, in one append to the store's stream (a store never
/// exists without its owner). Returns the ids and the log position.
pub async fn create_store(
    store: &EventStore,
    accounts: &Accounts,
    source: &str,
    name: &str,
    owner_email: &str,
    owner_password: &str,
) -> Result<(StoreId, UserId, Position), CommandError> {
    let store_id = StoreId::new_v7();
    let owner = UserId::new_v7();
    let ctx = CommandContext::system(store_id, source);
    let password = Password::parse(
        owner_password,
        PasswordContext { email: Some(owner_email), name: None, store_name: Some(name) },
    )?;
    let open = StoreCommand::Open { store_id, name: name.to_owned() };
    let add = StoreCommand::AddMember { user_id: owner, email: owner_email.to_owned(), name: None, role: Role::Owner };
    // Validate everything before the (deliberately slow) hash and before writing anything.
    let opened = Store::default().decide(&open)?.iter().fold(Store::default(), Store::evolve);
    opened.decide(&add)?;
    let hash = tokio::task::spawn_blocking(move || password.hash())
        .await
        .map_err(|_| eventstore::StoreError::Invalid("password hashing was cancelled".into()))?;
    accounts.put_credential(owner.as_uuid(), store_id.as_uuid(), &hash).await?;
    let out = crate::idempotency::once(store, &ctx, None, "createStore", store_id.as_uuid(), |mut d| {
        let (open, add) = (open.clone(), add.clone());
        async move {
            d.decide::<Store>(&store_id.stream_id(), &[open, add]).await?;
            Ok(d)
        }
    })
    .await?;
    let position = out.position.expect("opening a store always writes");
    Ok((store_id, owner, position))
}
