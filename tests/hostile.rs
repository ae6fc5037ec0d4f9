//! Sources are untrusted input, exactly as plans are: a schema, a plain dump with data, a `-Fc` archive or a live
//! database cloned with `--from-url` that tries to run programs, write or read server files, change the server,
//! plant an event trigger or an untrusted-language function, or hand a SECURITY DEFINER function to a superuser's
//! name, gets none of it done. Nothing is written on the host, and each attempt is a fidelity loss with its line or
//! archive entry and the reason. (`POST /v1/sources` is covered in tests/serve.rs.)

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{json_of, stderr_of, Sandbox, SourceServer};
use serde_json::Value;

/// A directory the server's OS user could write to: a source that ran a program or wrote a server file leaves
/// its mark here.
fn marks() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("pgshadow-hostile-").tempdir_in("/tmp").expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    dir
}

fn assert_no_marks(dir: &Path) {
    let left: Vec<PathBuf> = std::fs::read_dir(dir).expect("read marks").flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "the source reached the host: {left:?}");
}

/// Everything an untrusted source tries, as SQL; `{dir}` is where its marks would go.
fn hostile_sql(dir: &Path) -> String {
    let dir = dir.display();
    format!(
        "CREATE TABLE accounts (id int PRIMARY KEY, owner_name text);
INSERT INTO accounts VALUES (1, 'a'), (2, 'b');
COPY (SELECT 1) TO PROGRAM 'touch {dir}/program';
COPY (SELECT 'x') TO '{dir}/server-file';
COPY accounts (owner_name) FROM '/etc/hostname';
SELECT pg_read_file('/etc/hostname');
SELECT lo_export(lo_from_bytea(0, 'x'), '{dir}/lo-export');
ALTER SYSTEM SET work_mem = '64MB';
CREATE FUNCTION stop_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'event trigger fired'; END $$;
CREATE EVENT TRIGGER stop_ddl ON ddl_command_start EXECUTE FUNCTION stop_ddl();
CREATE FUNCTION shout(text) RETURNS text LANGUAGE internal AS 'upper';
CREATE FUNCTION escalate() RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN COPY (SELECT 1) TO PROGRAM 'touch {dir}/definer'; END $$;
ALTER FUNCTION escalate() OWNER TO postgres;
DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {dir}/do-block'''; END $$;
SET session_replication_role = replica;
ALTER ROLE postgres SUPERUSER;
ALTER FUNCTION stop_ddl() OWNER TO pgshadow_admin;
"
    )
}

/// The plan every hostile source is judged with: DDL an event trigger would stop, then a call of the SECURITY
/// DEFINER function the source gave to a superuser's name.
const PLAN: &str = "CREATE TABLE plan_made (id int);\nSELECT escalate();\n";

fn write(sandbox: &Sandbox, name: &str, text: &str) -> String {
    let path = sandbox.input(name);
    std::fs::write(&path, text).expect("write input");
    path.to_string_lossy().into_owned()
}

/// Runs `args` (a `run` with its source), and returns the JSON report.
fn report_of(sandbox: &Sandbox, args: &[&str]) -> Value {
    let plan = write(sandbox, "plan.sql", PLAN);
    let output = sandbox.run(&[&["run", &plan, "--format", "json"], args].concat());
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    json_of(&output)
}

/// The plan ran unhindered by anything the source planted, and the escalation failed as the role it belongs to.
fn assert_plan_contained(report: &Value) {
    let statements = report["statements"].as_array().expect("statements");
    assert_eq!(statements[0]["status"], "ok", "an event trigger of the source fired: {}", statements[0]);
    assert_eq!(statements[1]["status"], "error", "{}", statements[1]);
    assert_eq!(statements[1]["error"]["sqlstate"], "42501", "{}", statements[1]);
    assert_eq!(report["shadow"]["fidelity"]["source_trust"], "untrusted");
}

/// The fidelity warnings whose message contains `needle`, each checked to give the superuser reason.
fn losses<'a>(report: &'a Value, needle: &str) -> Vec<&'a Value> {
    let warnings = report["shadow"]["fidelity"]["warnings"].as_array().expect("warnings");
    let found: Vec<&Value> = warnings.iter().filter(|w| w["message"].as_str().unwrap_or("").contains(needle)).collect();
    assert!(!found.is_empty(), "no fidelity loss mentions {needle:?}: {warnings:#?}");
    for w in &found {
        let reason = w["needs_superuser"].as_str().unwrap_or("");
        assert!(reason.starts_with("needs superuser"), "{w}");
    }
    found
}

#[test]
fn a_hostile_sql_schema_reaches_nothing_and_every_attempt_is_reported_at_its_line() {
    let sandbox = Sandbox::new();
    let dir = marks();
    let schema = write(&sandbox, "evil.sql", &hostile_sql(dir.path()));
    let report = report_of(&sandbox, &["--schema", &schema, "--no-cache"]);
    assert_no_marks(dir.path());
    assert_plan_contained(&report);
    let line_of = |needle: &str| losses(&report, needle)[0]["line"].as_u64();
    assert_eq!(line_of("pg_execute_server_program"), Some(3));
    assert_eq!(line_of("pg_write_server_files"), Some(4));
    assert_eq!(line_of("pg_read_server_files"), Some(5));
    assert_eq!(line_of("function pg_read_file"), Some(6));
    assert_eq!(line_of("function lo_export"), Some(7));
    assert_eq!(line_of("\"work_mem\""), Some(8));
    assert_eq!(line_of("to create event trigger"), Some(10));
    assert_eq!(line_of("language internal"), Some(11));
    assert_eq!(losses(&report, "pg_execute_server_program").len(), 2, "the DO block's COPY too");
    assert_eq!(line_of("session_replication_role"), Some(15));
    assert_eq!(line_of("superuser attribute"), Some(16));
    assert_eq!(line_of("pgshadow_admin"), Some(0), "pgshadow's own role is refused as an owner");
    // What does not need a superuser still loaded, rows and all.
    assert_eq!(report["statements"][1]["status"], "error");
    sandbox.assert_clean();
}

#[test]
fn trust_source_loads_as_a_superuser_and_says_so() {
    let sandbox = Sandbox::new();
    let schema = "CREATE TABLE t (id int);\n\
                  CREATE FUNCTION shout(text) RETURNS text LANGUAGE internal AS 'upper';\n";
    let schema = write(&sandbox, "trusted.sql", schema);
    let plan = write(&sandbox, "plan.sql", "SELECT shout('x');");
    let output = sandbox.run(&["run", &plan, "--schema", &schema, "--trust-source", "--no-cache", "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let report = json_of(&output);
    assert_eq!(report["shadow"]["fidelity"]["source_trust"], "trusted");
    assert_eq!(report["shadow"]["fidelity"]["warnings"], serde_json::json!([]));
    let table = sandbox.run(&["run", &plan, "--schema", &schema, "--trust-source", "--no-cache"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("loaded as a superuser (--trust-source)"));
    // Untrusted, the same source loads all but the function, and says why.
    let output = sandbox.run(&["run", &plan, "--schema", &schema, "--no-cache", "--format", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    losses(&json_of(&output), "language internal");
    sandbox.assert_clean();
}

/// A source database whose objects attack whoever restores them: a CHECK constraint whose function runs a program
/// as each row is loaded, and an index whose function reads a server file as it is built (both only away from the
/// source), an event trigger, an untrusted-language function, and a SECURITY DEFINER function owned by the source's
/// superuser.
fn hostile_source(dir: &Path) -> SourceServer {
    let server = SourceServer::start();
    server.psql("postgres", "CREATE DATABASE src");
    let dir = dir.display();
    server.psql(
        "src",
        &format!(
            "CREATE TABLE accounts (id int PRIMARY KEY, owner_name text);
             INSERT INTO accounts SELECT g, 'owner ' || g FROM generate_series(1, 40) AS g;
             CREATE FUNCTION probe(i int) RETURNS boolean LANGUAGE plpgsql AS $$
             BEGIN
                 IF current_database() <> 'src' THEN
                     EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {dir}/check-program''';
                 END IF;
                 RETURN true;
             END $$;
             CREATE TABLE ledger (id int PRIMARY KEY, CHECK (probe(id)));
             INSERT INTO ledger SELECT g FROM generate_series(1, 5) AS g;
             CREATE FUNCTION peek(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
             BEGIN
                 IF current_database() <> 'src' THEN
                     PERFORM pg_catalog.pg_read_file('/etc/hostname');
                 END IF;
                 RETURN i;
             END $$;
             CREATE INDEX accounts_peek ON accounts (peek(id));
             CREATE FUNCTION shout(text) RETURNS text LANGUAGE internal AS 'upper';
             CREATE FUNCTION escalate() RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$
                 BEGIN COPY (SELECT 1) TO PROGRAM 'touch {dir}/definer'; END $$;
             CREATE FUNCTION stop_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
                 BEGIN RAISE EXCEPTION 'event trigger fired'; END $$;
             CREATE EVENT TRIGGER stop_ddl ON ddl_command_start EXECUTE FUNCTION stop_ddl();"
        ),
    );
    server
}

