-- The fixture of benches/floor.py: accounts with two levels of ON DELETE CASCADE below them, a view over them and a
-- trigger, so that `DROP TABLE accounts CASCADE` drops a handful of objects and `DELETE FROM accounts WHERE id <= 7`
-- cascades to a few thousand rows. Deterministic.
CREATE TABLE accounts (
    id integer PRIMARY KEY,
    email text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT '2026-01-01'
);
CREATE TABLE transfers (
    id bigint PRIMARY KEY,
    account_id integer NOT NULL REFERENCES accounts ON DELETE CASCADE,
    amount_cents bigint NOT NULL
);
CREATE INDEX transfers_account_id ON transfers (account_id);
CREATE TABLE transfer_notes (
    id bigint PRIMARY KEY,
    transfer_id bigint NOT NULL REFERENCES transfers ON DELETE CASCADE,
    note text NOT NULL
);
CREATE INDEX transfer_notes_transfer_id ON transfer_notes (transfer_id);
CREATE VIEW account_balances AS
    SELECT a.id, a.email, coalesce(sum(t.amount_cents), 0) AS balance_cents
    FROM accounts AS a LEFT JOIN transfers AS t ON t.account_id = a.id
    GROUP BY a.id, a.email;
CREATE TABLE audit (id bigserial PRIMARY KEY, account_id integer NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION audit_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit (account_id) VALUES (OLD.id);
    RETURN OLD;
END
$$;
CREATE TRIGGER accounts_audit AFTER DELETE ON accounts FOR EACH ROW EXECUTE FUNCTION audit_delete();

INSERT INTO accounts (id, email) SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 5000) AS g;
INSERT INTO transfers SELECT g, 1 + (g * 7919) % 5000, (g * 104729) % 100000 FROM generate_series(1::bigint, 250000) AS g;
INSERT INTO transfer_notes SELECT g, 1 + (g * 15485863) % 250000, 'note ' || g FROM generate_series(1::bigint, 250000) AS g;
