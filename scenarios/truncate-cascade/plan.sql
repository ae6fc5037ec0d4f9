-- "Reset the event log": CASCADE also empties every table that references it.
TRUNCATE events CASCADE;
