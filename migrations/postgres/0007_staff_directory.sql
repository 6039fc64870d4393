-- The staff directory grows with the staff lifecycle: display name, active flag, last change.
-- `email_lookup` (lower-cased) doubles as the displayed email; both are the member's personal
-- data and are purged with them.
ALTER TABLE rm_staff ADD COLUMN name TEXT;
ALTER TABLE rm_staff ADD COLUMN active BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE rm_staff ADD COLUMN updated_at BIGINT;
CREATE INDEX rm_staff_store_idx ON rm_staff (store_id, created_at, user_id);
