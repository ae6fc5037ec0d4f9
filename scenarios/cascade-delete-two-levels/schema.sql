CREATE TABLE customers (
    id integer PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE orders (
    id integer PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    placed_on date NOT NULL
);

CREATE TABLE order_lines (
    id integer PRIMARY KEY,
    order_id integer NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    sku text NOT NULL
);

-- Invoices are kept for the accountants: the customer link is cleared, not the invoice.
CREATE TABLE invoices (
    id integer PRIMARY KEY,
    customer_id integer REFERENCES customers (id) ON DELETE SET NULL,
    amount_cents integer NOT NULL
);

INSERT INTO customers VALUES (1, 'Acme'), (2, 'Globex'), (3, 'Initech'), (4, 'Umbrella');
INSERT INTO orders VALUES (10, 1, '2024-01-02'), (11, 1, '2024-02-03'), (12, 1, '2024-03-04'), (13, 2, '2024-03-05');
INSERT INTO order_lines VALUES
    (100, 10, 'A'), (101, 10, 'B'), (102, 11, 'C'), (103, 12, 'D'), (104, 12, 'E'), (105, 12, 'F'),
    (106, 13, 'G'), (107, 13, 'H');
INSERT INTO invoices VALUES (1000, 1, 500), (1001, 1, 700), (1002, 2, 300), (1003, 3, 900);
