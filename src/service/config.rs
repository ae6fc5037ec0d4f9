//! The configuration of `pgshadow serve` and `pgshadow mcp` (TOML): where to listen, the sources to prepare at
//! start, named policies, the pool and the limits. Paths in it are relative to the file's directory.
//!
//! ```toml
//! listen = "127.0.0.1:7432"
//! token_file = "token"            # or PGSHADOW_TOKEN; required on a non-loopback address
//! allowed_dirs = ["dumps"]        # where sources registered by path may be
//! pool_size = 4
//! max_concurrent = 8
//! body_limit = "1M"
//! timeout_seconds = 30
//! max_report_items = 1000
//!
//! [[sources]]
//! name = "seed"
//! schema = "../scenarios/seed-incident/schema.sql"
//! # profile = "profile.json"     # production's sizes and shape (`pgshadow profile`), checked against the schema
//! # synthesize = 100000          # with a profile: fill the shadow with that many rows generated from it
//! # synthesize_seed = 0          # their seed
//! # trust_source = true         # load it as a superuser (see `Config::trusted`); never settable over HTTP
//!
//! [policies]
//! strict = "strict.toml"
//!
//! # Proposals (docs/proposals.md): where they are kept, who may do what, and where approved plans are applied.
//! # store = "postgres://pgshadow@db.internal/approvals"   # default: proposals.sqlite in the data directory
//! # tokens_file = "tokens.toml"                           # bearer tokens, each with a name and a role
//! # secure_cookies = true    # the review page's session cookie is sent over HTTPS only (a TLS proxy in front);
//! #                          # default: true unless listening on a loopback address
//! # [targets]
//! # production = "postgresql://deployer@db.internal/app"  # or PGSHADOW_TARGET_PRODUCTION_URL
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::Policy;

/// A `pgshadow serve` / `pgshadow mcp` configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address to listen on (`serve`).
    pub listen: SocketAddr,
    /// The file holding the bearer token (`serve`).
    pub token_file: Option<PathBuf>,
    /// The directories sources registered by path must be inside (canonical paths).
    pub allowed_dirs: Vec<PathBuf>,
    /// Ready clones per source. Each clone keeps two connections to the shadow (the session its next plan runs in,
    /// and the one that puts it back after a run), so sources × `pool_size` × 2 must stay well below the shadow's
    /// `max_connections` (100 by default).
    pub pool_size: usize,
    /// Dry-runs at a time; more get `429`.
    pub max_concurrent: usize,
    /// The largest request body, in bytes.
    pub body_limit: usize,
    /// The most one dry-run may take.
    pub timeout: Duration,
    /// The most entries a report's lists hold.
    pub max_report_items: usize,
    /// Sources to prepare at start: name and schema file.
    pub sources: Vec<(String, PathBuf)>,
    /// The names of the sources above that load as a superuser (`trust_source = true` in their entry): for sources
    /// that need untrusted-language functions or event triggers, and that you trust as much as the server's host.
    /// Every other source, and every source registered over HTTP or MCP, is untrusted input and loads as a role that
    /// cannot run code on the host.
    pub trusted: Vec<String>,
    /// Named policies, read at start.
    pub policies: BTreeMap<String, Policy>,
    /// The profiles of production (`pgshadow profile`) of the sources above that name one (`profile = "file"` in
    /// their entry), by source name.
    pub profiles: BTreeMap<String, PathBuf>,
    /// The proposals store (`store = `): a `postgres://` URL, or an SQLite file; `None`: the default one.
    pub store: Option<String>,
    /// The tokens file (`tokens_file = `): bearer tokens with a name and a role each, for proposals.
    pub tokens_file: Option<PathBuf>,
    /// Whether the review page's session cookie is `Secure`, so that browsers send it back over HTTPS only
    /// (`secure_cookies = `). `pgshadow serve` speaks plain HTTP: set it when a TLS proxy stands in front. `None`:
    /// `Secure` unless the server listens on a loopback address (where browsers count `http://` as secure, and
    /// nobody else can listen in).
    pub secure_cookies: Option<bool>,
    /// The targets approved plans are applied to (`[targets]`), by name: URLs an agent never sees.
    pub targets: BTreeMap<String, String>,
    /// The sources above whose tables are filled with rows generated from their profile (`synthesize = ROWS` and
    /// `synthesize_seed = N` in their entry), by source name: the budget and the seed.
    pub synthesize: BTreeMap<String, (u64, u64)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7432)),
            token_file: None,
            allowed_dirs: Vec::new(),
            pool_size: 4,
            max_concurrent: 8,
            body_limit: 1 << 20,
            timeout: Duration::from_secs(30),
            max_report_items: 1000,
            sources: Vec::new(),
            trusted: Vec::new(),
            policies: BTreeMap::new(),
            profiles: BTreeMap::new(),
            store: None,
            tokens_file: None,
            secure_cookies: None,
            targets: BTreeMap::new(),
            synthesize: BTreeMap::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: Option<String>,
    token_file: Option<PathBuf>,
    #[serde(default)]
    allowed_dirs: Vec<PathBuf>,
    pool_size: Option<usize>,
    max_concurrent: Option<usize>,
    body_limit: Option<String>,
    timeout_seconds: Option<u64>,
    max_report_items: Option<usize>,
    #[serde(default)]
    sources: Vec<SourceEntry>,
    #[serde(default)]
    policies: BTreeMap<String, PathBuf>,
    store: Option<String>,
    tokens_file: Option<PathBuf>,
    secure_cookies: Option<bool>,
    #[serde(default)]
    targets: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceEntry {
    name: String,
    schema: PathBuf,
    #[serde(default)]
    trust_source: bool,
    profile: Option<PathBuf>,
    synthesize: Option<u64>,
    synthesize_seed: Option<u64>,
}

