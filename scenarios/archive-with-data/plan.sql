-- Remove five test customers from a pg_dump archive of the shop, restored with its data. The foreign keys cascade:
-- their 20 orders and the 60 lines of those orders go too.
DELETE FROM customers WHERE id <= 5;
