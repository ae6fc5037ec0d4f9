//! Restoring a `pg_dump` archive into a shadow database with the shadow's own `pg_restore` (parallel for the custom
//! and directory formats) as the loader, after creating the roles the archive names as owners and the extensions
//! it asks for.

use super::archive::{self, ArchiveToc, Target, TocEntry};
use super::fidelity::{Failures, Loaded};
use super::load::Loader;
use super::{header, privileged, Archive};
use crate::error::{Error, Result};
use crate::plan::split;
use crate::plan::RawStatement;
use crate::postgres::{self, Version};
use crate::shadow::Shadow;
use crate::text::quote_ident;

/// An archive as read before it is restored: the `pg_restore` that can restore it, its table of contents, and the
/// statements of its schema (for the roles and extensions it names).
pub(super) struct ArchiveRead {
    pg_restore: std::path::PathBuf,
    /// The `pg_restore` for the report, with its version.
    restored_with: String,
    toc: ArchiveToc,
    pub(super) statements: Vec<RawStatement>,
}

/// Reads `archive`'s table of contents and schema with the `pg_restore` that will restore it.
pub(super) async fn read(shadow: &Shadow, archive: &Archive) -> Result<ArchiveRead> {
    let (pg_restore, restored_with) = pg_restore_for(shadow, archive)?;
    let (path, restore_from) = (archive.path.clone(), pg_restore.clone());
    let (toc, schema_sql) = blocking(move || {
        let toc = archive::list(&restore_from, &path)?;
        Ok((toc, archive::schema_sql(&restore_from, &path)?))
    })
    .await?;
    Ok(ArchiveRead { pg_restore, restored_with, toc, statements: split(&schema_sql) })
}

/// Restores `archive` ([`read`]) into the loader's database, but for the entries pgshadow did itself (`prepared`:
/// its extensions, the comments on them and the schemas made for them); failing entries go to `failures`.
pub(super) async fn load(
    target: &Loader<'_>,
    archive: &Archive,
    read: &ArchiveRead,
    prepared: &privileged::Prepared,
    failures: &mut Failures,
) -> Result<Loaded> {
    let shadow = target.shadow;
    let (toc, statements) = (&read.toc, &read.statements);
    let mut failed_entries = std::collections::HashSet::new();
    for (i, error) in &prepared.failures {
        let statement = &statements[*i];
        let entry = privileged::step(&statement.text).and_then(|step| entry_of(toc, &step));
        let message = error.as_db_error().map_or_else(|| error.to_string(), |db| db.message().to_owned());
        let sqlstate = error.code().map(|code| code.code().to_owned());
        let mut warning = failures.warning(0, 0, sqlstate, message, &statement.text);
        warning.entry = entry.map(|e| e.to_string());
        failed_entries.insert(entry.map(|e| e.id));
        failures.push(warning, &statement.text);
    }
    let only = restored_entries(toc, prepared);
    if only.is_some() {
        give_schemas_their_owners(target, toc, &prepared.schemas, failures).await?;
    }

    let jobs = std::thread::available_parallelism().map_or(1, usize::from);
    tracing::info!(target: "pgshadow::progress", "restoring {} ({} entries) with pg_restore", archive.path.display(), toc.entries.len());
    let (user, role) = target.program_roles();
    let (user, role) = (user.to_owned(), role.map(str::to_owned));
    let (path, format, endpoint, name_owned) =
        (archive.path.clone(), archive.format, shadow.endpoint().clone(), target.database.to_owned());
    let (pg_restore, toc) = (read.pg_restore.clone(), toc.clone());
    let (toc, outcome) = blocking(move || {
        let host = endpoint.host();
        let password = endpoint.password(&user);
        let target = Target {
            socket_dir: std::path::Path::new(&host),
            port: endpoint.port(),
            user: &user,
            database: &name_owned,
            password: password.as_deref(),
            env: &endpoint.libpq_env,
            role: role.as_deref(),
            only: only.as_deref(),
        };
        let outcome = archive::restore(&pg_restore, &path, format, target, jobs, &toc)?;
        Ok((toc, outcome))
    })
    .await?;
    tracing::info!(archive = %archive.path.display(), entries = toc.entries.len(), failed = outcome.errors.len(),
        seconds = outcome.duration.as_secs_f64(), "archive restored");

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
        restored_with: Some(read.restored_with.clone()),
        data,
    })
}

/// The archive's entry for a step pgshadow ran itself: `EXTENSION name`, or the `COMMENT` on it.
fn entry_of<'t>(toc: &'t ArchiveToc, step: &privileged::Step) -> Option<&'t TocEntry> {
    let extension = step.extension();
    toc.entries.iter().find(|e| match step {
        privileged::Step::Create(_) => e.desc == "EXTENSION" && e.name == extension,
        privileged::Step::Comment { .. } => e.desc == "COMMENT" && e.name == format!("EXTENSION {extension}"),
    })
}

/// The entries `pg_restore` restores: all (`None`) unless pgshadow did some itself: the extensions, the comments on
/// them, and the schemas it made for them.
fn restored_entries(toc: &ArchiveToc, prepared: &privileged::Prepared) -> Option<Vec<u32>> {
    if prepared.handled.is_empty() {
        return None;
    }
    let done_by_pgshadow = |e: &TocEntry| {
        e.desc == "EXTENSION"
            || (e.desc == "COMMENT" && e.name.starts_with("EXTENSION "))
            || (e.desc == "SCHEMA" && prepared.schemas.contains(&e.name))
    };
    Some(toc.entries.iter().filter(|e| !done_by_pgshadow(e)).map(|e| e.id).collect())
}

/// Gives the schemas pgshadow made for extensions the owners their archive entries name, as `pg_restore` would
/// have, as the loader.
async fn give_schemas_their_owners(
    target: &Loader<'_>,
    toc: &ArchiveToc,
    schemas: &[String],
    failures: &mut Failures,
) -> Result<()> {
    let owned = toc.entries.iter().filter(|e| e.desc == "SCHEMA" && schemas.contains(&e.name));
    let owned: Vec<&TocEntry> = owned.filter(|e| e.owner.is_some()).collect();
    if owned.is_empty() {
        return Ok(());
    }
    let loader = target.session().await?;
    for entry in owned {
        let owner = entry.owner.as_deref().unwrap_or_default();
        let sql = format!("ALTER SCHEMA {} OWNER TO {}", quote_ident(&entry.name), quote_ident(owner));
        if let Err(e) = loader.client().batch_execute(&sql).await {
            let message = e.as_db_error().map_or_else(|| e.to_string(), |db| db.message().to_owned());
            let mut warning = failures.warning(0, 0, e.code().map(|c| c.code().to_owned()), message, &sql);
            warning.entry = Some(entry.to_string());
            failures.push(warning, &sql);
        }
    }
    Ok(())
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
