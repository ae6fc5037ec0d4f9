-- An agent, told to "remove the test users", against the wrong database.
DROP TABLE users CASCADE;
