//! Every rule of the catalog, on a real shadow: its documented bad example triggers it, its safe example does not.
//! The examples are what `pgshadow explain RULE` shows, so the docs cannot drift from what the rules do.

mod common;

use pgshadow::policy::Rule;
use pgshadow::postgres::Selection;
use pgshadow::{DryRunOptions, LocalOptions, Plan, Report, Schema, Shadow};

#[tokio::test]
async fn every_rule_fires_on_its_bad_example_and_not_on_its_safe_one() {
    let shadow = Shadow::start_local(&Default::default()).await.expect("shadow");
    let options = DryRunOptions::default();
    let mut failures = Vec::new();
    for rule in Rule::ALL {
        let doc = rule.doc();
        let schema = Schema::sql(format!("{rule}.sql"), doc.schema.to_owned());
        for (example, sql, should_fire) in [("bad", doc.bad, true), ("safe", doc.safe, false)] {
            let plan = Plan::parse("example.sql", sql).expect("example parses");
            let report = pgshadow::dry_run_on(&shadow, &plan, Some(&schema), &options).await.expect("dry-run");
            assert!(report.shadow.fidelity.warnings.is_empty(), "{rule}: its schema does not load");
            if report.findings.iter().any(|f| f.rule == rule.id()) != should_fire {
                failures.push(format!("{rule}: the {example} example (findings: {:?})", report.findings));
            }
        }
    }
    shadow.shutdown().await.expect("shutdown");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What a rule measured on data, beyond its examples: each case's plan runs on its schema, and the rule's finding
/// must say what the shadow saw (`Some(text)`: a finding whose message contains it; `None`: no finding).
#[tokio::test]
async fn rules_say_what_the_shadow_measured() {
    let shadow = Shadow::start_local(&Default::default()).await.expect("shadow");
    let options = DryRunOptions::default();
    let mut failures = Vec::new();
    for (rule, schema, plan, expected) in MEASURED {
        let schema = Schema::sql("schema.sql", schema.to_string());
        let parsed = Plan::parse("plan.sql", plan).expect("plan parses");
        let report = pgshadow::dry_run_on(&shadow, &parsed, Some(&schema), &options).await.expect("dry-run");
        assert!(report.shadow.fidelity.warnings.is_empty(), "{rule}: the schema does not load");
        let found: Vec<&str> = report.findings.iter().filter(|f| f.rule == *rule).map(|f| f.message.as_str()).collect();
        if let Some((_, _, _, found_by)) = LABELS.iter().find(|(r, _, p, _)| r == rule && p == plan) {
            let labels: Vec<_> =
                report.findings.iter().filter(|f| f.rule == *rule).map(|f| f.found_by.as_str()).collect();
            if labels != [*found_by] {
                failures.push(format!("{rule} on `{plan}`: expected found_by {found_by}, got {labels:?}"));
            }
        }
        let ok = match expected {
            Some(text) => found.iter().any(|m| m.contains(text)),
            None => found.is_empty(),
        };
        if !ok {
            failures.push(format!("{rule} on `{plan}`: expected {expected:?}, found {found:?}"));
        }
    }
    shadow.shutdown().await.expect("shutdown");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Where the text shows a rewrite the shadow's PostgreSQL does not do, the report says so and names the version; a
/// rewrite it does do is a confirmed finding, and no disagreement. On every PostgreSQL the tests have.
#[tokio::test]
async fn static_and_measured_disagree_and_say_why() {
    let schema = Schema::sql(
        "schema.sql",
        "CREATE TABLE t (id int PRIMARY KEY, n int, v varchar(10));\n\
         INSERT INTO t SELECT g, g, 'x' FROM generate_series(1, 10) AS g;"
            .to_owned(),
    );
    let installations = common::installations();
    assert!(!installations.is_empty(), "no PostgreSQL to test with");
    for installation in installations {
        let postgres = Selection { pg_bin: Some(installation.binaries.dir.clone()), ..Default::default() };
        let shadow = Shadow::start_local(&LocalOptions { postgres, ..Default::default() }).await.expect("shadow");
        let run = |sql: &'static str| {
            let (shadow, schema) = (&shadow, &schema);
            async move {
                let plan = Plan::parse("plan.sql", sql).expect("plan parses");
                pgshadow::dry_run_on(shadow, &plan, Some(schema), &DryRunOptions::default()).await.expect("dry-run")
            }
        };
        let rewrites = |r: &Report| -> Vec<String> {
            r.findings.iter().filter(|f| f.rule == "table-rewrite").map(|f| f.found_by.as_str().to_owned()).collect()
        };

        let widened = run("ALTER TABLE t ALTER COLUMN v TYPE varchar(50)").await;
        let version = &widened.shadow.version;
        assert!(version.starts_with(&format!("{}.", installation.version.major)), "ran on {version}");
        assert_eq!(rewrites(&widened), Vec::<String>::new(), "{version}: {:?}", widened.findings);
        let said = widened.disagreements.iter().find(|d| d.rule == "table-rewrite");
        let said =
            said.unwrap_or_else(|| panic!("{version}: no table-rewrite disagreement: {:?}", widened.disagreements));
        assert_eq!((said.statement, said.static_expected.as_str()), (1, "a table rewrite"));
        assert_eq!(
            said.measured,
            format!(
                "no rewrite on PostgreSQL {version}: the stored values of public.t.v (character varying(10) to \
                 character varying(50)) are binary-coercible to the new type"
            )
        );

        let to_bigint = run("ALTER TABLE t ALTER COLUMN n TYPE bigint").await;
        assert_eq!(rewrites(&to_bigint), ["confirmed"], "{version}: {:?}", to_bigint.findings);
        assert!(to_bigint.disagreements.is_empty(), "{version}: {:?}", to_bigint.disagreements);
        shadow.shutdown().await.expect("shutdown");
    }
}

/// How some of those findings were found: (rule, schema, plan — one of `MEASURED`'s —, `found_by`).
const LABELS: &[(&str, &str, &str, &str)] = &[
    ("rename", USERS, "ALTER TABLE users RENAME TO members", "confirmed"),
    ("rename", USERS_VIEW, "ALTER VIEW v RENAME TO w", "static"),
    ("constraint-dropped", SHOP, "DROP TABLE customers CASCADE", "measured"),
    ("constraint-dropped", SHOP, "ALTER TABLE orders ALTER COLUMN code DROP NOT NULL", "confirmed"),
    ("timestamp-without-time-zone", USERS, "CREATE TABLE logins (at timestamp(0))", "static"),
    ("timestamp-without-time-zone", USERS, "ALTER TABLE users ADD COLUMN seen_at timestamp", "confirmed"),
    ("transaction-hygiene", USERS, "BEGIN;\nUPDATE users SET email = 'b' WHERE id = 1", "confirmed"),
    ("enum-value-change", MOODS, "ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'", "static"),
    (
        "integer-key-exhaustion",
        USERS,
        "CREATE TABLE logins (id serial PRIMARY KEY, user_id int REFERENCES users)",
        "static",
    ),
    ("integer-key-exhaustion", EVENTS_NO_KEY, "ALTER TABLE log ADD COLUMN id serial PRIMARY KEY", "confirmed"),
    (
        "integer-key-exhaustion",
        BIG_KEYS,
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int REFERENCES customers)",
        "measured",
    ),
];

