//! `pgshadow mcp`: the real binary spoken to over the Model Context Protocol (newline-delimited JSON-RPC 2.0 on
//! stdin/stdout), as an MCP client would: the handshake, the tool list, dry-runs, errors as tool results, and a clean
//! end — nothing left behind — when the client closes stdin or sends SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{ChildStdin, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::{KillOnDrop, Sandbox};
use serde_json::{json, Value};

const SEED: &str = "seed=scenarios/seed-incident/schema.sql";

/// The longest a response may take: the first one waits for the shadow to start and the source to load.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);

/// A `pgshadow mcp` process and the client's end of its pipes.
struct Client {
    child: KillOnDrop,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    next_id: u64,
}

impl Client {
    fn spawn(sandbox: &Sandbox, args: &[&str]) -> Client {
        let mut child = sandbox
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pgshadow mcp");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr_pipe = child.stderr.take().expect("stderr");
        // Reader threads, so that every read can time out instead of hanging the test.
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let collected = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                collected.lock().expect("stderr").push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        Client { child: KillOnDrop(Some(child)), stdin, lines, stderr, next_id: 1 }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr").clone()
    }

    fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{message}").expect("write to pgshadow mcp");
        stdin.flush().expect("flush");
    }

    /// Sends a request and returns its response, skipping any notification the server sends meanwhile.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let deadline = Instant::now() + RESPONSE_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => panic!("no response to {method} ({e:?}); stderr:\n{}", self.stderr()),
            };
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout carries a line that is not JSON ({e}): {line}"));
            assert_eq!(message["jsonrpc"], "2.0", "{message}");
            if message.get("id") == Some(&json!(id)) {
                return message;
            }
            assert!(message.get("method").is_some(), "a response to another request: {message}");
        }
    }

    /// The result of a successful request.
    fn result(&mut self, method: &str, params: Value) -> Value {
        let response = self.request(method, params);
        assert!(response.get("error").is_none(), "{method} failed: {response}");
        response["result"].clone()
    }

    fn call_tool(&mut self, name: &str, arguments: Value) -> Value {
        self.result("tools/call", json!({"name": name, "arguments": arguments}))
    }

    fn initialize(&mut self) -> Value {
        let result = self.result(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "pgshadow-tests", "version": "1"},
            }),
        );
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        result
    }

    /// Waits for the process to exit on its own, killing it and failing the test if it does not within `limit`.
    fn wait(mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        let stderr = Arc::clone(&self.stderr);
        let child = self.child.0.as_mut().expect("child");
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("pgshadow mcp did not exit within {limit:?}; stderr:\n{}", stderr.lock().expect("stderr"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The text of a tool result's content.
fn text_of(result: &Value) -> String {
    let content = result["content"].as_array().unwrap_or_else(|| panic!("no content: {result}"));
    content.iter().filter(|c| c["type"] == "text").filter_map(|c| c["text"].as_str()).collect::<Vec<_>>().join("\n")
}

#[test]
fn an_agent_dry_runs_a_plan_over_mcp_and_nothing_is_left_behind() {
    let sandbox = Sandbox::new();
    let mut client = Client::spawn(&sandbox, &["mcp", "--source", SEED]);

    let init = client.initialize();
    assert_eq!(init["protocolVersion"], "2025-06-18", "{init}");
    assert_eq!(init["serverInfo"]["name"], "pgshadow", "{init}");
    assert_eq!(init["serverInfo"]["version"], env!("CARGO_PKG_VERSION"), "{init}");
    assert!(init["capabilities"]["tools"].is_object(), "{init}");
    assert!(init["instructions"].as_str().is_some_and(|i| i.contains("rolled back")), "{init}");

    let tools = client.result("tools/list", json!({}));
    let tools = tools["tools"].as_array().expect("tools");
    let mut names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["dry_run", "explain_rule", "list_sources", "propose"]);
    for tool in tools {
        let description = tool["description"].as_str().unwrap_or_default();
        assert!(description.len() > 80, "a tool a model can understand: {tool}");
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
        // Every tool but `propose`, which stores a proposal (and still touches no database but a shadow), reads only.
        assert_eq!(tool["annotations"]["readOnlyHint"], tool["name"] != "propose", "{tool}");
    }
    let dry_run = tools.iter().find(|t| t["name"] == "dry_run").expect("dry_run");
    let description = dry_run["description"].as_str().unwrap_or_default();
    for words in ["production", "rolled back", "`pass`", "`warn`", "`fail`", "rule", "statement"] {
        assert!(description.contains(words), "the dry_run description says {words:?}: {description}");
    }
    assert_eq!(dry_run["inputSchema"]["required"], json!(["source", "sql"]), "{dry_run}");
    assert!(dry_run["inputSchema"]["properties"]["policy"].is_object(), "{dry_run}");
    let explain = tools.iter().find(|t| t["name"] == "explain_rule").expect("explain_rule");
    assert_eq!(explain["inputSchema"]["required"], json!(["rule"]), "{explain}");

    let sources = client.call_tool("list_sources", json!({}));
    assert_ne!(sources["isError"], true, "{sources}");
    assert_eq!(sources["structuredContent"]["sources"][0]["name"], "seed", "{sources}");
    assert_eq!(sources["structuredContent"]["sources"][0]["schema"]["failed"], 0, "{sources}");
    assert!(text_of(&sources).contains("seed: scenarios/seed-incident/schema.sql"), "{sources}");

    let result = client.call_tool("dry_run", json!({"source": "seed", "sql": "DROP TABLE users CASCADE;"}));
    assert_ne!(result["isError"], true, "{result}");
    let report = &result["structuredContent"];
    assert_eq!(report["verdict"], "fail", "{report}");
    assert_eq!(report["summary"]["objects_dropped"], 9, "{report}");
    assert_eq!(report["summary"]["rows_destroyed"], 8, "{report}");
    assert_eq!(report["findings"][0]["rule"], "drop-table", "{report}");
    assert_eq!(report["findings"][0]["statement"], 1, "{report}");
    let dropped = report["statements"][0]["dropped_objects"].as_array().expect("dropped objects");
    assert!(dropped.iter().any(|o| o["identity"] == "public.active_users" && o["cascaded"] == true), "{report}");
    let text = text_of(&result);
    assert!(text.starts_with("Verdict: FAIL"), "{text}");
    for words in ["9 objects dropped", "drop-table (statement 1)", "view public.active_users [CASCADE]"] {
        assert!(text.contains(words), "the text says {words:?}:\n{text}");
    }

    // A JSON plan is a plan too.
    let json_plan = r#"{"statements": ["DELETE FROM order_items WHERE id = 1"], "agent": "tests"}"#;
    let result = client.call_tool("dry_run", json!({"source": "seed", "sql": json_plan, "policy": "default"}));
    assert_ne!(result["isError"], true, "{result}");
    assert_eq!(result["structuredContent"]["verdict"], "pass", "{result}");
    assert_eq!(result["structuredContent"]["plan"]["metadata"]["agent"], "tests", "{result}");

    // A plan that cannot commit says so in the text as well as in the findings.
    let orphan = "CREATE TABLE parent (id int PRIMARY KEY);\n\
                  CREATE TABLE child (parent_id int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);\n\
                  INSERT INTO child VALUES (1);";
    let result = client.call_tool("dry_run", json!({"source": "seed", "sql": orphan}));
    assert_eq!(result["structuredContent"]["verdict"], "fail", "{result}");
    let text = text_of(&result);
    assert!(
        text.contains("COMMIT fails: the COMMIT that ends the plan fails") && text.contains("fails-at-commit"),
        "{text}"
    );

    // What cannot be dry-run is a tool error the agent can read, not a protocol error.
    let unknown = client.call_tool("dry_run", json!({"source": "production", "sql": "SELECT 1;"}));
    assert_eq!(unknown["isError"], true, "{unknown}");
    assert!(text_of(&unknown).contains("no source named \"production\""), "{unknown}");
    assert!(text_of(&unknown).contains("seed"), "the error names the sources: {unknown}");
    let bad_plan = client.call_tool("dry_run", json!({"source": "seed", "sql": "{\"statements\": 3}"}));
    assert_eq!(bad_plan["isError"], true, "{bad_plan}");
    assert!(text_of(&bad_plan).contains("plan.json:1:"), "the error says where: {bad_plan}");
    let bad_policy = client.call_tool("dry_run", json!({"source": "seed", "sql": "SELECT 1;", "policy": "lax"}));
    assert_eq!(bad_policy["isError"], true, "{bad_policy}");
    assert!(text_of(&bad_policy).contains("no policy named \"lax\""), "{bad_policy}");

    let rule = client.call_tool("explain_rule", json!({"rule": "drop-table"}));
    assert_ne!(rule["isError"], true, "{rule}");
    let text = text_of(&rule);
    for words in ["drop-table: ", "Bad:\n    DROP TABLE", "Safer:\n    ", "On a schema such as:"] {
        assert!(text.contains(words), "the explanation has {words:?}:\n{text}");
    }
    let unknown_rule = client.call_tool("explain_rule", json!({"rule": "drop-everything"}));
    assert_eq!(unknown_rule["isError"], true, "{unknown_rule}");
    assert!(text_of(&unknown_rule).contains("cascade-delete"), "the error lists the rules: {unknown_rule}");

    // The client goes away: the server ends, removing its shadow.
    drop(client.stdin.take());
    let stderr = client.stderr.clone();
    let status = client.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", stderr.lock().expect("stderr"));
    sandbox.assert_clean();
}

#[test]
fn sigterm_stops_the_mcp_server_and_removes_its_shadow() {
    let sandbox = Sandbox::new();
    let mut client = Client::spawn(&sandbox, &["mcp", "--source", SEED]);
    client.initialize();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(client.child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let stderr = client.stderr.clone();
    let status = client.wait(Duration::from_secs(60));
    let stderr = stderr.lock().expect("stderr").clone();
    assert_eq!(status.code(), Some(143), "stderr:\n{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    sandbox.assert_clean();
}

#[test]
fn without_a_source_it_stops_at_once_and_says_how_to_give_one() {
    let sandbox = Sandbox::new();
    let output = sandbox.command(&["mcp"]).stdin(Stdio::null()).output().expect("run pgshadow mcp");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no sources") && stderr.contains("--source NAME="), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing but the protocol on stdout");
    sandbox.assert_clean();
}

#[test]
fn a_client_that_floods_the_server_hears_busy_at_once_and_never_hangs() {
    let sandbox = Sandbox::new();
    let config = sandbox.input("one-at-a-time.toml");
    std::fs::write(&config, "max_concurrent = 1\n").expect("write the configuration");
    let config = config.display().to_string();
    let mut client = Client::spawn(&sandbox, &["mcp", "--config", &config, "--source", SEED]);
    client.initialize();
    // The shadow is ready once a first dry-run is answered.
    let warm = client.call_tool("dry_run", json!({"source": "seed", "sql": "SELECT 1;"}));
    assert_ne!(warm["isError"], true, "{warm}");

    // Twelve slow dry-runs at once, on a server that runs one at a time.
    let flood = 12;
    let first_id = client.next_id;
    for _ in 0..flood {
        let id = client.next_id;
        client.next_id += 1;
        let call = json!({"name": "dry_run", "arguments": {"source": "seed", "sql": "SELECT pg_sleep(2);"}});
        client.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": call}));
    }
    let started = Instant::now();
    let (mut busy, mut done) = (0, 0);
    let mut answered = std::collections::HashSet::new();
    while answered.len() < flood {
        let line = client.lines.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|e| {
            panic!("{} of {flood} answered, then nothing ({e:?}): a hang; stderr:\n{}", answered.len(), client.stderr())
        });
        let message: Value = serde_json::from_str(&line).expect("JSON");
        let Some(id) = message["id"].as_u64().filter(|id| *id >= first_id) else { continue };
        answered.insert(id);
        let result = &message["result"];
        if result["isError"] == true {
            let text = text_of(result);
            assert!(text.contains("busy") && text.contains("retry in 1s"), "only busy errors: {text}");
            assert!(text.contains("hint: call again in 1 s"), "{text}");
            busy += 1;
        } else {
            assert_eq!(result["structuredContent"]["statements"][0]["status"], "ok", "{message}");
            done += 1;
        }
    }
    assert!(busy >= flood - 2, "the calls that found the slot taken were turned away: {busy} busy, {done} done");
    assert!(done >= 1, "the first call got the slot");
    // The busy answers did not wait for the running dry-runs: twelve in turn would take 24 seconds.
    assert!(started.elapsed() < Duration::from_secs(12), "{:?}", started.elapsed());

    // The slot is free again afterwards.
    let after = client.call_tool("dry_run", json!({"source": "seed", "sql": "SELECT 1;"}));
    assert_ne!(after["isError"], true, "{after}");
    drop(client.stdin.take());
    assert!(client.wait(Duration::from_secs(60)).success());
    sandbox.assert_clean();
}

#[test]
fn an_agent_proposes_over_mcp_and_the_proposal_waits_in_the_store() {
    let sandbox = Sandbox::new();
    let config = sandbox.input("serve.toml");
    std::fs::write(&config, "store = \"proposals.sqlite\"\n").expect("write the configuration");
    let store = sandbox.input("proposals.sqlite");
    let config = config.display().to_string();
    let mut client = Client::spawn(&sandbox, &["mcp", "--config", &config, "--source", SEED]);
    client.initialize();
    let plan = json!({"statements": ["DELETE FROM users WHERE id > 6"], "agent": "claude"}).to_string();
    let arguments = json!({"source": "seed", "sql": plan, "target": "production", "intent": "remove the test users"});
    let result = client.call_tool("propose", arguments);
    assert_ne!(result["isError"], true, "{result}");
    let record = &result["structuredContent"];
    assert_eq!(record["state"], "proposed", "{record}");
    assert_eq!(record["proposal"]["proposer"], "claude");
    assert_eq!(record["proposal"]["intent"], "remove the test users");
    assert_eq!(record["proposal"]["envelope"]["tables"]["public.users"]["deleted"], 2);
    assert!(text_of(&result).contains("Stored as proposal 1"), "{result}");
    let unknown = client.call_tool("propose", json!({"source": "nope", "sql": "SELECT 1;"}));
    assert_eq!(unknown["isError"], true, "{unknown}");
    let connection = rusqlite::Connection::open(&store).expect("the store");
    let stored: i64 = connection.query_row("SELECT count(*) FROM proposals", [], |r| r.get(0)).expect("count");
    assert_eq!(stored, 1);
    drop(client.stdin.take());
    let status = client.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0));
    sandbox.assert_clean();
}
