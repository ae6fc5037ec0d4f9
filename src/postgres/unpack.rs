//! Unpacking a PostgreSQL build into a directory, safely: nothing may land outside it.
//!
//! An npm package of a build is a gzipped tar of `package/native/{bin,lib,share}` plus `package/native/
//! pg-symlinks.json`, the library links to make after unpacking. Only plain files and directories are taken from it;
//! a path that is absolute or climbs out (`..`), a link, a device, or a link from `pg-symlinks.json` that points
//! elsewhere than beside itself is refused, and the install fails.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Where the build sits in an npm package.
const NATIVE: &str = "package/native";

/// Unpacks the `native/` part of an npm package tarball (`.tgz`) into `dest`, then makes its library links.
pub(super) fn tarball(file: &Path, dest: &Path) -> Result<(), String> {
    let reader = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(reader)));
    let entries = archive.entries().map_err(|e| format!("{}: not a gzipped tar: {e}", file.display()))?;
    let mut files = 0usize;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{}: {e}", file.display()))?;
        let path =
            entry.path().map_err(|e| format!("{}: a name that is not a path: {e}", file.display()))?.into_owned();
        let relative = contained(&path).ok_or_else(|| {
            format!(
                "{}: refusing the entry {}: it would land outside the install directory",
                file.display(),
                path.display()
            )
        })?;
        let Ok(inside) = relative.strip_prefix(NATIVE) else {
            continue; // package.json, README.md, scripts: not part of the build
        };
        let target = dest.join(inside);
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            make_dir(&target)?;
        } else if kind.is_file() {
            let mode = entry.header().mode().unwrap_or(0o644);
            write_file(&mut entry, &target, mode)?;
            files += 1;
        } else {
            return Err(format!(
                "{}: refusing the entry {} ({:?}): a build holds only files and directories",
                file.display(),
                path.display(),
                kind
            ));
        }
    }
    if files == 0 {
        return Err(format!("{}: holds no {NATIVE}/: not a package of a PostgreSQL build", file.display()));
    }
    make_links(dest)
}

/// Copies an unpacked build (a directory holding `bin/postgres`, or an unpacked package's `native/` or `package/
/// native/`) into `dest`, then makes its library links. Links inside it are kept only when they point beside
/// themselves (`libpq.so.5 -> libpq.so.5.18`).
pub(super) fn directory(source: &Path, dest: &Path) -> Result<(), String> {
    let root = [source.to_path_buf(), source.join("native"), source.join(NATIVE)]
        .into_iter()
        .find(|dir| dir.join("bin").join("postgres").is_file())
        .ok_or_else(|| format!("{}: no bin/postgres in it: not an unpacked PostgreSQL build", source.display()))?;
    copy_tree(&root, dest)?;
    make_links(dest)
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    make_dir(to)?;
    let entries = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", from.display()))?;
        let (path, target) = (entry.path(), to.join(entry.file_name()));
        let meta = std::fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.is_dir() {
            copy_tree(&path, &target)?;
        } else if meta.is_file() {
            use std::os::unix::fs::PermissionsExt;
            let mut reader = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            write_file(&mut reader, &target, meta.permissions().mode())?;
        } else if meta.file_type().is_symlink() {
            let link = std::fs::read_link(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            beside(&link).ok_or_else(|| {
                format!(
                    "{}: refusing the link to {}: links may only point beside themselves",
                    path.display(),
                    link.display()
                )
            })?;
            std::os::unix::fs::symlink(&link, &target).map_err(|e| format!("{}: {e}", target.display()))?;
        } else {
            return Err(format!("{}: refusing a special file in a PostgreSQL build", path.display()));
        }
    }
    Ok(())
}

/// One link of `pg-symlinks.json`: `target` becomes a link to `source`, both relative to the package.
#[derive(serde::Deserialize)]
struct Link {
    source: String,
    target: String,
}

/// Makes the library links listed in `<dest>/pg-symlinks.json` (`native/lib/libpq.so.5 -> libpq.so.5.18`). Both ends
/// must be in the same directory inside the build.
fn make_links(dest: &Path) -> Result<(), String> {
    let list = dest.join("pg-symlinks.json");
    let Ok(text) = std::fs::read_to_string(&list) else {
        return Ok(());
    };
    let links: Vec<Link> = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", list.display()))?;
    for link in links {
        let (source, target) = (Path::new(&link.source), Path::new(&link.target));
        let refuse = || format!("{}: refusing the link {} -> {}", list.display(), link.target, link.source);
        let (Some(source_in), Some(target_in)) = (contained(source), contained(target)) else {
            return Err(refuse());
        };
        let (Ok(source_in), Ok(target_in)) = (source_in.strip_prefix("native"), target_in.strip_prefix("native"))
        else {
            return Err(refuse());
        };
        if source_in.parent() != target_in.parent() || source_in.file_name().is_none() {
            return Err(refuse());
        }
        let at = dest.join(target_in);
        if std::fs::symlink_metadata(&at).is_ok() {
            continue;
        }
        let name = source_in.file_name().ok_or_else(refuse)?;
        std::os::unix::fs::symlink(name, &at).map_err(|e| format!("{}: {e}", at.display()))?;
    }
    Ok(())
}

