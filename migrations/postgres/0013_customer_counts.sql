-- The customers page's total without counting rows: listed customers (not merged into another)
-- per store, maintained by the customers projection. Filled here from the rows as they are.
CREATE TABLE rm_customer_counts (
    store_id UUID PRIMARY KEY,
    n        BIGINT NOT NULL
);
INSERT INTO rm_customer_counts (store_id, n)
    SELECT store_id, COUNT(*) FROM rm_customers WHERE merged_into IS NULL GROUP BY store_id;
