//! The API's one error type: what a GraphQL client is told, with `extensions.code`.
//!
//! Internal detail never reaches the client: an internal failure is logged here (without
//! personal data: store and event errors carry none) and answered with a generic message.
//!
//! `ApiError` deliberately does not implement `Display`: async-graphql converts any `Display`
//! type into an error without `extensions.code`, so with `Display` a stray `?` would silently
//! drop the code. The only way to a GraphQL error is the `From` impl below.

use async_graphql::ErrorExtensions;

#[derive(Debug)]
pub enum ApiError {
    /// No valid token. Client: log in again.
    Unauthenticated,
    /// Login with a wrong email or password. Client: ask again; says nothing about which.
    InvalidCredentials,
    /// Too many failed logins (for this account, from this address, or both), or too many
    /// logins being checked at once. Client: wait `retryAfterSeconds`, then retry.
    RateLimited {
        retry_after_seconds: u64,
    },
    /// Valid token, role not allowed. Client: do not retry.
    Forbidden,
    NotFound,
    /// Malformed argument outside an input object (ids, positions, page sizes).
    BadUserInput(String),
    /// Concurrent modification outlasted the retries. Client: retry later.
    Conflict,
    /// Read models did not reach `minPosition` in time. Client: retry.
    ConsistencyTimeout,
    /// Anything else. Logged; the client sees a generic message.
    Internal,
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated | Self::InvalidCredentials => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput(_) => "BAD_USER_INPUT",
            Self::Conflict => "CONFLICT",
            Self::ConsistencyTimeout => "CONSISTENCY_TIMEOUT",
            Self::Internal => "INTERNAL",
        }
    }

    /// The message the client sees.
    pub fn message(&self) -> String {
        match self {
            Self::Unauthenticated => "authentication required".into(),
            Self::InvalidCredentials => "invalid email or password".into(),
            Self::Forbidden => "not allowed for your role".into(),
            Self::RateLimited { retry_after_seconds } => {
                format!("too many attempts; try again in {retry_after_seconds} seconds")
            }
            Self::NotFound => "not found".into(),
            Self::BadUserInput(m) => m.clone(),
            Self::Conflict => "the record was modified concurrently; retry".into(),
            Self::ConsistencyTimeout => "read models have not caught up with the requested position yet".into(),
            Self::Internal => "internal error".into(),
        }
    }

    /// Logs an infrastructure failure and turns it into `Internal`.
    pub fn internal(context: &str, error: &dyn std::error::Error) -> Self {
        let mut chain = error.to_string();
        let mut source = error.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(context, error = %chain, "internal error");
        Self::Internal
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        let code = e.code();
        let retry = match e {
            ApiError::RateLimited { retry_after_seconds } => Some(retry_after_seconds),
            _ => None,
        };
        async_graphql::Error::new(e.message()).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(r) = retry {
                ext.set("retryAfterSeconds", r);
            }
        })
    }
}

impl From<commands::CommandError> for ApiError {
    fn from(e: commands::CommandError) -> Self {
        match e {
            commands::CommandError::Contention { .. } => Self::Conflict,
            commands::CommandError::Rejected(_) => Self::BadUserInput(e.to_string()),
            commands::CommandError::Store(s) => Self::internal("command", &s),
        }
    }
}

impl From<projections::ProjectionError> for ApiError {
    fn from(e: projections::ProjectionError) -> Self {
        match e {
            projections::ProjectionError::ConsistencyTimeout => Self::ConsistencyTimeout,
            other => Self::internal("read model", &other),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
