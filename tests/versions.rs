//! Exact-version shadows: choosing the PostgreSQL a shadow runs, `pgshadow postgres list|install|remove`, and the
//! upgrade rehearsal. The runs use the system's PostgreSQL and the builds `.ci/run` installs with `pgshadow postgres
//! install` (PGSHADOW_TEST_BUILDS); tests that need two versions say so when there is only one.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{json_of, stderr_of, Sandbox};
use pgshadow::postgres::Installation;

/// The oldest and newest majors, or `None` (and a note) when this machine has one version only. `.ci/run` sets
/// PGSHADOW_TEST_VERSIONS, which makes [`common::installations`] fail instead.
fn two_versions(test: &str) -> Option<(Installation, Installation)> {
    let pair = common::oldest_and_newest();
    if pair.is_none() {
        eprintln!(
            "{test}: needs two PostgreSQL major versions; `pgshadow postgres install 18` and PGSHADOW_TEST_BUILDS"
        );
    }
    pair
}

fn write(sandbox: &Sandbox, name: &str, text: &str) -> String {
    let path = sandbox.input(name);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(&path, text).expect("write input");
    path.display().to_string()
}

#[test]
fn a_schema_that_needs_a_newer_version_loads_there_and_the_old_one_names_what_failed() {
    let Some((old, new)) = two_versions("virtual generated columns") else { return };
    if new.version.major < 18 || old.version.major >= 18 {
        eprintln!("needs a PostgreSQL before 18 and one of 18 or later; have {} and {}", old.version, new.version);
        return;
    }
    let sandbox = Sandbox::new().with_builds();
    let schema = write(
        &sandbox,
        "schema.sql",
        "CREATE TABLE events (id bigint PRIMARY KEY, amount numeric NOT NULL,\n\
         \x20   doubled numeric GENERATED ALWAYS AS (amount * 2) VIRTUAL);\n\
         INSERT INTO events (id, amount) VALUES (1, 10), (2, 20);\n",
    );
    let plan = write(&sandbox, "plan.sql", "DELETE FROM events WHERE doubled > 30;\n");
    let run = |version: &Installation| {
        let output = sandbox.run(&[
            "run",
            &plan,
            "--schema",
            &schema,
            "--pg-version",
            &version.version.to_string(),
            "-f",
            "json",
        ]);
        sandbox.assert_clean();
        (output.status.code(), json_of(&output))
    };

    let (_, on_new) = run(&new);
    assert_eq!(on_new["shadow"]["fidelity"]["warnings"], serde_json::json!([]), "{on_new:#}");
    assert_eq!(on_new["statements"][0]["status"], "ok");
    assert_eq!(on_new["summary"]["rows_deleted"], 1);
    assert_eq!(on_new["shadow"]["version"], new.version.to_string());
    assert_eq!(on_new["shadow"]["version_reason"], format!("asked for with --pg-version {}", new.version));

    let (_, on_old) = run(&old);
    let warnings = on_old["shadow"]["fidelity"]["warnings"].as_array().expect("warnings");
    assert!(
        warnings.first().is_some_and(|w| w["line"] == 2 && w["message"].as_str().unwrap_or("").contains("VIRTUAL")),
        "the old version names the statement that failed: {warnings:#?}"
    );
    assert_eq!(on_old["statements"][0]["status"], "error", "the table is missing there");
    let newer = on_old["shadow"]["fidelity"]["newer_version"].as_str().unwrap_or_default();
    assert!(newer.contains(&format!("PostgreSQL {}", new.version)), "names the newer version: {newer:?}");
}

