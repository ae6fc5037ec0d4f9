//! The `server` provider: scratch databases on a shadow server the test starts (standing in for a team's server).
//! A run leaves nothing behind there, and measures what the local provider measures.

mod common;

use common::{json_of, stderr_of, Sandbox, SourceServer};

const SCHEMA: &str = "scenarios/seed-incident/schema.sql";
const PLAN: &str = "scenarios/seed-incident/plan.sql";

/// Databases and pgshadow roles on the server, as one comparable string.
fn inventory(server: &SourceServer) -> String {
    server.psql(
        "postgres",
        "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database \
         UNION ALL SELECT coalesce(string_agg(rolname, ','), '-') FROM pg_roles WHERE rolname LIKE 'pgshadow%'",
    )
}

#[test]
fn a_run_on_a_shadow_server_measures_like_a_local_one_and_leaves_nothing() {
    let server = SourceServer::start();
    server.psql("postgres", "CREATE DATABASE production_lookalike");
    let before = inventory(&server);
    let sandbox = Sandbox::new();
    let url = server.url("postgres");
    let remote =
        sandbox.run(&["run", PLAN, "--schema", SCHEMA, "--shadow", "server", "--shadow-url", &url, "-f", "json"]);
    let local = sandbox.run(&["run", PLAN, "--schema", SCHEMA, "--no-cache", "-f", "json"]);
    assert_eq!(remote.status.code(), Some(1), "{}", stderr_of(&remote));
    let (remote, local) = (json_of(&remote), json_of(&local));
    assert_eq!(remote["shadow"]["provider"], "server");
    assert!(remote["shadow"]["role"].as_str().is_some_and(|r| r.starts_with("pgshadow_plan_")), "{remote}");
    for field in ["verdict", "summary"] {
        let (mut r, mut l) = (remote[field].clone(), local[field].clone());
        for v in [&mut r, &mut l] {
            if let Some(summary) = v.as_object_mut() {
                summary.remove("duration_ms");
                summary.remove("longest_exclusive_lock");
            }
        }
        assert_eq!(r, l, "{field}");
    }
    assert_eq!(remote["statements"][0]["dropped_objects"].as_array().map(Vec::len), Some(9));
    assert_eq!(inventory(&server), before, "the run left something on the shadow server");
    sandbox.assert_clean();
}

#[test]
fn a_run_stopped_by_its_timeout_still_cleans_the_shadow_server() {
    let server = SourceServer::start();
    let before = inventory(&server);
    let sandbox = Sandbox::new();
    let plan = sandbox.input("sleep.sql");
    std::fs::write(&plan, "SELECT pg_sleep(30);").expect("write plan");
    let url = server.url("postgres");
    let output = sandbox.run(&[
        "run",
        &plan.to_string_lossy(),
        "--schema",
        SCHEMA,
        "--shadow",
        "server",
        "--shadow-url",
        &url,
        "--timeout",
        "3",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert_eq!(inventory(&server), before, "the stopped run left something on the shadow server");
}

#[test]
fn a_shadow_url_that_is_not_a_superuser_is_refused() {
    let server = SourceServer::start();
    server.psql("postgres", "CREATE ROLE reader LOGIN");
    let sandbox = Sandbox::new();
    let url = server.url("postgres").replace("postgres@", "reader@");
    let output = sandbox.run(&["run", PLAN, "--schema", SCHEMA, "--shadow", "server", "--shadow-url", &url]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("is not a superuser"), "{}", stderr_of(&output));
    let without = sandbox.run(&["run", PLAN, "--schema", SCHEMA, "--shadow", "server"]);
    assert_eq!(without.status.code(), Some(2));
    assert!(stderr_of(&without).contains("needs --shadow-url"), "{}", stderr_of(&without));
}
