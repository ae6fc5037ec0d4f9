//! Keeping a cached cluster warm between runs (`PGSHADOW_KEEP_WARM`): a later run reaches the running cluster and
//! a fresh clone; nothing a plan did survives into the next run; the supervisor stops when idle and leaves nothing
//! running; a killed supervisor is recovered from; runs at the same time each get a clone of their own. Every test
//! sets a short idle time and stops what it started.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{json_of, pids_mentioning, processes_mentioning, stderr_of, Sandbox};
use serde_json::Value;

const SCHEMA: &str = "CREATE TABLE t (id integer PRIMARY KEY, note text);
INSERT INTO t SELECT g, 'n' || g FROM generate_series(1, 5) AS g;
CREATE SEQUENCE s;
";

fn write(sandbox: &Sandbox, name: &str, text: &str) -> String {
    let path = sandbox.input(name);
    std::fs::write(&path, text).expect("write input");
    path.to_string_lossy().into_owned()
}

/// `pgshadow run PLAN --schema SCHEMA --format json` with the cluster kept warm for `idle`.
fn run(sandbox: &Sandbox, plan: &str, schema: &str, idle: &str) -> Output {
    sandbox
        .command(&["run", plan, "--schema", schema, "--format", "json", "-q"])
        .env("PGSHADOW_KEEP_WARM", idle)
        .output()
        .expect("run pgshadow")
}

/// Writes the schema and a plan of `plan`, and makes the first run, which fills the cache and leaves a supervisor
/// idling for `idle`: the schema's path, the plan's, and the first run's report.
fn first_run(sandbox: &Sandbox, plan: &str, idle: &str) -> (String, String, Value) {
    let schema = write(sandbox, "schema.sql", SCHEMA);
    let plan = write(sandbox, "plan.sql", &format!("{plan}\n"));
    let first = report(&run(sandbox, &plan, &schema, idle));
    (schema, plan, first)
}

fn report(output: &Output) -> Value {
    assert!(matches!(output.status.code(), Some(0 | 1)), "{}", stderr_of(output));
    json_of(output)
}

/// The pids of the keep-warm supervisors of this sandbox's cache.
fn supervisors(sandbox: &Sandbox) -> Vec<u32> {
    let cache = format!("{}", sandbox.cache().display());
    pids_mentioning("keep-warm")
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(&cache))
        })
        .collect()
}