/// Dumps the source server's `src` with `pg_dump ARGS` into `file`.
fn dump(server: &SourceServer, args: &[&str], file: &Path) {
    let out = std::process::Command::new("pg_dump")
        .args(args)
        .args(["--file", &file.to_string_lossy(), "--dbname", &server.url("src")])
        .output()
        .expect("pg_dump");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The losses every restore of the hostile source must report, by archive entry or line.
fn assert_restore_contained(report: &Value, archive: bool) {
    assert_plan_contained(report);
    for (needle, entry) in [
        ("pg_execute_server_program", "TABLE DATA public.ledger"),
        ("function pg_read_file", "INDEX public.accounts_peek"),
        ("to create event trigger", "EVENT TRIGGER stop_ddl"),
        ("language internal", "FUNCTION public.shout(text)"),
    ] {
        let found = losses(report, needle);
        if archive {
            assert!(found.iter().any(|w| w["entry"].as_str().is_some_and(|e| e.starts_with(entry))), "{found:?}");
        } else {
            assert!(found.iter().all(|w| w["line"].as_u64() > Some(0)), "{found:?}");
        }
    }
}

#[test]
fn a_hostile_plain_dump_with_data_is_contained() {
    let dir = marks();
    let server = hostile_source(dir.path());
    let sandbox = Sandbox::new();
    let file = sandbox.input("dump.sql");
    dump(&server, &[], &file);
    let report = report_of(&sandbox, &["--schema", &file.to_string_lossy(), "--no-cache"]);
    assert_no_marks(dir.path());
    assert_restore_contained(&report, false);
    sandbox.assert_clean();
}

#[test]
fn a_hostile_archive_is_contained() {
    let dir = marks();
    let server = hostile_source(dir.path());
    let sandbox = Sandbox::new();
    let file = sandbox.input("dump.fc");
    dump(&server, &["-Fc"], &file);
    let report = report_of(&sandbox, &["--snapshot", &file.to_string_lossy(), "--no-cache"]);
    assert_no_marks(dir.path());
    assert_restore_contained(&report, true);
    sandbox.assert_clean();
}

#[test]
fn a_hostile_live_source_is_contained() {
    let dir = marks();
    let server = hostile_source(dir.path());
    let sandbox = Sandbox::new();
    let report = report_of(&sandbox, &["--from-url", &server.url("src"), "--with-data", "--no-cache"]);
    assert_no_marks(dir.path());
    assert_restore_contained(&report, true);
    // Sampled rows are copied in by the loader too, after the schema: the index's function then runs for each row,
    // is refused, and the copy stops with the refusal (exit 2), having reached nothing.
    let plan = write(&sandbox, "plan.sql", PLAN);
    let output = sandbox.run(&["run", &plan, "--from-url", &server.url("src"), "--sample", "50", "--no-cache"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("permission denied for function pg_read_file"), "{}", stderr_of(&output));
    assert_no_marks(dir.path());
    sandbox.assert_clean();
}

#[test]
fn extensions_are_created_by_pgshadow_and_their_owners_and_comments_load_as_before() {
    // pgcrypto and citext come with every PostgreSQL; a missing one is still reported as missing.
    let sandbox = Sandbox::new();
    let schema = "CREATE SCHEMA ext;\n\
                  CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA ext;\n\
                  COMMENT ON EXTENSION pgcrypto IS 'cryptographic functions';\n\
                  CREATE EXTENSION citext;\n\
                  CREATE EXTENSION no_such_extension;\n\
                  CREATE TABLE public.people (id int PRIMARY KEY, email citext, token text DEFAULT ext.gen_random_uuid()::text);\n\
                  ALTER TABLE public.people OWNER TO app;\n";
    let schema = write(&sandbox, "ext.sql", schema);
    let plan = write(&sandbox, "plan.sql", "INSERT INTO people (id, email) VALUES (1, 'A@x');");
    let output = sandbox.run(&["run", &plan, "--schema", &schema, "--no-cache", "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let report = json_of(&output);
    let warnings = report["shadow"]["fidelity"]["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0]["line"], 5);
    assert_eq!(report["shadow"]["fidelity"]["missing_extensions"][0]["name"], "no_such_extension");
    assert_eq!(report["statements"][0]["status"], "ok");
    sandbox.assert_clean();
}