impl Config {
    /// Reads a configuration file; what it leaves out keeps the default.
    pub fn read(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let shown = path.display().to_string();
        let file: File = toml::from_str(&text).map_err(|e| {
            Error::input_at(&shown, &text, e.span().map_or(0, |s| s.start), e.message().trim_end().to_owned())
        })?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let resolve = |p: &Path| clean(&if p.is_absolute() { p.to_path_buf() } else { base.join(p) });
        let bad = |message: String| Error::Input { file: shown.clone(), line: 1, column: 1, message };
        let mut config = Config::default();
        if let Some(listen) = file.listen {
            config.listen =
                listen.parse().map_err(|e| bad(format!("listen = {listen:?}: {e} (say 127.0.0.1:7432)")))?;
        }
        config.token_file = file.token_file.map(|f| resolve(&f));
        for dir in file.allowed_dirs {
            // Resolved by the file system, links and all, not lexically.
            let dir = if dir.is_absolute() { dir } else { base.join(dir) };
            config.allowed_dirs.push(std::fs::canonicalize(&dir).map_err(|e| Error::io(&dir, e))?);
        }
        config.pool_size = file.pool_size.unwrap_or(config.pool_size);
        config.max_concurrent = file.max_concurrent.unwrap_or(config.max_concurrent).max(1);
        if let Some(limit) = file.body_limit {
            config.body_limit = usize::try_from(byte_size(&limit).map_err(bad)?).unwrap_or(usize::MAX);
        }
        if let Some(seconds) = file.timeout_seconds {
            config.timeout = Duration::from_secs(seconds);
        }
        config.max_report_items = file.max_report_items.unwrap_or(config.max_report_items).max(1);
        config.trusted = file.sources.iter().filter(|s| s.trust_source).map(|s| s.name.clone()).collect();
        config.profiles =
            file.sources.iter().filter_map(|s| s.profile.as_ref().map(|p| (s.name.clone(), resolve(p)))).collect();
        for source in &file.sources {
            match (source.synthesize, &source.profile) {
                (Some(rows), Some(_)) => {
                    config.synthesize.insert(source.name.clone(), (rows, source.synthesize_seed.unwrap_or(0)));
                }
                (Some(_), None) => {
                    return Err(bad(format!("source {:?}: synthesize needs a profile = \"file\"", source.name)))
                }
                (None, _) if source.synthesize_seed.is_some() => {
                    return Err(bad(format!("source {:?}: synthesize_seed goes with synthesize", source.name)))
                }
                (None, _) => {}
            }
        }
        config.sources = file.sources.into_iter().map(|s| (s.name, resolve(&s.schema))).collect();
        config.store = file.store.map(|store| match store.contains("://") {
            true => store,
            false => resolve(Path::new(&store)).display().to_string(),
        });
        config.tokens_file = file.tokens_file.map(|f| resolve(&f));
        config.secure_cookies = file.secure_cookies;
        config.targets = file.targets;
        for (name, policy) in file.policies {
            config.policies.insert(name, Policy::read(&resolve(&policy))?);
        }
        Ok(config)
    }

    /// The named policy, or the built-in one for `None`.
    pub fn policy(&self, name: Option<&str>) -> Result<Policy> {
        match name {
            None | Some("default") | Some("built-in") => Ok(Policy::default()),
            Some(name) => self.policies.get(name).cloned().ok_or_else(|| Error::UnknownPolicy(name.to_owned())),
        }
    }

    /// `path` if it is inside one of the allowed directories once links are resolved, else an error.
    pub fn confined(&self, path: &Path) -> Result<PathBuf> {
        let real = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
        if self.allowed_dirs.iter().any(|dir| real.starts_with(dir)) {
            return Ok(real);
        }
        Err(Error::PathNotAllowed(path.to_path_buf()))
    }
}

