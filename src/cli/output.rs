//! Where reports go: their formats, each --format paired with its --output, and files written whole or not at all.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::ValueEnum;

/// A report's format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Tables for a terminal or a CI log.
    Table,
    /// The JSON report (docs/report.md, schema in docs/report.schema.json).
    Json,
    /// A pull-request comment.
    Markdown,
    /// GitHub Actions annotations on the plan's lines.
    Github,
    /// One self-contained HTML page (no script, no external assets), as the review page of `serve` shows it.
    Html,
}

/// Pairs each --output with the --format before it on the command line (`matches`: the command's, for the
/// arguments' positions); a format without one goes to stdout.
pub(crate) fn pair(
    format: &[Format],
    output: &[PathBuf],
    matches: &clap::ArgMatches,
) -> Result<Vec<(Format, Option<PathBuf>)>, String> {
    if format.is_empty() {
        return match output {
            [] => Ok(vec![(Format::Table, None)]),
            [path] => Ok(vec![(Format::Table, Some(path.clone()))]),
            _ => Err("several --output need a --format each".to_owned()),
        };
    }
    let format_at: Vec<usize> = matches.indices_of("format").map(|i| i.collect()).unwrap_or_default();
    let output_at: Vec<usize> = matches.indices_of("output").map(|i| i.collect()).unwrap_or_default();
    let mut pairs: Vec<(Format, Option<PathBuf>)> = format.iter().map(|f| (*f, None)).collect();
    for (path, at) in output.iter().zip(output_at) {
        let owner = format_at.iter().rposition(|&f| f < at).ok_or("an --output must follow its --format")?;
        if pairs[owner].1.replace(path.clone()).is_some() {
            return Err(format!("--format {:?} has two --output", pairs[owner].0).to_lowercase());
        }
    }
    if pairs.iter().filter(|(_, o)| o.is_none()).count() > 1 {
        return Err("only one --format can go to stdout: give the others an --output".to_owned());
    }
    Ok(pairs)
}

/// Writes a report to `path`. A regular file (or a new path) gets it whole or not at all: a temporary file beside it,
/// renamed over it, with the permissions a new file would get. Anything else — a symbolic link, a FIFO, a device
/// such as `/dev/null` or `/dev/stdout` — is opened and written to, never replaced.
pub(crate) fn write_atomically(path: &Path, text: &str) -> pgshadow::Result<()> {
    let io = |e| pgshadow::Error::io(path, e);
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_file() => {
            let mut file = std::fs::OpenOptions::new().write(true).truncate(true).open(path).map_err(io)?;
            return file.write_all(text.as_bytes()).map_err(io);
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| pgshadow::Error::io(dir, e))?;
    file.write_all(text.as_bytes()).map_err(io)?;
    // A report is an ordinary file: readable as the umask allows, not the temporary file's 0600.
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    nix::sys::stat::umask(umask);
    let mode = 0o666 & !umask.bits();
    std::fs::set_permissions(file.path(), std::os::unix::fs::PermissionsExt::from_mode(mode)).map_err(io)?;
    file.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
