//! Every plan is treated as hostile. These tests try what a hostile plan would try, on real shadows.

mod common;

use pgshadow::report::Status;
use pgshadow::{DryRunOptions, RunOptions};

const SCHEMA: &str = "
CREATE TABLE accounts (id int PRIMARY KEY, balance numeric NOT NULL DEFAULT 0);
INSERT INTO accounts SELECT g, g * 10 FROM generate_series(1, 25) AS g;
";

/// The SQLSTATE of statement `n` (1-based), asserting it failed.
fn sqlstate(report: &pgshadow::Report, n: usize) -> String {
    let s = &report.statements[n - 1];
    assert_eq!(s.status, Status::Error, "statement {n} should have failed: {s:?}");
    s.error.as_ref().and_then(|e| e.sqlstate.clone()).unwrap_or_default()
}

#[tokio::test]
async fn the_plan_cannot_run_host_programs_even_after_reset_role() {
    let marker = std::env::temp_dir().join(format!("pgshadow-escaped-{}", std::process::id()));
    let plan = format!("RESET ROLE;\nCOPY (SELECT 1) TO PROGRAM 'touch {}';", marker.display());
    let report = common::dry_run(SCHEMA, &plan).await;
    assert_eq!(report.shadow.role, "pgshadow_plan");
    assert!(!report.shadow.superuser);
    assert_eq!(sqlstate(&report, 2), "42501");
    assert!(!marker.exists(), "a program ran on the host");
}

#[tokio::test]
async fn the_plan_cannot_touch_the_measuring_machinery() {
    for attack in [
        "DELETE FROM pgshadow_internal.dropped",
        "ALTER EVENT TRIGGER pgshadow_sql_drop DISABLE",
        "DROP SCHEMA pgshadow_internal CASCADE",
        "CREATE OR REPLACE FUNCTION pgshadow_internal.count_rows(rel oid) RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint'",
        "SET session_replication_role = replica",
    ] {
        let report = common::dry_run(SCHEMA, &format!("{attack};")).await;
        assert_eq!(sqlstate(&report, 1), "42501", "{attack} was allowed");
    }
}

#[tokio::test]
async fn a_search_path_and_lookalike_functions_do_not_fool_the_measurements() {
    let plan = "
        CREATE SCHEMA evil;
        CREATE FUNCTION evil.count_rows(rel oid) RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint';
        CREATE FUNCTION evil.pg_stat_get_xact_tuples_deleted(oid) RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint';
        CREATE TEMP TABLE table_state (x int);
        SET search_path = evil, pg_temp, public, pg_catalog;
        DELETE FROM accounts WHERE id <= 5;
        DROP TABLE accounts;";
    let report = common::dry_run(SCHEMA, plan).await;
    assert!(report.statements.iter().all(|s| s.status == Status::Ok), "{:?}", report.statements);
    assert_eq!(report.statements[5].table_effects[0].deleted, Some(5));
    assert!(report.statements[5].table_effects[0].direct);
    let dropped = &report.statements[6].dropped_objects;
    assert_eq!(dropped.iter().find(|o| o.identity == "public.accounts").and_then(|o| o.rows), Some(20));
}

#[tokio::test]
async fn a_lookalike_operator_on_the_search_path_does_not_hide_a_narrow_foreign_key() {
    // Every smallint = smallint the plan's session resolves says false: a measuring query that compared attnums with
    // an operator found through the plan's search_path would find no column of the new foreign key.
    let plan = "
        CREATE SCHEMA evil;
        CREATE FUNCTION evil.never(smallint, smallint) RETURNS boolean LANGUAGE sql AS 'SELECT false';
        CREATE OPERATOR evil.= (LEFTARG = smallint, RIGHTARG = smallint, FUNCTION = evil.never);
        SET search_path = evil, public, pg_catalog;
        CREATE TABLE big_parent (id bigint PRIMARY KEY);
        CREATE TABLE narrow_child (id bigint PRIMARY KEY, parent_id integer REFERENCES big_parent (id));";
    let report = common::dry_run(SCHEMA, plan).await;
    assert!(report.statements.iter().all(|s| s.status == Status::Ok), "{:?}", report.statements);
    let narrow = &report.statements[5].narrow_foreign_keys;
    assert_eq!(narrow.len(), 1, "{:?}", report.statements[5]);
    assert_eq!((narrow[0].column_type.as_str(), narrow[0].referenced_type.as_str()), ("integer", "bigint"));
}

