-- A migration that reads as routine: every statement locks or rewrites orders, and the last one loses data.
ALTER TABLE orders ALTER COLUMN amount TYPE numeric(12, 2);
CREATE INDEX orders_customer_idx ON orders (customer_id);
ALTER TABLE orders ADD COLUMN external_id uuid NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE orders DROP COLUMN legacy_note;