/// `path` with `.` and `dir/..` taken out as written (`examples/../scenarios/x.sql` is `scenarios/x.sql`), so that
/// reports name files as people would; links are left alone (allowed directories are checked on real paths).
fn clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// A `--source NAME=PATH` argument.
pub fn source_arg(text: &str) -> std::result::Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, path)) if !name.trim().is_empty() && !path.is_empty() => {
            Ok((name.trim().to_owned(), PathBuf::from(path)))
        }
        _ => Err(format!("{text:?}: say NAME=PATH, e.g. seed=schema.sql")),
    }
}

/// A size such as `500M`, `10G` or `1048576` (bytes; K, M, G and T are powers of 1024).
pub fn byte_size(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len()));
    let shift = match unit.to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("{text}: not a size (say 500M or 10G)")),
    };
    let value: u64 = number.trim().parse().map_err(|_| format!("{text}: not a size (say 500M or 10G)"))?;
    value.checked_mul(1 << shift).ok_or_else(|| format!("{text}: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_relative_to_the_configuration_read_as_written() {
        assert_eq!(clean(Path::new("examples/../scenarios/x.sql")), Path::new("scenarios/x.sql"));
        assert_eq!(clean(Path::new("./a/./b")), Path::new("a/b"));
        assert_eq!(clean(Path::new("../up/x")), Path::new("../up/x"));
        assert_eq!(clean(Path::new("/srv/dumps/../x")), Path::new("/srv/x"));
        assert_eq!(clean(Path::new("a/..")), Path::new("."));
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(byte_size("4G"), Ok(4 << 30));
        assert_eq!(byte_size("500M"), Ok(500 << 20));
        assert_eq!(byte_size("10GiB"), Ok(10 << 30));
        assert_eq!(byte_size("2048"), Ok(2048));
        assert!(byte_size("lots").is_err());
        assert!(byte_size("5X").is_err());
    }

    #[test]
    fn only_sources_marked_in_the_file_are_trusted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("serve.toml");
        let text = "[[sources]]\nname = \"a\"\nschema = \"a.sql\"\ntrust_source = true\n\n\
                    [[sources]]\nname = \"b\"\nschema = \"b.sql\"\n";
        std::fs::write(&path, text).expect("write");
        let config = Config::read(&path).expect("a valid configuration");
        assert_eq!(config.trusted, ["a"]);
        assert_eq!(config.sources.len(), 2);
    }

    #[test]
    fn synthesize_goes_with_a_profile() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("serve.toml");
        let text = "[[sources]]\nname = \"a\"\nschema = \"a.sql\"\nprofile = \"p.json\"\nsynthesize = 5000\n\
                    synthesize_seed = 3\n";
        std::fs::write(&path, text).expect("write");
        let config = Config::read(&path).expect("a valid configuration");
        assert_eq!(config.synthesize.get("a"), Some(&(5000, 3)));
        std::fs::write(&path, "[[sources]]\nname = \"b\"\nschema = \"b.sql\"\nsynthesize = 10\n").expect("write");
        let Err(Error::Input { message, .. }) = Config::read(&path) else { panic!("synthesize without a profile") };
        assert!(message.contains("needs a profile"), "{message}");
    }

    #[test]
    fn a_bad_key_is_an_error_at_its_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("serve.toml");
        std::fs::write(&path, "pool_size = 2\nlisen = \"0.0.0.0:1\"\n").expect("write");
        match Config::read(&path) {
            Err(Error::Input { line, message, .. }) => {
                assert_eq!(line, 2);
                assert!(message.contains("lisen"), "{message}");
            }
            other => panic!("expected an input error, got {other:?}"),
        }
    }

    #[test]
    fn paths_outside_the_allowed_directories_are_refused_even_through_links() {
        let dir = tempfile::tempdir().expect("temp dir");
        let allowed = dir.path().join("dumps");
        std::fs::create_dir(&allowed).expect("mkdir");
        std::fs::write(allowed.join("ok.sql"), "SELECT 1;").expect("write");
        std::fs::write(dir.path().join("secret.sql"), "SELECT 1;").expect("write");
        std::os::unix::fs::symlink(dir.path().join("secret.sql"), allowed.join("link.sql")).expect("link");
        let config = Config { allowed_dirs: vec![std::fs::canonicalize(&allowed).expect("real")], ..Config::default() };
        assert!(config.confined(&allowed.join("ok.sql")).is_ok());
        assert!(matches!(config.confined(&allowed.join("../secret.sql")), Err(Error::PathNotAllowed(_))));
        assert!(matches!(config.confined(&allowed.join("link.sql")), Err(Error::PathNotAllowed(_))));
    }
}
