-- "Turn off the beta flag and clear expired sessions" — both WHERE clauses forgotten.
UPDATE feature_flags SET enabled = false;
DELETE FROM sessions;
