//! Synthetic shadows (`--synthesize`), on real servers, checked against the truth: a generated lending-library
//! database with data, two-level cascades, a NO ACTION foreign key and skew is profiled (through the library) and
//! dumped schema-only and whole. Each plan runs on the whole dump (the truth, measured) and on the schema-only dump
//! filled with rows synthesized from the profile; the failures must be the same, the estimates near the truth.

mod common;

use common::{median, off_by, stderr_of, Sandbox, SourceServer};
use pgshadow::profile::{Profile, ProfileOptions};
use pgshadow::report::{EstimateBasis, Report, Status};
use pgshadow::synth::Synthesis;
use pgshadow::{DryRunOptions, LocalOptions, Plan, Schema, Shadow};

/// A lending library: authors <- books <- loans (ON DELETE CASCADE, two levels), members <- loans (NO ACTION) and
/// members <- fines (SET NULL). Skewed: author 7 wrote a fifth of the books, low book ids are lent most. Members'
/// phones are mostly unknown (nulls), books' barcodes repeat. Deterministic (`setseed`).
const LIBRARY: &str = "
SELECT setseed(0.17);
CREATE TYPE genre AS ENUM ('novel', 'poetry', 'essay', 'drama');
CREATE TABLE authors (id int PRIMARY KEY, country int NOT NULL, born date);
CREATE TABLE members (id int PRIMARY KEY, phone text, joined_on date NOT NULL, level int NOT NULL);
CREATE TABLE books (id int PRIMARY KEY, author_id int NOT NULL REFERENCES authors ON DELETE CASCADE,
                    published_on date NOT NULL, pages int NOT NULL, barcode text NOT NULL, genre genre NOT NULL);
CREATE INDEX ON books (author_id);
CREATE TABLE loans (id bigint PRIMARY KEY, book_id int NOT NULL REFERENCES books ON DELETE CASCADE,
                    member_id int NOT NULL REFERENCES members, lent_at timestamptz NOT NULL, returned boolean NOT NULL);
CREATE INDEX ON loans (book_id);
CREATE INDEX ON loans (member_id);
CREATE TABLE fines (id int PRIMARY KEY, member_id int REFERENCES members ON DELETE SET NULL,
                    amount numeric(8,2) NOT NULL);
INSERT INTO authors SELECT g, 1 + g % 40, DATE '1930-01-01' + (g * 37) % 20000 FROM generate_series(1, 600) g;
INSERT INTO members SELECT g, CASE WHEN random() < 0.7 THEN NULL ELSE '+1555' || g END,
                           DATE '2018-01-01' + floor(random() * 2000)::int, 1 + floor(5 * random() ^ 2)::int
                    FROM generate_series(1, 3000) g;
INSERT INTO books SELECT g, CASE WHEN random() < 0.2 THEN 7 ELSE 1 + floor(600 * random() ^ 2)::int END,
                         DATE '1990-01-01' + floor(random() * 12000)::int, 50 + floor(random() * 700)::int,
                         'BC' || (g % 4000), (ARRAY['novel', 'poetry', 'essay', 'drama'])[1 + g % 4]::genre
                  FROM generate_series(1, 6000) g;
INSERT INTO loans SELECT g, 1 + floor(6000 * random() ^ 1.5)::int, 1 + floor(3000 * random())::int,
                         TIMESTAMPTZ '2022-01-01 00:00:00+00' + random() * interval '900 days', random() < 0.9
                  FROM generate_series(1, 40000) g;
INSERT INTO fines SELECT g, CASE WHEN random() < 0.2 THEN NULL ELSE 1 + floor(3000 * random())::int END,
                         round((random() * 80)::numeric, 2) FROM generate_series(1, 2000) g;
";