#[tokio::test]
async fn superuser_is_only_used_when_asked_and_is_reported() {
    let options = DryRunOptions { run: RunOptions { superuser: true, role: None }, ..DryRunOptions::default() };
    let report = common::dry_run_with(SCHEMA, "SET session_replication_role = replica;", &options).await;
    assert_eq!(report.statements[0].status, Status::Ok, "{:?}", report.statements[0].error);
    assert!(report.shadow.superuser);
    assert_eq!(report.shadow.role, "pgshadow_admin");
}

#[tokio::test]
async fn result_rows_are_counted_not_kept() {
    let report = common::dry_run(SCHEMA, "SELECT g, repeat('x', 100) FROM generate_series(1, 200000) AS g;").await;
    assert_eq!(report.statements[0].rows_affected, Some(200_000));
}

#[tokio::test]
async fn nothing_the_plan_does_survives_the_dry_run() {
    let shadow = pgshadow::Shadow::start_local(&Default::default()).await.expect("shadow");
    let schema = pgshadow::Schema::sql("schema.sql", SCHEMA);
    let destroy = pgshadow::Plan::parse("p.sql", "BEGIN; DROP TABLE accounts; COMMIT;").expect("plan");
    let count = pgshadow::Plan::parse("p.sql", "SELECT * FROM accounts;").expect("plan");
    let database = pgshadow::source::load(&shadow, Some(&schema)).await.expect("load");
    let options = RunOptions::default();
    let first = pgshadow::measure::run_plan(&shadow, &database, &destroy, &options).await.expect("run");
    assert_eq!(first.statements[1].dropped_objects[0].rows, Some(25));
    let second = pgshadow::measure::run_plan(&shadow, &database, &count, &options).await.expect("run");
    assert_eq!(second.statements[0].rows_affected, Some(25), "the dropped table came back: the plan was rolled back");
    shadow.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_database_a_plan_committed_into_is_never_dry_run_again() {
    let shadow = pgshadow::Shadow::start_local(&Default::default()).await.expect("shadow");
    let schema = pgshadow::Schema::sql("schema.sql", SCHEMA);
    let database = pgshadow::source::load(&shadow, Some(&schema)).await.expect("load");
    let plan = pgshadow::Plan::parse("p.sql", "CREATE INDEX CONCURRENTLY accounts_balance ON accounts (balance);")
        .expect("plan");
    let first = pgshadow::measure::run_plan(&shadow, &database, &plan, &RunOptions::default()).await.expect("run");
    assert_eq!(first.statements[0].status, Status::Ok, "{:?}", first.statements[0].error);
    let again = pgshadow::measure::run_plan(&shadow, &database, &plan, &RunOptions::default()).await;
    assert!(matches!(again, Err(pgshadow::Error::DatabaseSpoiled(_))), "{again:?}");
    shadow.shutdown().await.expect("shutdown");
}

#[test]
fn the_shadows_directory_and_socket_are_private_while_it_runs() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = common::Sandbox::new();
    let plan = sandbox.input("plan.sql");
    std::fs::write(&plan, "SELECT pg_sleep(2);").expect("write plan");
    let plan = plan.to_string_lossy();
    let args = ["run", &plan, "--schema", "scenarios/seed-incident/schema.sql", "--no-cache"];
    let child = common::spawn_until_plan_runs(&sandbox, &args);
    let dirs: Vec<_> = std::fs::read_dir(sandbox.path()).expect("sandbox").flatten().map(|e| e.path()).collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let mode = std::fs::metadata(&dirs[0]).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the directory holding the server's socket must be private, not {mode:o}");
    assert!(dirs[0].join(".s.PGSQL.5432").exists(), "the socket is in the private directory");
    let output = child.wait_with_output();
    assert_eq!(output.status.code(), Some(0));
    sandbox.assert_clean();
}
