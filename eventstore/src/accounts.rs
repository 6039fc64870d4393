//! The account store: credentials, sessions, one-time tokens (invitations, password resets) and
//! login-failure counters. Secrets and counters, not facts, so they live beside the log and not
//! in it — and not as methods of the event backend either: nothing here can append or read an
//! event. The facts (a member joined, a role changed, a password was changed) are events, written
//! by the command layer.
//!
//! Every token is 256 random bits, shown once and stored only as its SHA-256, so a copy of these
//! tables lets nobody in. One SQL text serves both backends (`$N` placeholders, BIGINT
//! microseconds, UUID/BLOB mapped by sqlx).

use crate::error::Result;
use crate::Database;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::OsRng;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A fresh opaque token (`<prefix>_<43 base64url chars>` = 256 random bits) and its hash.
pub fn new_token(prefix: &str) -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = format!("{prefix}_{}", B64.encode(bytes));
    let hash = token_hash(&token);
    (token, hash)
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(m: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(m).unwrap_or_default()
}

/// A session as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub store_id: Uuid,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// What a one-time token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    Invitation,
    PasswordReset,
}

impl TokenPurpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Invitation => "invitation",
            Self::PasswordReset => "password_reset",
        }
    }
}

/// An unused, unexpired one-time token's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeToken {
    pub store_id: Uuid,
    pub user_id: Uuid,
    /// The invitation it accepts (invitations only).
    pub ref_id: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
}

/// A throttle bucket: the SHA-256 of its kind and key, so no email or address is stored.
pub fn bucket(kind: &str, key: &str) -> [u8; 32] {
    Sha256::new().chain_update(kind.as_bytes()).chain_update(b"\0").chain_update(key.as_bytes()).finalize().into()
}

