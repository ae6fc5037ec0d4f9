//! Failing closed on empty shadows, on real servers: a database with data and cascades across several schemas is
//! dumped schema-only and whole. On the schema-only dump every destructive plan fails and its counts are unknown
//! (null, `rows_known` false), never 0; on the whole dump the same plans give exact counts, checked against the
//! source itself.

mod common;

use common::{json_of, stderr_of, Sandbox, SourceServer};
use serde_json::{json, Value};

/// Two schemas of a shop and one of operations: crm.customers <- sales.orders <- sales.order_lines (ON DELETE
/// CASCADE, two levels), crm.notes (ON DELETE SET NULL), and ops.events with no foreign key at all.
const SHOP: &str = "
CREATE SCHEMA crm; CREATE SCHEMA sales; CREATE SCHEMA ops;
CREATE TABLE crm.customers (id int PRIMARY KEY, email text);
CREATE TABLE crm.notes (id int PRIMARY KEY, customer_id int REFERENCES crm.customers ON DELETE SET NULL, body text);
CREATE TABLE sales.orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES crm.customers ON DELETE CASCADE);
CREATE TABLE sales.order_lines (id int PRIMARY KEY, order_id int NOT NULL REFERENCES sales.orders ON DELETE CASCADE);
CREATE TABLE ops.events (id int PRIMARY KEY, kind text);
INSERT INTO crm.customers SELECT g, 'c' || g || '@example.com' FROM generate_series(1, 30) g;
INSERT INTO crm.notes SELECT g, 1 + g % 3, 'n' FROM generate_series(1, 12) g;
INSERT INTO sales.orders SELECT g, 1 + g % 30 FROM generate_series(1, 90) g;
INSERT INTO sales.order_lines SELECT g, 1 + g % 90 FROM generate_series(1, 450) g;
INSERT INTO ops.events SELECT g, 'e' FROM generate_series(1, 77) g;
";

/// Destructive plans, with what each destroys or changes in the source (counted there with psql below).
const PLANS: [&str; 6] = [
    "TRUNCATE ops.events;",
    "DROP TABLE ops.events;",
    "DELETE FROM sales.order_lines;",
    "UPDATE crm.notes SET body = '';",
    "DELETE FROM crm.customers WHERE id = 1;",
    "ALTER TABLE crm.customers DROP COLUMN email;",
];

fn write(sandbox: &Sandbox, name: &str, text: &str) -> String {
    let path = sandbox.input(name);
    std::fs::write(&path, text).expect("write input");
    path.display().to_string()
}

/// `pg_dump` of the source's `shop`, plain SQL, into the sandbox.
fn dump(source: &SourceServer, sandbox: &Sandbox, name: &str, args: &[&str]) -> String {
    let path = sandbox.input(name).display().to_string();
    let output = std::process::Command::new("pg_dump")
        .args(args)
        .args(["--no-owner", "-f", &path, &source.url("shop")])
        .output()
        .expect("run pg_dump");
    assert!(output.status.success(), "pg_dump: {}", String::from_utf8_lossy(&output.stderr));
    path
}

fn run(sandbox: &Sandbox, args: &[&str]) -> (Option<i32>, Value) {
    let output = sandbox.run(args);
    assert_ne!(output.status.code(), Some(2), "{}", stderr_of(&output));
    (output.status.code(), json_of(&output))
}

fn effect<'a>(report: &'a Value, table: &str) -> &'a Value {
    let effects = report["statements"][0]["table_effects"].as_array().expect("table_effects");
    effects.iter().find(|e| e["table"] == table).unwrap_or_else(|| panic!("no effect on {table}: {report}"))
}

