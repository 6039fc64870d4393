-- The event log: the system of record. Rows are appended, never updated or deleted.
-- SQLite has one writer at a time and positions are allocated inside the write transaction,
-- so position order is commit order: readers simply read `position > checkpoint`.
CREATE TABLE events (
    -- AUTOINCREMENT: a position is never reused, even after the last row is gone.
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id      TEXT NOT NULL,
    version        INTEGER NOT NULL CHECK (version >= 0),
    event_id       BLOB NOT NULL,
    store_id       BLOB NOT NULL,
    event_type     TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    -- The exact text that was hashed.
    payload        TEXT NOT NULL,
    metadata       TEXT NOT NULL,
    -- Microseconds since the Unix epoch (UTC): exact, and part of the hash.
    recorded_at    INTEGER NOT NULL,
    prev_hash      BLOB NOT NULL,
    hash           BLOB NOT NULL,
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);
CREATE INDEX events_store_idx ON events (store_id, position);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are immutable'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are immutable'); END;

-- Data keys for personal data (crypto-shredding), outside the log. `secure_delete` is on for
-- every connection, so a destroyed wrapped key is overwritten, not left in a free page.
CREATE TABLE data_keys (
    store_id     BLOB NOT NULL,
    subject_id   BLOB NOT NULL,
    key_class    TEXT NOT NULL,
    key_id       BLOB NOT NULL UNIQUE,
    wrapped_key  BLOB,
    fingerprint  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    destroyed_at INTEGER,
    PRIMARY KEY (store_id, subject_id, key_class),
    CHECK ((wrapped_key IS NULL) = (destroyed_at IS NOT NULL))
);

-- Credentials are secrets, not facts: kept out of the immutable log.
CREATE TABLE credentials (
    user_id       BLOB PRIMARY KEY,
    store_id      BLOB NOT NULL,
    password_hash TEXT NOT NULL,
    updated_at    INTEGER NOT NULL
);
