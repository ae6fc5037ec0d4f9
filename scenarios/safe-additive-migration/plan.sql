-- Add a new table and a nullable column; nothing existing changes, no lock waits forever, and the one statement that
-- locks users exclusively comes last, so the lock is held as briefly as possible.
SET lock_timeout = '2s';

CREATE TABLE user_preferences (
    user_id integer PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    theme text NOT NULL DEFAULT 'light'
);

CREATE INDEX user_preferences_theme_idx ON user_preferences (theme);

INSERT INTO user_preferences (user_id, theme) VALUES (1, 'dark'), (2, 'light');

ALTER TABLE users ADD COLUMN display_name text;
