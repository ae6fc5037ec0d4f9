//! The binary as a user meets it: exit codes, errors that name file:line:column, standard input, `--output`,
//! and that no run leaves a server or a directory behind — on success, on error, on a timeout and on SIGTERM.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{json_of, stderr_of, Sandbox};

const SCHEMA: &str = "scenarios/seed-incident/schema.sql";

fn write(sandbox: &Sandbox, name: &str, text: &str) -> String {
    let path = sandbox.input(name);
    std::fs::write(&path, text).expect("write input");
    path.to_string_lossy().into_owned()
}

#[test]
fn a_missing_plan_file_is_exit_2_naming_it() {
    let sandbox = Sandbox::new();
    let output = sandbox.run(&["run", "no/such/plan.sql", "--schema", SCHEMA]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("error: no/such/plan.sql: "), "{}", stderr_of(&output));
    assert!(output.stdout.is_empty(), "no report on a tool error");
    sandbox.assert_clean();
}

#[test]
fn a_malformed_json_plan_is_exit_2_with_line_and_column() {
    let sandbox = Sandbox::new();
    let plan = write(&sandbox, "json", "{\n  \"agent\": \"a\",\n  \"statements\": [\"SELECT 1\" \"SELECT 2\"]\n}\n");
    let output = sandbox.run(&["run", &plan, "--schema", SCHEMA]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(stderr.contains(&format!("error: {plan}:3:29: invalid JSON plan")), "{stderr}");
    sandbox.assert_clean();
}

#[test]
fn a_shell_meta_command_is_refused_at_its_line_before_anything_starts() {
    let sandbox = Sandbox::new();
    let plan = write(&sandbox, "sql", "SELECT 1;\n\\! touch /tmp/pgshadow-owned\n");
    let output = sandbox.run(&["run", &plan, "--schema", SCHEMA]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains(&format!("{plan}:2:1: psql meta-command \\! is not supported")));
    assert!(!std::path::Path::new("/tmp/pgshadow-owned").exists());
    sandbox.assert_clean();
}

#[test]
fn no_postgres_binaries_is_exit_2_with_install_advice() {
    let sandbox = Sandbox::new();
    let output =
        sandbox.run(&["run", "scenarios/seed-incident/plan.sql", "--schema", SCHEMA, "--pg-bin", "/nonexistent"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("no PostgreSQL server binaries found (looked in: /nonexistent)"), "{stderr}");
    assert!(stderr.contains("hint: install the PostgreSQL server"), "{stderr}");
    sandbox.assert_clean();
}

#[test]
fn a_plan_on_stdin_is_dry_run_and_its_verdict_is_the_exit_code() {
    let sandbox = Sandbox::new();
    let mut child = sandbox
        .command(&["run", "-", "--schema", SCHEMA, "--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(b"SELECT 1;\nSELECT 2;\n").expect("write plan");
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let report = json_of(&output);
    assert_eq!(report["plan"]["source"], "-");
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["statements"][1]["rows_affected"], 1);
    sandbox.assert_clean();
}

#[test]
fn output_goes_whole_to_the_file_and_nothing_to_stdout() {
    let sandbox = Sandbox::new();
    let out = sandbox.input("report.json");
    let output = sandbox.run(&[
        "run",
        "scenarios/seed-incident/plan.sql",
        "--schema",
        SCHEMA,
        "--format",
        "json",
        "--output",
        &out.to_string_lossy(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    assert!(output.stdout.is_empty());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("report")).expect("json");
    assert_eq!(report["verdict"], "fail");
    sandbox.assert_clean();
}

#[test]
fn strict_schema_turns_a_load_failure_into_exit_2() {
    let sandbox = Sandbox::new();
    let schema = write(&sandbox, "schema.sql", "CREATE TABLE t (id int);\n\nCREATE TABLE u (id nosuchtype);\n");
    let plan = write(&sandbox, "plan.sql", "SELECT 1;");
    let lenient = sandbox.run(&["run", &plan, "--schema", &schema, "--format", "json"]);
    assert_eq!(lenient.status.code(), Some(0), "{}", stderr_of(&lenient));
    let warnings = &json_of(&lenient)["shadow"]["fidelity"]["warnings"];
    assert_eq!(warnings[0]["line"], 3);
    assert_eq!(warnings[0]["column"], 20);
    assert_eq!(warnings[0]["sqlstate"], "42704");

    let strict = sandbox.run(&["run", &plan, "--schema", &schema, "--strict-schema"]);
    assert_eq!(strict.status.code(), Some(2));
    assert!(stderr_of(&strict).contains("1 statement(s) of the schema"), "{}", stderr_of(&strict));
    assert!(stderr_of(&strict).contains("3:20: type \"nosuchtype\" does not exist"), "{}", stderr_of(&strict));
    sandbox.assert_clean();
}

#[test]
fn a_run_past_its_timeout_is_stopped_with_exit_2_and_cleaned_up() {
    let sandbox = Sandbox::new();
    let plan = write(&sandbox, "plan.sql", "SELECT pg_sleep(60);");
    let started = Instant::now();
    let output = sandbox.run(&["run", &plan, "--schema", SCHEMA, "--timeout", "3"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("did not finish within 3s"), "{}", stderr_of(&output));
    assert!(started.elapsed() < Duration::from_secs(30), "the timeout did not stop the run");
    sandbox.assert_clean();
}

#[test]
fn sigterm_mid_run_removes_the_shadow_and_exits_143() {
    let sandbox = Sandbox::new();
    let plan = write(&sandbox, "plan.sql", "SELECT pg_sleep(60);");
    // Wait until the shadow's server runs a backend for the plan role, then a little longer for the plan.
    let child = common::spawn_until_plan_runs(&sandbox, &["run", &plan, "--schema", SCHEMA]);
    std::thread::sleep(Duration::from_millis(300));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let output = child.wait_with_output();
    assert_eq!(output.status.code(), Some(143), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("interrupted by SIGTERM"));
    assert!(output.stdout.is_empty(), "no half report");
    sandbox.assert_clean();
}

#[test]
fn help_teaches_with_examples_and_exit_codes() {
    let sandbox = Sandbox::new();
    let output = sandbox.run(&["run", "--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("pgshadow run plan.sql --schema schema.sql"), "{help}");
    assert!(
        help.contains("Exit codes: 0 pass (or warn), 1 fail (or warn with --fail-on warn), 2 could not dry-run"),
        "{help}"
    );
}

#[test]
fn output_to_a_device_or_a_link_writes_through_it_and_never_replaces_it() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let sandbox = Sandbox::new();
    let plan = write(&sandbox, "plan.sql", "SELECT 1;");
    let target = sandbox.input("real.json");
    std::fs::write(&target, "old").expect("write");
    let link = sandbox.input("link.json");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let fifo = sandbox.input("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).expect("read the fifo"))
    };
    let fresh = sandbox.input("new.json");
    let output = sandbox.run(&[
        "run",
        &plan,
        "--schema",
        SCHEMA,
        "-f",
        "json",
        "-o",
        &link.to_string_lossy(),
        "-f",
        "json",
        "-o",
        &fifo.to_string_lossy(),
        "-f",
        "json",
        "-o",
        &fresh.to_string_lossy(),
        "-f",
        "json",
        "-o",
        "/dev/null",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(std::fs::symlink_metadata(&link).expect("link").file_type().is_symlink(), "the link was replaced");
    assert!(std::fs::read_to_string(&target).expect("target").contains("\"verdict\""), "not written through the link");
    assert!(reader.join().expect("reader").contains("\"verdict\""), "not written into the fifo");
    assert!(std::fs::symlink_metadata(&fifo).expect("fifo").file_type().is_fifo(), "the fifo was replaced");
    assert!(std::fs::metadata("/dev/null").expect("/dev/null").file_type().is_char_device(), "/dev/null was replaced");
    let mode = std::fs::metadata(&fresh).expect("new report").permissions().mode() & 0o777;
    assert_ne!(mode, 0o600, "a new report follows the umask, not the temporary file's mode");
    sandbox.assert_clean();
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    let sandbox = Sandbox::new();
    let mut child = sandbox.command(&["rules"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait");
    assert!(!stderr_of(&output).contains("panicked"), "{}", stderr_of(&output));
}

#[test]
fn as_root_binaries_the_servers_os_user_cannot_reach_are_a_clear_error() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: only as root does the server run as another OS user");
        return;
    }
    let Some(installed) = common::installations().into_iter().next() else { panic!("no PostgreSQL to test with") };
    // A directory only root may enter, holding a copy of real binaries: as a user's build under /root would be.
    let sandbox = Sandbox::new();
    let private = tempfile::Builder::new().prefix("pgshadow-test-private-").tempdir().expect("temp dir");
    std::fs::set_permissions(private.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
    std::fs::create_dir(private.path().join("bin")).expect("mkdir");
    for program in ["initdb", "postgres", "pg_ctl"] {
        std::fs::copy(installed.binaries.dir.join(program), private.path().join("bin").join(program)).expect("copy");
    }
    // A relocatable build finds its libraries and share/ beside bin/.
    let prefix = installed.binaries.dir.parent().expect("a prefix");
    for sibling in ["lib", "share"] {
        if prefix.join(sibling).is_dir() {
            std::os::unix::fs::symlink(prefix.join(sibling), private.path().join(sibling)).expect("link");
        }
    }
    let bin = private.path().join("bin").display().to_string();
    let plan = write(&sandbox, "plan.sql", "SELECT 1;\n");
    let output = sandbox.run(&["run", &plan, "--shadow", "local", "--no-cache", "--pg-bin", &bin]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(stderr.contains(&format!("cannot enter {}", private.path().display())), "{stderr}");
    assert!(stderr.contains("pgshadow postgres install N --cache-dir"), "{stderr}");
    sandbox.assert_clean();
}