const USERS: &str =
    "CREATE TABLE users (id int PRIMARY KEY, email text);\nINSERT INTO users VALUES (1, 'a@example.com');";

const USERS_VIEW: &str = "CREATE TABLE users (id int PRIMARY KEY);\nCREATE VIEW v AS SELECT id FROM users;";

/// (rule, schema, plan, what its finding must say).
const MEASURED: &[(&str, &str, &str, Option<&str>)] = &[
    ("rename", USERS, "ALTER TABLE users RENAME TO members", Some("renames table public.users to public.members")),
    ("rename", USERS, "ALTER SCHEMA public RENAME TO app", Some("renames table public.users to app.users")),
    ("rename", USERS, "CREATE TABLE t (a int);\nALTER TABLE t RENAME COLUMN a TO b;\nALTER TABLE t RENAME TO u", None),
    ("rename", USERS_VIEW, "ALTER VIEW v RENAME TO w", Some("renames view v to w (from the text")),
    (
        "index-drop-not-concurrent",
        ORDERS,
        "DROP INDEX orders_customer_idx",
        Some("takes AccessExclusiveLock on table public.orders (100 rows)"),
    ),
    (
        "index-drop-not-concurrent",
        ORDERS,
        "REINDEX TABLE orders",
        Some("REINDEX without CONCURRENTLY takes ShareLock on table public.orders (100 rows): INSERT"),
    ),
    ("index-drop-not-concurrent", ORDERS, "CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);\nDROP INDEX t_a", None),
    (
        "index-drop-not-concurrent",
        EVENTS,
        "ALTER TABLE events DETACH PARTITION events_2020",
        Some("DETACH PARTITION without CONCURRENTLY takes AccessExclusiveLock on table public.events"),
    ),
    ("constraint-dropped", SHOP, "DROP TABLE customers CASCADE", Some("foreign key orders_customer_id_fkey on public.orders (2 rows, by CASCADE): public.orders may now reference rows that do not exist")),
    ("constraint-dropped", SHOP, "ALTER TABLE orders DROP COLUMN code", Some("unique orders_code_key on public.orders (2 rows): public.orders may now take duplicates")),
    ("constraint-dropped", SHOP, "ALTER TABLE orders ALTER COLUMN code DROP NOT NULL", Some("not null on public.orders.code (2 rows): it may now take NULLs")),
    ("constraint-dropped", SHOP, "CREATE TABLE t (a int UNIQUE);\nALTER TABLE t DROP CONSTRAINT t_a_key", None),
    ("timestamp-without-time-zone", USERS, "ALTER TABLE users ADD COLUMN seen_at timestamp", Some("makes public.users.seen_at timestamp without time zone: ")),
    ("timestamp-without-time-zone", USERS, "CREATE TABLE logins (at timestamp(0))", Some("makes logins.at timestamp without time zone (from the text")),
    ("timestamp-without-time-zone", USERS, "CREATE TABLE logins (at timestamptz, on_day date)", None),
    ("char-column", USERS, "ALTER TABLE users ADD COLUMN country char(2)", Some("makes public.users.country character(2): ")),
    ("char-column", USERS, "CREATE TABLE codes (code character(3))", Some("makes codes.code char(n) (from the text")),
    ("varchar-length-shrink", NAMES, "ALTER TABLE people ALTER COLUMN name TYPE varchar(20)", Some("shrinks public.people.name from character varying(100) to character varying(20) (2 rows fit here)")),
    ("varchar-length-shrink", NAMES, "ALTER TABLE people ALTER COLUMN name TYPE varchar(3)", Some("shrinks public.people.name to 3 characters: 1 values on the shadow are longer, and the statement fails on them (value too long for type character varying(3))")),
    ("varchar-length-shrink", NAMES, "ALTER TABLE people ALTER COLUMN name TYPE text", None),
    ("transaction-hygiene", USERS, "BEGIN;\nUPDATE users SET email = 'b' WHERE id = 1;\nCOMMIT;\nDELETE FROM users WHERE id = 2", Some("commits part-way: 1 more statement(s)")),
    ("transaction-hygiene", USERS, "BEGIN;\nUPDATE users SET email = 'b' WHERE id = 1", Some("opens a transaction that is never committed")),
    ("transaction-hygiene", USERS, "UPDATE users SET email = 'b' WHERE id = 1;\nCREATE INDEX CONCURRENTLY users_email ON users (email)", Some("must run outside a transaction block, beside 1 statement(s)")),
    ("transaction-hygiene", USERS, "BEGIN;\nCREATE INDEX CONCURRENTLY users_email ON users (email);\nCOMMIT", Some("cannot run inside the plan's transaction block")),
    ("transaction-hygiene", USERS, "CREATE INDEX CONCURRENTLY users_email ON users (email)", None),
    ("trigger-change", TRIGGERS, "CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION audit_order()", Some("creates trigger orders_touch on public.orders (ShareRowExclusiveLock on public.orders (1 row)): writes to public.orders fire it from now on")),
    ("trigger-change", TRIGGERS, "DROP TRIGGER orders_audit ON orders", Some("drops trigger orders_audit on public.orders (AccessExclusiveLock on public.orders (1 row))")),
    ("trigger-change", TRIGGERS, "ALTER TABLE orders ENABLE TRIGGER orders_audit", Some("enables trigger orders_audit on public.orders (ShareRowExclusiveLock")),
    ("trigger-change", TRIGGERS, "DROP TABLE orders", None),
    ("unbacked-foreign-key", REFERENCED, "DELETE FROM customers WHERE id = 2", Some("writes to public.customers, referenced by orders_customer_id_fkey on public.orders with no index on its referencing columns: each deleted row or changed key scans public.orders (2 rows) under lock")),
    ("unbacked-foreign-key", REFERENCED, "UPDATE customers SET id = 3 WHERE id = 2", Some("scans public.orders (2 rows)")),
    ("unbacked-foreign-key", REFERENCED, "UPDATE customers SET name = 'x' WHERE id = 2", None),
    ("unbacked-foreign-key", REFERENCED, "CREATE INDEX orders_customer_idx ON orders (customer_id);\nDELETE FROM customers WHERE id = 2", None),
    ("enum-value-change", MOODS, "BEGIN;\nALTER TYPE mood ADD VALUE 'happy';\nUPDATE people SET mood = 'happy' WHERE id = 1;\nCOMMIT", Some("uses an enum value added earlier in the same transaction")),
    ("enum-value-change", MOODS, "ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'", Some("renames value 'sad' of enum mood to 'blue'")),
    ("enum-value-change", MOODS, "ALTER TYPE mood ADD VALUE 'happy';\nSELECT count(*) FROM people", None),
    ("integer-key-exhaustion", USERS, "CREATE TABLE logins (id serial PRIMARY KEY, user_id int REFERENCES users)", Some("makes logins.id (at most 2,147,483,647, from the text) the primary key")),
    ("integer-key-exhaustion", USERS, "CREATE TABLE profiles (user_id int PRIMARY KEY REFERENCES users)", None),
    ("integer-key-exhaustion", EVENTS_NO_KEY, "ALTER TABLE log ADD COLUMN id serial PRIMARY KEY", Some("makes public.log.id (integer, at most 2,147,483,647) the primary key")),
    ("integer-key-exhaustion", BIG_KEYS, "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int REFERENCES customers)", Some("adds foreign key orders_customer_id_fkey on public.orders: public.orders.customer_id is integer but references public.customers.id (bigint)")),
    ("integer-key-exhaustion", BIG_KEYS, "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers)", None),
];

