-- Privacy requests (policy §6) as cases: one row per request, folded from its stream. No
-- personal data: the subject is an id; notes and identity checks stay encrypted in the log.
CREATE TABLE rm_privacy_requests (
    request_id   UUID PRIMARY KEY,
    store_id     UUID NOT NULL,
    subject_kind TEXT NOT NULL,
    subject_id   UUID NOT NULL,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,
    received_via TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    due_at       BIGINT NOT NULL,
    completed_at BIGINT,
    opened_by    UUID,
    handled_by   UUID,
    -- JSON: the keys an erasure destroys [{"class", "key_id", "fingerprint"}].
    destroyed_keys TEXT NOT NULL,
    created_seq  BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX rm_privacy_requests_store_idx ON rm_privacy_requests (store_id, created_seq, request_id);
CREATE INDEX rm_privacy_requests_subject_idx ON rm_privacy_requests (store_id, subject_id);

-- Before this version the audit read model copied personal values nested inside a field (the
-- values of a customer's external ids). Empty it so it is rebuilt from the log without them.
DELETE FROM rm_audit;
DELETE FROM rm_audit_memo;
UPDATE projection_checkpoints SET commit_pos = 0, seq_pos = 0 WHERE name = 'audit';