/// `path` without `.` components, if it is relative and never climbs out (`..`).
fn contained(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// A link target that names a file in the link's own directory.
fn beside(link: &Path) -> Option<()> {
    let mut components = link.components();
    matches!((components.next(), components.next()), (Some(Component::Normal(_)), None)).then_some(())
}

fn make_dir(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // Readable by the OS user a shadow server runs as when pgshadow runs as root.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes a file with `mode`'s permission bits, readable by all, never set-user-id.
fn write_file(reader: &mut dyn Read, target: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = target.parent() {
        make_dir(parent)?;
    }
    let mut file = std::fs::File::create(target).map_err(|e| format!("{}: {e}", target.display()))?;
    std::io::copy(reader, &mut file).map_err(|e| format!("{}: {e}", target.display()))?;
    let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
    std::fs::set_permissions(target, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", target.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gzipped tar with the given (path, content) entries, paths written verbatim into the headers.
    fn tarball_of(entries: &[(&str, &[u8])]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let gz = flate2::write::GzEncoder::new(file.reopen().expect("reopen"), flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        for (path, content) in entries {
            let mut header = tar::Header::new_gnu();
            // set_path refuses `..`; write the name bytes directly, as a hostile tarball would.
            header.as_gnu_mut().expect("gnu header").name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_size(content.len() as u64);
            header.set_mode(0o755);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            builder.append(&header, *content).expect("append");
        }
        builder.into_inner().expect("finish tar").finish().expect("finish gzip");
        file
    }

    #[test]
    fn a_package_unpacks_with_its_library_links() {
        let links = br#"[{"source":"native/lib/libpq.so.5.18","target":"native/lib/libpq.so.5"}]"#;
        let tgz = tarball_of(&[
            ("package/package.json", b"{}"),
            ("package/native/bin/postgres", b"#!/bin/sh\n"),
            ("package/native/lib/libpq.so.5.18", b"elf"),
            ("package/native/pg-symlinks.json", links),
        ]);
        let dest = tempfile::tempdir().expect("temp dir");
        tarball(tgz.path(), dest.path()).expect("unpacks");
        assert!(dest.path().join("bin/postgres").is_file());
        assert!(!dest.path().join("package.json").exists());
        assert_eq!(std::fs::read_link(dest.path().join("lib/libpq.so.5")).expect("a link"), Path::new("libpq.so.5.18"));
    }

    #[test]
    fn a_path_that_climbs_out_is_refused() {
        let outside = tempfile::tempdir().expect("temp dir");
        let dest = outside.path().join("install");
        let tgz = tarball_of(&[("package/native/bin/postgres", b"x"), ("package/native/../../../evil", b"x")]);
        let error = tarball(tgz.path(), &dest).expect_err("refused");
        assert!(error.contains("outside the install directory"), "{error}");
        assert!(!outside.path().join("evil").exists());
        let tgz = tarball_of(&[("/etc/evil", b"x")]);
        assert!(tarball(tgz.path(), &dest).is_err());
    }

    #[test]
    fn a_link_list_that_points_elsewhere_is_refused() {
        let links = br#"[{"source":"/etc/passwd","target":"native/lib/libpq.so.5"}]"#;
        let tgz = tarball_of(&[("package/native/bin/postgres", b"x"), ("package/native/pg-symlinks.json", links)]);
        let dest = tempfile::tempdir().expect("temp dir");
        assert!(tarball(tgz.path(), dest.path()).is_err_and(|e| e.contains("refusing the link")));
        let links = br#"[{"source":"native/lib/x.so","target":"native/bin/x.so"}]"#;
        let tgz = tarball_of(&[("package/native/bin/postgres", b"x"), ("package/native/pg-symlinks.json", links)]);
        assert!(tarball(tgz.path(), dest.path()).is_err());
    }

    #[test]
    fn a_tarball_without_a_build_is_refused() {
        let tgz = tarball_of(&[("package/package.json", b"{}")]);
        let dest = tempfile::tempdir().expect("temp dir");
        assert!(tarball(tgz.path(), dest.path()).is_err_and(|e| e.contains("not a package of a PostgreSQL build")));
    }
}
