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

/// Starts a run of `SELECT pg_sleep(60)` on the shadow server and returns once its scratch database is there.
fn slow_run_on(server: &SourceServer, sandbox: &Sandbox, name: &str) -> common::KillOnDrop {
    let plan = sandbox.input(name);
    std::fs::write(&plan, "SELECT pg_sleep(60);").expect("write plan");
    let url = server.url("postgres");
    let before = scratch_databases(server);
    let child = sandbox
        .command(&["run", &plan.to_string_lossy(), "--schema", SCHEMA, "--shadow", "server", "--shadow-url", &url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while scratch_databases(server) == before {
        assert!(std::time::Instant::now() < deadline, "the run made no scratch database");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(1000)); // its plan is under way
    common::KillOnDrop(Some(child))
}

fn scratch_databases(server: &SourceServer) -> String {
    server.psql(
        "postgres",
        "SELECT coalesce(string_agg(datname, ',' ORDER BY datname), '-') FROM pg_database \
         WHERE datname LIKE 'pgshadow_scratch%'",
    )
}

#[test]
fn what_a_run_killed_with_sigkill_left_on_the_shadow_server_is_removed_by_the_next_run_and_nothing_else() {
    let server = SourceServer::start();
    let before = inventory(&server);
    // What an older pgshadow's run (which takes no lock) would have there, alive or not: left alone.
    for sql in [
        "CREATE ROLE pgshadow_plan_0123456789ab LOGIN",
        "CREATE DATABASE pgshadow_scratch_0123456789ab_1",
        "COMMENT ON DATABASE pgshadow_scratch_0123456789ab_1 IS 'pgshadow scratch database of run 0123456789ab'",
    ] {
        server.psql("postgres", sql);
    }
    let older = inventory(&server);
    let sandbox = Sandbox::new();
    let killed = slow_run_on(&server, &sandbox, "killed.sql");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(killed.id() as i32), nix::sys::signal::Signal::SIGKILL)
        .expect("SIGKILL");
    let _ = killed.wait_with_output();
    let left = inventory(&server);
    assert_ne!(left, older, "the killed run left its scratch database and roles");
    // A run that is alive meanwhile keeps what is its own.
    let alive = slow_run_on(&server, &sandbox, "alive.sql");
    let with_alive = inventory(&server);

    let url = server.url("postgres");
    let next = sandbox.run(&["run", PLAN, "--schema", SCHEMA, "--shadow", "server", "--shadow-url", &url]);
    assert_eq!(next.status.code(), Some(1), "{}", stderr_of(&next));
    let after = inventory(&server);
    let killed_run: Vec<&str> =
        left.split([',', '\n']).filter(|n| !older.split([',', '\n']).any(|o| o == *n)).collect();
    assert!(!killed_run.is_empty());
    for name in &killed_run {
        assert!(!after.split([',', '\n']).any(|n| n == *name), "{name} of the killed run is still there: {after}");
    }
    for name in with_alive.split([',', '\n']).filter(|n| !killed_run.contains(n)) {
        assert!(after.split([',', '\n']).any(|n| n == name), "{name} was removed, and it was not the killed run's");
    }

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(alive.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .expect("SIGTERM");
    assert_eq!(alive.wait_with_output().status.code(), Some(143));
    assert_eq!(inventory(&server), older, "the run stopped with SIGTERM removed its own");
    server.psql("postgres", "DROP DATABASE pgshadow_scratch_0123456789ab_1");
    server.psql("postgres", "DROP ROLE pgshadow_plan_0123456789ab");
    assert_eq!(inventory(&server), before);
    sandbox.assert_clean();
}

#[test]
fn a_shadow_server_over_tls_restores_and_measures_and_a_certificate_it_cannot_check_is_refused() {
    let server = SourceServer::start_tls();
    let before = inventory(&server);
    let sandbox = Sandbox::new();
    let archive =
        ["run", "scenarios/archive-with-data/plan.sql", "--snapshot", "scenarios/archive-with-data/snapshot.dump"];
    let run = |params: &str| {
        let url = server.tls_url("postgres", params);
        sandbox.run(&[&archive[..], &["--shadow", "server", "--shadow-url", &url, "-f", "json"]].concat())
    };
    // Checked against the test CA: pg_restore is told the same (PGSSLMODE, PGSSLROOTCERT), or it could not connect.
    let output = run(&format!("sslmode=verify-full&sslrootcert={}", server.ca().display()));
    let report = json_of(&output);
    assert_eq!(report["shadow"]["provider"], "server", "{}", stderr_of(&output));
    assert_eq!(report["shadow"]["schema"]["failed"], 0, "{:#}", report["shadow"]);
    assert!(report["summary"]["rows_destroyed"].as_u64().is_some_and(|n| n > 0), "{:#}", report["summary"]);
    assert_eq!(inventory(&server), before, "the run left something on the shadow server");
    // Against this machine's roots, which do not know the test CA: refused before anything is made there.
    let refused = run("sslmode=verify-full");
    assert_eq!(refused.status.code(), Some(2), "{}", stderr_of(&refused));
    assert!(stderr_of(&refused).contains("certificate"), "{}", stderr_of(&refused));
    assert_eq!(inventory(&server), before);

    // A certificate that does not name the host the URL gives (reached at its address): verify-ca takes it,
    // verify-full does not.
    let ca = server.ca().display().to_string();
    let renamed = |mode: &str| {
        let url = server.tls_url("postgres", &format!("sslmode={mode}&sslrootcert={ca}&hostaddr=127.0.0.1"));
        let url = url.replace("@localhost:", "@pgshadow-test.invalid:");
        sandbox.run(&["run", PLAN, "--schema", SCHEMA, "--shadow", "server", "--shadow-url", &url, "-f", "json"])
    };
    let output = renamed("verify-ca");
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let output = renamed("verify-full");
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("not valid for name"), "{}", stderr_of(&output));
    assert_eq!(inventory(&server), before);
    sandbox.assert_clean();
}
