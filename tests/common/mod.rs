//! Shared test helpers: running the real binary in an isolated temp directory, checking nothing is left behind,
//! and dry-running through the library. Every test here starts real shadows through the code under test.

#![allow(dead_code)] // each test binary uses its own subset of these helpers

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pgshadow::{DryRunOptions, Plan, Report, Schema};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The cache directory whose PostgreSQL builds the tests run on besides the system's: `PGSHADOW_TEST_BUILDS`,
/// which `.ci/run` fills with `pgshadow postgres install`.
pub fn builds() -> Option<PathBuf> {
    std::env::var_os("PGSHADOW_TEST_BUILDS").filter(|b| !b.is_empty()).map(PathBuf::from)
}

/// Every PostgreSQL the tests can run on, newest first. With `PGSHADOW_TEST_VERSIONS=13,18` (as `.ci/run` sets it),
/// fails unless each of those majors is among them, so that a machine that lost its builds fails instead of
/// quietly testing less.
pub fn installations() -> Vec<pgshadow::postgres::Installation> {
    let found = pgshadow::postgres::discover(builds().as_deref());
    let required = std::env::var("PGSHADOW_TEST_VERSIONS").unwrap_or_default();
    for major in required.split(',').filter(|m| !m.trim().is_empty()) {
        let major: u32 = major.trim().parse().expect("PGSHADOW_TEST_VERSIONS: majors such as 13,18");
        assert!(
            found.iter().any(|f| f.version.major == major),
            "PGSHADOW_TEST_VERSIONS asks for PostgreSQL {major}, and it is not installed (PGSHADOW_TEST_BUILDS={:?})",
            builds()
        );
    }
    found
}

/// The oldest and the newest major version the tests can run on, when there are two different ones.
pub fn oldest_and_newest() -> Option<(pgshadow::postgres::Installation, pgshadow::postgres::Installation)> {
    let found = installations();
    let (newest, oldest) = (found.first()?.clone(), found.last()?.clone());
    (newest.version.major != oldest.version.major).then_some((oldest, newest))
}

/// The network namespace of the test Docker daemon (`PGSHADOW_TEST_DOCKER_NETNS`, which `.ci/run` sets when it
/// started the daemon in a namespace of its own): its containers' published ports are on that namespace's
/// 127.0.0.1, so runs that reach a container through a port (`--reach port`) run there.
pub fn docker_netns() -> Option<PathBuf> {
    std::env::var_os("PGSHADOW_TEST_DOCKER_NETNS").filter(|n| !n.is_empty()).map(PathBuf::from)
}

/// A private TMPDIR for one run of the binary, so a test can see exactly what the run left behind. It is made
/// enterable by every user (0711), as /tmp is, because as root the shadow server runs as another OS user.
pub struct Sandbox {
    dir: tempfile::TempDir,
    /// The test's own files, kept out of the sandbox so that the sandbox must end up empty.
    inputs: tempfile::TempDir,
    /// The shadow cache of the runs (PGSHADOW_CACHE_DIR), enterable by every user like the sandbox.
    cache: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new().prefix("pgshadow-test-").tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
        let inputs = tempfile::Builder::new().prefix("pgshadow-test-inputs-").tempdir().expect("temp dir");
        let cache = tempfile::Builder::new().prefix("pgshadow-test-cache-").tempdir().expect("temp dir");
        std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
        Sandbox { dir, inputs, cache }
    }

    /// Makes the PostgreSQL builds of [`builds`] available to the runs, as if installed into their cache.
    pub fn with_builds(self) -> Sandbox {
        if let Some(builds) = builds() {
            std::os::unix::fs::symlink(builds.join("postgres"), self.cache().join("postgres")).expect("link builds");
        }
        self
    }

    /// The shadow cache of the runs.
    pub fn cache(&self) -> &Path {
        self.cache.path()
    }

    /// The TMPDIR of the runs.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path for one of the test's own files, outside the sandbox.
    pub fn input(&self, name: &str) -> PathBuf {
        self.inputs.path().join(name)
    }

    /// `pgshadow ARGS` with TMPDIR pointing into the sandbox, run from the repository root.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgshadow"));
        cmd.args(args)
            .current_dir(root())
            .env("TMPDIR", self.path())
            .env("PGSHADOW_CACHE_DIR", self.cache())
            // A run leaves no supervisor behind unless its test asks for one (tests/warm.rs).
            .env("PGSHADOW_KEEP_WARM", "0")
            .env_remove("RUST_LOG");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run pgshadow")
    }

    /// `pgshadow ARGS` as [`Sandbox::command`] makes it, run in the network namespace `netns` (`nsenter --net`):
    /// where the test Docker daemon publishes its containers' ports.
    pub fn command_in(&self, netns: &Path, args: &[&str]) -> Command {
        let inner = self.command(args);
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", netns.display())).arg("--").arg(inner.get_program()).args(inner.get_args());
        cmd.current_dir(root());
        for (key, value) in inner.get_envs() {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        cmd
    }

    /// Fails when the run left a file in the sandbox or a server process started from it.
    pub fn assert_clean(&self) {
        let left: Vec<_> = std::fs::read_dir(self.path())
            .expect("read sandbox")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(left.is_empty(), "left behind in TMPDIR: {left:?}");
        for dir in [self.path(), self.cache()] {
            let processes = processes_mentioning(&format!("{}/", dir.display()));
            assert!(processes.is_empty(), "server processes left running: {processes:?}");
        }
    }
}

