//! Typed ids: one newtype per kind so an `ItemId` can never be passed where a `CustomerId` is
//! expected. All are UUIDs; new ones are UUIDv7 (time-ordered, index friendly). Each kind knows
//! the prefix of its event stream (`item-<uuid>`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Stream id prefix for aggregates identified by this id.
            pub const STREAM_PREFIX: &'static str = $prefix;

            /// A fresh time-ordered id. Only callers outside `decide` mint ids.
            pub fn new_v7() -> Self {
                Self(Uuid::now_v7())
            }
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
            /// The id of the event stream holding this aggregate.
            pub fn stream_id(&self) -> String {
                format!("{}-{}", $prefix, self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

typed_id!(
    /// A tenant: one dealer's store. Every event and row carries one.
    StoreId,
    "store"
);
typed_id!(
    /// A staff member who logs in.
    UserId,
    "staff"
);
typed_id!(
    /// One physical piece of inventory.
    ItemId,
    "item"
);
typed_id!(
    /// A customer of a store, and the data subject of their personal data.
    CustomerId,
    "customer"
);

typed_id!(
    /// A sale (and its invoice, once confirmed).
    SaleId,
    "sale"
);

typed_id!(
    /// A data subject's privacy request (access, erasure, …), handled as a case.
    PrivacyRequestId,
    "privacy_request"
);

/// The stream holding a store's invoice numbers: its version + 1 is the next number, so
/// numbers are gap-free and never reused.
pub fn invoice_stream(store: StoreId) -> String {
    format!("invoices-{store}")
}

/// The stream holding a customer's consent ledger.
pub fn consent_stream(customer: CustomerId) -> String {
    format!("consent-{customer}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_carry_the_kind_prefix_and_parse_back() {
        let id = ItemId::new_v7();
        assert!(id.stream_id().starts_with("item-"));
        assert_eq!(id.to_string().parse::<ItemId>().unwrap(), id);
        assert!("not-a-uuid".parse::<CustomerId>().is_err());
    }
}