/// Waits until nothing runs from the sandbox or its cache (the supervisor and its server).
fn wait_until_gone(sandbox: &Sandbox, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left: Vec<String> = [sandbox.path(), sandbox.cache()]
            .iter()
            .flat_map(|dir| processes_mentioning(&format!("{}/", dir.display())))
            .collect();
        if left.is_empty() && supervisors(sandbox).is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "still running: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends SIGTERM to the sandbox's supervisors, and SIGCONT, for one a test stopped (SIGSTOP) and did not resume.
fn terminate_supervisors(sandbox: &Sandbox) {
    for pid in supervisors(sandbox) {
        let pid = nix::unistd::Pid::from_raw(pid as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
    }
}

/// Stops the sandbox's supervisors (SIGTERM) and waits for them and their servers to be gone.
fn stop_supervisors(sandbox: &Sandbox) {
    terminate_supervisors(sandbox);
    wait_until_gone(sandbox, Duration::from_secs(30));
}

/// The cached cluster's slot directory a report names.
fn slot_of(report: &Value) -> PathBuf {
    PathBuf::from(report["shadow"]["cache"]["cluster"].as_str().expect("a cached run names its cluster"))
}

/// The pid of the server running in a slot's cluster.
fn server_pid(slot: &Path) -> Option<String> {
    let text = std::fs::read_to_string(slot.join("data").join("postmaster.pid")).ok()?;
    text.lines().next().map(str::to_owned)
}

/// A summary without its timing.
fn measured(summary: &Value) -> Value {
    let mut summary = summary.clone();
    summary.as_object_mut().expect("a summary").remove("duration_ms");
    summary
}

fn statuses(report: &Value) -> Vec<String> {
    report["statements"]
        .as_array()
        .expect("statements")
        .iter()
        .map(|s| s["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Stops the supervisors even when the test fails half-way.
struct StopOnDrop<'a>(&'a Sandbox);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        terminate_supervisors(self.0);
    }
}

#[test]
fn a_later_run_reaches_the_warm_cluster_and_nothing_a_plan_did_survives() {
    let sandbox = Sandbox::new();
    let _stop = StopOnDrop(&sandbox);
    let schema = write(&sandbox, "schema.sql", SCHEMA);
    // Everything here would be visible to a later run if the run's database were used again: a table, a row, a
    // sequence step, a table made by dynamic SQL in a DO block, then a DO block that tries to commit (refused: the
    // plan stops there).
    let hostile = write(
        &sandbox,
        "hostile.sql",
        "CREATE TABLE leftover (id integer);\n\
         INSERT INTO t VALUES (100, 'planted');\n\
         SELECT nextval('s');\n\
         DO $$ BEGIN EXECUTE 'CREATE TABLE from_do (id integer)'; END $$;\n\
         DO $$ BEGIN INSERT INTO t VALUES (101, 'committed?'); COMMIT; END $$;\n",
    );
    let first = report(&run(&sandbox, &hostile, &schema, "20s"));
    assert_eq!(first["shadow"]["cache"]["template_reused"], false, "{first}");
    assert_eq!(statuses(&first), ["ok", "ok", "ok", "ok", "error"], "{first}");
    assert_eq!(supervisors(&sandbox).len(), 1, "the run leaves one supervisor");
    let slot = slot_of(&first);
    let server = server_pid(&slot).expect("the supervisor runs the cached cluster's server");

    // The same hostile plan again, on the running cluster: it must find nothing of the first run's.
    let second = report(&run(&sandbox, &hostile, &schema, "20s"));
    assert_eq!(statuses(&second), ["ok", "ok", "ok", "ok", "error"], "{second}");
    assert_eq!(second["shadow"]["cache"]["template_reused"], true, "{second}");
    assert_eq!(slot_of(&second), slot);
    assert_eq!(server_pid(&slot).as_deref(), Some(server.as_str()), "the second run used the running server");
    assert_eq!(measured(&second["summary"]), measured(&first["summary"]), "a warm clone measures the same");

    // What the first run planted is not there: no extra row (the table still has its 5), no tables.
    let check = write(
        &sandbox,
        "check.sql",
        "DELETE FROM t WHERE id > 0;\nCREATE TABLE leftover (id integer);\nCREATE TABLE from_do (id integer);\n",
    );
    let third = report(&run(&sandbox, &check, &schema, "20s"));
    assert_eq!(statuses(&third), ["ok", "ok", "ok"], "{third}");
    assert_eq!(third["summary"]["rows_deleted"], 5, "{third}");
    assert_eq!(server_pid(&slot).as_deref(), Some(server.as_str()));

    // Two runs at the same time: each gets a clone of its own, and both measure the same.
    let spawn = || {
        sandbox
            .command(&["run", &check, "--schema", &schema, "--format", "json", "-q"])
            .env("PGSHADOW_KEEP_WARM", "20s")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn pgshadow")
    };
    let (a, b) = (spawn(), spawn());
    for output in [a.wait_with_output().expect("wait"), b.wait_with_output().expect("wait")] {
        let report = report(&output);
        assert_eq!(report["summary"]["rows_deleted"], 5, "{report}");
        assert_eq!(statuses(&report), ["ok", "ok", "ok"], "{report}");
    }
    assert_eq!(supervisors(&sandbox).len(), 1, "one supervisor for the cluster");

    stop_supervisors(&sandbox);
    assert!(slot.join("clean").exists(), "a supervisor stopped by SIGTERM leaves the cluster clean for the next run");
    sandbox.assert_clean();
}

#[test]
fn an_idle_supervisor_stops_its_cluster_and_leaves_nothing_running() {
    let sandbox = Sandbox::new();
    let _stop = StopOnDrop(&sandbox);
    let (schema, plan, first) = first_run(&sandbox, "DELETE FROM t WHERE id <= 2;", "1s");
    assert_eq!(first["summary"]["rows_deleted"], 2, "{first}");
    assert_eq!(supervisors(&sandbox).len(), 1, "the run leaves one supervisor");
    wait_until_gone(&sandbox, Duration::from_secs(30));
    sandbox.assert_clean();
    assert!(slot_of(&first).join("clean").exists(), "an idle stop keeps the cluster for the next run");
    // The next run starts the cached cluster again, as without a supervisor.
    let again = report(&run(&sandbox, &plan, &schema, "1s"));
    assert_eq!(again["summary"]["rows_deleted"], 2, "{again}");
    assert_eq!(again["shadow"]["cache"]["template_reused"], true, "{again}");
    wait_until_gone(&sandbox, Duration::from_secs(30));
    sandbox.assert_clean();
}

#[test]
fn a_killed_supervisor_is_recovered_from() {
    let sandbox = Sandbox::new();
    let _stop = StopOnDrop(&sandbox);
    let (schema, plan, first) = first_run(&sandbox, "DELETE FROM t WHERE id <= 3;", "30s");
    let slot = slot_of(&first);
    let pids = supervisors(&sandbox);
    assert_eq!(pids.len(), 1, "the run leaves one supervisor");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pids[0] as i32), nix::sys::signal::Signal::SIGKILL)
        .expect("kill the supervisor");
    // Its server goes with it (the parent-death signal); its socket and pid file stay behind, stale, and so does
    // its private directory, which a later run sweeps once it is a minute old (as for any killed run).
    wait_until_gone(&sandbox, Duration::from_secs(30));
    let killed: Vec<PathBuf> =
        std::fs::read_dir(sandbox.path()).expect("sandbox").flatten().map(|e| e.path()).collect();
    assert_eq!(killed.len(), 1, "{killed:?}");
    assert!(!slot.join("clean").exists(), "a killed supervisor's cluster is not marked clean");
    let second = report(&run(&sandbox, &plan, &schema, "30s"));
    assert_eq!(second["summary"]["rows_deleted"], 3, "{second}");
    // The unclean cluster was rebuilt: the template was loaded again.
    assert_eq!(second["shadow"]["cache"]["template_reused"], false, "{second}");
    assert_eq!(supervisors(&sandbox).len(), 1, "the recovered run leaves a new supervisor");
    let third = report(&run(&sandbox, &plan, &schema, "30s"));
    assert_eq!(third["summary"]["rows_deleted"], 3, "{third}");
    assert_eq!(third["shadow"]["cache"]["template_reused"], true, "{third}");
    stop_supervisors(&sandbox);
    // Only the killed supervisor's directory is left, and nothing holds it: the sweep of killed runs removes it.
    let left: Vec<PathBuf> = std::fs::read_dir(sandbox.path()).expect("sandbox").flatten().map(|e| e.path()).collect();
    assert_eq!(left, killed);
    let alive = std::fs::File::options().write(true).open(killed[0].join("pgshadow.alive")).expect("its lock file");
    let free = nix::fcntl::Flock::lock(alive, nix::fcntl::FlockArg::LockExclusiveNonblock);
    assert!(free.is_ok(), "no process holds the killed supervisor's directory");
    drop(free);
    std::fs::remove_dir_all(&killed[0]).expect("remove the killed supervisor's directory");
    sandbox.assert_clean();
}

