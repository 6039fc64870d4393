//! Sessions: opaque bearer tokens (256 random bits, stored only as a hash), revocable at once.
//!
//! A token is checked against the account store: revoked, past its absolute lifetime, or idle
//! longer than the idle timeout, it no longer opens anything. Activity is recorded at most once
//! a minute per session, so reads do not turn into writes.
//!
//! A check is reused for the same token for at most `SessionSettings::reuse` (one second by
//! default; `--session-cache-ms 0` checks every request). Every revocation made by this process
//! (logout, revocation, role change, deactivation, password change or reset, erasure) discards
//! all remembered checks before it returns, so on one server a revoked session opens nothing
//! from the very next request; a revocation made through another server or the CLI takes
//! effect here within `reuse`.

use crate::auth::Viewer;
use chrono::{DateTime, Duration, Utc};
use domain::staff::Role;
use eventstore::accounts::{new_token, SessionRecord};
use eventstore::{Accounts, Position, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use uuid::Uuid;

/// How long sessions live. Both are settings (`--session-idle-minutes`,
/// `--session-lifetime-hours`).
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    /// A session unused for this long ends.
    pub idle: Duration,
    /// A session ends this long after login, however active.
    pub lifetime: Duration,
    /// How long a token's check may be reused by this server (`--session-cache-ms`).
    pub reuse: std::time::Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self { idle: Duration::minutes(30), lifetime: Duration::hours(8), reuse: std::time::Duration::from_secs(1) }
    }
}

/// How stale `last_seen_at` may get before a request records activity.
const TOUCH_EVERY_SECS: i64 = 60;

#[derive(Clone)]
pub struct Sessions {
    accounts: Accounts,
    pub settings: SessionSettings,
    writes: Arc<Mutex<HashMap<Uuid, Position>>>,
    checked: Arc<Mutex<HashMap<[u8; 32], Checked>>>,
}

/// A token's last check against the account store.
#[derive(Clone)]
struct Checked {
    viewer: Viewer,
    last_seen_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    at: Instant,
    /// `Accounts::revocation_count` before the check was made.
    revocations: u64,
}

/// Tokens whose check is remembered; the memory starts over when full.
const CHECKS_KEPT: usize = 10_000;

/// Sessions whose last write this process remembers; it starts over when full (a forgotten
/// session's queries then read what is applied, as a client that passes no position does).
const WRITES_KEPT: usize = 100_000;

