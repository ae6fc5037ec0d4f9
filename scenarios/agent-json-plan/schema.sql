CREATE TABLE tickets (
    id integer PRIMARY KEY,
    state text NOT NULL,
    closed_at date
);

INSERT INTO tickets VALUES
    (1, 'open', NULL), (2, 'closed', '2023-01-10'), (3, 'closed', '2024-05-01'), (4, 'open', NULL),
    (5, 'closed', '2022-12-24');
