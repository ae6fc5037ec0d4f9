-- Remove one customer who asked to be forgotten.
DELETE FROM customers WHERE id = 1;
