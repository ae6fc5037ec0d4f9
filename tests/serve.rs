//! `pgshadow serve` over real HTTP: the test starts the real binary on a free port and talks to it with a plain
//! HTTP/1.1 client, then stops it with SIGTERM and checks nothing is left behind.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::Sandbox;

/// A running `pgshadow serve`.
struct Server {
    child: Option<Child>,
    address: String,
    sandbox: Sandbox,
}

impl Server {
    /// Starts `pgshadow serve` with `args` (plus `--listen 127.0.0.1:0`) and `env`, and waits for its address.
    fn start(sandbox: Sandbox, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = sandbox.command(&[&["serve", "--listen", "127.0.0.1:0"], args].concat());
        command.envs(env.iter().copied()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn pgshadow serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("pgshadow serve: listening on http://") {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_owned());
                }
            }
        });
        let address = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("pgshadow serve did not start listening")
        });
        Server { child: Some(child), address, sandbox }
    }

    /// Sends a request; returns the status, the headers (lower-cased names) and the body.
    fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, Vec<(String, String)>, String) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(auth) = &auth {
            headers.insert(0, ("Authorization", auth.as_str()));
        }
        common::http(&self.address, method, path, &headers, body)
    }

    fn json(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, serde_json::Value) {
        let (status, _, body) = self.request(method, path, token, body);
        (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}")))
    }

    /// SIGTERM, then waits for the exit; returns the exit code.
    fn stop(self) -> Option<i32> {
        let pid = self.child.as_ref().expect("running").id() as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        self.stop_after_signal()
    }

    /// Waits for the exit of a server that was sent SIGTERM, checks nothing is left; returns the exit code.
    fn stop_after_signal(mut self) -> Option<i32> {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.sandbox.assert_clean();
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("pgshadow serve did not stop within a minute of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

const SEED: &str = "seed=scenarios/seed-incident/schema.sql";

#[test]
fn a_dry_run_over_http_reports_the_cascade_and_the_token_is_required() {
    let server = Server::start(Sandbox::new(), &["--source", SEED], &[("PGSHADOW_TOKEN", "s3cret")]);
    let drop = r#"{"source": "seed", "plan": "DROP TABLE users CASCADE;"}"#;

    let (status, body) = server.json("POST", "/v1/dry-runs", None, drop);
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));
    let (status, body) = server.json("POST", "/v1/dry-runs", Some("s3cret-not"), drop);
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));
    let (status, _) = server.json("GET", "/v1/health", None, "");
    assert_eq!(status, 200, "health needs no token");

    let (status, report) = server.json("POST", "/v1/dry-runs", Some("s3cret"), drop);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["verdict"], "fail");
    assert_eq!(report["summary"]["objects_dropped"], 9);
    let cascaded: Vec<&str> = report["statements"][0]["dropped_objects"]
        .as_array()
        .expect("dropped objects")
        .iter()
        .filter(|o| o["cascaded"] == true)
        .filter_map(|o| o["identity"].as_str())
        .collect();
    assert!(
        cascaded.contains(&"public.active_users") && cascaded.contains(&"public.user_order_totals"),
        "{cascaded:?}"
    );
    let (_, sources) = server.json("GET", "/v1/sources", Some("s3cret"), "");
    assert_eq!(report["shadow"]["schema"]["sha256"], sources[0]["sha256"], "the report binds to the source");
    assert_eq!(report["plan"]["sha256"].as_str().map(str::len), Some(64));

    let (status, body) = server.json(
        "POST",
        "/v1/dry-runs",
        Some("s3cret"),
        r#"{"source": "seed", "plan": "DELETE FROM users WHERE id = ;"}"#,
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (200, None),
        "a statement error is a report, not an API error: {body}"
    );
    let (status, body) =
        server.json("POST", "/v1/dry-runs", Some("s3cret"), r#"{"source": "nope", "plan": "SELECT 1;"}"#);
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_source")));
    let (status, body) =
        server.json("POST", "/v1/dry-runs", Some("s3cret"), r#"{"source": "seed", "plan": "SELECT 1; \\! rm -rf /"}"#);
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("invalid_plan")), "{body}");
    assert_eq!(body["error"]["line"], 1);
    let (status, body) = server.json("POST", "/v1/dry-runs", Some("s3cret"), r#"{"source": "seed", "plan": 1}"#);
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")));

    let (_, _, metrics) = server.request("GET", "/v1/metrics", Some("s3cret"), "");
    assert!(metrics.contains("pgshadow_dry_runs_total{verdict=\"fail\"} 2"), "{metrics}");
    assert!(metrics.contains("pgshadow_rejected_total{reason=\"unauthorized\"} 2"), "{metrics}");
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn conflicting_dry_runs_at_once_each_see_the_source_whole() {
    let server = Server::start(Sandbox::new(), &["--source", SEED], &[]);
    let results: Vec<(u16, serde_json::Value)> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    server.json(
                        "POST",
                        "/v1/dry-runs",
                        None,
                        r#"{"source": "seed", "plan": "DROP TABLE users CASCADE;"}"#,
                    )
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().expect("a client")).collect()
    });
    for (status, report) in results {
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["statements"][0]["status"], "ok", "no run saw another's DROP");
        assert_eq!(report["summary"]["rows_destroyed"], 8);
    }
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn limits_body_size_concurrency_and_source_paths() {
    let sandbox = Sandbox::new();
    let dumps = sandbox.input("dumps");
    std::fs::create_dir_all(&dumps).expect("mkdir");
    std::fs::write(dumps.join("small.sql"), "CREATE TABLE t (id int);").expect("write");
    std::fs::write(sandbox.input("secret.sql"), "CREATE TABLE secret (id int);").expect("write");
    std::os::unix::fs::symlink(sandbox.input("secret.sql"), dumps.join("link.sql")).expect("link");
    let config = sandbox.input("serve.toml");
    std::fs::write(
        &config,
        format!(
            "allowed_dirs = [{:?}]\nbody_limit = \"2K\"\nmax_concurrent = 1\n[[sources]]\nname = \"seed\"\nschema = {:?}\n",
            dumps.display().to_string(),
            common::root().join("scenarios/seed-incident/schema.sql").display().to_string()
        ),
    )
    .expect("write config");
    let server = Server::start(sandbox, &["--config", &config.display().to_string()], &[]);

    let big = format!(r#"{{"source": "seed", "plan": "SELECT '{}';"}}"#, "x".repeat(4096));
    let (status, body) = server.json("POST", "/v1/dry-runs", None, &big);
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("payload_too_large")));

    let register = |path: String| {
        server.json("POST", "/v1/sources", None, &serde_json::json!({"name": "x", "path": path}).to_string())
    };
    let escape = format!("{}/../secret.sql", dumps.display());
    assert_eq!(register(escape).1["error"]["code"], "path_not_allowed");
    assert_eq!(register(dumps.join("link.sql").display().to_string()).1["error"]["code"], "path_not_allowed");
    let (status, info) = register(dumps.join("small.sql").display().to_string());
    assert_eq!(status, 201, "{info}");
    assert_eq!(info["name"], "x");
    let (status, body) = register(dumps.join("small.sql").display().to_string());
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("source_exists")));

    // One slot: while a slow plan holds it, another request is turned away with Retry-After.
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| {
            server.json("POST", "/v1/dry-runs", None, r#"{"source": "seed", "plan": "SELECT pg_sleep(3);"}"#)
        });
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut busy = None;
        while busy.is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            let (status, headers, _) =
                server.request("POST", "/v1/dry-runs", None, r#"{"source": "seed", "plan": "SELECT 1;"}"#);
            if status == 429 {
                busy = headers.into_iter().find(|(k, _)| k == "retry-after").map(|(_, v)| v);
            }
        }
        assert_eq!(busy.as_deref(), Some("1"), "a second request while the only slot is taken gets 429 + Retry-After");
        assert_eq!(slow.join().expect("the slow client").0, 200);
    });
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn sigterm_lets_a_request_in_flight_finish_and_leaves_nothing_behind() {
    let server = Server::start(Sandbox::new(), &["--source", SEED], &[]);
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| {
            server.json("POST", "/v1/dry-runs", None, r#"{"source": "seed", "plan": "SELECT pg_sleep(2);"}"#)
        });
        std::thread::sleep(Duration::from_millis(700));
        let pid = server.child.as_ref().expect("running").id() as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let (status, report) = slow.join().expect("the client");
        assert_eq!(status, 200, "the request in flight finished: {report}");
    });
    assert_eq!(server.stop_after_signal(), Some(0));
}