/// A spawned pgshadow that is killed if the test fails before waiting for it, so a failing test leaves nothing.
pub struct KillOnDrop(pub Option<std::process::Child>);

impl KillOnDrop {
    pub fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, |c| c.id())
    }

    pub fn wait_with_output(mut self) -> Output {
        self.0.take().expect("child").wait_with_output().expect("wait")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Every running process: pid and command line.
fn processes() -> Vec<(u32, String)> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            Some((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")))
        })
        .collect()
}

/// Command lines of running processes that contain `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    processes().into_iter().filter(|(_, c)| c.contains(needle)).map(|(_, c)| c).collect()
}

/// Pids of running processes whose command line contains `needle`.
pub fn pids_mentioning(needle: &str) -> Vec<u32> {
    processes().into_iter().filter(|(_, c)| c.contains(needle)).map(|(p, _)| p).collect()
}

/// Pids of the children of `parent`.
pub fn children_of(parent: u32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|(pid, _)| {
            // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, so read after the last ')'.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(parent)
            })
        })
        .map(|(pid, _)| pid)
        .collect()
}

/// Standard output as JSON, with the output shown when it is not.
pub fn json_of(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e})\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Dry-runs `plan` on a fresh shadow loaded with `schema`, through the library, with the default options.
pub async fn dry_run(schema: &str, plan: &str) -> Report {
    dry_run_with(schema, plan, &DryRunOptions::default()).await
}

pub async fn dry_run_with(schema: &str, plan: &str, options: &DryRunOptions) -> Report {
    let schema = Schema::sql("schema.sql", schema);
    let plan = Plan::parse("plan.sql", plan).expect("plan parses");
    pgshadow::dry_run(&plan, Some(&schema), options).await.expect("dry-run")
}

/// `expected` is contained in `actual`: every key of an expected object is in the actual one with a contained
/// value; arrays have the same length and every expected element is contained in a distinct actual element, in any
/// order. Returns where the first difference is.
pub fn contained(expected: &serde_json::Value, actual: &serde_json::Value, path: &str) -> Result<(), String> {
    use serde_json::Value;
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, value) in e {
                let here = format!("{path}.{key}");
                let Some(actual) = a.get(key) else {
                    return Err(format!("{here}: missing"));
                };
                contained(value, actual, &here)?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!("{path}: expected {} elements, got {}: {}", e.len(), a.len(), actual));
            }
            let mut used = vec![false; a.len()];
            for (i, item) in e.iter().enumerate() {
                let found = (0..a.len()).find(|&j| !used[j] && contained(item, &a[j], "").is_ok());
                match found {
                    Some(j) => used[j] = true,
                    None => return Err(format!("{path}[{i}]: no match for {item} in {actual}")),
                }
            }
            Ok(())
        }
        _ if expected == actual => Ok(()),
        _ => Err(format!("{path}: expected {expected}, got {actual}")),
    }
}

/// Spawns `pgshadow ARGS` in the sandbox (killed if the test fails first) and waits until its plan runs on the
/// shadow.
pub fn spawn_until_plan_runs(sandbox: &Sandbox, args: &[&str]) -> KillOnDrop {
    let child = sandbox
        .command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn pgshadow");
    let child = KillOnDrop(Some(child));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !plan_backend_running(sandbox) {
        assert!(std::time::Instant::now() < deadline, "the plan never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child
}

/// True when the server started from the sandbox has a backend logged in as the plan role.
pub fn plan_backend_running(sandbox: &Sandbox) -> bool {
    let inside = format!("{}/", sandbox.path().display());
    let Some(postmaster) = pids_mentioning(&inside).into_iter().next() else {
        return false;
    };
    children_of(postmaster).iter().any(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("pgshadow_plan"))
    })
}

#[path = "../../src/test_server.rs"]
pub mod test_server;

/// A Postgres server started by hand for a test, standing in for a live source database (never a shadow: the code
/// under test only reads from it) or a team's shadow server: the one test server of the library's tests too.
pub type SourceServer = test_server::TestServer;

/// One HTTP/1.1 exchange with a server the test started (`Connection: close`): the status, the headers (lower-cased
/// names) and the body. `headers` are sent as given.
#[allow(dead_code)] // not every test binary talks HTTP
pub fn http(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    exchange(std::net::TcpStream::connect(address).expect("connect"), address, method, path, headers, body)
}

/// [`http`] from the local address `local` (any of 127.0.0.0/8 on loopback), as if from another client.
pub fn http_from(
    local: std::net::IpAddr,
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.bind(std::net::SocketAddr::new(local, 0)).expect("bind the client's address");
        socket.connect(address.parse().expect("an address")).await.expect("connect")
    });
    let stream = stream.into_std().expect("a std stream");
    stream.set_nonblocking(false).expect("blocking");
    drop(runtime);
    exchange(stream, address, method, path, headers, body)
}

/// One request over `stream`, and its response.
fn exchange(
    mut stream: std::net::TcpStream,
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    use std::io::{Read, Write};
    stream.set_read_timeout(Some(std::time::Duration::from_secs(60))).expect("timeout");
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read the response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    (status, headers.collect(), body.to_owned())
}

/// How far an estimate is from the truth, as a factor at least 1 (both counted as at least 1).
pub fn off_by(estimate: u64, truth: u64) -> f64 {
    let (e, t) = (estimate.max(1) as f64, truth.max(1) as f64);
    e.max(t) / e.min(t)
}

/// The median of `values` (sorted in place).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}
