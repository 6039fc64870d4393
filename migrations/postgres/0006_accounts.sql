-- Accounts: sessions, one-time tokens and login throttling. Secrets and counters, not facts:
-- they live outside the immutable log (the facts — invited, joined, role changed, password
-- changed — are events). Tokens are stored only as SHA-256 hashes: a copy of this table lets
-- nobody log in. Times are microseconds since the Unix epoch (UTC).

-- The master-key check value: HMAC(master key, label), recorded when the database is first
-- opened. Every later start compares it before touching data, so a different master key is
-- refused instead of wrapping new data keys under it.
CREATE TABLE key_check (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    check_value TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE sessions (
    session_id   UUID PRIMARY KEY,
    token_hash   BYTEA NOT NULL UNIQUE,
    user_id      UUID NOT NULL,
    store_id     UUID NOT NULL,
    -- The role at login. A role change revokes the member's sessions, so it is never stale.
    role         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    -- Absolute end of the session; the idle limit is applied to last_seen_at at check time.
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    -- The staff member's client address and user agent (their personal data: purged with them).
    client_ip    TEXT,
    user_agent   TEXT
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

-- Invitation and password-reset tokens: single use, expiring.
CREATE TABLE one_time_tokens (
    token_hash  BYTEA PRIMARY KEY,
    purpose     TEXT NOT NULL CHECK (purpose IN ('invitation', 'password_reset')),
    store_id    UUID NOT NULL,
    user_id     UUID NOT NULL,
    -- The invitation this token accepts (invitations only).
    ref_id      UUID,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX one_time_tokens_user_idx ON one_time_tokens (user_id, purpose);

-- Failed logins, one row each, in buckets (an account, a client address, an account from an
-- address), so throttles survive restarts and are shared by every server. The bucket is a
-- SHA-256 of its kind and key: no email or address in clear.
CREATE TABLE login_failures (
    bucket    BYTEA NOT NULL,
    failed_at BIGINT NOT NULL
);
CREATE INDEX login_failures_bucket_idx ON login_failures (bucket, failed_at);

-- Times in the accounts tables are BIGINT microseconds on both backends, so one SQL text serves
-- both; the credentials table predates that.
ALTER TABLE credentials ALTER COLUMN updated_at TYPE BIGINT
    USING (EXTRACT(EPOCH FROM updated_at) * 1000000)::BIGINT;
