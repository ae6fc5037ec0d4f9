//! Walks `scenarios/`: each folder's plan is dry-run by the real binary on its schema (or archive), on every
//! PostgreSQL version the tests have (the system's and PGSHADOW_TEST_BUILDS'), and the JSON report and the exit code
//! must match the folder's `expected.json` — or `expected-pg<major>.json` where a version behaves differently (see
//! `scenarios/README.md`). Every report must also validate against the published JSON Schema,
//! `docs/report.schema.json`, which must be the one the types generate.

mod common;

use common::{contained, json_of, Sandbox};

#[test]
fn every_scenario_meets_its_expectation() {
    let dir = common::root().join("scenarios");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("expected.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 5, "expected at least five scenarios, found {names:?}");

    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::root().join("docs/report.schema.json")).expect("schema"))
            .expect("the published schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the published schema is a valid JSON Schema");
    let mut targets: Vec<Target> = common::installations().into_iter().map(Target::Local).collect();
    assert!(!targets.is_empty(), "no PostgreSQL to run the scenarios on");
    // And on the container provider, with the test image `.ci/run` builds (of PGSHADOW_TEST_IMAGE_MAJOR).
    // Reached through its socket, and, where the daemon runs in a network namespace of its own, through a port.
    if let (Ok(image), Ok(major)) = (std::env::var("PGSHADOW_TEST_IMAGE"), std::env::var("PGSHADOW_TEST_IMAGE_MAJOR")) {
        let major = major.parse().expect("PGSHADOW_TEST_IMAGE_MAJOR: a major version");
        targets.push(Target::Container(image.clone(), major, None));
        if let Some(netns) = common::docker_netns() {
            targets.push(Target::Container(image, major, Some(netns)));
        }
    }
    // One thread per version: each run has a shadow of its own.
    let failures: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = targets
            .iter()
            .map(|target| {
                let (names, validator) = (&names, &validator);
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for name in names {
                        if let Err(why) = check(name, target, validator) {
                            failures.push(format!("{name} on {}: {why}", target.describe()));
                        }
                    }
                    failures
                })
            })
            .collect();
        runs.into_iter().flat_map(|run| run.join().expect("a scenario thread")).collect()
    });
    let runs = names.len() * targets.len();
    assert!(failures.is_empty(), "{} of {runs} scenario runs failed:\n{}", failures.len(), failures.join("\n"));
}

/// Where a scenario runs: a local shadow of an installed PostgreSQL, or a container of an image of a major version
/// (reached through a port from the network namespace given, else through its socket).
enum Target {
    Local(pgshadow::postgres::Installation),
    Container(String, u32, Option<std::path::PathBuf>),
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Local(installation) => format!("PostgreSQL {}", installation.version),
            Target::Container(image, _, None) => format!("a container of {image}"),
            Target::Container(image, _, Some(_)) => format!("a container of {image} reached through a port"),
        }
    }

    fn major(&self) -> u32 {
        match self {
            Target::Local(installation) => installation.version.major,
            Target::Container(_, major, _) => *major,
        }
    }

    /// The arguments that put the run on this target.
    fn args(&self) -> Vec<String> {
        match self {
            Target::Local(installation) => vec!["--pg-version".into(), installation.version.to_string()],
            Target::Container(image, _, netns) => {
                let reach = if netns.is_some() { "port" } else { "socket" };
                ["--shadow", "container", "--image", image, "--pull", "never", "--reach", reach]
                    .map(String::from)
                    .to_vec()
            }
        }
    }
}

fn check(name: &str, target: &Target, validator: &jsonschema::Validator) -> Result<(), String> {
    let folder = format!("scenarios/{name}");
    let dir = common::root().join(&folder);
    let on_container =
        matches!(target, Target::Container(..)).then(|| format!("expected-container-pg{}.json", target.major()));
    let file = on_container
        .into_iter()
        .chain([format!("expected-pg{}.json", target.major()), "expected.json".to_owned()])
        .into_iter()
        .find(|f| dir.join(f).is_file())
        .ok_or("no expected.json")?;
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(&file)).map_err(|e| e.to_string())?)
            .map_err(|e| format!("{file}: {e}"))?;
    let plan = ["plan.sql", "plan.json"]
        .into_iter()
        .map(|p| format!("{folder}/{p}"))
        .find(|p| common::root().join(p).is_file())
        .ok_or("no plan.sql or plan.json")?;
    // The source: a pg_dump archive when the folder has one, else the plain SQL schema.
    let (flag, source) = match common::root().join(&folder).join("snapshot.dump").is_file() {
        true => ("--snapshot", format!("{folder}/snapshot.dump")),
        false => ("--schema", format!("{folder}/schema.sql")),
    };
    let sandbox = Sandbox::new().with_builds();
    let target_args = target.args();
    let target_args: Vec<&str> = target_args.iter().map(String::as_str).collect();
    // A profile of production, when the folder has one.
    let profile = format!("{folder}/profile.json");
    let profile_args: Vec<&str> = match common::root().join(&profile).is_file() {
        true => vec!["--profile", &profile],
        false => Vec::new(),
    };
    let args = [&["run", &plan, flag, &source, "--format", "json"], &profile_args[..], &target_args[..]].concat();
    let output = match target {
        Target::Container(_, _, Some(netns)) => sandbox.command_in(netns, &args).output().expect("run pgshadow"),
        _ => sandbox.run(&args),
    };
    sandbox.assert_clean();
    let code = output.status.code();
    let want_code = expected["exit_code"].as_i64().map(|c| c as i32);
    if code != want_code {
        return Err(format!("exit code {code:?}, expected {want_code:?}; stderr: {}", common::stderr_of(&output)));
    }
    let report = json_of(&output);
    if let Some(error) = validator.iter_errors(&report).next() {
        return Err(format!("the report does not match docs/report.schema.json: {error} at {}", error.instance_path()));
    }
    let ran_on = report["shadow"]["version"].as_str().and_then(|v| v.split('.').next()).unwrap_or_default().to_owned();
    if ran_on != target.major().to_string() {
        return Err(format!("ran on PostgreSQL {}, not {}", report["shadow"]["version"], target.describe()));
    }
    contained(&expected["report"], &report, "report").map_err(|why| format!("{why} (expected in {file})"))
}

#[test]
fn the_published_schema_is_the_generated_one() {
    let published = std::fs::read_to_string(common::root().join("docs/report.schema.json")).expect("schema");
    assert!(
        published == pgshadow::report::json_schema(),
        "docs/report.schema.json is out of date: run `cargo run -- schema > docs/report.schema.json`"
    );
}

#[test]
fn the_schema_rejects_a_report_that_breaks_the_contract() {
    let schema: serde_json::Value =
        serde_json::from_str(&pgshadow::report::json_schema()).expect("the generated schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    assert!(!validator.is_valid(&serde_json::json!({"format_version": 1, "verdict": "maybe"})));
}

#[test]
fn containment_checks_what_it_claims() {
    use serde_json::json;
    let actual = json!({"a": 1, "b": [{"x": 1, "y": 2}, {"x": 3}]});
    assert!(contained(&json!({"b": [{"x": 3}, {"x": 1}]}), &actual, "").is_ok());
    assert!(contained(&json!({"a": 2}), &actual, "").is_err());
    assert!(contained(&json!({"c": 1}), &actual, "").is_err());
    assert!(contained(&json!({"b": [{"x": 1}]}), &actual, "").is_err(), "arrays must be pinned whole");
    assert!(contained(&json!({"b": [{"x": 1}, {"x": 1}]}), &actual, "").is_err(), "elements match once");
}
