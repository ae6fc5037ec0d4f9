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
