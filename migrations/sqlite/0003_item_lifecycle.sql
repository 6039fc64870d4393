-- Item lifecycle and details (dealer domain). Read models only: rebuildable from the log.
-- SQLite variant: UUIDs are 16-byte BLOBs.
ALTER TABLE rm_inventory_items ADD COLUMN floor_minor BIGINT;
ALTER TABLE rm_inventory_items ADD COLUMN condition TEXT;
-- Structured details kept as JSON text: they are displayed, not filtered on.
ALTER TABLE rm_inventory_items ADD COLUMN details TEXT NOT NULL DEFAULT '{}';
-- Internal notes: visible only to roles that may see costs.
ALTER TABLE rm_inventory_items ADD COLUMN notes TEXT;
-- Customer an item is reserved for / out on memo to, and the sale it was sold in.
ALTER TABLE rm_inventory_items ADD COLUMN held_for BLOB;
ALTER TABLE rm_inventory_items ADD COLUMN sold_in BLOB;
CREATE INDEX rm_items_store_status_idx ON rm_inventory_items (store_id, status, created_seq);

CREATE TABLE rm_sales (
    sale_id        BLOB PRIMARY KEY,
    store_id       BLOB NOT NULL,
    customer_id    BLOB,
    status         TEXT NOT NULL,
    invoice_number BIGINT,
    currency       TEXT NOT NULL,
    total_minor    BIGINT NOT NULL,
    paid_minor     BIGINT NOT NULL,
    refunded_minor BIGINT NOT NULL,
    -- Lines, trade-ins and payments as JSON text (displayed with the sale).
    lines          TEXT NOT NULL,
    trade_ins      TEXT NOT NULL,
    payments       TEXT NOT NULL,
    created_seq    BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    version        BIGINT NOT NULL
);
CREATE INDEX rm_sales_store_created_idx ON rm_sales (store_id, created_seq, sale_id);
CREATE INDEX rm_sales_customer_idx ON rm_sales (store_id, customer_id);
-- Invoice numbers are unique per store: a second row with the same number is a bug, loudly.
CREATE UNIQUE INDEX rm_sales_invoice_idx ON rm_sales (store_id, invoice_number);

-- Lifetime value per customer, derived from confirmed sales (never entered).
ALTER TABLE rm_customers ADD COLUMN ltv_currency TEXT;
ALTER TABLE rm_customers ADD COLUMN ltv_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE rm_customers ADD COLUMN order_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE rm_customers ADD COLUMN last_purchase_at BIGINT;
