//! Sessions: opaque bearer tokens (256 random bits, stored only as a hash), revocable at once.
//!
//! A token is checked against the account store on every request: revoked, past its absolute
//! lifetime, or idle longer than the idle timeout, it no longer opens anything. Activity is
//! recorded at most once a minute per session, so reads do not turn into writes.

use crate::auth::Viewer;
use chrono::{DateTime, Duration, Utc};
use domain::staff::Role;
use eventstore::accounts::{new_token, SessionRecord};
use eventstore::{Accounts, Position, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// How long sessions live. Both are settings (`--session-idle-minutes`,
/// `--session-lifetime-hours`).
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    /// A session unused for this long ends.
    pub idle: Duration,
    /// A session ends this long after login, however active.
    pub lifetime: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self { idle: Duration::minutes(30), lifetime: Duration::hours(8) }
    }
}

/// How stale `last_seen_at` may get before a request records activity.
const TOUCH_EVERY_SECS: i64 = 60;

#[derive(Clone)]
pub struct Sessions {
    accounts: Accounts,
    pub settings: SessionSettings,
    writes: Arc<Mutex<HashMap<Uuid, Position>>>,
}

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
        Self { accounts, settings, writes: Arc::default() }
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
        let Some(s) = self.accounts.live_session(token, now, self.settings.idle).await? else { return Ok(None) };
        let Some(role) = Role::parse(&s.role) else { return Ok(None) };
        if (now - s.last_seen_at).num_seconds() >= TOUCH_EVERY_SECS {
            self.accounts.touch_session(s.session_id, now).await?;
        }
        Ok(Some(Viewer { user_id: s.user_id, store_id: s.store_id, role, session_id: s.session_id }))
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
