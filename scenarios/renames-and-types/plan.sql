-- A tidy-up that reads as harmless: better names and "cleaner" types. Each rename breaks the code still running, and
-- two of the new types are the ones the linters warn about.
SET lock_timeout = '2s';
ALTER TABLE users RENAME COLUMN mail TO email;
ALTER TABLE accounts RENAME TO billing_accounts;
ALTER VIEW gold_users RENAME TO premium_users;
ALTER TYPE plan RENAME VALUE 'gold' TO 'premium';
ALTER TABLE users ADD COLUMN last_seen timestamp;
ALTER TABLE users ADD COLUMN country char(2);
ALTER TABLE users ALTER COLUMN nickname TYPE varchar(20);
CREATE TABLE logins (user_id integer NOT NULL, at timestamp NOT NULL);
