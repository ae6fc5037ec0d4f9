-- Move customer 5's invoices to a merged customer 50, then remove customer 5.
-- The merged customer is never inserted: the foreign key is deferred, so every statement succeeds.
UPDATE invoices SET customer_id = 50 WHERE customer_id = 5;
DELETE FROM customers WHERE id = 5;
