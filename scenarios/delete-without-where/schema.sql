CREATE TABLE feature_flags (
    name text PRIMARY KEY,
    enabled boolean NOT NULL
);

CREATE TABLE sessions (
    id bigserial PRIMARY KEY,
    user_id integer NOT NULL,
    expires_at timestamptz NOT NULL
);

INSERT INTO feature_flags VALUES ('new_checkout', true), ('dark_mode', true), ('beta_search', false);
INSERT INTO sessions (user_id, expires_at)
    SELECT g, timestamptz '2025-01-01' + g * interval '1 day' FROM generate_series(1, 12) AS g;
