//! Finding the PostgreSQL server binaries (`initdb`, `postgres`) on this machine.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A directory holding `initdb` and `postgres`, and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgBinaries {
    /// The directory, with symbolic links resolved (so `/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb`
    /// reports the real directory).
    pub dir: PathBuf,
    /// Where it came from: `--pg-bin`, `PATH`, `pg_config` or `default location`.
    pub origin: &'static str,
}

impl PgBinaries {
    /// The path of one program in the directory.
    pub fn program(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The full version of the server binaries (`15.18`), from `postgres --version` (`super::asked`: asked once
    /// per binary for as long as it is unchanged).
    pub fn version(&self) -> Option<super::Version> {
        super::Version::parse(&super::asked::ask(&self.program("postgres"), &["--version"])?)
    }

    /// Finds the binaries: `explicit` (from `--pg-bin`) first, then `PATH`, then `pg_config --bindir`, then the
    /// highest `/usr/lib/postgresql/<N>/bin`.
    pub fn find(explicit: Option<&Path>) -> Result<PgBinaries> {
        if let Some(dir) = explicit {
            return Self::check(dir, "--pg-bin")
                .ok_or_else(|| Error::PostgresNotFound { searched: vec![dir.to_path_buf()] });
        }
        system_bindirs()
            .into_iter()
            .find_map(|(dir, origin)| Self::check(&dir, origin))
            .ok_or_else(|| Error::PostgresNotFound { searched: searched_dirs() })
    }

    pub(crate) fn check(dir: &Path, origin: &'static str) -> Option<PgBinaries> {
        let initdb = dir.join("initdb");
        if !is_executable(&initdb) || !is_executable(&dir.join("postgres")) {
            return None;
        }
        let real = std::fs::canonicalize(&initdb).ok()?;
        let dir = real.parent()?.to_path_buf();
        // A symlinked initdb must still sit next to its own postgres.
        is_executable(&dir.join("postgres")).then_some(PgBinaries { dir, origin })
    }
}

pub(super) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The directories a system install may be in, in the order they are tried: `PATH`, `pg_config --bindir`, then
/// `/usr/lib/postgresql/<N>/bin`, highest first.
pub(super) fn system_bindirs() -> Vec<(PathBuf, &'static str)> {
    let path = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    let mut dirs: Vec<(PathBuf, &'static str)> = path.into_iter().map(|dir| (dir, "PATH")).collect();
    dirs.extend(pg_config_bindir().map(|dir| (dir, "pg_config")));
    dirs.extend(debian_bindirs(Path::new("/usr/lib/postgresql")).into_iter().map(|dir| (dir, "default location")));
    dirs
}

/// Every directory searched for a system install, for an error that lists them.
pub(crate) fn searched_dirs() -> Vec<PathBuf> {
    system_bindirs().into_iter().map(|(dir, _)| dir).collect()
}

/// `<installs>/<version>/bin` of every complete build pgshadow installed (names starting with `.` are in progress).
pub(super) fn cached_bindirs(installs: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(installs) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path().join("bin"))
        .collect()
}

/// What the `pg_config` found in `PATH` answers to `--bindir`.
fn pg_config_bindir() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let pg_config = std::env::split_paths(&path).map(|dir| dir.join("pg_config")).find(|p| is_executable(p))?;
    let dir = super::asked::ask(&pg_config, &["--bindir"])?;
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// `<root>/<N>/bin` for every numeric `N`, highest version first.
fn debian_bindirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut versions: Vec<(u32, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((n, e.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_layout_is_searched_highest_version_first() {
        let root = tempfile::tempdir().expect("temp dir");
        for v in ["9", "15", "13", "notaversion"] {
            std::fs::create_dir_all(root.path().join(v).join("bin")).expect("mkdir");
        }
        let dirs = debian_bindirs(root.path());
        let names: Vec<_> = dirs
            .iter()
            .map(|d| d.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or(""))
            .collect();
        assert_eq!(names, ["15", "13", "9"]);
    }

    #[test]
    fn an_explicit_directory_without_initdb_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        match PgBinaries::find(Some(dir.path())) {
            Err(Error::PostgresNotFound { searched }) => {
                assert_eq!(searched, vec![dir.path().to_path_buf()])
            }
            other => panic!("expected PostgresNotFound, got {other:?}"),
        }
    }
}