#[test]
fn a_hostile_source_registered_over_http_cannot_reach_the_host() {
    use std::os::unix::fs::PermissionsExt;
    let marks = tempfile::Builder::new().prefix("pgshadow-hostile-").tempdir_in("/tmp").expect("temp dir");
    std::fs::set_permissions(marks.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let dir = marks.path().display();
    let server = Server::start(Sandbox::new(), &[], &[]);
    let schema = format!(
        "CREATE TABLE t (id int);\n\
         COPY (SELECT 1) TO PROGRAM 'id > {dir}/program';\n\
         CREATE FUNCTION escalate() RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$ \
         BEGIN COPY (SELECT 1) TO PROGRAM 'id > {dir}/definer'; END $$;\n\
         ALTER FUNCTION escalate() OWNER TO postgres;\n"
    );
    let register = serde_json::json!({"name": "evil", "schema": schema}).to_string();
    let (status, info) = server.json("POST", "/v1/sources", None, &register);
    assert_eq!(status, 201, "{info}");
    let warnings = info["fidelity"]["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!((warnings[0]["line"].as_u64(), warnings[0]["sqlstate"].as_str()), (Some(2), Some("42501")));
    assert!(warnings[0]["needs_superuser"].as_str().is_some_and(|r| r.starts_with("needs superuser")));
    assert_eq!(info["fidelity"]["source_trust"], "untrusted");

    let plan = r#"{"source": "evil", "plan": "SELECT escalate();"}"#;
    let (status, report) = server.json("POST", "/v1/dry-runs", None, plan);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["statements"][0]["error"]["sqlstate"], "42501", "{report}");
    let left: Vec<_> = std::fs::read_dir(marks.path()).expect("read").flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "a source registered over HTTP reached the host: {left:?}");

    // Trust is never given over HTTP.
    let trusted = serde_json::json!({"name": "t", "schema": "SELECT 1;", "trust_source": true}).to_string();
    let (status, _) = server.json("POST", "/v1/sources", None, &trusted);
    assert_eq!(status, 400);
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn a_source_registered_with_a_profile_says_whether_it_matches_and_a_corrupt_one_is_refused() {
    let server = Server::start(Sandbox::new(), &[], &[("PGSHADOW_TOKEN", "t")]);
    // A profile of another schema: a table `u` the source lacks (a real profile's check is in tests/profile.rs).
    let profile = serde_json::json!({
        "profile_version": 1, "tool_version": "0", "server_version": "15", "database": "prod", "values": "none",
        "catalog_sha256": "0", "sequences": [],
        "tables": [{"schema": "public", "name": "u", "kind": "table", "reltuples": 10.0, "relpages": 1,
                    "heap_bytes": 8192, "toast_bytes": 0, "index_bytes": 0, "total_bytes": 8192, "analyzed": false,
                    "last_analyze": null, "last_autoanalyze": null, "last_vacuum": null, "last_autovacuum": null,
                    "partition_of": null, "partitions": [], "columns": [], "integer_keys": []}]
    });
    let body = serde_json::json!({"name": "app", "schema": "CREATE TABLE t (id int);", "profile": profile});
    let (status, info) = server.json("POST", "/v1/sources", Some("t"), &body.to_string());
    assert_eq!(status, 201, "{info}");
    assert_eq!(info["profile"]["matches"], false);
    assert_eq!(info["profile"]["missing_in_shadow"], serde_json::json!(["public.u"]));
    assert_eq!(info["profile"]["missing_in_profile"], serde_json::json!(["public.t"]));
    let (status, report) = server.json("POST", "/v1/dry-runs", Some("t"), r#"{"source": "app", "plan": "SELECT 1;"}"#);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["profile"], info["profile"]);

    let corrupt = serde_json::json!({"name": "bad", "schema": "SELECT 1;", "profile": {"profile_version": 1}});
    let (status, error) = server.json("POST", "/v1/sources", Some("t"), &corrupt.to_string());
    assert_eq!((status, error["error"]["code"].as_str()), (422, Some("invalid_profile")), "{error}");
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn a_non_loopback_address_needs_a_token() {
    let sandbox = Sandbox::new();
    let output = sandbox.run(&["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(common::stderr_of(&output).contains("set a token"), "{}", common::stderr_of(&output));
    sandbox.assert_clean();
}

#[test]
fn proposals_over_http_need_a_token_of_the_tokens_file_in_its_role() {
    let sandbox = Sandbox::new();
    let config = sandbox.input("serve.toml");
    std::fs::write(
        sandbox.input("tokens.toml"),
        "[[tokens]]\ntoken = \"agent-token-0000000001\"\nname = \"bot\"\nrole = \"agent\"\n\n\
         [[tokens]]\ntoken = \"review-token-000000001\"\nname = \"alice\"\nrole = \"reviewer\"\n",
    )
    .expect("write tokens");
    let schema = common::root().join("scenarios/seed-incident/schema.sql");
    std::fs::write(
        &config,
        format!(
            "store = \"store.sqlite\"\ntokens_file = \"tokens.toml\"\n\n[[sources]]\nname = \"seed\"\nschema = {:?}\n",
            schema.display().to_string()
        ),
    )
    .expect("write config");
    let store = sandbox.input("store.sqlite");
    let server = Server::start(sandbox, &["--config", config.to_str().expect("utf-8")], &[]);
    let (agent, reviewer) = (Some("agent-token-0000000001"), Some("review-token-000000001"));
    let plan = r#"{"source": "seed", "plan": "DELETE FROM users WHERE id > 6;", "target": "production",
                   "intent": "remove the test users"}"#;

    let (status, body) = server.json("POST", "/v1/proposals", None, plan);
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));
    let (status, body) = server.json("POST", "/v1/proposals", reviewer, plan);
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "a reviewer cannot propose");
    let (status, record) = server.json("POST", "/v1/proposals", agent, plan);
    assert_eq!(status, 201, "{record}");
    assert_eq!((record["state"].as_str(), record["proposal"]["proposer"].as_str()), (Some("proposed"), Some("bot")));
    assert_eq!(record["proposal"]["envelope"]["tables"]["public.users"]["deleted"], 2);
    assert_eq!(record["proposal"]["report"]["verdict"], record["proposal"]["verdict"]);
    assert!(record["proposal"]["catalog"]["objects"]["column public.users.email"].is_string());
    let id = record["proposal"]["id"].as_i64().expect("an id");

    let (status, body) = server.json("POST", &format!("/v1/proposals/{id}/approve"), agent, "{}");
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "an agent cannot approve");
    let refusals = audit_refusals(&store);
    let expected = "approve refused: not allowed: bot has the role agent; this needs the role reviewer";
    assert_eq!(refusals, vec![("bot".to_owned(), expected.to_owned())], "audited as the CLI and the review page do");
    let (status, body) = server.json("GET", "/v1/proposals/nine", reviewer, "");
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")));
    let (status, body) = server.json("GET", "/v1/proposals/99", reviewer, "");
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_proposal")));
    let approve = format!("/v1/proposals/{id}/approve");
    let (status, record) = server.json("POST", &approve, reviewer, r#"{"comment": "2 users"}"#);
    assert_eq!((status, record["state"].as_str()), (200, Some("approved")), "{record}");
    assert_eq!(record["decisions"][0]["comment"], "2 users");
    let (status, body) = server.json("POST", &approve, reviewer, "");
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("refused")), "{body}");
    let (status, list) = server.json("GET", "/v1/proposals?state=approved", agent, "");
    assert_eq!((status, list.as_array().map(Vec::len)), (200, Some(1)));
    let (status, _) = server.json("GET", "/v1/proposals?state=maybe", agent, "");
    assert_eq!(status, 400);

    let (_, document) = server.json("GET", "/v1/openapi.json", None, "");
    let schema =
        serde_json::json!({"$ref": "#/components/schemas/ProposalRecord", "components": document["components"]});
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator.iter_errors(&record).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "a real record matches the documented ProposalRecord: {errors:?}");
    assert!(store.is_file(), "the configuration's store holds them");
    assert_eq!(server.stop(), Some(0));
}

