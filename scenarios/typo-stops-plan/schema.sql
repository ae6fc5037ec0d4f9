CREATE TABLE accounts (
    id integer PRIMARY KEY,
    status text NOT NULL DEFAULT 'active',
    last_seen date NOT NULL
);

INSERT INTO accounts VALUES
    (1, 'active', '2019-05-01'), (2, 'active', '2019-11-30'), (3, 'active', '2023-06-01'),
    (4, 'active', '2024-01-15'), (5, 'active', '2018-02-02');
