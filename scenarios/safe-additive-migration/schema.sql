CREATE TABLE users (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE
);

INSERT INTO users (email) VALUES ('a@example.com'), ('b@example.com'), ('c@example.com');