/// Plans that fail in production because of the data, and pass on a schema-only shadow: with the SQLSTATE.
const FAILING: [(&str, &str); 4] = [
    ("DELETE FROM members WHERE id BETWEEN 1 AND 100;", "23503"),
    ("DELETE FROM members WHERE joined_on < '2018-06-01';", "23503"),
    ("ALTER TABLE members ALTER COLUMN phone SET NOT NULL;", "23502"),
    ("CREATE UNIQUE INDEX ON books (barcode);", "23505"),
];

/// Cascading DELETEs and WHERE-bound UPDATEs.
const ESTIMATED: [&str; 6] = [
    "DELETE FROM authors WHERE id BETWEEN 50 AND 150;",
    "DELETE FROM books WHERE published_on < '2000-01-01';",
    "UPDATE loans SET returned = true WHERE lent_at < '2022-09-01';",
    "UPDATE books SET pages = pages + 1 WHERE pages > 600;",
    "DELETE FROM fines WHERE amount >= 60;",
    "UPDATE members SET level = 0 WHERE level IN (1, 2);",
];

/// A heavy parent: the author of a fifth of the books.
const HEAVY: &str = "DELETE FROM authors WHERE id = 7;";

/// The rows a report says the plan changes in production: destroyed plus updated, from its estimate when it has
/// one, else as measured.
fn total(report: &Report) -> u64 {
    match &report.estimate {
        Some(e) => e.rows_destroyed.expect("a known total") + e.rows_updated.expect("a known total"),
        None => report.summary.rows_destroyed + report.summary.rows_updated,
    }
}

