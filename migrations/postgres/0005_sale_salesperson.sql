-- The salesperson of a sale (recorded since the first sale event; exposed from this version).
ALTER TABLE rm_sales ADD COLUMN salesperson UUID;