#[test]
fn a_rehearsal_shows_where_the_versions_differ_and_exits_on_the_worst_verdict() {
    let Some((old, new)) = two_versions("rehearsal") else { return };
    if old.version.major >= 15 || new.version.major < 15 {
        eprintln!(
            "needs a PostgreSQL before 15 (no MERGE) and one of 15 or later; have {} and {}",
            old.version, new.version
        );
        return;
    }
    let sandbox = Sandbox::new().with_builds();
    let schema = write(
        &sandbox,
        "schema.sql",
        "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);\nINSERT INTO accounts VALUES (1, 10), (2, 20);\n",
    );
    let plan = write(
        &sandbox,
        "plan.sql",
        "MERGE INTO accounts a USING (VALUES (1, 5)) AS v(id, delta) ON a.id = v.id\n\
         WHEN MATCHED THEN UPDATE SET balance = a.balance + v.delta;\n",
    );
    let versions = format!("{},{}", old.version.major, new.version.major);
    let output = sandbox.run(&["run", &plan, "--schema", &schema, "--pg-version", &versions, "-f", "json"]);
    sandbox.assert_clean();
    assert_eq!(output.status.code(), Some(1), "the old version's error fails the rehearsal: {}", stderr_of(&output));
    let rehearsal = json_of(&output);
    assert_eq!(rehearsal["versions"], serde_json::json!([old.version.to_string(), new.version.to_string()]));
    assert_eq!(rehearsal["verdict"], "fail");
    let differences = rehearsal["differences"].as_array().expect("differences");
    let outcome = differences
        .iter()
        .find(|d| d["statement"] == 1 && d["aspect"] == "outcome")
        .unwrap_or_else(|| panic!("statement 1's outcome differs: {differences:#?}"));
    assert!(outcome["values"][0].as_str().unwrap_or("").starts_with("error 42601"), "{outcome}");
    assert_eq!(outcome["values"][1], "ok");
    assert!(differences.iter().any(|d| d["aspect"] == "rows changed" && d["values"][1] == "public.accounts 1 updated"));
    assert_eq!(rehearsal["reports"][1]["verdict"], "pass");

    let schema_json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("docs/rehearsal.schema.json")).expect("schema"),
    )
    .expect("JSON");
    let validator = jsonschema::validator_for(&schema_json).expect("a valid JSON Schema");
    assert!(validator.is_valid(&rehearsal), "the rehearsal matches docs/rehearsal.schema.json");

    let table = sandbox.run(&["run", &plan, "--schema", &schema, "--pg-version", &versions]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("Where the outcomes differ") && text.contains("syntax error"), "{text}");
}

#[test]
fn the_published_rehearsal_schema_is_the_generated_one() {
    let published = std::fs::read_to_string(common::root().join("docs/rehearsal.schema.json")).expect("schema");
    assert!(
        published == pgshadow::report::rehearsal::json_schema(),
        "docs/rehearsal.schema.json is out of date: run `cargo run -- schema --rehearsal > docs/rehearsal.schema.json`"
    );
}

#[test]
fn without_a_version_asked_for_the_source_version_is_preferred_and_a_mismatch_is_warned_about() {
    let Some((old, new)) = two_versions("source version") else { return };
    let sandbox = Sandbox::new().with_builds();
    let plan = write(&sandbox, "plan.sql", "SELECT 1;\n");
    let dumped =
        |major: u32| format!("--\n-- Dumped from database version {major}.3\n--\n\nCREATE TABLE t (id int);\n");

    let schema = write(&sandbox, "old.sql", &dumped(old.version.major));
    let report = json_of(&sandbox.run(&["run", &plan, "--schema", &schema, "-f", "json"]));
    assert_eq!(report["shadow"]["version"], old.version.to_string(), "{:#}", report["shadow"]);
    assert_eq!(report["shadow"]["version_reason"], format!("the source's major version, {}", old.version.major));
    assert_eq!(report["shadow"]["fidelity"]["version_warning"], serde_json::Value::Null);

    // PostgreSQL 10 is older than any build the tests install: the newest runs it, with a warning.
    let schema = write(&sandbox, "ten.sql", &dumped(10));
    let output = sandbox.run(&["run", &plan, "--schema", &schema, "-f", "json"]);
    sandbox.assert_clean();
    let report = json_of(&output);
    assert_eq!(report["shadow"]["version"], new.version.to_string());
    assert_eq!(report["shadow"]["version_reason"], "the newest installed; no PostgreSQL 10 here");
    let warning = report["shadow"]["fidelity"]["version_warning"].as_str().unwrap_or_default();
    assert!(warning.contains("--pg-version 10"), "{warning}");
    assert!(stderr_of(&output).contains("pgshadow postgres install 10"), "warned on stderr: {}", stderr_of(&output));
}

