-- Read models: disposable, rebuilt from the log. Each projection's checkpoint is written in the
-- same transaction as its read-model changes, so every event is applied exactly once.
-- Times in read models are microseconds since the Unix epoch (UTC) on both backends, so one
-- projection code path serves both.
-- SQLite variant: UUIDs are 16-byte BLOBs.
CREATE TABLE projection_checkpoints (
    name        TEXT PRIMARY KEY,
    commit_pos  BIGINT NOT NULL,
    seq_pos     BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE rm_stores (
    store_id   BLOB PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Login looks staff up by email; the lookup key lives here (purgeable), never in the log.
CREATE TABLE rm_staff (
    user_id      BLOB PRIMARY KEY,
    store_id     BLOB NOT NULL,
    email_lookup TEXT,
    role         TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX rm_staff_email_idx ON rm_staff (email_lookup);

CREATE TABLE rm_inventory_items (
    item_id          BLOB PRIMARY KEY,
    store_id         BLOB NOT NULL,
    status           TEXT NOT NULL,
    category         TEXT NOT NULL,
    brand            TEXT NOT NULL,
    model            TEXT NOT NULL,
    reference_number TEXT,
    serial_number    TEXT,
    cost_minor       BIGINT,
    asking_minor     BIGINT NOT NULL,
    currency         TEXT NOT NULL,
    source           TEXT NOT NULL,
    attributes       TEXT NOT NULL,
    acquired_at      BIGINT NOT NULL,
    -- Log sequence of the creating event: a stable "created" sort key.
    created_seq      BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    -- Number of events applied; equals the stream length when every event was applied once.
    version          BIGINT NOT NULL
);
CREATE INDEX rm_items_store_created_idx ON rm_inventory_items (store_id, created_seq, item_id);
CREATE INDEX rm_items_store_price_idx ON rm_inventory_items (store_id, asking_minor, item_id);
CREATE INDEX rm_items_store_brand_idx ON rm_inventory_items (store_id, brand, item_id);

CREATE TABLE rm_customers (
    customer_id  BLOB PRIMARY KEY,
    store_id     BLOB NOT NULL,
    -- Personal fields in clear (this table is purged through projections on erasure);
    -- NULL when absent or erased.
    name         TEXT,
    email        TEXT,
    phone        TEXT,
    notes        TEXT,
    email_lookup TEXT,
    tags         TEXT NOT NULL,
    erased       INTEGER NOT NULL,
    created_seq  BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    version      BIGINT NOT NULL
);
CREATE INDEX rm_customers_store_created_idx ON rm_customers (store_id, created_seq, customer_id);
CREATE INDEX rm_customers_store_name_idx ON rm_customers (store_id, name, customer_id);
CREATE INDEX rm_customers_email_idx ON rm_customers (store_id, email_lookup);
