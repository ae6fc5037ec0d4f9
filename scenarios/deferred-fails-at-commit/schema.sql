CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE invoices (
    id int PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX invoices_customer_id ON invoices (customer_id);
INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 5) AS g;
INSERT INTO invoices SELECT g, 1 + g % 5 FROM generate_series(1, 20) AS g;