macro_rules! accounts_sql {
    ($module:ident, $db:ty) => {
        mod $module {
            use super::*;
            use sqlx::Row;
            type Pool = sqlx::Pool<$db>;

            pub async fn credential(pool: &Pool, user_id: Uuid) -> Result<Option<(Uuid, String)>> {
                Ok(sqlx::query_as("SELECT store_id, password_hash FROM credentials WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(pool)
                    .await?)
            }

            pub async fn put_credential(pool: &Pool, user_id: Uuid, store_id: Uuid, hash: &str, now: i64) -> Result<()> {
                sqlx::query(
                    "INSERT INTO credentials (user_id, store_id, password_hash, updated_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash, updated_at = excluded.updated_at",
                )
                .bind(user_id)
                .bind(store_id)
                .bind(hash)
                .bind(now)
                .execute(pool)
                .await?;
                Ok(())
            }

            pub async fn create_session(pool: &Pool, s: &SessionRecord, hash: &[u8; 32]) -> Result<()> {
                sqlx::query(
                    "INSERT INTO sessions (session_id, token_hash, user_id, store_id, role, created_at, last_seen_at, expires_at, client_ip, user_agent)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(s.session_id)
                .bind(&hash[..])
                .bind(s.user_id)
                .bind(s.store_id)
                .bind(&s.role)
                .bind(micros(s.created_at))
                .bind(micros(s.last_seen_at))
                .bind(micros(s.expires_at))
                .bind(&s.client_ip)
                .bind(&s.user_agent)
                .execute(pool)
                .await?;
                Ok(())
            }

            fn session(r: &<$db as sqlx::Database>::Row) -> Result<SessionRecord> {
                Ok(SessionRecord {
                    session_id: r.try_get("session_id")?,
                    user_id: r.try_get("user_id")?,
                    store_id: r.try_get("store_id")?,
                    role: r.try_get("role")?,
                    created_at: from_micros(r.try_get("created_at")?),
                    last_seen_at: from_micros(r.try_get("last_seen_at")?),
                    expires_at: from_micros(r.try_get("expires_at")?),
                    client_ip: r.try_get("client_ip")?,
                    user_agent: r.try_get("user_agent")?,
                })
            }

            const SESSION_COLS: &str =
                "session_id, user_id, store_id, role, created_at, last_seen_at, expires_at, client_ip, user_agent";

            pub async fn live_session(pool: &Pool, hash: &[u8; 32], now: i64, seen_after: i64) -> Result<Option<SessionRecord>> {
                let row = sqlx::query(&format!(
                    "SELECT {SESSION_COLS} FROM sessions
                     WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2 AND last_seen_at > $3"
                ))
                .bind(&hash[..])
                .bind(now)
                .bind(seen_after)
                .fetch_optional(pool)
                .await?;
                row.as_ref().map(session).transpose()
            }

            pub async fn live_sessions_of(pool: &Pool, user_id: Uuid, now: i64, seen_after: i64) -> Result<Vec<SessionRecord>> {
                let rows = sqlx::query(&format!(
                    "SELECT {SESSION_COLS} FROM sessions
                     WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 AND last_seen_at > $3
                     ORDER BY created_at DESC"
                ))
                .bind(user_id)
                .bind(now)
                .bind(seen_after)
                .fetch_all(pool)
                .await?;
                rows.iter().map(session).collect()
            }

            pub async fn touch(pool: &Pool, session_id: Uuid, now: i64) -> Result<()> {
                sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE session_id = $1 AND last_seen_at < $2")
                    .bind(session_id)
                    .bind(now)
                    .execute(pool)
                    .await?;
                Ok(())
            }

            pub async fn revoke(pool: &Pool, user_id: Uuid, session_id: Option<Uuid>, except: Option<Uuid>, now: i64) -> Result<u64> {
                // Unknown or foreign session ids revoke nothing; the NULL sentinels keep one
                // statement for "one session", "all" and "all but one".
                Ok(sqlx::query(
                    "UPDATE sessions SET revoked_at = $2
                     WHERE user_id = $1 AND revoked_at IS NULL
                       AND ($3 IS NULL OR session_id = $3) AND ($4 IS NULL OR session_id <> $4)",
                )
                .bind(user_id)
                .bind(now)
                .bind(session_id)
                .bind(except)
                .execute(pool)
                .await?
                .rows_affected())
            }

            pub async fn forget(pool: &Pool, user_id: Uuid) -> Result<()> {
                for table in ["credentials", "sessions", "one_time_tokens"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1")).bind(user_id).execute(pool).await?;
                }
                Ok(())
            }

            pub async fn put_token(pool: &Pool, hash: &[u8; 32], purpose: &str, t: &OneTimeToken, now: i64) -> Result<()> {
                sqlx::query(
                    "INSERT INTO one_time_tokens (token_hash, purpose, store_id, user_id, ref_id, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&hash[..])
                .bind(purpose)
                .bind(t.store_id)
                .bind(t.user_id)
                .bind(t.ref_id)
                .bind(now)
                .bind(micros(t.expires_at))
                .execute(pool)
                .await?;
                Ok(())
            }

            pub async fn token(pool: &Pool, hash: &[u8; 32], purpose: &str, now: i64) -> Result<Option<OneTimeToken>> {
                let row = sqlx::query(
                    "SELECT store_id, user_id, ref_id, expires_at FROM one_time_tokens
                     WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
                )
                .bind(&hash[..])
                .bind(purpose)
                .bind(now)
                .fetch_optional(pool)
                .await?;
                row.map(|r| {
                    Ok(OneTimeToken {
                        store_id: r.try_get("store_id")?,
                        user_id: r.try_get("user_id")?,
                        ref_id: r.try_get("ref_id")?,
                        expires_at: from_micros(r.try_get("expires_at")?),
                    })
                })
                .transpose()
            }

            pub async fn consume(pool: &Pool, hash: &[u8; 32], purpose: &str, now: i64) -> Result<bool> {
                let n = sqlx::query(
                    "UPDATE one_time_tokens SET used_at = $3
                     WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
                )
                .bind(&hash[..])
                .bind(purpose)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            pub async fn retire_tokens(pool: &Pool, user_id: Uuid, purpose: &str, now: i64) -> Result<()> {
                sqlx::query("UPDATE one_time_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL")
                    .bind(user_id)
                    .bind(purpose)
                    .bind(now)
                    .execute(pool)
                    .await?;
                Ok(())
            }

            pub async fn record_failure(pool: &Pool, buckets: &[[u8; 32]], now: i64, forget_before: i64) -> Result<()> {
                let mut tx = pool.begin().await?;
                // Forget expired windows so the table stays small.
                sqlx::query("DELETE FROM login_failures WHERE failed_at < $1").bind(forget_before).execute(&mut *tx).await?;
                for b in buckets {
                    sqlx::query("INSERT INTO login_failures (bucket, failed_at) VALUES ($1, $2)")
                        .bind(&b[..])
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub async fn failures(pool: &Pool, bucket: &[u8; 32], since: i64) -> Result<(i64, Option<i64>)> {
                let row = sqlx::query("SELECT COUNT(*) AS n, MIN(failed_at) AS oldest FROM login_failures WHERE bucket = $1 AND failed_at >= $2")
                    .bind(&bucket[..])
                    .bind(since)
                    .fetch_one(pool)
                    .await?;
                Ok((row.try_get("n")?, row.try_get("oldest")?))
            }

            pub async fn clear_failures(pool: &Pool, bucket: &[u8; 32]) -> Result<()> {
                sqlx::query("DELETE FROM login_failures WHERE bucket = $1").bind(&bucket[..]).execute(pool).await?;
                Ok(())
            }
        }
    };
}

accounts_sql!(sqlite_sql, sqlx::Sqlite);
accounts_sql!(postgres_sql, sqlx::Postgres);

/// Runs one function of the SQL modules on the right pool: `read` uses SQLite's reader pool,
/// `write` its single writer.
macro_rules! on {
    ($self:ident, read, $f:ident($($arg:expr),*)) => {
        match &$self.db {
            Database::Sqlite(b) => sqlite_sql::$f(b.reader(), $($arg),*).await,
            Database::Postgres(b) => postgres_sql::$f(b.pool(), $($arg),*).await,
        }
    };
    ($self:ident, write, $f:ident($($arg:expr),*)) => {
        match &$self.db {
            Database::Sqlite(b) => sqlite_sql::$f(b.writer(), $($arg),*).await,
            Database::Postgres(b) => postgres_sql::$f(b.pool(), $($arg),*).await,
        }
    };
}

/// Credentials, sessions, one-time tokens and login-failure counters.
#[derive(Clone)]
pub struct Accounts {
    db: Database,
    /// Bumped after every revocation through this handle (and its clones), so live connections
    /// of this process re-check their sessions at once instead of at their next periodic check.
    revocations: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

impl Accounts {
    pub fn new(db: &Database) -> Self {
        Self { db: db.clone(), revocations: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)) }
    }

    /// Changes after every revocation made through this handle or its clones.
    pub fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revocations.subscribe()
    }

    /// How many revocations this handle (and its clones) has made: a value remembered with
    /// something derived from a session is stale once this has moved.
    pub fn revocation_count(&self) -> u64 {
        *self.revocations.borrow()
    }

    fn revoked(&self) {
        self.revocations.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A staff member's (store id, password hash).
    pub async fn credential(&self, user_id: Uuid) -> Result<Option<(Uuid, String)>> {
        on!(self, read, credential(user_id))
    }

    pub async fn put_credential(&self, user_id: Uuid, store_id: Uuid, password_hash: &str) -> Result<()> {
        on!(self, write, put_credential(user_id, store_id, password_hash, micros(Utc::now())))
    }

    /// Stores a new session under the hash of its token.
    pub async fn create_session(&self, session: &SessionRecord, token: &str) -> Result<()> {
        on!(self, write, create_session(session, &token_hash(token)))
    }

    /// The session a token opens: not revoked, before its absolute expiry, and seen within
    /// `idle` of `now`.
    pub async fn live_session(
        &self,
        token: &str,
        now: DateTime<Utc>,
        idle: chrono::Duration,
    ) -> Result<Option<SessionRecord>> {
        on!(self, read, live_session(&token_hash(token), micros(now), micros(now - idle)))
    }

    /// A member's live sessions, newest first.
    pub async fn live_sessions_of(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
        idle: chrono::Duration,
    ) -> Result<Vec<SessionRecord>> {
        on!(self, read, live_sessions_of(user_id, micros(now), micros(now - idle)))
    }

    /// Records activity (callers throttle this: it is a write).
    pub async fn touch_session(&self, session_id: Uuid, now: DateTime<Utc>) -> Result<()> {
        on!(self, write, touch(session_id, micros(now)))
    }

    /// Revokes one of the member's sessions; false if it was not theirs or not live.
    pub async fn revoke_session(&self, user_id: Uuid, session_id: Uuid) -> Result<bool> {
        let n = on!(self, write, revoke(user_id, Some(session_id), None::<Uuid>, micros(Utc::now())))?;
        self.revoked();
        Ok(n > 0)
    }

    /// Revokes every session of the member, except `except` (the caller's own, on a password
    /// change). Returns how many were revoked.
    pub async fn revoke_all_sessions(&self, user_id: Uuid, except: Option<Uuid>) -> Result<u64> {
        let n = on!(self, write, revoke(user_id, None::<Uuid>, except, micros(Utc::now())))?;
        self.revoked();
        Ok(n)
    }

    /// Deletes everything the account store holds of a member: password hash, sessions (with
    /// their addresses and user agents) and one-time tokens. For the erasure of a former member.
    pub async fn forget_user(&self, user_id: Uuid) -> Result<()> {
        on!(self, write, forget(user_id))?;
        self.revoked();
        Ok(())
    }

    pub async fn put_token(&self, token: &str, purpose: TokenPurpose, record: &OneTimeToken) -> Result<()> {
        on!(self, write, put_token(&token_hash(token), purpose.as_str(), record, micros(Utc::now())))
    }

    /// The record of an unused, unexpired token.
    pub async fn token(&self, token: &str, purpose: TokenPurpose) -> Result<Option<OneTimeToken>> {
        on!(self, read, token(&token_hash(token), purpose.as_str(), micros(Utc::now())))
    }

    /// Marks a token used; false if it was already used or expired (single use, even when two
    /// requests race).
    pub async fn consume_token(&self, token: &str, purpose: TokenPurpose) -> Result<bool> {
        on!(self, write, consume(&token_hash(token), purpose.as_str(), micros(Utc::now())))
    }

    /// Retires every unused token of the member for `purpose` (a new reset makes older ones void).
    pub async fn retire_tokens(&self, user_id: Uuid, purpose: TokenPurpose) -> Result<()> {
        on!(self, write, retire_tokens(user_id, purpose.as_str(), micros(Utc::now())))
    }

    /// Counts a failed login in each bucket; rows older than `window` are forgotten.
    pub async fn record_failure(
        &self,
        buckets: &[[u8; 32]],
        now: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Result<()> {
        on!(self, write, record_failure(buckets, micros(now), micros(now - window)))
    }

    /// Failures in the bucket since `since`, and when the oldest of them happened.
    pub async fn failures(&self, bucket: &[u8; 32], since: DateTime<Utc>) -> Result<(u64, Option<DateTime<Utc>>)> {
        let (n, oldest) = on!(self, read, failures(bucket, micros(since)))?;
        Ok((n.max(0) as u64, oldest.map(from_micros)))
    }

    pub async fn clear_failures(&self, bucket: &[u8; 32]) -> Result<()> {
        on!(self, write, clear_failures(bucket))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_256_random_bits_and_are_stored_only_as_a_hash() {
        let (a, ha) = new_token("ics");
        let (b, hb) = new_token("ics");
        assert_ne!(a, b);
        assert_ne!(ha, hb);
        assert!(a.starts_with("ics_"));
        assert_eq!(B64.decode(&a[4..]).unwrap().len(), 32);
        assert_eq!(token_hash(&a), ha);
        assert_eq!(token_hash(&format!(" {a}\n")), ha, "surrounding whitespace from a paste is ignored");
    }
}
