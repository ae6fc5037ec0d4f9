//! Policies and the CI gate, as a user meets them through the binary: policy files, verdicts and exit codes,
//! several plan files, and several reports from one run.

mod common;

use common::{json_of, stderr_of, Sandbox};

const SCHEMA: &str = "
CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);
CREATE TABLE events (id int PRIMARY KEY, user_id int REFERENCES users ON DELETE CASCADE, kind text);
CREATE INDEX events_user_id_idx ON events (user_id);
INSERT INTO users SELECT g, 'u' || g || '@example.com' FROM generate_series(1, 5) AS g;
INSERT INTO events SELECT g, CASE WHEN g <= 3 THEN 1 END, 'click' FROM generate_series(1, 300) AS g;
";

/// Two bounded DELETEs (user 5 has no events): the built-in policy passes them.
const PLAN: &str = "DELETE FROM events WHERE id > 150;\nDELETE FROM users WHERE id = 5;\n";

fn files(sandbox: &Sandbox, files: &[(&str, &str)]) -> Vec<String> {
    files
        .iter()
        .map(|(name, text)| {
            let path = sandbox.input(name);
            std::fs::write(&path, text).expect("write input");
            path.display().to_string()
        })
        .collect()
}

#[test]
fn a_protected_table_and_a_row_limit_fail_a_plan_the_default_policy_passes() {
    let sandbox = Sandbox::new();
    let [schema, plan, policy] = &files(
        &sandbox,
        &[
            ("schema.sql", SCHEMA),
            ("plan.sql", PLAN),
            ("policy.toml", "[protect]\nobjects = [\"public.users\"]\n\n[limits]\nmax-rows-deleted = 100\n"),
        ],
    )[..] else {
        unreachable!()
    };
    let default = sandbox.run(&["run", plan, "--schema", schema, "--format", "json"]);
    assert_eq!(default.status.code(), Some(0), "{}", stderr_of(&default));
    assert_eq!(json_of(&default)["policy"]["source"], "built-in");

    let output = sandbox.run(&["run", plan, "--schema", schema, "--format", "json", "--policy", policy]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let report = json_of(&output);
    assert_eq!(report["verdict"], "fail");
    assert_eq!(report["policy"]["source"], policy.as_str());
    let findings: Vec<_> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (f["rule"].as_str().unwrap_or(""), f["statement"].as_u64(), f["measured"].as_u64(), f["limit"].as_u64())
        })
        .collect();
    assert_eq!(
        findings,
        [("max-rows-deleted", Some(1), Some(151), Some(100)), ("protected-object", Some(2), None, None)]
    );
    sandbox.assert_clean();
}

#[test]
fn a_broken_policy_file_is_exit_2_at_its_line_before_any_shadow_starts() {
    let sandbox = Sandbox::new();
    let [schema, plan, policy] = &files(
        &sandbox,
        &[
            ("schema.sql", SCHEMA),
            ("plan.sql", PLAN),
            ("policy.toml", "[rules]\ndrop-table = \"deny\"\ndrop-tabel = \"warn\"\n"),
        ],
    )[..] else {
        unreachable!()
    };
    let output = sandbox.run(&["run", plan, "--schema", schema, "--policy", policy]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains(&format!("error: {policy}:3:1: unknown rule `drop-tabel`")),
        "{}",
        stderr_of(&output)
    );
    let check = sandbox.run(&["policy", policy]);
    assert_eq!(check.status.code(), Some(2));
    sandbox.assert_clean();
}

#[test]
fn warn_exits_0_unless_fail_on_warn_and_pgshadow_toml_is_found_in_the_current_directory() {
    let sandbox = Sandbox::new();
    let [schema, plan, _] = &files(
        &sandbox,
        &[
            ("schema.sql", SCHEMA),
            ("plan.sql", "DELETE FROM users WHERE id = 1;"),
            ("pgshadow.toml", "[rules]\ncascade-delete = \"warn\"\n"),
        ],
    )[..] else {
        unreachable!()
    };
    let run = |extra: &[&str]| {
        let mut args = vec!["run", plan, "--schema", schema, "--format", "json"];
        args.extend_from_slice(extra);
        sandbox.command(&args).current_dir(sandbox.input("")).output().expect("run")
    };
    let warn = run(&[]);
    assert_eq!(warn.status.code(), Some(0), "{}", stderr_of(&warn));
    let report = json_of(&warn);
    assert_eq!(report["verdict"], "warn");
    assert_eq!(report["policy"]["source"], "pgshadow.toml");
    assert_eq!(report["findings"][0]["severity"], "warning");
    assert_eq!(run(&["--fail-on", "warn"]).status.code(), Some(1));
    sandbox.assert_clean();
}

#[test]
fn a_migrations_folder_runs_in_name_order_and_is_reported_per_file() {
    let sandbox = Sandbox::new();
    let dir = sandbox.input("migrations");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("002_fill.sql"), "INSERT INTO audit VALUES (1), (2);\n").expect("write");
    std::fs::write(dir.join("001_create.sql"), "CREATE TABLE audit (id int);\n").expect("write");
    let [schema] = &files(&sandbox, &[("schema.sql", SCHEMA)])[..] else { unreachable!() };
    let output = sandbox.run(&["run", &dir.display().to_string(), "--schema", schema, "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let report = json_of(&output);
    let per_file: Vec<_> = report["plan"]["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            let name = f["file"].as_str().unwrap_or("").rsplit('/').next().unwrap_or("").to_owned();
            (name, f["summary"]["statements"].as_u64(), f["summary"]["rows_inserted"].as_u64())
        })
        .collect();
    assert_eq!(
        per_file,
        [("001_create.sql".to_owned(), Some(1), Some(0)), ("002_fill.sql".to_owned(), Some(1), Some(2))]
    );
    assert!(report["statements"][1]["file"].as_str().is_some_and(|f| f.ends_with("002_fill.sql")));
    sandbox.assert_clean();
}

#[test]
fn one_run_writes_json_markdown_and_annotations_at_once() {
    let sandbox = Sandbox::new();
    let [schema, plan] = &files(&sandbox, &[("schema.sql", SCHEMA), ("plan.sql", "DELETE FROM users;\n")])[..] else {
        unreachable!()
    };
    let json = sandbox.input("report.json").display().to_string();
    let markdown = sandbox.input("comment.md").display().to_string();
    let output = sandbox.run(&[
        "run", plan, "--schema", schema, "-f", "github", "-f", "json", "-o", &json, "-f", "markdown", "-o", &markdown,
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("::error file={plan},line=1,col=1,title=pgshadow delete-without-where::")),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("valid");
    assert_eq!(report["summary"]["rows_deleted"], 5 + 3, "five users and the three events of user 1");
    let comment = std::fs::read_to_string(&markdown).expect("markdown");
    assert!(comment.starts_with("## ❌ pgshadow: **fail**"), "{comment}");

    let refused = sandbox.run(&["run", plan, "--schema", schema, "-f", "json", "-f", "markdown"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr_of(&refused).contains("only one --format can go to stdout"));
    sandbox.assert_clean();
}
