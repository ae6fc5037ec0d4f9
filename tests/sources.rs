//! Sources: what does not load is reported and the rest still loads; archives are told apart by content.

mod common;

use common::{json_of, stderr_of, Sandbox};

fn write(sandbox: &Sandbox, name: &str, text: &str) -> String {
    let path = sandbox.input(name);
    std::fs::write(&path, text).expect("write input");
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn a_refused_copy_does_not_stop_the_load_or_lose_its_settings() {
    // The COPY into a missing table is refused before any data flows; the load must go on, on a connection that
    // still has the dump's search_path.
    let schema = "CREATE SCHEMA app;\nSET search_path = app;\nCOPY nosuch (a) FROM stdin;\n1\n\\.\n\
                  CREATE TABLE after_copy (a int);\n";
    let report = common::dry_run(schema, "INSERT INTO app.after_copy VALUES (1);").await;
    let warnings = &report.shadow.fidelity.warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].sqlstate.as_deref(), Some("42P01"));
    assert_eq!(report.statements[0].status, pgshadow::report::Status::Ok, "{:?}", report.statements[0].error);
}

#[tokio::test]
async fn a_plan_whose_copy_is_refused_gets_a_statement_error() {
    let report = common::dry_run("CREATE TABLE t (a int);", "COPY t (nosuch) FROM stdin;\n1\n\\.\nSELECT 1;").await;
    assert_eq!(report.statements[0].status, pgshadow::report::Status::Error);
    assert_eq!(report.statements[0].error.as_ref().and_then(|e| e.sqlstate.as_deref()), Some("42703"));
    assert_eq!(report.statements[1].status, pgshadow::report::Status::NotRun);
    assert_eq!(report.verdict, pgshadow::Verdict::Fail);
}