#[test]
fn the_supervisor_runs_a_later_plan_in_a_session_it_opened_before_the_run_asked() {
    let sandbox = Sandbox::new();
    let _stop = StopOnDrop(&sandbox);
    let (schema, _, first) = first_run(&sandbox, "DELETE FROM t WHERE id <= 2;", "20s");
    assert_eq!(first["summary"]["rows_deleted"], 2, "{first}");
    // The spare clone's session is opened while no run waits: before this run starts. On a loaded machine the spare
    // may not be ready after the pause; the run then waits for it, and the next attempt pauses longer.
    let probe = write(
        &sandbox,
        "probe.sql",
        "DELETE FROM t WHERE id <= 3;\n\
         DO $$ BEGIN RAISE EXCEPTION 'session opened at % ms', \
         (extract(epoch FROM (SELECT backend_start FROM pg_catalog.pg_stat_activity \
         WHERE pid = pg_catalog.pg_backend_pid())) * 1000)::bigint; END $$;\n",
    );
    let mut seen = Vec::new();
    for attempt in 1..=3u64 {
        std::thread::sleep(Duration::from_millis(1500 * attempt));
        let asked = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
        let second = report(&run(&sandbox, &probe, &schema, "20s"));
        assert_eq!(second["summary"]["rows_deleted"], 3, "measured as on a lent clone: {second}");
        assert_eq!(second["statements"][0]["table_effects"][0]["direct"], true, "{second}");
        let message = second["statements"][1]["error"]["message"].as_str().unwrap_or_default().to_owned();
        let opened: u128 = message.split_whitespace().nth(3).and_then(|n| n.parse().ok()).unwrap_or(u128::MAX);
        seen.push(message);
        if opened < asked {
            break;
        }
        assert!(attempt < 3, "the plan ran in the supervisor's warm session, not one the run opened: {seen:?}");
    }
    stop_supervisors(&sandbox);
    sandbox.assert_clean();
}