/// A database `name` made by `sql` on `source`, analyzed: its schema-only dump, its whole dump and its profile.
fn made(source: &SourceServer, name: &str, sql: &str) -> (String, String, Profile) {
    source.psql("postgres", &format!("CREATE DATABASE {name}"));
    source.psql(name, sql);
    source.psql(name, "ANALYZE");
    let dump = |args: &[&str]| {
        let output = std::process::Command::new("pg_dump")
            .args(args)
            .args(["--no-owner", &source.url(name)])
            .output()
            .expect("run pg_dump");
        assert!(output.status.success(), "pg_dump: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("a UTF-8 dump")
    };
    let (schema_only, whole) = (dump(&["--schema-only"]), dump(&[]));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let profile = runtime.block_on(pgshadow::profile::take(&source.url(name), &ProfileOptions::default()));
    (schema_only, whole, profile.expect("the database is profiled"))
}

fn source() -> SourceServer {
    let source = SourceServer::start();
    source.psql("postgres", "ALTER SYSTEM SET autovacuum = off");
    source.psql("postgres", "SELECT pg_reload_conf()");
    source
}

async fn run(shadow: &Shadow, plan: &str, schema: &Schema, profile: Option<&Profile>) -> Report {
    let plan = Plan::parse("plan.sql", plan).expect("the plan parses");
    let options = DryRunOptions { profile: profile.cloned(), ..DryRunOptions::default() };
    pgshadow::dry_run_on(shadow, &plan, Some(schema), &options).await.expect("the dry-run runs")
}

fn synthetic(schema_only: &str, profile: &Profile, rows: u64) -> Schema {
    let synthesis = Synthesis::new(std::sync::Arc::new(profile.clone()), rows, 7).expect("a budget");
    Schema { synthesis: Some(synthesis), ..Schema::sql("structure.sql", schema_only) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_rows_predict_production_failures_and_counts() {
    let (_source, (schema_only, whole, profile)) = tokio::task::spawn_blocking(|| {
        let source = source();
        let made = made(&source, "library", LIBRARY);
        (source, made)
    })
    .await
    .expect("the library is made");
    let shadow = Shadow::start_local(&LocalOptions::default()).await.expect("a shadow starts");
    let whole = Schema::sql("whole.sql", whole.as_str());
    let bare = Schema::sql("structure.sql", schema_only.as_str());
    // 10,000 rows for about 51,600 in production: every table is scaled, by about 5.
    let synthetic = synthetic(&schema_only, &profile, 10_000);
    let mut lines = Vec::new();

    for (plan, sqlstate) in FAILING {
        let truth = run(&shadow, plan, &whole, None).await;
        let error = truth.statements[0].error.as_ref().unwrap_or_else(|| panic!("{plan}: passes on the whole data"));
        assert_eq!(error.sqlstate.as_deref(), Some(sqlstate), "{plan}: {error:?}");
        let schema_only = run(&shadow, plan, &bare, None).await;
        assert_eq!(schema_only.statements[0].status, Status::Ok, "{plan}: the schema alone cannot show it");
        let predicted = run(&shadow, plan, &synthetic, Some(&profile)).await;
        let error = predicted.statements[0].error.as_ref().unwrap_or_else(|| panic!("{plan}: passes on synthetic"));
        assert_eq!(error.sqlstate.as_deref(), Some(sqlstate), "{plan}: {error:?}");
        let said = error.predicted.as_deref().unwrap_or_default();
        assert!(said.starts_with("fails on synthetic data shaped like production: "), "{plan}: {said}");
        if sqlstate == "23502" {
            assert!(said.contains("null_frac 0.7"), "{plan}: the profile's share of nulls is named: {said}");
        }
        lines.push(format!("{plan:<60} {sqlstate} on the whole data and on synthetic rows: {said}"));
    }

    // A deferred foreign key the plan leaves violated fails at the COMMIT that ends it, on the whole data and on
    // synthetic rows: there, the COMMIT's error is predicted for production as a statement's is.
    let deferred = "ALTER TABLE loans DROP CONSTRAINT loans_member_id_fkey;\n\
         ALTER TABLE loans ADD CONSTRAINT loans_member_id_fkey FOREIGN KEY (member_id) REFERENCES members \
         DEFERRABLE INITIALLY DEFERRED;\nDELETE FROM members WHERE id BETWEEN 1 AND 100;";
    let truth = run(&shadow, deferred, &whole, None).await;
    let error = truth.commit_error.as_ref().expect("the COMMIT fails on the whole data");
    assert_eq!((error.sqlstate.as_deref(), error.predicted.as_deref()), (Some("23503"), None), "{error:?}");
    let predicted = run(&shadow, deferred, &synthetic, Some(&profile)).await;
    let error = predicted.commit_error.as_ref().expect("the COMMIT fails on synthetic rows");
    assert_eq!(error.sqlstate.as_deref(), Some("23503"), "{error:?}");
    let said = error.predicted.as_deref().unwrap_or_default();
    assert!(said.starts_with("fails on synthetic data shaped like production: "), "{said}");
    for text in [pgshadow::report::render_table(&predicted), pgshadow::report::render_markdown(&predicted)] {
        assert!(text.contains(&format!("predicted for production: {said}")), "{text}");
    }
    // The finding says it too: GitHub's annotations show the finding in place of the COMMIT line.
    let finding = predicted.findings.iter().find(|f| f.rule == "fails-at-commit").expect("fails-at-commit");
    assert!(finding.message.contains(&format!("predicted for production: {said}")), "{}", finding.message);

    let mut ratios = Vec::new();
    for plan in ESTIMATED.iter().chain([&HEAVY]) {
        let truth = total(&run(&shadow, plan, &whole, None).await);
        let report = run(&shadow, plan, &synthetic, Some(&profile)).await;
        assert_eq!(report.statements[0].status, Status::Ok, "{plan}: {:?}", report.statements[0].error);
        let estimate = report.estimate.as_ref().unwrap_or_else(|| panic!("{plan}: no estimate"));
        assert_eq!(estimate.basis, EstimateBasis::Synthetic, "{plan}");
        let measured = report.summary.rows_destroyed + report.summary.rows_updated;
        let estimated = total(&report);
        // Beside the estimate, the counts measured on the synthetic rows, and every estimate says what it rests on.
        assert!(measured > 0 && measured < estimated, "{plan}: measured {measured}, estimated {estimated}");
        for e in report.statements[0].table_effects.iter().filter(|e| e.destroyed() != Some(0)) {
            let est = e.estimated.as_ref().unwrap_or_else(|| panic!("{plan}: no estimate for {}", e.table));
            assert!(est.basis == EstimateBasis::Synthetic && est.method.contains("synthesized"), "{plan}: {est:?}");
        }
        let off = off_by(estimated, truth);
        lines
            .push(format!("{plan:<60} truth {truth:>6}  synthetic {estimated:>6} (measured {measured:>5})  {off:.2}x"));
        if *plan == HEAVY {
            assert!(off <= 2.0, "the heavy parent's cascade is {off:.2}x off:\n{}", lines.join("\n"));
        } else {
            ratios.push(off);
        }
    }
    // A rewrite on synthetic rows is judged at production's size, from the profile, not the synthesized rows'.
    let rewrite = run(&shadow, "ALTER TABLE loans ALTER COLUMN returned TYPE text;", &synthetic, Some(&profile)).await;
    let rewritten = rewrite.statements[0].rewritten_tables.first().expect("the type change rewrites loans");
    let size = rewritten.production.as_ref().expect("production's size of the rewritten table");
    assert_eq!(size.rows, Some(40_000), "{size:?}");
    assert!(rewritten.rows.is_some_and(|r| r < 40_000), "the shadow holds synthetic rows: {rewritten:?}");
    shadow.shutdown().await.expect("the shadow stops");
    let median = median(&mut ratios);
    eprintln!("{}\nsynthetic: median {median:.2}x", lines.join("\n"));
    assert!(median <= 1.5, "the synthetic estimates' median is {median:.2}x off:\n{}", lines.join("\n"));
}

/// What no generator can satisfy, and every kind of object that needs care: a CHECK no row passes, a
/// self-referencing foreign key, a partitioned table, a domain, an enum, a generated column, identity and serial.
const ODD: &str = "
CREATE TYPE colour AS ENUM ('red', 'green', 'blue');
CREATE DOMAIN weight AS numeric(6,1) CHECK (VALUE > 0);
CREATE TABLE staff (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, boss_id int REFERENCES staff,
                    colour colour NOT NULL, mass weight, name text NOT NULL,
                    name_length int GENERATED ALWAYS AS (length(name)) STORED);
CREATE TABLE impossible (id serial PRIMARY KEY, v int NOT NULL, CONSTRAINT never CHECK (v > 10 AND v < 5));
CREATE TABLE visits (id bigint NOT NULL, on_day date NOT NULL, staff_id int REFERENCES staff,
                     PRIMARY KEY (id, on_day)) PARTITION BY RANGE (on_day);
CREATE TABLE visits_2024 PARTITION OF visits FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE visits_2025 PARTITION OF visits FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE never_analyzed (id int PRIMARY KEY);
INSERT INTO staff (boss_id, colour, mass, name)
    SELECT NULL, (ARRAY['red', 'green', 'blue'])[1 + g % 3]::colour, 50 + g % 40, 'person ' || g
    FROM generate_series(1, 500) g;
UPDATE staff SET boss_id = 1 + id % 20 WHERE id > 20;
ALTER TABLE impossible DROP CONSTRAINT never;
INSERT INTO impossible (v) SELECT g FROM generate_series(1, 300) g;
ALTER TABLE impossible ADD CONSTRAINT never CHECK (v > 10 AND v < 5) NOT VALID;
INSERT INTO visits SELECT g, DATE '2024-01-01' + g % 700, 1 + g % 500 FROM generate_series(1, 3000) g;
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_of_every_hard_kind_is_synthesized_and_the_fidelity_says_what_was_left_out() {
    let (_source, (schema_only, _, mut profile)) = tokio::task::spawn_blocking(|| {
        let source = source();
        let made = made(&source, "odd", ODD);
        (source, made)
    })
    .await
    .expect("the database is made");
    // Analyzed after the profile's ANALYZE would have been: made statistics-less by hand, as a table created
    // after the last ANALYZE is.
    for table in profile.tables.iter_mut().filter(|t| t.name == "never_analyzed") {
        table.reltuples = None;
        table.analyzed = false;
    }
    // A table the schema does not have.
    let mut ghost = profile.tables[0].clone();
    ghost.name = "ghost".into();
    profile.tables.push(ghost);
    let shadow = Shadow::start_local(&LocalOptions::default()).await.expect("a shadow starts");
    let schema = synthetic(&schema_only, &profile, 2_000);
    let plan = "SELECT count(*) FROM staff WHERE boss_id IS NOT NULL; \
                INSERT INTO staff (colour, name) VALUES ('red', 'new'); \
                DELETE FROM visits WHERE on_day < '2024-07-01';";
    let report = run(&shadow, plan, &schema, Some(&profile)).await;
    let again = run(&shadow, plan, &schema, Some(&profile)).await;
    shadow.shutdown().await.expect("the shadow stops");
    let synthetic = report.shadow.fidelity.synthetic.as_ref().expect("a synthetic section");
    let rows = |table: &str| synthetic.tables.iter().find(|t| t.table == table).map_or(0, |t| t.rows);
    assert!(
        rows("public.staff") > 0 && rows("public.visits_2024") > 0 && rows("public.visits_2025") > 0,
        "{synthetic:#?}"
    );
    let empty = |table: &str| synthetic.empty_tables.iter().find(|t| t.table == table).map(|t| t.reason.clone());
    let impossible = empty("public.impossible").expect("no row passes the CHECK");
    assert!(impossible.contains("never"), "the refusing constraint is named: {impossible}");
    let never = empty("public.never_analyzed").expect("no statistics, no rows");
    assert!(never.contains("never analyzed"), "{never}");
    assert_eq!(synthetic.profile_tables_not_in_schema, ["public.ghost"]);
    // Every statement ran: the identity's sequence is past the generated keys, the partitions hold rows.
    assert!(report.statements.iter().all(|s| s.status == Status::Ok), "{:#?}", report.statements);
    assert!(report.statements[2].table_effects.iter().any(|e| e.deleted.is_some_and(|d| d > 0)));
    // Deterministic: the same seed, the same rows.
    let second = again.shadow.fidelity.synthetic.as_ref().expect("a synthetic section");
    assert_eq!(format!("{:?}", synthetic.tables), format!("{:?}", second.tables));
    assert_eq!(report.statements[2].table_effects.len(), again.statements[2].table_effects.len());
}

#[test]
fn a_budget_of_zero_or_too_large_for_the_time_limit_exits_2() {
    let sandbox = Sandbox::new();
    let (schema, plan, profile) = (sandbox.input("s.sql"), sandbox.input("p.sql"), sandbox.input("profile.json"));
    std::fs::write(&schema, "CREATE TABLE t (id int);").expect("write");
    std::fs::write(&plan, "SELECT 1;").expect("write");
    let text = serde_json::json!({
        "profile_version": 1, "tool_version": "0", "server_version": "15", "database": "d", "values": "keys",
        "catalog_sha256": "", "tables": [], "sequences": []
    });
    std::fs::write(&profile, text.to_string()).expect("write");
    let path = |p: &std::path::Path| p.to_str().expect("UTF-8").to_owned();
    let (schema, plan, profile) = (path(&schema), path(&plan), path(&profile));
    let base = ["run", &plan, "--schema", &schema, "--profile", &profile];
    for (extra, says) in [
        (vec!["--synthesize", "0"], "a budget of 0 rows"),
        (vec!["--synthesize", "90000000", "--timeout", "60"], "--timeout"),
    ] {
        let args: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        let output = sandbox.run(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr_of(&output));
        assert!(stderr_of(&output).contains(says), "{args:?}: {}", stderr_of(&output));
    }
    sandbox.assert_clean();
}
