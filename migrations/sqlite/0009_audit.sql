-- The audit trail read model: one row per event, newest first, with an index for each filter
-- the auditTrail query offers. No personal data: personal fields are listed as changed without
-- their values (which the API reads from the log, for roles that may see them, while the
-- subject's key exists), so erasure never has to touch this table.
CREATE TABLE rm_audit (
    event_id       BLOB PRIMARY KEY,
    store_id       BLOB NOT NULL,
    commit_pos     BIGINT NOT NULL,
    seq_pos        BIGINT NOT NULL,
    recorded_at    BIGINT NOT NULL,
    actor_kind     TEXT NOT NULL,
    actor_id       BLOB,
    actor_role     TEXT,
    event_type     TEXT NOT NULL,
    entity_type    TEXT NOT NULL,
    entity_id      TEXT NOT NULL,
    entity_label   TEXT,
    stream_id      TEXT NOT NULL,
    stream_version BIGINT NOT NULL,
    reason         TEXT,
    correlation_id BLOB NOT NULL,
    causation_id   BLOB,
    request_id     BLOB,
    summary        TEXT NOT NULL,
    -- JSON: [{"field": "askingPrice", "value": …} | {"field": "name", "personal": true}]
    changes        TEXT NOT NULL
);
CREATE INDEX rm_audit_store_idx ON rm_audit (store_id, commit_pos, seq_pos);
CREATE INDEX rm_audit_actor_idx ON rm_audit (store_id, actor_id, commit_pos, seq_pos);
CREATE INDEX rm_audit_role_idx ON rm_audit (store_id, actor_role, commit_pos, seq_pos);
CREATE INDEX rm_audit_entity_idx ON rm_audit (store_id, entity_type, entity_id, commit_pos, seq_pos);
CREATE INDEX rm_audit_stream_idx ON rm_audit (store_id, stream_id, commit_pos, seq_pos);
CREATE INDEX rm_audit_type_idx ON rm_audit (store_id, event_type, commit_pos, seq_pos);
CREATE INDEX rm_audit_correlation_idx ON rm_audit (store_id, correlation_id);
CREATE INDEX rm_audit_request_idx ON rm_audit (store_id, request_id);
CREATE INDEX rm_audit_time_idx ON rm_audit (store_id, recorded_at);

-- What the audit fold remembers between events to write readable summaries: an item's label and
-- last asking price (never personal data).
CREATE TABLE rm_audit_memo (
    stream_id TEXT NOT NULL,
    memo_key  TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (stream_id, memo_key)
);