#[test]
fn a_schema_only_dump_fails_every_destructive_plan_with_unknown_counts_and_the_data_gives_exact_ones() {
    let source = SourceServer::start();
    source.psql("postgres", "CREATE DATABASE shop");
    source.psql("shop", SHOP);
    let sandbox = Sandbox::new();
    let schema_only = dump(&source, &sandbox, "schema.sql", &["--schema-only"]);
    let with_data = dump(&source, &sandbox, "full.sql", &[]);

    for (i, sql) in PLANS.iter().enumerate() {
        let plan = write(&sandbox, &format!("plan{i}.sql"), sql);
        let (code, report) = run(&sandbox, &["run", &plan, "--schema", &schema_only, "--format", "json"]);
        assert_eq!(code, Some(1), "{sql} must fail on the schema-only dump: {}", report["findings"]);
        assert_eq!(report["summary"]["rows_known"], false, "{sql}");
        assert!(!report["summary"]["unknown_tables"].as_array().expect("list").is_empty(), "{sql}");
        let text = sandbox.run(&["run", &plan, "--schema", &schema_only]);
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(
            text.contains("the shadow has no rows for") && text.contains("production's count is unknown"),
            "{text}"
        );

        let (code, report) = run(&sandbox, &["run", &plan, "--schema", &with_data, "--format", "json"]);
        assert_eq!(code, Some(1), "{sql} destroys rows");
        if i > 0 {
            // From the cached template, which remembers that the source carried its rows.
            assert_eq!(report["shadow"]["cache"]["template_reused"], true, "{}", report["shadow"]);
        }
        assert_eq!(report["summary"]["rows_known"], true, "{sql}: {}", report["summary"]);
        assert_eq!(report["summary"]["unknown_tables"], json!([]), "{sql}");
    }

    // The numbers, on the schema-only dump: unknown. On the whole one: as the source counts them.
    let cascade = write(&sandbox, "cascade.sql", PLANS[4]);
    let (_, unknown) = run(&sandbox, &["run", &cascade, "--schema", &schema_only, "--format", "json"]);
    for (table, field) in [
        ("crm.customers", "deleted"),
        ("sales.orders", "deleted"),
        ("sales.order_lines", "deleted"),
        ("crm.notes", "updated"),
    ] {
        let e = effect(&unknown, table);
        assert_eq!((&e[field], &e["rows_known"]), (&Value::Null, &json!(false)), "{table}: {e}");
    }
    let paths: Vec<(&str, &str, usize)> = unknown["statements"][0]["cascade_paths"]
        .as_array()
        .expect("cascade_paths")
        .iter()
        .map(|p| (p["table"].as_str().unwrap(), p["action"].as_str().unwrap(), p["path"].as_array().unwrap().len()))
        .collect();
    assert_eq!(
        paths,
        [("crm.notes", "set null", 2), ("sales.orders", "delete", 2), ("sales.order_lines", "delete", 3)]
    );
    let findings: Vec<&str> =
        unknown["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
    assert!(findings.contains(&"cascade-delete") && findings.contains(&"unknown-row-count"), "{findings:?}");

    let (_, exact) = run(&sandbox, &["run", &cascade, "--schema", &with_data, "--format", "json"]);
    let orders = source.psql("shop", "SELECT count(*) FROM sales.orders WHERE customer_id = 1");
    let lines = source.psql(
        "shop",
        "SELECT count(*) FROM sales.order_lines WHERE order_id IN (SELECT id FROM sales.orders WHERE customer_id = 1)",
    );
    let notes = source.psql("shop", "SELECT count(*) FROM crm.notes WHERE customer_id = 1");
    assert_eq!(effect(&exact, "crm.customers")["deleted"], 1);
    assert_eq!(effect(&exact, "sales.orders")["deleted"].to_string(), orders);
    assert_eq!(effect(&exact, "sales.order_lines")["deleted"].to_string(), lines);
    assert_eq!(effect(&exact, "crm.notes")["updated"].to_string(), notes);
    assert_eq!(exact["statements"][0]["cascade_paths"], json!([]), "known rows need no paths: they were measured");

    let truncate = write(&sandbox, "truncate.sql", PLANS[0]);
    let (_, exact) = run(&sandbox, &["run", &truncate, "--schema", &with_data, "--format", "json"]);
    assert_eq!(exact["summary"]["rows_truncated"].to_string(), source.psql("shop", "SELECT count(*) FROM ops.events"));
    sandbox.assert_clean();
}

#[test]
fn a_live_schema_without_rows_is_unknown_and_a_filtered_delete_warns_with_unknown_row_count() {
    let source = SourceServer::start();
    source.psql("postgres", "CREATE DATABASE shop");
    source.psql("shop", SHOP);
    let sandbox = Sandbox::new();
    let url = source.url("shop");

    // --from-url without --with-data: an archive with no TABLE DATA.
    let filtered = write(&sandbox, "filtered.sql", "DELETE FROM ops.events WHERE id < 5;");
    let (code, report) = run(&sandbox, &["run", &filtered, "--from-url", &url, "--format", "json"]);
    assert_eq!((code, &report["verdict"]), (Some(0), &json!("warn")), "{}", report["findings"]);
    let rules: Vec<&str> = report["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, ["unknown-row-count"]);
    let message = report["findings"][0]["message"].as_str().unwrap();
    assert!(message.contains("--sample, --snapshot or --with-data"), "{message}");
    assert_eq!(effect(&report, "ops.events")["deleted"], Value::Null);

    let drop = write(&sandbox, "drop.sql", "DROP TABLE ops.events;");
    let (code, report) = run(&sandbox, &["run", &drop, "--from-url", &url, "--format", "json"]);
    assert_eq!(code, Some(1));
    let dropped = &report["statements"][0]["dropped_objects"][0];
    assert_eq!(
        (&dropped["identity"], &dropped["rows"], &dropped["rows_known"]),
        (&json!("ops.events"), &Value::Null, &json!(false))
    );

    // With the rows: the same DELETE is measured, and passes.
    let (code, report) = run(&sandbox, &["run", &filtered, "--from-url", &url, "--with-data", "--format", "json"]);
    assert_eq!((code, &report["verdict"]), (Some(0), &json!("pass")), "{}", report["findings"]);
    assert_eq!(effect(&report, "ops.events")["deleted"], 4);
    sandbox.assert_clean();
}

#[tokio::test]
async fn a_measuring_query_that_fails_makes_the_counts_unknown_and_the_plan_fail() {
    // The plan's own statement_timeout cancels pgshadow's count of the values of the column it drops.
    let schema = "CREATE TABLE big AS SELECT g, g AS h FROM generate_series(1, 300000) AS g;";
    let plan = "SET statement_timeout = '1ms';\nALTER TABLE big DROP COLUMN h;\nSELECT 1;";
    let report = common::dry_run(schema, plan).await;
    let failed: Vec<_> = report.statements.iter().filter(|s| s.measure_error.is_some()).collect();
    assert_eq!(failed.len(), 1, "{:?}", report.statements);
    let failed = failed[0];
    assert!(failed.measure_error.as_deref().is_some_and(|e| e.contains("57014")), "{:?}", failed.measure_error);
    assert!(!failed.rows_known && !report.summary.rows_known);
    assert_eq!(report.statements.last().map(|s| s.status), Some(pgshadow::report::Status::NotRun));
    assert_eq!(report.verdict, pgshadow::Verdict::Fail);
    assert!(report.findings.iter().any(|f| f.rule == "measure-error" && f.statement == Some(failed.index)));
}

#[tokio::test]
async fn data_dependent_steps_on_a_table_of_unknown_size_warn_and_on_a_known_one_do_not() {
    let steps = "ALTER TABLE t ALTER COLUMN c SET NOT NULL;\n\
                 ALTER TABLE t ADD CONSTRAINT t_c_positive CHECK (c > 0);\n\
                 CREATE UNIQUE INDEX t_c_key ON t (c);\n\
                 ALTER TABLE t ALTER COLUMN c TYPE smallint;";
    let report = common::dry_run("CREATE TABLE t (id int PRIMARY KEY, c int);", steps).await;
    let warned: Vec<Option<usize>> =
        report.findings.iter().filter(|f| f.rule == "unknown-row-count").map(|f| f.statement).collect();
    assert_eq!(warned, [Some(1), Some(2), Some(3), Some(4)], "{:?}", report.findings);
    assert!(report.findings.iter().all(|f| f.severity == pgshadow::report::Severity::Warning));

    let known = "CREATE TABLE t (id int PRIMARY KEY, c int);\nINSERT INTO t VALUES (1, 5), (2, 6);";
    let report = common::dry_run(known, steps).await;
    assert!(report.findings.iter().all(|f| f.rule != "unknown-row-count"), "{:?}", report.findings);
    assert!(report.summary.rows_known && report.summary.unknown_tables.is_empty());
}

/// What the shadow would count from a table's rows is unknown for a table it holds none of, not 0 or false: values
/// too long for a shorter varchar, whether a type change changed values, the bytes a rewrite rewrites. And a column
/// added NOT NULL with nothing to fill the rows with, which fails on production's first row, is warned about.
#[tokio::test]
async fn what_rows_would_show_on_a_table_of_unknown_size_is_unknown_and_an_unfilled_not_null_column_warns() {
    let schema = "CREATE TABLE people (id bigint PRIMARY KEY, email text, score numeric);";
    let plan = "ALTER TABLE people ALTER COLUMN email TYPE varchar(20), ALTER COLUMN score TYPE integer;\n\
                ALTER TABLE people ADD COLUMN born date NOT NULL;\n\
                ALTER TABLE people ADD COLUMN n bigint NOT NULL GENERATED ALWAYS AS IDENTITY;";
    let report = common::dry_run(schema, plan).await;
    let retyped = &report.statements[0];
    assert!(retyped.values_too_long.is_empty(), "nothing counted: {:?}", retyped.values_too_long);
    let changed: Vec<(&str, Option<bool>)> =
        retyped.column_changes.iter().map(|c| (c.column.as_str(), c.values_changed)).collect();
    assert_eq!(changed, [("public.people.email", None), ("public.people.score", None)], "{changed:?}");
    let rewritten: Vec<(Option<u64>, Option<u64>)> =
        retyped.rewritten_tables.iter().map(|r| (r.rows, r.size_bytes)).collect();
    assert_eq!(rewritten, [(None, None)]);
    let warned: Vec<(Option<usize>, bool)> = report
        .findings
        .iter()
        .filter(|f| f.rule == "unknown-row-count")
        .map(|f| (f.statement, f.message.contains("NOT NULL without a default")))
        .collect();
    assert_eq!(warned, [(Some(1), false), (Some(2), true)], "{:?}", report.findings);

    // With rows, the same counts are known.
    let rows = format!("{schema}\nINSERT INTO people VALUES (1, 'someone.with.a.long.address@example.com', 2.5);");
    let report = common::dry_run(&rows, "ALTER TABLE people ALTER COLUMN score TYPE integer;").await;
    let retyped = &report.statements[0];
    assert_eq!(retyped.column_changes[0].values_changed, Some(true), "2.5 became 3");
    assert!(retyped.rewritten_tables[0].size_bytes.is_some_and(|b| b > 0));
}

/// An UPDATE of a key that `ON UPDATE CASCADE` or `SET NULL` foreign keys reference changes rows in the tables
/// referencing it, which on a shadow without rows are unknown too; an UPDATE of other columns reaches nothing.
#[tokio::test]
async fn an_update_of_a_referenced_key_reaches_the_referencing_tables_of_unknown_size() {
    let schema = "CREATE TABLE currencies (code text PRIMARY KEY, name text);
CREATE TABLE prices (id int PRIMARY KEY, currency text REFERENCES currencies ON UPDATE CASCADE);
CREATE TABLE price_notes (price_id int, currency text, FOREIGN KEY (currency) REFERENCES currencies ON UPDATE SET NULL);
CREATE TABLE quotes (id int PRIMARY KEY, price_id int REFERENCES prices ON UPDATE CASCADE);
CREATE TABLE rates (code text PRIMARY KEY, note text);
CREATE TABLE rate_history (code text REFERENCES rates ON UPDATE CASCADE);
CREATE FUNCTION upper_code() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.code := upper(NEW.code); RETURN NEW; END $$;
CREATE TRIGGER rates_upper BEFORE UPDATE ON rates FOR EACH ROW EXECUTE FUNCTION upper_code();";
    let plan = "UPDATE currencies SET code = 'EUR' WHERE code = 'DEM';\nUPDATE currencies SET name = 'Euro';\n\
                UPDATE rates SET note = 'checked';";
    let report = common::dry_run(schema, plan).await;
    let reached = |i: usize| -> Vec<(String, String)> {
        report.statements[i].cascade_paths.iter().map(|p| (p.table.clone(), p.action.clone())).collect()
    };
    // quotes references prices' id, which the cascade does not change: not reached.
    let expected = [("public.price_notes", "set null"), ("public.prices", "update")];
    assert_eq!(reached(0), expected.map(|(t, a)| (t.to_owned(), a.to_owned())));
    assert!(reached(1).is_empty(), "no key changes: {:?}", reached(1));
    // A BEFORE UPDATE trigger may change the key whatever the statement sets.
    assert_eq!(reached(2), [("public.rate_history".to_owned(), "update".to_owned())]);
    let unknown = &report.statements[0].unknown_tables;
    assert!(unknown.iter().any(|t| t == "public.prices") && !unknown.iter().any(|t| t == "public.quotes"));
    let finding = report.findings.iter().find(|f| f.rule == "unknown-row-count" && f.statement == Some(1));
    assert!(finding.is_some_and(|f| f.message.contains("UPDATE reaches public.prices")), "{:?}", report.findings);
    assert!(report.findings.iter().all(|f| f.rule != "cascade-delete"), "{:?}", report.findings);
}

/// A DELETE on a table of unknown size that a NO ACTION or RESTRICT foreign key refuses where a row is still
/// referenced: the shadow cannot show whether one is, and says which keys could refuse it; with the rows it shows the
/// refusal itself.
#[tokio::test]
async fn a_delete_that_a_restricting_foreign_key_may_refuse_names_the_key() {
    let schema = "CREATE TABLE accounts (id int PRIMARY KEY);
CREATE TABLE invoices (id int PRIMARY KEY, account_id int REFERENCES accounts);
CREATE TABLE audits (id int PRIMARY KEY, account_id int REFERENCES accounts ON DELETE RESTRICT);
CREATE TABLE sessions (id int PRIMARY KEY, account_id int REFERENCES accounts ON DELETE CASCADE);";
    let report = common::dry_run(schema, "DELETE FROM accounts WHERE id = 5;").await;
    let keys: Vec<(&str, &str)> =
        report.statements[0].restricting_keys.iter().map(|k| (k.table.as_str(), k.action.as_str())).collect();
    assert_eq!(keys, [("public.audits", "restrict"), ("public.invoices", "no action")]);
    let paths: Vec<&str> = report.statements[0].cascade_paths.iter().map(|p| p.table.as_str()).collect();
    assert_eq!(paths, ["public.sessions"], "a refusing key deletes nothing");
    let finding = report.findings.iter().find(|f| f.rule == "unknown-row-count").expect("unknown-row-count");
    assert!(finding.message.contains("public.invoices references public.accounts"), "{}", finding.message);

    // With the rows, the shadow shows the refusal: no key to name.
    let rows = format!("{schema}\nINSERT INTO accounts VALUES (5);\nINSERT INTO invoices VALUES (1, 5);");
    let report = common::dry_run(&rows, "DELETE FROM accounts WHERE id = 5;").await;
    let statement = &report.statements[0];
    assert_eq!(statement.error.as_ref().and_then(|e| e.sqlstate.as_deref()), Some("23503"), "{statement:?}");
    assert!(statement.restricting_keys.is_empty());
}

#[tokio::test]
async fn a_dump_whose_data_failed_to_load_knows_no_empty_table() {
    // pg_dump's form: a COPY block for every table, b's empty. When every block loads, b is known to be empty.
    let dump = |a_rows: &str| {
        format!(
            "CREATE TABLE a (id int PRIMARY KEY);\nCREATE TABLE b (id int);\n\
             COPY a (id) FROM stdin;\n{a_rows}\\.\nCOPY b (id) FROM stdin;\n\\.\n"
        )
    };
    let report = common::dry_run(&dump("1\n2\n"), "DELETE FROM b;").await;
    assert!(report.summary.rows_known, "{:?}", report.summary);
    assert_eq!(report.verdict, pgshadow::Verdict::Warn, "{:?}", report.findings);

    // a's rows fail to load (a duplicate key): the shadow's empty tables say nothing about the source any more.
    let report = common::dry_run(&dump("1\n1\n"), "DELETE FROM b;").await;
    assert_eq!(report.shadow.fidelity.warnings.len(), 1, "{:?}", report.shadow.fidelity);
    assert!(!report.summary.rows_known);
    assert_eq!(report.summary.unknown_tables, ["public.b"]);
    assert_eq!(report.verdict, pgshadow::Verdict::Fail, "{:?}", report.findings);
}
