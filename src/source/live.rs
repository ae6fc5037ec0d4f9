//! Cloning a live database (`--from-url`): its schema (and with `--with-data` its rows) is dumped with `pg_dump` into
//! a custom-format archive in a private temporary directory, which is then restored like any other archive.
//!
//! The source is only ever read: `pg_dump` reads inside one read-only snapshot transaction, and its session is also
//! started with `default_transaction_read_only = on`, so not even a function it calls could write. Nothing else
//! connects to the source.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use super::{archive, fingerprint_files, Archive, Schema};
use crate::error::{Error, Result};
use crate::postgres::{self, PgBinaries};

/// Dumps the database at `url` with the `pg_dump` in `pg_bin` (the newest one installed when `None`: a `pg_dump`
/// must be at least as new as the server it dumps), and returns it as a source to load. With `sample` (a percentage), a consistent sample of the rows
/// is copied in after the schema when it loads ([`super::sample`]).
pub fn dump(url: &str, with_data: bool, sample: Option<f64>, pg_bin: Option<&Path>) -> Result<Schema> {
    let shown = crate::text::redact_url(url);
    let fail = |message: String, detail: String| Error::Source { path: shown.clone().into(), message, detail };
    let pg_dump = match pg_bin {
        Some(dir) => PgBinaries::find(Some(dir))?.program("pg_dump"),
        None => postgres::client_tool("pg_dump", None, None).map(|(path, _)| path).unwrap_or_default(),
    };
    if !pg_dump.is_file() {
        return Err(fail(
            "cloning a live database needs pg_dump, and none is installed here (pgshadow's own builds have none); \
             install the PostgreSQL client tools (Debian/Ubuntu: postgresql-client)"
                .to_owned(),
            String::new(),
        ));
    }
    // Private (0700): the dump may hold the source's data.
    let dir = tempfile::Builder::new()
        .prefix("pgshadow-source-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .map_err(|e| Error::io("TMPDIR", e))?;
    let file = dir.path().join("source.dump");
    let options = match std::env::var("PGOPTIONS") {
        Ok(existing) if !existing.trim().is_empty() => format!("{existing} -c default_transaction_read_only=on"),
        _ => "-c default_transaction_read_only=on".to_owned(),
    };
    let mut cmd = Command::new(&pg_dump);
    cmd.args(["--format=custom", "--no-password", "--file"]).arg(&file).arg("--dbname").arg(url);
    if !with_data {
        cmd.arg("--schema-only");
    }
    cmd.env("PGOPTIONS", options).env("PGAPPNAME", "pgshadow").stdin(Stdio::null());
    tracing::info!(target: "pgshadow::progress", "dumping {shown} with pg_dump (read-only)");
    let out = cmd.output().map_err(|e| fail(format!("could not run {}: {e}", pg_dump.display()), String::new()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let message = if stderr.contains("server version mismatch") {
            format!(
                "the source runs a newer PostgreSQL than {}; install the client tools of its version",
                pg_dump.display()
            )
        } else {
            "pg_dump could not dump the source (is the URL right, and may its user read the schema?)".to_owned()
        };
        return Err(fail(message, stderr.replace(url, &shown)));
    }
    let format = archive::detect(&file)?;
    let fingerprint = fingerprint_files(&file)?;
    let archive = Archive { path: file, format, fingerprint, _dump_dir: Some(Arc::new(dir)) };
    let sample = sample.map(|percent| super::sample::Sample { url: url.to_owned(), percent });
    Ok(Schema { file: shown, archive: Some(archive), sample, ..Schema::default() })
}
