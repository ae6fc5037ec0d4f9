//! The store's own schema, as numbered migrations. `schema_version` holds the number of the last one applied; a store
//! newer than this pgshadow (a higher number) is refused rather than guessed at. Each migration is written once, in
//! the SQL both SQLite and PostgreSQL take; `{p}` is where the tables live (nothing in SQLite, the `pgshadow` schema
//! in PostgreSQL).

/// Every migration, in order: migration `i + 1` is `MIGRATIONS[i]`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: proposals (immutable JSON bodies, with the columns that move beside them), decisions and the audit chain.
    "CREATE TABLE {p}proposals (
        id BIGINT PRIMARY KEY,
        created_at TEXT NOT NULL,
        proposer TEXT NOT NULL,
        target TEXT,
        plan_sha256 TEXT NOT NULL,
        replaces BIGINT REFERENCES {p}proposals (id),
        body TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('proposed', 'approved', 'rejected', 'applied', 'refused', 'expired')),
        approvals_required INTEGER NOT NULL,
        expires_at TEXT,
        outcome TEXT
    );
    CREATE TABLE {p}decisions (
        proposal_id BIGINT NOT NULL REFERENCES {p}proposals (id),
        seq INTEGER NOT NULL,
        reviewer TEXT NOT NULL,
        verdict TEXT NOT NULL CHECK (verdict IN ('approve', 'reject')),
        comment TEXT,
        at TEXT NOT NULL,
        plan_sha256 TEXT NOT NULL,
        PRIMARY KEY (proposal_id, seq),
        UNIQUE (proposal_id, reviewer)
    );
    CREATE TABLE {p}audit (
        seq BIGINT PRIMARY KEY,
        event TEXT NOT NULL,
        proposal_id BIGINT NOT NULL,
        actor TEXT NOT NULL,
        at TEXT NOT NULL,
        plan_sha256 TEXT NOT NULL,
        fingerprints TEXT NOT NULL,
        counts TEXT NOT NULL,
        detail TEXT,
        prev_sha256 TEXT NOT NULL UNIQUE,
        sha256 TEXT NOT NULL UNIQUE
    );
    CREATE INDEX proposals_state ON {p}proposals (state, id);",
    // 2: an approval may accept the plan's unguarded statements.
    "ALTER TABLE {p}decisions ADD COLUMN unguarded INTEGER NOT NULL DEFAULT 0;",
];

/// Migration `number`'s SQL, with its tables under `prefix`.
pub(super) fn sql(number: usize, prefix: &str) -> String {
    MIGRATIONS[number - 1].replace("{p}", prefix)
}

/// The message for a store written by a newer pgshadow.
pub(super) fn too_new(found: i64) -> String {
    format!(
        "the store's schema is at version {found}, newer than this pgshadow knows ({}): upgrade pgshadow",
        MIGRATIONS.len()
    )
}