/// Where a login came from, kept with the session so its owner can recognise it.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Sessions {
    pub fn new(accounts: Accounts, settings: SessionSettings) -> Self {
        Self { accounts, settings, writes: Arc::default(), checked: Arc::default() }
    }

    /// Remembers the position a session's mutation wrote: the session's later queries on this
    /// server read at least up to it (read-your-writes without passing `minPosition`).
    pub fn wrote(&self, session_id: Uuid, position: Position) {
        let mut writes = self.writes.lock().expect("session writes lock");
        if writes.len() >= WRITES_KEPT && !writes.contains_key(&session_id) {
            writes.clear();
        }
        let last = writes.entry(session_id).or_insert(position);
        *last = (*last).max(position);
    }

    /// The last position this session wrote through this server, if remembered.
    pub fn last_write(&self, session_id: Uuid) -> Option<Position> {
        self.writes.lock().expect("session writes lock").get(&session_id).copied()
    }

    /// Opens a session; returns the token (shown once) and its record.
    pub async fn open(
        &self,
        user_id: Uuid,
        store_id: Uuid,
        role: Role,
        client: ClientInfo,
    ) -> Result<(String, SessionRecord), StoreError> {
        let now = Utc::now();
        let (token, _) = new_token("ics");
        let user_agent = client.user_agent.map(|ua| ua.chars().take(300).collect());
        let record = SessionRecord {
            session_id: Uuid::now_v7(),
            user_id,
            store_id,
            role: role.as_str().to_owned(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.settings.lifetime,
            client_ip: client.ip,
            user_agent,
        };
        self.accounts.create_session(&record, &token).await?;
        Ok((token, record))
    }

    /// The viewer a token stands for, if its session is live.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Viewer>, StoreError> {
        if token.len() > 200 {
            return Ok(None);
        }
        let now = Utc::now();
        let hash = eventstore::accounts::token_hash(token);
        // Read before the check: a revocation while it runs makes what it finds stale.
        let revocations = self.accounts.revocation_count();
        if let Some(viewer) = self.remembered(&hash, now, revocations) {
            return Ok(Some(viewer));
        }
        let Some(s) = self.accounts.live_session(token, now, self.settings.idle).await? else { return Ok(None) };
        let Some(role) = Role::parse(&s.role) else { return Ok(None) };
        let mut last_seen_at = s.last_seen_at;
        if (now - s.last_seen_at).num_seconds() >= TOUCH_EVERY_SECS {
            self.accounts.touch_session(s.session_id, now).await?;
            last_seen_at = now;
        }
        let viewer = Viewer { user_id: s.user_id, store_id: s.store_id, role, session_id: s.session_id };
        if !self.settings.reuse.is_zero() {
            let mut checked = self.checked.lock().expect("session checks lock");
            if checked.len() >= CHECKS_KEPT {
                checked.clear();
            }
            let at = Instant::now();
            checked.insert(
                hash,
                Checked { viewer: viewer.clone(), last_seen_at, expires_at: s.expires_at, at, revocations },
            );
        }
        Ok(Some(viewer))
    }

    /// A check of this token that may still be used: made within `reuse`, with no revocation
    /// by this process since, the session neither expired nor idle, and no activity due to be
    /// recorded.
    fn remembered(&self, hash: &[u8; 32], now: DateTime<Utc>, revocations: u64) -> Option<Viewer> {
        let checked = self.checked.lock().expect("session checks lock");
        let c = checked.get(hash)?;
        let fresh = c.at.elapsed() < self.settings.reuse
            && c.revocations == revocations
            && now < c.expires_at
            && now < c.last_seen_at + self.settings.idle
            && (now - c.last_seen_at).num_seconds() < TOUCH_EVERY_SECS;
        fresh.then(|| c.viewer.clone())
    }

    pub async fn live_sessions_of(&self, user_id: Uuid) -> Result<Vec<SessionRecord>, StoreError> {
        self.accounts.live_sessions_of(user_id, Utc::now(), self.settings.idle).await
    }

    pub async fn revoke(&self, user_id: Uuid, session_id: Uuid) -> Result<bool, StoreError> {
        self.accounts.revoke_session(user_id, session_id).await
    }

    pub async fn revoke_all(&self, user_id: Uuid) -> Result<u64, StoreError> {
        self.accounts.revoke_all_sessions(user_id, None).await
    }

    /// When a session that is idle from now on would end.
    pub fn idle_end(&self, last_seen: DateTime<Utc>, expires_at: DateTime<Utc>) -> DateTime<Utc> {
        (last_seen + self.settings.idle).min(expires_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventstore::testing::TestDatabase;
    use eventstore::Database;

    async fn sessions(db: &Database, idle: Duration, reuse_ms: u64) -> Sessions {
        let settings =
            SessionSettings { idle, lifetime: Duration::hours(8), reuse: std::time::Duration::from_millis(reuse_ms) };
        Sessions::new(Accounts::new(db), settings)
    }

    async fn open(s: &Sessions) -> (String, SessionRecord) {
        s.open(Uuid::now_v7(), Uuid::now_v7(), Role::Sales, ClientInfo::default()).await.unwrap()
    }

    #[tokio::test]
    async fn a_revocation_by_this_server_ends_a_remembered_check_at_once() {
        let tdb = TestDatabase::sqlite();
        let db = Database::connect(&tdb.url).await.unwrap();
        let s = sessions(&db, Duration::minutes(30), 60_000).await;
        let (token, record) = open(&s).await;
        assert!(s.authenticate(&token).await.unwrap().is_some());
        assert!(s.authenticate(&token).await.unwrap().is_some(), "remembered");
        assert!(s.revoke(record.user_id, record.session_id).await.unwrap());
        assert!(s.authenticate(&token).await.unwrap().is_none(), "revoked through this server: at once");

        // Through a clone of the account store (as commands get it): the same.
        let (token, record) = open(&s).await;
        assert!(s.authenticate(&token).await.unwrap().is_some());
        s.accounts.clone().revoke_all_sessions(record.user_id, None).await.unwrap();
        assert!(s.authenticate(&token).await.unwrap().is_none());
        // A token never seen, or too long, opens nothing.
        assert!(s.authenticate("ics_unknown").await.unwrap().is_none());
        assert!(s.authenticate(&"x".repeat(201)).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn another_server_s_revocation_takes_effect_within_the_reuse_time() {
        let tdb = TestDatabase::sqlite();
        let db = Database::connect(&tdb.url).await.unwrap();
        let elsewhere = Accounts::new(&db);

        // Remembering: a revocation this server did not make is seen when the check is redone.
        let s = sessions(&db, Duration::minutes(30), 300).await;
        let (token, record) = open(&s).await;
        assert!(s.authenticate(&token).await.unwrap().is_some());
        elsewhere.revoke_session(record.user_id, record.session_id).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        assert!(s.authenticate(&token).await.unwrap().is_none(), "after the reuse time the store decides");

        // Within the reuse time the remembered check answers (what the setting trades).
        let s = sessions(&db, Duration::minutes(30), 60_000).await;
        let (token, record) = open(&s).await;
        assert!(s.authenticate(&token).await.unwrap().is_some());
        elsewhere.revoke_session(record.user_id, record.session_id).await.unwrap();
        assert!(s.authenticate(&token).await.unwrap().is_some(), "remembered for up to the reuse time");

        // Reuse 0: every request is checked.
        let s = sessions(&db, Duration::minutes(30), 0).await;
        let (token, record) = open(&s).await;
        assert!(s.authenticate(&token).await.unwrap().is_some());
        elsewhere.revoke_session(record.user_id, record.session_id).await.unwrap();
        assert!(s.authenticate(&token).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_remembered_check_does_not_outlive_the_idle_timeout() {
        let tdb = TestDatabase::sqlite();
        let db = Database::connect(&tdb.url).await.unwrap();
        let s = sessions(&db, Duration::seconds(1), 60_000).await;
        let (token, _) = open(&s).await;
        assert!(s.authenticate(&token).await.unwrap().is_some());
        tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
        assert!(s.authenticate(&token).await.unwrap().is_none(), "idle longer than the timeout");
    }
}