#[test]
fn a_run_handed_to_a_stopped_supervisor_runs_cold_and_the_supervisor_runs_nothing_for_it() {
    let sandbox = Sandbox::new();
    let _stop = StopOnDrop(&sandbox);
    let (schema, plan, first) = first_run(&sandbox, "DELETE FROM t WHERE id <= 2;", "60s");
    let slot = slot_of(&first);
    let server = server_pid(&slot).expect("the supervisor runs the cached cluster's server");
    let pids = supervisors(&sandbox);
    assert_eq!(pids.len(), 1, "the run leaves one supervisor");
    let stopped = nix::unistd::Pid::from_raw(pids[0] as i32);
    nix::sys::signal::kill(stopped, nix::sys::signal::Signal::SIGSTOP).expect("stop the supervisor");
    // Without an acknowledgement to wait for, the run waited for the stopped supervisor until its time limit.
    let started = Instant::now();
    let cold = sandbox
        .command(&["run", &plan, "--schema", &schema, "--format", "json", "-q", "--timeout", "60"])
        .env("PGSHADOW_KEEP_WARM", "60s")
        .output()
        .expect("run pgshadow");
    let waited = started.elapsed();
    nix::sys::signal::kill(stopped, nix::sys::signal::Signal::SIGCONT).expect("resume the supervisor");
    let cold = report(&cold);
    assert_eq!(cold["summary"]["rows_deleted"], 2, "{cold}");
    assert!(waited < Duration::from_secs(60), "the run fell back before its time limit: {waited:?}");
    assert_ne!(slot_of(&cold), slot, "the cold run had a cluster of its own, not the stopped supervisor's: {cold}");

    // Resumed, the supervisor finds the run gone: it runs nothing for it (a run it started for a client that left
    // would discard its cluster and stop it), and serves the next run on its cluster as before. The pause gives it
    // time to read the run that left: a supervisor that ran it would be stopping by then, not serving.
    std::thread::sleep(Duration::from_millis(1500));
    let warm = report(&run(&sandbox, &plan, &schema, "60s"));
    assert_eq!(warm["summary"]["rows_deleted"], 2, "{warm}");
    assert_eq!(slot_of(&warm), slot, "the resumed supervisor serves the next run: {warm}");
    assert_eq!(server_pid(&slot).as_deref(), Some(server.as_str()), "on its running server");
    assert!(supervisors(&sandbox).contains(&pids[0]), "the resumed supervisor still runs");
    stop_supervisors(&sandbox);
    assert!(slot.join("clean").exists(), "the resumed supervisor did not discard its cluster");
    sandbox.assert_clean();
}

