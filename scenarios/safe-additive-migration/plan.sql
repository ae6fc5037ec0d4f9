-- Add a nullable column and a new table; nothing existing changes, and no lock waits forever.
SET lock_timeout = '2s';
ALTER TABLE users ADD COLUMN display_name text;

CREATE TABLE user_preferences (
    user_id integer PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    theme text NOT NULL DEFAULT 'light'
);

CREATE INDEX user_preferences_theme_idx ON user_preferences (theme);

INSERT INTO user_preferences (user_id, theme) VALUES (1, 'dark'), (2, 'light');
