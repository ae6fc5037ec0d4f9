//! The shadow cache: a repeated run clones a template instead of loading the source again, measures the same,
//! and nothing a plan committed, and nothing a killed run left, ever reaches a later run.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{json_of, stderr_of, Sandbox};
use serde_json::Value;

const SCHEMA: &str = "scenarios/seed-incident/schema.sql";
const PLAN: &str = "scenarios/seed-incident/plan.sql";

fn write(sandbox: &Sandbox, name: &str, text: &str) -> String {
    let path = sandbox.input(name);
    std::fs::write(&path, text).expect("write input");
    path.to_string_lossy().into_owned()
}

/// The report without what differs from run to run (timings, the cache's own record).
fn measured(report: &Value) -> Value {
    match report {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "duration_ms" | "held_ms" | "cache"))
                .map(|(k, v)| (k.clone(), measured(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(measured).collect()),
        other => other.clone(),
    }
}

#[test]
fn a_second_run_clones_the_template_and_measures_the_same() {
    let sandbox = Sandbox::new();
    let first = sandbox.run(&["run", PLAN, "--schema", SCHEMA, "--format", "json"]);
    let second = sandbox.run(&["run", PLAN, "--schema", SCHEMA, "--format", "json"]);
    assert_eq!(first.status.code(), Some(1), "{}", stderr_of(&first));
    assert_eq!(second.status.code(), Some(1), "{}", stderr_of(&second));
    let (first, second) = (json_of(&first), json_of(&second));
    assert_eq!(first["shadow"]["cache"]["template_reused"], false);
    assert_eq!(second["shadow"]["cache"]["template_reused"], true);
    assert_eq!(measured(&first), measured(&second));
    assert_eq!(second["summary"]["objects_dropped"], 9);

    // Another schema is another template; --no-cache uses none and reports so.
    let other = write(&sandbox, "other.sql", "CREATE TABLE t (a int); INSERT INTO t VALUES (1);");
    let plan = write(&sandbox, "plan.sql", "DELETE FROM t WHERE a = 1;");
    let third = json_of(&sandbox.run(&["run", &plan, "--schema", &other, "--format", "json"]));
    assert_eq!(third["shadow"]["cache"]["template_reused"], false);
    assert_eq!(third["summary"]["rows_deleted"], 1);
    let uncached = json_of(&sandbox.run(&["run", &plan, "--schema", &other, "--format", "json", "--no-cache"]));
    assert_eq!(uncached["shadow"]["cache"], Value::Null);

    let list = sandbox.run(&["cache", "list"]);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(listed.contains(SCHEMA) && listed.contains("other.sql"), "{listed}");
    sandbox.assert_clean();

    let prune = sandbox.run(&["cache", "prune"]);
    assert!(String::from_utf8_lossy(&prune.stdout).contains("removed 1 cached cluster"), "{prune:?}");
    let list = sandbox.run(&["cache", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("no cached sources"));
}

#[test]
fn what_a_plan_committed_never_reaches_the_next_run() {
    let sandbox = Sandbox::new();
    let schema = write(&sandbox, "schema.sql", "CREATE TABLE t (a int);");
    // CREATE INDEX CONCURRENTLY cannot run in the dry-run's transaction: what came before it is committed, here a
    // default for the plan role itself, which lives in the cluster, not in the run's database.
    let poison = write(
        &sandbox,
        "poison.sql",
        "ALTER ROLE CURRENT_USER SET default_transaction_read_only = on;\nCREATE INDEX CONCURRENTLY t_a ON t (a);",
    );
    let insert = write(&sandbox, "insert.sql", "INSERT INTO t VALUES (1);");
    let warm = json_of(&sandbox.run(&["run", &insert, "--schema", &schema, "--format", "json"]));
    assert_eq!(warm["statements"][0]["status"], "ok");
    let poisoned = json_of(&sandbox.run(&["run", &poison, "--schema", &schema, "--format", "json"]));
    assert_eq!(poisoned["statements"][0]["status"], "ok", "{poisoned}");
    assert_eq!(poisoned["shadow"]["cache"]["template_reused"], true);

    let after = json_of(&sandbox.run(&["run", &insert, "--schema", &schema, "--format", "json"]));
    assert_eq!(after["statements"][0]["status"], "ok", "the committed role default leaked: {after}");
    assert_eq!(after["shadow"]["cache"]["template_reused"], false, "the cluster was not rebuilt");
    sandbox.assert_clean();
}

#[test]
fn a_killed_run_leaves_a_cache_the_next_run_rebuilds() {
    let sandbox = Sandbox::new();
    let warm = sandbox.run(&["run", PLAN, "--schema", SCHEMA, "--format", "json"]);
    assert_eq!(json_of(&warm)["shadow"]["cache"]["template_reused"], false);
    let sleep = write(&sandbox, "sleep.sql", "SELECT pg_sleep(60);");
    let child = common::spawn_until_plan_runs(&sandbox, &["run", &sleep, "--schema", SCHEMA]);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("SIGKILL");
    let _ = child.wait_with_output();

    // Nothing runs after SIGKILL to remove the killed run's private directory; a later run sweeps it once it has
    // been left for a minute (here: made to look a minute old).
    // The server got SIGQUIT from the kernel when its parent died; let it finish exiting first.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !common::processes_mentioning(&format!("{}/", sandbox.path().display())).is_empty() {
        assert!(Instant::now() < deadline, "the killed run's server is still running");
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<_> = std::fs::read_dir(sandbox.path()).expect("sandbox").flatten().map(|e| e.path()).collect();
    assert_eq!(left.len(), 1, "{left:?}");
    let old = std::time::SystemTime::now() - Duration::from_secs(120);
    std::fs::File::open(&left[0]).expect("open dir").set_modified(old).expect("age the dir");

    let next = sandbox.run(&["run", PLAN, "--schema", SCHEMA, "--format", "json"]);
    assert_eq!(next.status.code(), Some(1), "{}", stderr_of(&next));
    let next = json_of(&next);
    assert_eq!(next["shadow"]["cache"]["template_reused"], false, "a cluster a killed run used was reused");
    assert_eq!(next["summary"]["objects_dropped"], 9);
    sandbox.assert_clean();
}

#[test]
fn concurrent_runs_each_get_a_cluster_of_their_own() {
    let sandbox = Sandbox::new();
    let slow = write(&sandbox, "slow.sql", "SELECT pg_sleep(1);\nDELETE FROM orders WHERE id = 1;");
    let spawn = || {
        common::KillOnDrop(Some(
            sandbox
                .command(&["run", &slow, "--schema", SCHEMA, "--format", "json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn"),
        ))
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output(), b.wait_with_output());
    let (a, b) = (json_of(&a), json_of(&b));
    assert_ne!(a["shadow"]["cache"]["cluster"], b["shadow"]["cache"]["cluster"]);
    assert_eq!(measured(&a), measured(&b));
    sandbox.assert_clean();
}

#[tokio::test]
async fn templates_beyond_the_size_cap_are_dropped_least_recently_used_first() {
    let cache = tempfile::tempdir().expect("temp dir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let mut options = pgshadow::DryRunOptions::default();
    options.shadow.cache = Some(pgshadow::CacheOptions { max_size: 1, ..pgshadow::CacheOptions::new(cache.path()) });
    common::dry_run_with("CREATE TABLE a (x int);", "SELECT 1;", &options).await;
    common::dry_run_with("CREATE TABLE b (x int);", "SELECT 1;", &options).await;
    let listed = pgshadow::shadow::cache::list(cache.path());
    assert_eq!(listed.len(), 1, "{listed:?}");
    // The survivor is the last one used: running on schema b again reuses it.
    let report = common::dry_run_with("CREATE TABLE b (x int);", "SELECT 1;", &options).await;
    assert_eq!(report.shadow.cache.map(|c| c.template_reused), Some(true));
}

fn cached_options(cache: &tempfile::TempDir) -> pgshadow::DryRunOptions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let mut options = pgshadow::DryRunOptions::default();
    options.shadow.cache = Some(pgshadow::CacheOptions::new(cache.path()));
    options
}

#[tokio::test]
async fn a_template_used_in_place_gets_its_sequences_and_sizes_back() {
    let cache = tempfile::tempdir().expect("temp dir");
    let options = cached_options(&cache);
    // The CHECK fails as soon as the sequence moved on: a run that saw the last run's nextval would fail.
    let schema = "CREATE TABLE t (id serial PRIMARY KEY CHECK (id < 2), v int);\n\
                  CREATE TABLE big (id int, pad text);\n\
                  INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g;";
    let rewrite = "ALTER TABLE big ALTER COLUMN id TYPE bigint;";
    let grow =
        "INSERT INTO t (v) VALUES (1);\nINSERT INTO big SELECT g, repeat('y', 500) FROM generate_series(1, 20000) g;";
    let before = common::dry_run_with(schema, rewrite, &options).await;
    for _ in 0..2 {
        let report = common::dry_run_with(schema, grow, &options).await;
        assert_eq!(report.statements[0].status, pgshadow::report::Status::Ok, "{:?}", report.statements[0].error);
        assert_eq!(report.shadow.cache.as_ref().map(|c| c.template_reused), Some(true));
    }
    let after = common::dry_run_with(schema, rewrite, &options).await;
    let size = |r: &pgshadow::Report| r.statements[0].rewritten_tables[0].size_bytes;
    assert_eq!(size(&before), size(&after), "the rolled-back inserts left the table bigger");
}

#[tokio::test]
async fn a_template_in_use_is_cloned_for_a_second_dry_run() {
    let cache = tempfile::tempdir().expect("temp dir");
    let options = cached_options(&cache);
    let shadow = pgshadow::Shadow::start_local(&options.shadow).await.expect("shadow");
    let schema = pgshadow::Schema::sql("schema.sql", "CREATE TABLE t (a int);");
    let first = pgshadow::source::load(&shadow, Some(&schema)).await.expect("load");
    let second = pgshadow::source::load(&shadow, Some(&schema)).await.expect("load");
    assert!(first.name().starts_with("template_"), "{}", first.name());
    assert!(second.name().starts_with("shadow_"), "{}", second.name());
    // A DROP TABLE in one is neither blocked by nor seen in the other.
    let drop = pgshadow::Plan::parse("drop.sql", "DROP TABLE t;").expect("plan");
    let one = pgshadow::measure::run_plan(&shadow, &first, &drop, &Default::default()).await.expect("run");
    let two = pgshadow::measure::run_plan(&shadow, &second, &drop, &Default::default()).await.expect("run");
    assert_eq!(one.statements[0].dropped_objects.len(), two.statements[0].dropped_objects.len());
    pgshadow::source::release(&shadow, &first).await.expect("release");
    pgshadow::source::release(&shadow, &second).await.expect("release");
    shadow.shutdown().await.expect("shutdown");
    let third = pgshadow::Shadow::start_local(&options.shadow).await.expect("shadow");
    let again = pgshadow::source::load(&third, Some(&schema)).await.expect("load");
    assert_eq!(again.template_reused, Some(true), "the cluster was not kept");
    pgshadow::source::release(&third, &again).await.expect("release");
    third.shutdown().await.expect("shutdown");
}

#[test]
fn an_unchanged_archive_is_not_read_again_to_find_its_template() {
    let sandbox = Sandbox::new();
    let archive = "scenarios/archive-with-data/snapshot.dump";
    let plan = "scenarios/archive-with-data/plan.sql";
    let first = json_of(&sandbox.run(&["run", plan, "--snapshot", archive, "--format", "json"]));
    let second = json_of(&sandbox.run(&["run", plan, "--snapshot", archive, "--format", "json"]));
    assert_eq!(first["shadow"]["cache"]["template_reused"], false);
    assert_eq!(second["shadow"]["cache"]["template_reused"], true);
    assert_eq!(measured(&first), measured(&second));
    let remembered = std::fs::read_dir(sandbox.cache().join("digests")).expect("digests").count();
    assert_eq!(remembered, 1, "the archive's digest is remembered by its fingerprint");
    // A copy (another inode) is read again, and its content finds the same template.
    let copy = sandbox.input("copy.dump");
    std::fs::copy(common::root().join(archive), &copy).expect("copy");
    let third = json_of(&sandbox.run(&["run", plan, "--snapshot", &copy.to_string_lossy(), "--format", "json"]));
    assert_eq!(third["shadow"]["cache"]["template_reused"], true);
    sandbox.assert_clean();
}

#[test]
fn a_run_from_the_templates_kept_baseline_measures_what_a_fresh_read_does() {
    // What a run reads before its plan is kept with a cached template: a run from it must measure exactly what a
    // run that reads it (no cache) measures, on a plan that touches every part of it: tables and their counters,
    // indexes and their locks, columns, constraints, rules and triggers.
    let sandbox = Sandbox::new();
    let schema = write(
        &sandbox,
        "baseline.sql",
        "CREATE TABLE parent (id int PRIMARY KEY, name text NOT NULL, note varchar(20) CHECK (note <> ''));\n\
         CREATE TABLE child (id serial PRIMARY KEY, parent_id int REFERENCES parent ON DELETE CASCADE, v int);\n\
         CREATE INDEX child_v ON child (v);\n\
         CREATE TABLE log (at timestamptz DEFAULT now(), what text);\n\
         CREATE FUNCTION logged() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO log (what) VALUES (TG_OP); RETURN OLD; END $$;\n\
         CREATE TRIGGER child_logged AFTER DELETE ON child FOR EACH ROW EXECUTE FUNCTION logged();\n\
         CREATE VIEW parent_names AS SELECT id, name FROM parent;\n\
         CREATE RULE parent_names_del AS ON DELETE TO parent_names DO INSTEAD DELETE FROM parent WHERE id = OLD.id;\n\
         INSERT INTO parent SELECT g, 'p' || g, 'n' FROM generate_series(1, 40) g;\n\
         INSERT INTO child (parent_id, v) SELECT 1 + g % 40, g FROM generate_series(1, 400) g;\n",
    );
    let plan = write(
        &sandbox,
        "plan.sql",
        "DELETE FROM parent_names WHERE id <= 3;\nALTER TABLE parent DROP CONSTRAINT parent_note_check;\n\
         ALTER TABLE parent ALTER COLUMN name DROP NOT NULL;\nDROP INDEX child_v;\nUPDATE child SET v = v + 1 WHERE v < 50;\n\
         ALTER TABLE child ALTER COLUMN v TYPE bigint;\nTRUNCATE log;\n",
    );
    let args = ["run", &plan, "--schema", &schema, "--format", "json"];
    let fresh = json_of(&sandbox.run(&[&args[..], &["--no-cache"]].concat()));
    let built = json_of(&sandbox.run(&args));
    let kept = json_of(&sandbox.run(&args));
    assert_eq!(built["shadow"]["cache"]["template_reused"], false);
    assert_eq!(kept["shadow"]["cache"]["template_reused"], true);
    assert_eq!(fresh["summary"]["rows_deleted"], 3 + 30, "{}", fresh["summary"]);
    for part in ["statements", "summary", "findings"] {
        assert_eq!(measured(&built[part]), measured(&fresh[part]), "{part}");
        assert_eq!(measured(&kept[part]), measured(&fresh[part]), "{part}");
    }
    sandbox.assert_clean();
}

#[test]
fn a_relative_cache_directory_is_taken_from_where_the_run_starts() {
    let sandbox = Sandbox::new();
    let here = tempfile::tempdir().expect("temp dir");
    let (plan, schema) = (common::root().join(PLAN), common::root().join(SCHEMA));
    let (plan, schema) = (plan.to_string_lossy(), schema.to_string_lossy());
    let run = || {
        sandbox
            .command(&["run", &plan, "--schema", &schema, "--format", "json", "--cache-dir", "relative-cache"])
            .current_dir(here.path())
            .env_remove("PGSHADOW_CACHE_DIR")
            .output()
            .expect("run pgshadow")
    };
    let (first, second) = (run(), run());
    assert_eq!(first.status.code(), Some(1), "{}", stderr_of(&first));
    assert_eq!(second.status.code(), Some(1), "{}", stderr_of(&second));
    let second = json_of(&second);
    assert_eq!(second["shadow"]["cache"]["template_reused"], true, "{second}");
    let cluster = second["shadow"]["cache"]["cluster"].as_str().unwrap_or_default().to_owned();
    assert!(cluster.starts_with(&here.path().join("relative-cache").display().to_string()), "{cluster}");
    sandbox.assert_clean();
}