/// The databases of the cluster running in `slot`, read as its bootstrap superuser over its socket.
fn databases(slot: &Path) -> Vec<String> {
    let pid_file = std::fs::read_to_string(slot.join("data").join("postmaster.pid")).expect("a running cluster");
    let socket_dir = pid_file.lines().nth(4).expect("postmaster.pid names the socket directory");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let mut config = tokio_postgres::Config::new();
        config.host_path(socket_dir).port(5432).user("pgshadow_admin").dbname("postgres");
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.expect("connect as the admin");
        tokio::spawn(connection);
        let rows = client.query("SELECT datname::text FROM pg_catalog.pg_database", &[]).await.expect("list");
        rows.iter().map(|r| r.get(0)).collect()
    })
}

/// The clone a warm run's plan ran in: its login role is `pgshadow_run_<supervisor>_<clone>`.
fn clone_of(role: &str) -> String {
    role[role.rfind("shadow_").expect("a warm run's clone role")..].to_owned()
}

/// Waits until `clone` is gone from the cluster in `slot`; how long that took.
fn dropped_within(slot: &Path, clone: &str, within: Duration) -> Duration {
    let started = Instant::now();
    while databases(slot).iter().any(|d| d == clone) {
        assert!(started.elapsed() < within, "the run's clone {clone} was never dropped");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

#[test]
fn the_supervisor_drops_a_runs_clone_once_the_run_hangs_up_not_while_it_finishes() {
    let sandbox = Sandbox::new();
    let _stop = StopOnDrop(&sandbox);
    let (schema, plan, first) = first_run(&sandbox, "DELETE FROM t WHERE id <= 2;", "20s");
    let slot = slot_of(&first);
    // A CLI run holds its connection until its process exits: its clone goes soon after, well within the 2 s the
    // supervisor waits for a run that does not hang up.
    let second = report(&run(&sandbox, &plan, &schema, "20s"));
    let clone = clone_of(second["shadow"]["role"].as_str().expect("a role"));
    let took = dropped_within(&slot, &clone, Duration::from_secs(15));
    assert!(took < Duration::from_millis(1500), "{clone} dropped {took:?} after the run exited");
    // A run in this process that holds its connection, as the CLI does: the supervisor leaves its clone (and the next
    // one's CREATE DATABASE) while the run goes on, and drops it after 2 s.
    pgshadow::shadow::warm::hold_until_exit();
    let mut options = pgshadow::DryRunOptions::default();
    options.shadow.postgres.builds = Some(sandbox.cache().to_path_buf());
    let keep_warm = pgshadow::shadow::warm::KeepWarm {
        idle: Duration::from_secs(20),
        program: PathBuf::from(env!("CARGO_BIN_EXE_pgshadow")),
    };
    options.shadow.cache =
        Some(pgshadow::CacheOptions { keep_warm: Some(keep_warm), ..pgshadow::CacheOptions::new(sandbox.cache()) });
    let plan = pgshadow::Plan::read(&plan).expect("plan");
    let schema = pgshadow::Schema::read(&schema).expect("schema");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let third = runtime.block_on(pgshadow::dry_run(&plan, Some(&schema), &options)).expect("a warm run");
    assert_eq!(third.summary.rows_deleted, 2);
    let clone = clone_of(&third.shadow.role);
    std::thread::sleep(Duration::from_millis(300));
    let there = databases(&slot);
    assert!(there.contains(&clone), "{clone} dropped while the run still held its connection: {there:?}");
    dropped_within(&slot, &clone, Duration::from_secs(15));
    stop_supervisors(&sandbox);
    sandbox.assert_clean();
}
