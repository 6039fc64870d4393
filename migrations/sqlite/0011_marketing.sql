-- The `consent` projection: every consent fact and every restriction of processing, so the
-- marketing audience can be answered as of any instant. No personal data: ids, purposes,
-- channels, times (evidence stays encrypted in the log).
CREATE TABLE rm_consent_facts (
    event_id     BLOB PRIMARY KEY,
    store_id     BLOB NOT NULL,
    customer_id  BLOB NOT NULL,
    purpose      TEXT NOT NULL,
    channel      TEXT NOT NULL,
    granted      INTEGER NOT NULL,
    effective_at BIGINT NOT NULL,
    seq          BIGINT NOT NULL
);
CREATE INDEX rm_consent_audience_idx ON rm_consent_facts (store_id, purpose, channel, customer_id, effective_at);

CREATE TABLE rm_restrictions (
    event_id     BLOB NOT NULL,
    store_id     BLOB NOT NULL,
    customer_id  BLOB NOT NULL,
    purpose      TEXT NOT NULL,
    restricted   INTEGER NOT NULL,
    effective_at BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    PRIMARY KEY (event_id, purpose)
);
CREATE INDEX rm_restrictions_customer_idx ON rm_restrictions (customer_id, purpose, effective_at);
