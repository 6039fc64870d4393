-- The sales page's total without counting rows: sales per store and status, maintained by the
-- sales projection. Filled here from the rows as they are.
CREATE TABLE rm_sale_counts (
    store_id UUID NOT NULL,
    status   TEXT NOT NULL,
    n        BIGINT NOT NULL,
    PRIMARY KEY (store_id, status)
);
INSERT INTO rm_sale_counts (store_id, status, n)
    SELECT store_id, status, COUNT(*) FROM rm_sales GROUP BY store_id, status;
