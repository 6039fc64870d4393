//! The one error type of the domain: a rejected command.
//!
//! A `DomainError` is never an infrastructure failure; callers turn it into a user error in the
//! mutation payload (`field`, `code`, `message`) and write nothing. Messages never contain the
//! rejected value, because the value may be personal data.

/// Why a command was rejected. Callers: report as a user error, do not retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// An input field failed to parse. Caller: show against `field`.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The aggregate already exists (create on an existing id).
    #[error("{kind} already exists")]
    AlreadyExists { kind: &'static str },
    /// The aggregate does not exist (command on an unknown id).
    #[error("{kind} not found")]
    NotFound { kind: &'static str },
    /// The command is not allowed in the aggregate's current state.
    #[error("cannot {action} while {state}")]
    IllegalTransition { action: &'static str, state: String },
    /// Two amounts in different currencies were combined.
    #[error("{field}: currency {found} does not match {expected}")]
    CurrencyMismatch { field: &'static str, expected: String, found: String },
    /// The item is reserved for (or out on memo to) another customer.
    #[error("{kind} is reserved for another customer")]
    ReservedForAnother { kind: &'static str },
    /// A payment or refund would break the sale's money rules (refund above what was paid,
    /// payment above the balance).
    #[error("{field}: {reason}")]
    Amount { field: &'static str, reason: String },
    /// The data subject was erased; their personal data can no longer be changed.
    #[error("{kind} has been erased")]
    Erased { kind: &'static str },
    /// The acting staff member may not do this to this target (a manager promoting to owner,
    /// anyone raising their own role). Caller: user error; do not retry.
    #[error("not allowed: {reason}")]
    NotAllowed { reason: &'static str },
    /// The change would leave the store without an active owner.
    #[error("a store must keep at least one active owner")]
    LastOwner,
    /// An idempotency key was used before with different input. Caller: user error; use a new
    /// key for a new request (a retry must send the same input).
    #[error("idempotencyKey: was already used with different input")]
    IdempotencyKeyReused,
    /// An input references an id that does not exist in the caller's store (or at all).
    /// Caller: user error on `field`; the same answer whether the id is another store's or none.
    #[error("{field}: no such {kind} in this store")]
    UnknownReference { field: &'static str, kind: &'static str },
    /// A sale line's price is below the item's floor and the seller may not approve discounts.
    /// Caller: user error; a manager or owner can sell it.
    #[error("{kind} cannot be sold below its floor price without approval")]
    BelowFloorPrice { kind: &'static str },
    /// An invitation or token passed its expiry.
    #[error("{kind} has expired")]
    Expired { kind: &'static str },
    /// The data subject is younger than the law allows for this (policy §9: no marketing
    /// consent under 16). Caller: user error; do not retry.
    #[error("customerId: the customer is under {minimum}; marketing consent cannot be recorded")]
    UnderAge { minimum: u32 },
}

impl DomainError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid { field, reason: reason.into() }
    }

    /// Stable machine-readable code for clients (`UserError.code`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "INVALID",
            Self::AlreadyExists { .. } => "ALREADY_EXISTS",
            Self::NotFound { .. } => "NOT_FOUND",
            Self::IllegalTransition { .. } => "ILLEGAL_TRANSITION",
            Self::CurrencyMismatch { .. } => "CURRENCY_MISMATCH",
            Self::Erased { .. } => "ERASED",
            Self::ReservedForAnother { .. } => "RESERVED_FOR_ANOTHER_CUSTOMER",
            Self::Amount { .. } => "AMOUNT_NOT_ALLOWED",
            Self::NotAllowed { .. } => "FORBIDDEN",
            Self::LastOwner => "LAST_OWNER",
            Self::Expired { .. } => "EXPIRED",
            Self::BelowFloorPrice { .. } => "BELOW_FLOOR_PRICE",
            Self::UnknownReference { .. } => "NOT_FOUND",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::UnderAge { .. } => "UNDER_AGE",
        }
    }

    /// The input field the error is about, if any (`UserError.field`).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid { field, .. }
            | Self::CurrencyMismatch { field, .. }
            | Self::Amount { field, .. }
            | Self::UnknownReference { field, .. } => Some(field),
            Self::IdempotencyKeyReused => Some("idempotencyKey"),
            Self::UnderAge { .. } => Some("customerId"),
            _ => None,
        }
    }
}
