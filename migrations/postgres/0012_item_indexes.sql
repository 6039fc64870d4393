-- The inventory page at scale: a case-folded brand key (folded by the projection, so filters
-- and sorts are case-insensitive without a function in the query), an index for every filter
-- and sort the schema offers, and counts maintained per (status, category, brand) so
-- `totalCount` never scans the matching rows. The inventory read model is rebuilt from the log
-- (the server catches it up before it serves), so every key is folded the same way.
ALTER TABLE rm_inventory_items ADD COLUMN brand_key TEXT NOT NULL DEFAULT '';
DROP INDEX IF EXISTS rm_items_store_brand_idx;
CREATE INDEX rm_items_brand_idx ON rm_inventory_items (store_id, brand_key, item_id);
CREATE INDEX rm_items_brand_price_idx ON rm_inventory_items (store_id, brand_key, asking_minor, item_id);
CREATE INDEX rm_items_brand_created_idx ON rm_inventory_items (store_id, brand_key, created_seq, item_id);
CREATE INDEX rm_items_status_price_idx ON rm_inventory_items (store_id, status, asking_minor, item_id);
CREATE INDEX rm_items_status_brand_idx ON rm_inventory_items (store_id, status, brand_key, item_id);
CREATE INDEX rm_items_category_created_idx ON rm_inventory_items (store_id, category, created_seq, item_id);
CREATE INDEX rm_items_category_price_idx ON rm_inventory_items (store_id, category, asking_minor, item_id);
CREATE INDEX rm_items_category_brand_idx ON rm_inventory_items (store_id, category, brand_key, item_id);
CREATE TABLE rm_item_counts (
    store_id  UUID NOT NULL,
    status    TEXT NOT NULL,
    category  TEXT NOT NULL,
    brand_key TEXT NOT NULL,
    n         BIGINT NOT NULL,
    PRIMARY KEY (store_id, status, category, brand_key)
);
DELETE FROM rm_inventory_items;
UPDATE projection_checkpoints SET commit_pos = 0, seq_pos = 0 WHERE name = 'inventory';
