CREATE TABLE customers (
    id integer PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE orders (
    id integer PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers (id),
    amount integer NOT NULL,
    legacy_note text
);

INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 10) AS g;
INSERT INTO orders SELECT g, (g % 10) + 1, g * 100, CASE WHEN g <= 20 THEN 'note ' || g END
    FROM generate_series(1, 50) AS g;
