//! Restoring a `pg_dump` archive into a shadow database with the shadow's own `pg_restore` (parallel for the custom
//! and directory formats), after creating the roles the archive names as owners.

use super::archive::{self, Target};
use super::{header, roles, Archive, Failures, Loaded};
use crate::error::{Error, Result};
use crate::plan::split;
use crate::postgres::{self, Version};
use crate::shadow::{Role, Shadow};

/// Restores `archive` into the database `name`; failing entries go to `failures`.
pub(super) async fn load(shadow: &Shadow, name: &str, archive: &Archive, failures: &mut Failures) -> Result<Loaded> {
    let (pg_restore, restored_with) = pg_restore_for(shadow, archive)?;
    let (path, restore_from) = (archive.path.clone(), pg_restore.clone());
    let (toc, schema_sql) = blocking(move || {
        let toc = archive::list(&restore_from, &path)?;
        Ok((toc, archive::schema_sql(&restore_from, &path)?))
    })
    .await?;
    roles::create_owners(shadow, &split(&schema_sql)).await?;

    let jobs = std::thread::available_parallelism().map_or(1, usize::from);
    tracing::info!(target: "pgshadow::progress", "restoring {} ({} entries) with pg_restore", archive.path.display(), toc.entries.len());
    let loader = shadow.role(Role::Loader).to_owned();
    let (path, format, endpoint, name_owned) =
        (archive.path.clone(), archive.format, shadow.endpoint().clone(), name.to_owned());
    let (toc, outcome) = blocking(move || {
        let host = endpoint.host();
        let password = endpoint.password(&loader);
        let target = Target {
            socket_dir: std::path::Path::new(&host),
            port: endpoint.port(),
            user: &loader,
            database: &name_owned,
            password: password.as_deref(),
            env: &endpoint.libpq_env,
        };
        let outcome = archive::restore(&pg_restore, &path, format, target, jobs, &toc)?;
        Ok((toc, outcome))
    })
    .await?;
    tracing::info!(archive = %archive.path.display(), entries = toc.entries.len(), failed = outcome.errors.len(),
        seconds = outcome.duration.as_secs_f64(), "archive restored");

    let mut failed_entries = std::collections::HashSet::new();
    for error in &outcome.errors {
        failed_entries.insert(error.toc_id);
        let command = error.command.clone().or_else(|| error.entry.clone()).unwrap_or_default();
        let message = match &error.detail {
            Some(detail) => format!("{} ({detail})", error.message),
            None => error.message.clone(),
        };
        let mut warning = failures.warning(0, 0, None, message, &command);
        warning.entry = error.entry.clone();
        // The statement an entry failed in, or what the entry is when there is none (a failed COPY of its data).
        let statement = format!("{command}\n{}", error.entry.as_deref().unwrap_or_default());
        failures.push(warning, &statement);
    }
    // A table whose rows failed to load is empty here and not in the source: when one did, no empty table is taken
    // as known to be empty.
    let table_data = toc.entries.iter().filter(|e| e.desc == "TABLE DATA");
    let data = table_data.clone().next().is_some() && table_data.clone().all(|e| !failed_entries.contains(&Some(e.id)));
    Ok(Loaded {
        objects: toc.entries.len(),
        failed_objects: failed_entries.len(),
        source_version: toc.dumped_from,
        restored_with: Some(restored_with),
        data,
    })
}

/// The `pg_restore` to restore `archive` with: the shadow's own when it can read the archive, else the newest one
/// installed here that can (at least the major version of the `pg_dump` that made it). Returns it and, for the
/// report, its path and version.
fn pg_restore_for(shadow: &Shadow, archive: &Archive) -> Result<(std::path::PathBuf, String)> {
    let made_by = header::of_archive(&archive.path, archive.format).and_then(|h| h.dumped_by);
    let needs = made_by.as_deref().and_then(Version::parse);
    match postgres::client_tool("pg_restore", needs, Some(shadow.binaries())) {
        Ok((path, version)) => {
            let shown = format!("{} ({version})", path.display());
            Ok((path, shown))
        }
        Err(newest) => {
            let package =
                needs.map_or_else(|| "postgresql-client".to_owned(), |v| format!("postgresql-client-{}", v.major));
            let made_by = made_by.map_or_else(String::new, |v| format!(" made by pg_dump {v}"));
            let found = match newest {
                Some((path, version)) => {
                    format!("the newest pg_restore here, {} ({version}), is older", path.display())
                }
                None => "there is no pg_restore here (pgshadow's own builds have none)".to_owned(),
            };
            Err(Error::Source {
                path: archive.path.clone(),
                message: format!(
                    "restoring this archive{made_by} needs a pg_restore of that version or newer, and {found}; \
                     install the PostgreSQL client tools (Debian/Ubuntu: {package}), or give a plain SQL \
                     dump (pg_restore -f schema.sql ARCHIVE) with --schema"
                ),
                detail: String::new(),
            })
        }
    }
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::ShadowStart { message: format!("a restore task failed: {e}"), log: String::new() })?
}