#[test]
fn a_version_that_is_not_installed_is_an_error_naming_what_is() {
    let sandbox = Sandbox::new().with_builds();
    let output = seed_run(&sandbox, "10", &[]);
    sandbox.assert_clean();
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("PostgreSQL 10 is not installed here (available: "), "{stderr}");
    assert!(stderr.contains("pgshadow postgres install 10"), "{stderr}");
    let output = sandbox.run(&["run", "scenarios/seed-incident/plan.sql", "--pg-version", "ten"]);
    assert_eq!(output.status.code(), Some(2), "a malformed version is a usage error");
}

#[test]
fn postgres_list_shows_the_system_install_and_the_cached_builds() {
    let sandbox = Sandbox::new().with_builds();
    let output = sandbox.run(&["postgres", "list"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    for found in common::installations() {
        assert!(text.contains(&found.version.to_string()), "{} listed: {text}", found.version);
        assert!(text.contains(found.binaries.origin), "{}'s origin listed: {text}", found.version);
    }
}

/// `pgshadow run` of the seed incident on PostgreSQL `version`, with `extra` arguments.
fn seed_run(sandbox: &Sandbox, version: &str, extra: &[&str]) -> std::process::Output {
    let plan = "scenarios/seed-incident/plan.sql";
    let schema = "scenarios/seed-incident/schema.sql";
    sandbox.run(&[&["run", plan, "--schema", schema, "--pg-version", version], extra].concat())
}

/// A build of `pgshadow postgres install` and its root directory, or `None` (and a note) when there is none.
fn cached_build() -> Option<(Installation, String)> {
    let build = common::installations().into_iter().find(|f| f.binaries.origin == pgshadow::postgres::CACHE_ORIGIN);
    if build.is_none() {
        eprintln!("needs a build installed with `pgshadow postgres install` (PGSHADOW_TEST_BUILDS)");
    }
    let build = build?;
    let root = build.binaries.dir.parent().expect("the build's root").display().to_string();
    Some((build, root))
}

/// A build that is not PostgreSQL: shell scripts that say they are `version`.
fn fake_build(bin: &Path, version: &str) {
    std::fs::create_dir_all(bin).expect("mkdir");
    for program in ["initdb", "postgres"] {
        let path = bin.join(program);
        std::fs::write(&path, format!("#!/bin/sh\necho 'postgres (PostgreSQL) {version}'\n")).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

#[test]
fn an_interrupted_install_is_never_listed_as_installed() {
    let sandbox = Sandbox::new();
    let installs = sandbox.cache().join("postgres");
    fake_build(&installs.join(".install-x1y2z3/build/bin"), "17.1");
    fake_build(&installs.join(".install-x1y2z3/bin"), "17.1");
    let list = |s: &Sandbox| String::from_utf8_lossy(&s.run(&["postgres", "list"]).stdout).into_owned();
    assert!(!list(&sandbox).contains("17.1"), "{}", list(&sandbox));
    // The same build under its final name is listed: the test above can fail.
    fake_build(&installs.join("17.1/bin"), "17.1");
    assert!(list(&sandbox).contains("17.1"), "{}", list(&sandbox));
}

#[test]
fn a_tarball_with_a_path_that_climbs_out_is_refused_and_nothing_is_installed() {
    let sandbox = Sandbox::new();
    let tgz = sandbox.input("evil.tgz");
    let file = std::fs::File::create(&tgz).expect("create");
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()));
    for (path, content) in [("package/native/bin/postgres", "#!/bin/sh\n"), ("package/native/../../../../escaped", "x")]
    {
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().expect("gnu").name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_size(content.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        builder.append(&header, content.as_bytes()).expect("append");
    }
    builder.into_inner().expect("tar").finish().expect("gzip");

    let output = sandbox.run(&["postgres", "install", "17", "--from", &tgz.display().to_string()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("outside the install directory"), "{}", stderr_of(&output));
    let left: Vec<String> = std::fs::read_dir(sandbox.cache().join("postgres"))
        .expect("installs dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, [".lock"], "nothing but the lock is left");
    for dir in [sandbox.cache(), sandbox.path()] {
        assert!(!dir.join("escaped").exists() && !dir.parent().expect("parent").join("escaped").exists());
    }
}

#[test]
fn a_build_already_on_the_machine_installs_offline_and_is_removed_again() {
    let Some((build, root)) = cached_build() else { return };
    let sandbox = Sandbox::new();
    let version = build.version.to_string();
    let wrong = if build.version.major == 16 { "17" } else { "16" };
    let output = sandbox.run(&["postgres", "install", wrong, "--from", &root]);
    assert_eq!(output.status.code(), Some(2), "a build of another version is refused");
    assert!(
        stderr_of(&output).contains(&format!("the build is PostgreSQL {version}, not {wrong}")),
        "{}",
        stderr_of(&output)
    );

    let output = sandbox.run(&["postgres", "install", &version, "--from", &root]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let installed = sandbox.cache().join("postgres").join(&version);
    assert!(installed.join("pgshadow-install.json").is_file());
    let list = String::from_utf8_lossy(&sandbox.run(&["postgres", "list"]).stdout).into_owned();
    assert!(list.contains(&installed.join("bin").display().to_string()), "{list}");

    let output = seed_run(&sandbox, &version, &["-f", "json"]);
    sandbox.assert_clean();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let report = json_of(&output);
    assert_eq!(report["shadow"]["version"], version);
    assert!(
        report["shadow"]["binaries"].as_str().unwrap_or("").ends_with("(from pgshadow cache)"),
        "{}",
        report["shadow"]
    );

    let output = sandbox.run(&["postgres", "remove", &version]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(!installed.exists());
    let output = sandbox.run(&["postgres", "remove", &version]);
    assert_eq!(output.status.code(), Some(2), "removing what is not there is an error");
}

#[test]
fn concurrent_installs_of_one_version_take_turns_and_leave_one_build() {
    let Some((build, root)) = cached_build() else { return };
    let sandbox = Sandbox::new();
    let version = build.version.to_string();
    let installs: Vec<_> = (0..3)
        .map(|_| {
            let mut install = sandbox.command(&["postgres", "install", &version, "--from", &root]);
            install.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            install.spawn().expect("spawn")
        })
        .collect();
    for install in installs {
        let output = install.wait_with_output().expect("wait");
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    }
    let mut left: Vec<String> = std::fs::read_dir(sandbox.cache().join("postgres"))
        .expect("installs dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, [".lock".to_owned(), version.clone()], "one build, no leftovers");
    let postgres = sandbox.cache().join("postgres").join(&version).join("bin/postgres");
    let out = std::process::Command::new(postgres).arg("--version").output().expect("the build runs");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&version));
}

#[test]
fn an_archive_on_a_build_without_pg_restore_is_restored_by_the_system_one_and_the_report_says_which() {
    let Some(build) = common::installations()
        .into_iter()
        .find(|f| f.binaries.origin == pgshadow::postgres::CACHE_ORIGIN && !f.has("pg_restore"))
    else {
        eprintln!("needs a build installed with `pgshadow postgres install` (PGSHADOW_TEST_BUILDS)");
        return;
    };
    let sandbox = Sandbox::new().with_builds();
    let version = build.version.to_string();
    let scenario = "scenarios/archive-with-data";
    let output = sandbox.run(&[
        "run",
        &format!("{scenario}/plan.sql"),
        "--snapshot",
        &format!("{scenario}/snapshot.dump"),
        "--pg-version",
        &version,
        "-f",
        "json",
    ]);
    sandbox.assert_clean();
    let report = json_of(&output);
    assert_eq!(report["shadow"]["version"], version);
    let restored_with = report["shadow"]["fidelity"]["restored_with"].as_str().unwrap_or_default();
    let system = common::installations().into_iter().find(|f| f.has("pg_restore")).expect("a system pg_restore");
    assert_eq!(restored_with, format!("{} ({})", system.binaries.program("pg_restore").display(), system.version));
    assert_eq!(report["shadow"]["fidelity"]["objects_reproduced"], report["shadow"]["fidelity"]["objects_in_source"]);
}

#[tokio::test]
async fn a_service_runs_each_source_on_its_own_major_version() {
    let Some((old, new)) = two_versions("a service with sources of two versions") else { return };
    let sandbox = Sandbox::new();
    let seed = std::fs::read_to_string(common::root().join("scenarios/seed-incident/schema.sql")).expect("read");
    let header = |v: &Installation| format!("--\n-- Dumped from database version {}\n--\n\n", v.version);
    let old_file = write(&sandbox, "old.sql", &format!("{}{seed}", header(&old)));
    let new_file = write(&sandbox, "new.sql", &format!("{}{seed}", header(&new)));
    let config = write(
        &sandbox,
        "serve.toml",
        &format!("[[sources]]\nname = \"old\"\nschema = \"{old_file}\"\n\n[[sources]]\nname = \"new\"\nschema = \"{new_file}\"\n"),
    );
    let config = pgshadow::service::config::Config::read(Path::new(&config)).expect("a valid configuration");
    let mut shadow = pgshadow::LocalOptions::default();
    shadow.postgres.builds = common::builds();
    let service = pgshadow::service::Service::from_config(&config, pgshadow::Provider::Local, shadow)
        .await
        .expect("the service starts");
    let versions: Vec<(String, String)> = service.sources().into_iter().map(|s| (s.name, s.server_version)).collect();
    let major = |v: &str| pgshadow::postgres::Version::parse(v).map(|v| v.major);
    for (name, version) in &versions {
        let wanted = if name == "old" { old.version.major } else { new.version.major };
        assert_eq!(major(version), Some(wanted), "{versions:?}");
    }
    // The seed incident on each: PostgreSQL 18 drops the table's NOT NULL constraints as objects of their own.
    let plan = pgshadow::Plan::parse("plan.sql", "DROP TABLE users CASCADE;").expect("a plan");
    let policy = pgshadow::Policy::default();
    for (name, installation) in [("old", &old), ("new", &new)] {
        let report = service.dry_run(name, &plan, &policy).await.expect("a report");
        assert_eq!(major(&report.shadow.server_version), Some(installation.version.major));
        let expected = if installation.version.major >= 18 { 13 } else { 9 };
        assert_eq!(report.summary.objects_dropped, expected, "{name}");
        assert_eq!(report.summary.rows_destroyed, 8);
    }
    service.shutdown().await.expect("the service stops");
    sandbox.assert_clean();
}

#[test]
fn a_dump_of_an_old_version_comments_on_public_without_a_superuser_and_public_keeps_its_owner() {
    // pg_dump before 15 writes COMMENT ON SCHEMA public, which needs public's owner: the bootstrap superuser there.
    let sandbox = Sandbox::new().with_builds();
    let schema = write(
        &sandbox,
        "schema.sql",
        "COMMENT ON SCHEMA public IS 'standard public schema';\n\
         CREATE TABLE public.accounts (id int PRIMARY KEY);\n\
         ALTER TABLE public.accounts OWNER TO app;\n",
    );
    let plan = write(&sandbox, "plan.sql", "DROP SCHEMA public CASCADE;\n");
    for installation in common::installations() {
        let version = installation.version.to_string();
        let output = sandbox.run(&["run", &plan, "--schema", &schema, "--pg-version", &version, "-f", "json"]);
        let report = json_of(&output);
        assert_eq!(report["shadow"]["fidelity"]["warnings"], serde_json::json!([]), "{version}: {report:#}");
        if installation.version.major < 15 {
            // public went back to the superuser it belonged to: the plan role cannot drop it, as before.
            assert_eq!(report["statements"][0]["error"]["sqlstate"], "42501", "{version}: {report:#}");
        }
    }
    sandbox.assert_clean();
}