/// The `refused` entries of the audit log of the SQLite store at `path`: actor and detail.
fn audit_refusals(path: &std::path::Path) -> Vec<(String, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let entries = runtime.block_on(async {
        let store = pgshadow::proposal::Store::open(&path.display().to_string()).await.expect("open the store");
        store.audit().await.expect("the audit log")
    });
    entries
        .into_iter()
        .filter(|e| e.fact.event == pgshadow::proposal::audit::Event::Refused)
        .map(|e| (e.fact.actor, e.fact.detail.unwrap_or_default()))
        .collect()
}

#[test]
fn the_openapi_document_describes_the_api_and_its_report_schema_validates_real_reports() {
    let server = Server::start(Sandbox::new(), &["--source", SEED], &[]);
    let (status, document) = server.json("GET", "/v1/openapi.json", None, "");
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    for path in ["/v1/health", "/v1/sources", "/v1/dry-runs", "/v1/metrics", "/v1/openapi.json", "/v1/proposals"] {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
    let schema_of = |name: &str| {
        let schema =
            serde_json::json!({"$ref": format!("#/components/schemas/{name}"), "components": document["components"]});
        jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{name}'s schema compiles: {e}"))
    };
    let (_, report) = server.json("POST", "/v1/dry-runs", None, r#"{"source": "seed", "plan": "DELETE FROM orders;"}"#);
    assert!(schema_of("Report").is_valid(&report), "a real report matches the documented Report");
    assert!(!schema_of("Report").is_valid(&serde_json::json!({"verdict": "maybe"})));
    let (_, sources) = server.json("GET", "/v1/sources", None, "");
    assert!(schema_of("SourceInfo").is_valid(&sources[0]));
    let (_, error) = server.json("POST", "/v1/dry-runs", None, r#"{"source": "nope", "plan": "SELECT 1;"}"#);
    assert!(schema_of("Error").is_valid(&error));
    assert!(schema_of("DryRunRequest").is_valid(&serde_json::json!({"source": "seed", "statements": ["SELECT 1"]})));
    assert!(!schema_of("DryRunRequest").is_valid(&serde_json::json!({"source": "seed", "sql": "SELECT 1"})));
    assert_eq!(server.stop(), Some(0));
}

/// The OpenAPI document passes a validator, and a property-based tool exercises the API from it in a bounded run:
/// every response must match the document. Needs `schemathesis` and `openapi-spec-validator` (from PyPI): the test
/// runs when PGSHADOW_SCHEMATHESIS names the directory holding both (`.ci/run` installs them into a virtualenv).
#[test]
fn the_api_holds_to_its_openapi_document_under_schemathesis() {
    let Some(bin) = std::env::var_os("PGSHADOW_SCHEMATHESIS").map(std::path::PathBuf::from) else {
        eprintln!("PGSHADOW_SCHEMATHESIS is not set: `pip install schemathesis openapi-spec-validator` and point it at their bin/");
        return;
    };
    let server = Server::start(Sandbox::new(), &["--source", SEED], &[("PGSHADOW_TOKEN", "t0ken")]);
    let document = server.request("GET", "/v1/openapi.json", None, "").2;
    let file = server.sandbox.input("openapi.json");
    std::fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
    std::fs::write(&file, document).expect("write the document");
    let validated = std::process::Command::new(bin.join("openapi-spec-validator"))
        .arg(&file)
        .output()
        .expect("run openapi-spec-validator");
    assert!(validated.status.success(), "{}", String::from_utf8_lossy(&validated.stdout));

    let url = format!("http://{}/v1/openapi.json", server.address);
    let config = common::root().join("tests/schemathesis.toml");
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let run = std::process::Command::new(bin.join("schemathesis"))
        .args(["--config-file"])
        .arg(&config)
        .args(["run", &url, "-H", "Authorization: Bearer t0ken", "--max-examples", "40", "--seed", "1"])
        .env("NO_COLOR", "1")
        // It keeps a cache (.schemathesis/) in its working directory: not in the repository.
        .current_dir(scratch.path())
        .output()
        .expect("run schemathesis");
    assert!(
        run.status.success(),
        "schemathesis found responses that break the document:\n{}",
        String::from_utf8_lossy(&run.stdout)
    );
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn wrong_tokens_close_the_api_to_an_address_then_to_everyone_and_the_sign_in_with_it() {
    let sandbox = Sandbox::new();
    let (agent, wrong) = ("agent-token-0000000001", "agent-token-0000000002");
    std::fs::write(
        sandbox.input("tokens.toml"),
        format!("[[tokens]]\ntoken = \"{agent}\"\nname = \"bot\"\nrole = \"agent\"\n"),
    )
    .expect("write tokens");
    let config = sandbox.input("serve.toml");
    std::fs::write(&config, "store = \"store.sqlite\"\ntokens_file = \"tokens.toml\"\n").expect("write config");
    let server = Server::start(sandbox, &["--config", config.to_str().expect("utf-8")], &[]);
    let from = |client: u8, token: &str| {
        let auth = format!("Bearer {token}");
        let client = std::net::IpAddr::from([127, 0, 0, client]);
        common::http_from(client, &server.address, "GET", "/v1/proposals", &[("Authorization", &auth)], "")
    };
    let code = |body: &str| serde_json::from_str::<serde_json::Value>(body).expect("JSON")["error"]["code"].clone();

    // One address: ten wrong tokens are told 401, then its right token waits too; other addresses do not.
    for _ in 0..10 {
        assert_eq!(from(2, wrong).0, 401);
    }
    let (status, headers, body) = from(2, agent);
    assert_eq!((status, code(&body)), (429, serde_json::json!("locked_out")), "{body}");
    let retry = headers.iter().find(|(k, _)| k == "retry-after").and_then(|(_, v)| v.parse::<u64>().ok());
    assert!(retry.is_some_and(|s| s > 0), "{headers:?}");
    assert_eq!(from(3, agent).0, 200, "another address is not held back");

    // Wrong tokens spread over addresses, none past its own limit: past the limit of all, a new address waits too,
    // on the API and on the review page's sign-in. (Found in rounds: the global bucket refills once a second.)
    let mut client = 10u8;
    let mut sent = 0;
    let mut closed_to_all = false;
    for _round in 0..5 {
        loop {
            client += u8::from(sent % 9 == 8);
            sent += 1;
            assert!(sent < 600, "the wrong tokens of many addresses are never held back");
            if from(client, wrong).0 == 429 {
                break;
            }
        }
        let (api, _, _) = from(client.wrapping_add(100), agent);
        let form = [("Content-Type", "application/x-www-form-urlencoded")];
        let fresh = std::net::IpAddr::from([127, 0, 1, client]);
        let (ui, headers, page) =
            common::http_from(fresh, &server.address, "POST", "/ui/sign-in", &form, &format!("token={agent}"));
        if api == 429 && ui == 429 {
            assert!(page.contains("Too many wrong tokens"), "{page}");
            assert!(headers.iter().any(|(k, _)| k == "retry-after"), "{headers:?}");
            closed_to_all = true;
            break;
        }
    }
    assert!(closed_to_all, "failures from {client} addresses never closed the API and the sign-in to a new one");
    assert_eq!(server.stop(), Some(0));
}
