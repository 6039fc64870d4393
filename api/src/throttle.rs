//! Login throttling that survives restarts and is shared by every server (the counters live in
//! the account store). Three buckets, each over a sliding 15-minute window:
//! - one account from one client address: 5 failures (a user mistyping is not locked out
//!   elsewhere);
//! - one account from anywhere: 10 failures (one account guessed from many addresses);
//! - one client address against any accounts: 20 failures (password spraying).
//!
//! A refused attempt is told when to retry. Buckets are SHA-256 hashes of the lower-cased email
//! and the address, so no email or address is stored in clear. A global cap on concurrent
//! password hashes keeps a flood of logins from exhausting memory (argon2 takes 19 MiB each) or
//! the blocking thread pool.

use chrono::{DateTime, Duration, Utc};
use eventstore::accounts::bucket;
use eventstore::{Accounts, StoreError};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub const WINDOW_MINUTES: i64 = 15;
pub const PAIR_LIMIT: u64 = 5;
pub const ACCOUNT_LIMIT: u64 = 10;
pub const ADDRESS_LIMIT: u64 = 20;

#[derive(Clone)]
pub struct LoginThrottle {
    accounts: Accounts,
    hashing: Arc<Semaphore>,
}

fn buckets(email: &str, ip: Option<IpAddr>) -> [([u8; 32], u64); 3] {
    let email = email.trim().to_lowercase();
    let ip = ip.map(|ip| ip.to_string()).unwrap_or_default();
    [
        (bucket("pair", &format!("{email}\0{ip}")), PAIR_LIMIT),
        (bucket("account", &email), ACCOUNT_LIMIT),
        (bucket("address", &ip), ADDRESS_LIMIT),
    ]
}

impl LoginThrottle {
    /// `concurrent_hashes`: how many password hashes may run at once.
    pub fn new(accounts: Accounts, concurrent_hashes: usize) -> Self {
        Self { accounts, hashing: Arc::new(Semaphore::new(concurrent_hashes.max(1))) }
    }

    fn window() -> Duration {
        Duration::minutes(WINDOW_MINUTES)
    }

    /// `Err(seconds)` when any bucket is full: how long until its oldest failure leaves the window.
    pub async fn check(
        &self,
        email: &str,
        ip: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Result<Result<(), u64>, StoreError> {
        let since = now - Self::window();
        let mut wait = 0i64;
        for (b, limit) in buckets(email, ip) {
            let (n, oldest) = self.accounts.failures(&b, since).await?;
            if n >= limit {
                let free_at = oldest.unwrap_or(now) + Self::window();
                wait = wait.max((free_at - now).num_seconds() + 1);
            }
        }
        Ok(if wait > 0 { Err(wait as u64) } else { Ok(()) })
    }

    pub async fn failed(&self, email: &str, ip: Option<IpAddr>, now: DateTime<Utc>) -> Result<(), StoreError> {
        let all: Vec<[u8; 32]> = buckets(email, ip).iter().map(|(b, _)| *b).collect();
        self.accounts.record_failure(&all, now, Self::window()).await
    }

    /// A success clears only this account-and-address pair: otherwise an attacker holding one
    /// valid account could wipe the address or account counters between guesses.
    pub async fn succeeded(&self, email: &str, ip: Option<IpAddr>) -> Result<(), StoreError> {
        self.accounts.clear_failures(&buckets(email, ip)[0].0).await
    }

    /// A permit to hash a password, waiting at most `wait`; `None` when the server is saturated.
    pub async fn hashing_permit(&self, wait: std::time::Duration) -> Option<OwnedSemaphorePermit> {
        tokio::time::timeout(wait, self.hashing.clone().acquire_owned()).await.ok()?.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn password_hashes_beyond_the_cap_wait_and_then_are_refused() {
        let tdb = eventstore::testing::TestDatabase::sqlite();
        let db = eventstore::Database::connect(&tdb.url).await.unwrap();
        let throttle = LoginThrottle::new(Accounts::new(&db), 2);
        let wait = std::time::Duration::from_millis(50);
        let a = throttle.hashing_permit(wait).await.expect("first");
        let _b = throttle.hashing_permit(wait).await.expect("second");
        assert!(throttle.hashing_permit(wait).await.is_none(), "a third concurrent hash is refused");
        drop(a);
        assert!(throttle.hashing_permit(wait).await.is_some(), "a freed permit is reused");
    }
}
