-- The event log: the system of record. Rows are appended, never updated or deleted.
CREATE TABLE events (
    -- Unique, allocated at insert. NOT the read order on its own: sequences are allocated
    -- before commit, so a later position can become visible before an earlier one.
    position       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction's id. Readers order by (tx_id, position) and only read rows whose
    -- tx_id is below the oldest transaction still running (pg_snapshot_xmin of their snapshot).
    -- No transaction that could still commit can then land *before* what a reader has seen,
    -- so a transaction that commits late is never skipped.
    tx_id          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id      TEXT NOT NULL,
    version        BIGINT NOT NULL CHECK (version >= 0),
    event_id       UUID NOT NULL,
    store_id       UUID NOT NULL,
    event_type     TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    -- Payload and metadata are the exact text that was hashed. Not jsonb: jsonb normalises
    -- its input, and the hash chain must be recomputable from what is stored.
    payload        TEXT NOT NULL,
    metadata       TEXT NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL,
    -- Per-stream hash chain: hash of the stream's previous event (32 zero bytes for the first).
    prev_hash      BYTEA NOT NULL,
    hash           BYTEA NOT NULL,
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);
CREATE INDEX events_read_all_idx ON events (tx_id, position);
CREATE INDEX events_store_idx ON events (store_id, position);

-- Immutability is enforced by the database too, not only by the code that writes.
CREATE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable';
END $$;
CREATE TRIGGER events_no_update_or_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_immutable();

-- Data keys for personal data (crypto-shredding). Outside the log on purpose: destroying a key
-- (wrapped_key := NULL) makes every ciphertext under it unreadable without touching an event.
CREATE TABLE data_keys (
    store_id     UUID NOT NULL,
    subject_id   UUID NOT NULL,
    key_class    TEXT NOT NULL,
    key_id       UUID NOT NULL UNIQUE,
    -- nonce || XChaCha20-Poly1305(master key, data key); NULL once destroyed.
    wrapped_key  BYTEA,
    -- SHA-256 of the key, kept after destruction so a deletion certificate can name it.
    fingerprint  TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    destroyed_at TIMESTAMPTZ,
    PRIMARY KEY (store_id, subject_id, key_class),
    CHECK ((wrapped_key IS NULL) = (destroyed_at IS NOT NULL))
);

-- Credentials are secrets, not facts: a password hash must be replaceable and removable, so it
-- never enters the immutable log.
CREATE TABLE credentials (
    user_id       UUID PRIMARY KEY,
    store_id      UUID NOT NULL,
    password_hash TEXT NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