const BIG_KEYS: &str = "CREATE TABLE customers (id bigint PRIMARY KEY);";

const EVENTS_NO_KEY: &str = "CREATE TABLE log (message text);\nINSERT INTO log VALUES ('a'), ('b');";

const MOODS: &str = "CREATE TYPE mood AS ENUM ('sad', 'ok');\nCREATE TABLE people (id int PRIMARY KEY, mood mood);\nINSERT INTO people VALUES (1, 'ok');";

const REFERENCED: &str = "CREATE TABLE customers (id int PRIMARY KEY, name text);\nCREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers);\nINSERT INTO customers VALUES (1, 'a'), (2, 'b');\nINSERT INTO orders VALUES (1, 1), (2, 1);";

const TRIGGERS: &str = "CREATE TABLE orders (id int PRIMARY KEY, total int);\nCREATE FUNCTION audit_order() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;\nCREATE TRIGGER orders_audit AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION audit_order();\nINSERT INTO orders VALUES (1, 10);";

const NAMES: &str =
    "CREATE TABLE people (id int PRIMARY KEY, name varchar(100));\nINSERT INTO people VALUES (1, 'Ada'), (2, 'Grace');";

const SHOP: &str = "CREATE TABLE customers (id int PRIMARY KEY);\nCREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers, code text NOT NULL UNIQUE);\nINSERT INTO customers VALUES (1);\nINSERT INTO orders VALUES (1, 1, 'a'), (2, 1, 'b');";