#[test]
fn an_archive_is_recognised_by_content_whatever_its_name() {
    let sandbox = Sandbox::new();
    let renamed = sandbox.input("backup.sql");
    std::fs::copy(common::root().join("scenarios/archive-with-data/snapshot.dump"), &renamed).expect("copy");
    let plan = write(&sandbox, "plan.sql", "SELECT count(*) FROM customers;");
    let output = sandbox.run(&["run", &plan, "--schema", &renamed.to_string_lossy(), "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let report = json_of(&output);
    assert_eq!(report["shadow"]["fidelity"]["objects_in_source"], 28);
    assert_eq!(report["statements"][0]["rows_affected"], 1);
    sandbox.assert_clean();
}

#[test]
fn a_compressed_or_broken_source_is_exit_2_naming_it() {
    let sandbox = Sandbox::new();
    let plan = write(&sandbox, "plan.sql", "SELECT 1;");
    let gzipped = sandbox.input("schema.sql.gz");
    std::fs::write(&gzipped, b"\x1f\x8b\x08\x00rest").expect("write");
    let output = sandbox.run(&["run", &plan, "--snapshot", &gzipped.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("gzip-compressed"), "{}", stderr_of(&output));

    let archive = std::fs::read(common::root().join("scenarios/archive-with-data/snapshot.dump")).expect("read");
    let cut = sandbox.input("cut.dump");
    std::fs::write(&cut, &archive[..archive.len() / 3]).expect("write");
    let output = sandbox.run(&["run", &plan, "--snapshot", &cut.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("cut.dump"), "{}", stderr_of(&output));
    sandbox.assert_clean();
}

#[test]
fn strict_schema_refuses_a_shadow_that_lost_objects_to_a_missing_extension() {
    let sandbox = Sandbox::new();
    let output = sandbox.run(&[
        "run",
        "scenarios/missing-extension/plan.sql",
        "--schema",
        "scenarios/missing-extension/schema.sql",
        "--strict-schema",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("extension \"postgis\" is not available"), "{}", stderr_of(&output));
    sandbox.assert_clean();
}

#[test]
fn a_live_database_is_cloned_read_only_and_the_plan_runs_under_the_agents_role() {
    let source = common::SourceServer::start();
    source.psql("postgres", "CREATE DATABASE shop");
    source.psql(
        "shop",
        "CREATE ROLE app; CREATE ROLE agent; CREATE TABLE customers (id int PRIMARY KEY, email text); \
         ALTER TABLE customers OWNER TO app; GRANT SELECT, DELETE ON customers TO agent; \
         INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 10) g; \
         CREATE TABLE audit (id int); ALTER TABLE audit OWNER TO app;",
    );
    let sandbox = Sandbox::new();
    let plan = write(&sandbox, "plan.sql", "DELETE FROM customers WHERE id <= 3;\nDROP TABLE audit;");
    let url = source.url("shop");

    // Schema only: the table is there, empty.
    let schema_only = json_of(&sandbox.run(&["run", &plan, "--from-url", &url, "--format", "json"]));
    assert_eq!(schema_only["statements"][0]["rows_affected"], 0);
    assert_eq!(schema_only["shadow"]["fidelity"]["warnings"], serde_json::json!([]));

    // With the rows, as the agent: its DELETE is measured, and its DROP is refused as it would be in production.
    let output = sandbox.run(&["run", &plan, "--from-url", &url, "--with-data", "--role", "agent", "--format", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let report = json_of(&output);
    assert_eq!(report["shadow"]["role"], "agent");
    assert_eq!(report["statements"][0]["rows_affected"], 3);
    assert_eq!(report["statements"][1]["error"]["sqlstate"], "42501", "{report}");
    // The source is untouched.
    assert_eq!(source.psql("shop", "SELECT count(*) FROM customers"), "10");
    sandbox.assert_clean();
}

#[test]
fn a_password_in_the_source_url_never_reaches_the_output() {
    let sandbox = Sandbox::new();
    let plan = write(&sandbox, "plan.sql", "SELECT 1;");
    let output = sandbox.run(&["run", &plan, "--from-url", "postgresql://app:hunter2@/nosuchdb?host=/nonexistent"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("app:***@") && !stderr.contains("hunter2"), "{stderr}");
    sandbox.assert_clean();
}

#[test]
fn a_sample_keeps_every_foreign_key_and_scales_its_counts_to_an_estimate() {
    let source = common::SourceServer::start();
    source.psql("postgres", "CREATE DATABASE shop");
    source.psql(
        "shop",
        "CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL);
         CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers ON DELETE CASCADE);
         CREATE TABLE lines (id serial PRIMARY KEY, order_id int NOT NULL REFERENCES orders ON DELETE CASCADE, qty int);
         INSERT INTO customers (email) SELECT 'c' || g FROM generate_series(1, 400) g;
         INSERT INTO orders (customer_id) SELECT 1 + g % 400 FROM generate_series(1, 2000) g;
         INSERT INTO lines (order_id, qty) SELECT 1 + g % 2000, g % 4 FROM generate_series(1, 8000) g;",
    );
    let sandbox = Sandbox::new();
    // Fails if any sampled row lacks the row its foreign key references; the INSERT needs the sequences set.
    let plan = write(
        &sandbox,
        "plan.sql",
        "DO $$ BEGIN IF EXISTS (SELECT FROM lines l WHERE NOT EXISTS (SELECT FROM orders o WHERE o.id = l.order_id)) \
         OR EXISTS (SELECT FROM orders o WHERE NOT EXISTS (SELECT FROM customers c WHERE c.id = o.customer_id)) \
         THEN RAISE EXCEPTION 'dangling'; END IF; END $$;\n\
         INSERT INTO customers (email) VALUES ('new');\n\
         DELETE FROM lines WHERE qty = 0;",
    );
    // The estimate (about 2000 lines) is over the limit even though the sample's count is not.
    let policy = write(&sandbox, "policy.toml", "[limits]\nmax-rows-deleted = 1500\n");
    let url = source.url("shop");
    let output =
        sandbox.run(&["run", &plan, "--from-url", &url, "--sample", "25", "--policy", &policy, "--format", "json"]);
    let report = json_of(&output);
    for (i, statement) in report["statements"].as_array().expect("statements").iter().enumerate() {
        assert_eq!(statement["status"], "ok", "statement {}: {statement}", i + 1);
    }
    assert_eq!(report["shadow"]["sample"]["percent"], 25.0);
    let measured = report["summary"]["rows_deleted"].as_u64().expect("measured");
    assert!((300..=700).contains(&measured), "a 25% sample of 2000 rows: {measured}");
    // Each table is scaled by its own rows in the source over the rows the shadow holds of it: for lines, which
    // nothing references, the rows sampled.
    let sampled = report["shadow"]["sample"]["tables"].as_array().expect("sampled tables");
    let lines = sampled.iter().find(|t| t["table"] == "public.lines").expect("lines was sampled");
    assert_eq!((lines["source_rows"].as_u64(), lines["closure"].as_u64()), (Some(8000), Some(0)), "{lines}");
    let lines_sampled = lines["sampled"].as_u64().expect("sampled rows");
    let orders = sampled.iter().find(|t| t["table"] == "public.orders").expect("orders was sampled");
    assert!(orders["closure"].as_u64().is_some_and(|c| c > 0), "lines reference orders the sample lacks: {orders}");
    let scales = report["estimate"]["tables"].as_array().expect("per-table scales");
    let scale = scales.iter().find(|t| t["table"] == "public.lines").expect("a scale for lines")["scale"]
        .as_f64()
        .expect("a number");
    assert!((scale - 8000.0 / lines_sampled as f64).abs() < 1e-9, "{scale}");
    assert_eq!(report["estimate"]["basis"], "sample");
    let estimated = (measured as f64 * scale).round() as u64;
    assert_eq!(report["estimate"]["rows_deleted"], estimated);
    assert!((1500..=2500).contains(&estimated), "about 2000 lines have qty 0: {estimated}");
    let finding = &report["findings"][0];
    assert_eq!(finding["rule"], "max-rows-deleted", "{report}");
    assert_eq!(finding["measured"], estimated);
    assert!(finding["message"].as_str().is_some_and(|m| m.contains("estimated")), "{finding}");
    assert_eq!(output.status.code(), Some(1));
    sandbox.assert_clean();
}

#[test]
fn on_a_sample_the_rewrite_and_lock_limits_judge_the_source_size_not_the_sampled_rows() {
    let source = common::SourceServer::start();
    source.psql("postgres", "CREATE DATABASE metrics");
    source.psql(
        "metrics",
        "CREATE TABLE readings (sensor smallint NOT NULL, at timestamptz NOT NULL, value real, \
         PRIMARY KEY (sensor, at)); \
         INSERT INTO readings SELECT g % 50, now() - g * interval '1 minute', g / 7.0 \
         FROM generate_series(1, 30000) g; ANALYZE readings;",
    );
    let sandbox = Sandbox::new();
    // A rewrite under an ACCESS EXCLUSIVE lock; a 4% sample holds about 1,200 of the 30,000 rows.
    let plan = write(&sandbox, "plan.sql", "ALTER TABLE readings ALTER COLUMN value TYPE double precision;");
    let policy = write(
        &sandbox,
        "policy.toml",
        "[limits]\nmax-rows-rewritten = 10000\nmax-bytes-rewritten = 800000\nmax-rows-locked-exclusive = 20000\n",
    );
    let url = source.url("metrics");
    let output =
        sandbox.run(&["run", &plan, "--from-url", &url, "--sample", "4", "--policy", &policy, "--format", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let report = json_of(&output);
    let rewritten = &report["statements"][0]["rewritten_tables"][0];
    assert!(rewritten["rows"].as_u64().is_some_and(|r| r < 10000), "the shadow rewrote the sample: {rewritten}");
    let production = &rewritten["production"];
    assert_eq!(
        (production["rows"].as_u64(), production["basis"].as_str()),
        (Some(30000), Some("sample")),
        "{rewritten}"
    );
    let bytes: i64 = source
        .psql("metrics", "SELECT pg_table_size('readings') + pg_indexes_size('readings')")
        .parse()
        .expect("a size");
    let measured = |rule: &str| {
        let found = report["findings"].as_array().expect("findings").iter().find(|f| f["rule"] == rule).cloned();
        found.unwrap_or_else(|| panic!("no {rule} finding: {report}"))
    };
    assert_eq!(measured("max-rows-rewritten")["measured"], 30000);
    assert_eq!(measured("max-rows-locked-exclusive")["measured"], 30000);
    // The source's rows are its statistics' when the sample was taken, not an estimate made from the sample.
    let over_rows = measured("max-rows-rewritten")["message"].as_str().unwrap_or_default().to_owned();
    let said = "30,000 rows in the source, estimated from its statistics (reltuples) when the sample was taken";
    assert!(over_rows.contains(said) && !over_rows.contains("from a sample"), "{over_rows}");
    let rewrite = measured("table-rewrite")["message"].as_str().unwrap_or_default().to_owned();
    assert!(rewrite.contains("K rows in the source, estimated from its statistics (reltuples)"), "{rewrite}");
    let over_bytes = measured("max-bytes-rewritten");
    assert_eq!(over_bytes["measured"].as_i64(), Some(bytes), "{over_bytes}");
    assert!(over_bytes["message"].as_str().is_some_and(|m| m.contains("in the source")), "{over_bytes}");
    sandbox.assert_clean();
}

#[test]
fn a_sample_over_tls_is_encrypted_as_sslmode_asks_and_checks_the_certificate_when_told() {
    let source = common::SourceServer::start_tls();
    source.psql("postgres", "CREATE DATABASE shop");
    source.psql("shop", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100);");
    let sandbox = Sandbox::new();
    let plan = write(&sandbox, "plan.sql", "DELETE FROM t WHERE id <= 10;");
    let run = |params: &str| {
        let url = source.tls_url("shop", params);
        sandbox.run(&["run", &plan, "--from-url", &url, "--sample", "100", "--format", "json"])
    };
    // The server takes TLS connections only: without TLS (and pg_dump told the same through the URL) it refuses.
    let refused = run("sslmode=disable");
    assert_eq!(refused.status.code(), Some(2), "{}", stderr_of(&refused));
    assert!(stderr_of(&refused).contains("no encryption"), "{}", stderr_of(&refused));
    for params in
        ["sslmode=require", "sslmode=prefer", &format!("sslmode=verify-full&sslrootcert={}", source.ca().display())]
    {
        let output = run(params);
        assert_eq!(output.status.code(), Some(0), "{params}: {}", stderr_of(&output));
        let report = json_of(&output);
        assert_eq!(report["summary"]["rows_deleted"], 10, "{params}");
        assert_eq!(report["shadow"]["sample"]["rows_copied"], 100, "{params}");
    }
    // A database that asks for a client certificate: pg_dump and the sampler both present it.
    source.psql("postgres", "CREATE DATABASE certdb");
    source.psql("certdb", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100);");
    let (cert, key) = source.client();
    let url = source.tls_url("certdb", &format!("sslmode=require&sslcert={}&sslkey={}", cert.display(), key.display()));
    let output = sandbox.run(&["run", &plan, "--from-url", &url, "--sample", "100", "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(json_of(&output)["shadow"]["sample"]["rows_copied"], 100);
    let url = source.tls_url("certdb", &format!("sslmode=require&sslcert={}", cert.display()));
    let output = sandbox.run(&["run", &plan, "--from-url", &url, "--sample", "100"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    // verify-full checks the certificate against this machine's roots, which do not know the test CA.
    let unknown = run("sslmode=verify-full");
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr_of(&unknown));
    assert!(stderr_of(&unknown).to_lowercase().contains("certificate"), "{}", stderr_of(&unknown));
    sandbox.assert_clean();
}
