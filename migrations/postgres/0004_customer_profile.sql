-- Fuller customer profile and merges. Read model only: rebuildable from the log.
ALTER TABLE rm_customers ADD COLUMN address TEXT;
ALTER TABLE rm_customers ADD COLUMN birthday TEXT;
ALTER TABLE rm_customers ADD COLUMN assigned_to UUID;
ALTER TABLE rm_customers ADD COLUMN source TEXT;
-- {"shopify": "7010423", ...}: personal data, purged with the row.
ALTER TABLE rm_customers ADD COLUMN external_ids TEXT NOT NULL DEFAULT '{}';
-- Set on a merged duplicate; lists hide merged customers.
ALTER TABLE rm_customers ADD COLUMN merged_into UUID;
