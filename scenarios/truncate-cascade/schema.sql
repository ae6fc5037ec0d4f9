CREATE TABLE events (
    id integer PRIMARY KEY,
    kind text NOT NULL
);

CREATE TABLE event_attachments (
    id integer PRIMARY KEY,
    event_id integer NOT NULL REFERENCES events (id),
    url text NOT NULL
);

CREATE TABLE unrelated (id integer PRIMARY KEY);

INSERT INTO events SELECT g, 'click' FROM generate_series(1, 30) AS g;
INSERT INTO event_attachments SELECT g, (g % 30) + 1, 'https://example.com/' || g FROM generate_series(1, 7) AS g;
INSERT INTO unrelated VALUES (1), (2);
