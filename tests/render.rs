//! The rendered reports, pinned with insta: a change in output is a reviewed snapshot diff, not a surprise.
//! Durations and the server's version string are normalised in the model before rendering.

mod common;

use pgshadow::report::{render_json, render_table};
use pgshadow::Report;

async fn scenario(name: &str) -> Report {
    let dir = common::root().join("scenarios").join(name);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("scenario file");
    let mut report = common::dry_run(&read("schema.sql"), &read("plan.sql")).await;
    normalise(&mut report);
    report
}

/// Replaces what differs from run to run and machine to machine.
fn normalise(report: &mut Report) {
    let version = format!("PostgreSQL {}", report.shadow.version);
    for d in &mut report.disagreements {
        d.measured = d.measured.replace(&version, "PostgreSQL [version]");
    }
    report.tool_version = "[version]".into();
    report.shadow.server_version = "[server version]".into();
    report.shadow.version = "[version]".into();
    report.shadow.binaries = "[binaries]".into();
    let summaries = std::iter::once(&mut report.summary).chain(report.plan.files.iter_mut().map(|f| &mut f.summary));
    for summary in summaries {
        summary.duration_ms = 0.0;
        if let Some(lock) = &mut summary.longest_exclusive_lock {
            lock.held_ms = 0.0;
        }
    }
    for s in &mut report.statements {
        s.duration_ms = s.duration_ms.map(|_| 0.0);
    }
}

#[tokio::test]
async fn seed_incident_table() {
    insta::assert_snapshot!(render_table(&scenario("seed-incident").await));
}

#[tokio::test]
async fn seed_incident_json() {
    insta::assert_snapshot!(render_json(&scenario("seed-incident").await));
}

#[tokio::test]
async fn typo_stops_plan_table() {
    insta::assert_snapshot!(render_table(&scenario("typo-stops-plan").await));
}

#[tokio::test]
async fn cascade_delete_table() {
    insta::assert_snapshot!(render_table(&scenario("cascade-delete-two-levels").await));
}

#[tokio::test]
async fn seed_incident_markdown() {
    insta::assert_snapshot!(pgshadow::report::render_markdown(&scenario("seed-incident").await));
}

#[tokio::test]
async fn typo_stops_plan_github() {
    insta::assert_snapshot!(pgshadow::report::render_github(&scenario("typo-stops-plan").await));
}

#[tokio::test]
async fn cascade_delete_markdown() {
    insta::assert_snapshot!(pgshadow::report::render_markdown(&scenario("cascade-delete-two-levels").await));
}

#[tokio::test]
async fn cascade_delete_html() {
    // One tag a line, so that a change reads as a diff of lines.
    let html = pgshadow::report::render_html(&scenario("cascade-delete-two-levels").await);
    insta::assert_snapshot!(html.replace("><", ">\n<"));
}

#[tokio::test]
async fn schema_only_table_markdown_and_github() {
    let report = scenario("schema-only-delete").await;
    insta::assert_snapshot!(render_table(&report));
    insta::assert_snapshot!(pgshadow::report::render_markdown(&report));
    insta::assert_snapshot!(pgshadow::report::render_github(&report));
}

#[tokio::test]
async fn disagreements_table_and_markdown() {
    let mut report = common::dry_run(
        "CREATE TABLE t (id int PRIMARY KEY, v varchar(10));\nINSERT INTO t VALUES (1, 'a');",
        "SET lock_timeout = '2s';\nALTER TABLE t ALTER COLUMN v TYPE varchar(50);\nCREATE TABLE fresh (id int);\n\
         CREATE INDEX fresh_id ON fresh (id);\nTRUNCATE fresh;",
    )
    .await;
    normalise(&mut report);
    insta::assert_snapshot!(render_table(&report));
    insta::assert_snapshot!(pgshadow::report::render_markdown(&report));
    let html = pgshadow::report::render_html(&report);
    assert!(html.contains("<section id=\"disagreements\">") && html.contains("nothing truncated"), "{html}");
}

#[tokio::test]
async fn deferred_fails_at_commit_table_markdown_and_github() {
    let report = scenario("deferred-fails-at-commit").await;
    insta::assert_snapshot!(render_table(&report));
    insta::assert_snapshot!(pgshadow::report::render_markdown(&report));
    insta::assert_snapshot!(pgshadow::report::render_github(&report));
}