const ORDERS: &str = "CREATE TABLE orders (id int PRIMARY KEY, customer_id int);\nCREATE INDEX orders_customer_idx ON orders (customer_id);\nINSERT INTO orders SELECT g, g % 10 FROM generate_series(1, 100) AS g;";

const EVENTS: &str = "CREATE TABLE events (id int, at date) PARTITION BY RANGE (at);\nCREATE TABLE events_2020 PARTITION OF events FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');\nINSERT INTO events VALUES (1, '2020-05-01');";

/// `docs/rules.md`'s table of the peers' rules names only rules of the catalog (or `—`, not covered).
#[test]
fn the_peer_table_names_only_rules_that_exist() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rules.md")).expect("docs/rules.md");
    let section = docs.split("\n## Peers\n").nth(1).expect("a Peers section").split("\n## ").next().unwrap_or_default();
    let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| peer")).collect();
    assert!(rows.len() > 40, "the peer table is missing or short: {} rows", rows.len());
    let mut unknown = Vec::new();
    for row in rows {
        let ours = row.split('|').nth(3).expect("a pgshadow column").trim();
        if ours == "—" {
            continue;
        }
        for id in ours.split(", ") {
            let id = id.trim_matches('`');
            if id.parse::<Rule>().is_err() {
                unknown.push(format!("{id} in: {row}"));
            }
        }
    }
    assert!(unknown.is_empty(), "rules the peer table names that do not exist:\n{}", unknown.join("\n"));
}
