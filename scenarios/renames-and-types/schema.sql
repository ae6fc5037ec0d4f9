CREATE TYPE plan AS ENUM ('free', 'gold');

CREATE TABLE users (
    id integer PRIMARY KEY,
    mail text NOT NULL,
    nickname varchar(100),
    plan plan NOT NULL DEFAULT 'free'
);

CREATE TABLE accounts (
    id integer PRIMARY KEY,
    owner_id integer NOT NULL REFERENCES users (id)
);

CREATE VIEW gold_users AS SELECT id, mail FROM users WHERE plan = 'gold';

INSERT INTO users SELECT g, 'user' || g || '@example.com', 'nick' || g, CASE WHEN g % 3 = 0 THEN 'gold'::plan ELSE 'free' END
    FROM generate_series(1, 30) AS g;
INSERT INTO accounts SELECT g, g FROM generate_series(1, 12) AS g;
