//! Loading sources into a shadow: a plain SQL schema (a `pg_dump` plain dump, with or without data, or a hand-written
//! DDL file, `sql`) or a `pg_dump` archive (custom, directory or tar format, `restore`) becomes a database of the
//! shadow, ready for dry-runs.
//!
//! Nothing that fails to load is ignored: each failure becomes a fidelity warning (with its line, or its archive
//! entry), failures are tied to the missing extension they are due to, and the load goes on, as `psql` without
//! ON_ERROR_STOP and `pg_restore` without `--exit-on-error` would. The report says how faithful the result is.

pub mod archive;
pub(crate) mod cached;
mod extensions;
mod fidelity;
pub mod header;
pub mod live;
mod load;
mod privileged;
mod restore;
mod roles;
pub mod sample;
mod sql;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::measure;
pub use crate::shadow::Database;
use crate::shadow::Shadow;

/// A source to load: SQL text, or a `pg_dump` archive, and the name to report it under.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// The file name, as the user gave it.
    pub file: String,
    /// The SQL (empty for an archive). Shared, so that copies of a large dump (a shadow provider's look at its
    /// extensions on another thread) cost nothing.
    pub text: std::sync::Arc<str>,
    /// Set when the source is a `pg_dump` archive rather than SQL text: it is restored with `pg_restore`.
    pub archive: Option<Archive>,
    /// Set when a sample of a live database's rows is copied in after the schema (`--sample`).
    pub sample: Option<sample::Sample>,
    /// Set when the tables are filled with rows generated from a profile after the schema (`--synthesize`).
    pub synthesis: Option<crate::synth::Synthesis>,
    /// Load the source as a superuser (`--trust-source`). By default a source is untrusted input, like a plan: its
    /// statements run as a role that is not a superuser, so a schema, dump or archive cannot run programs or read and
    /// write files on the host; what truly needs a superuser (untrusted-language functions, event triggers) does not
    /// load and is reported. Only set this for sources you trust as much as the shadow's host.
    pub trusted: bool,
}

/// A `pg_dump` archive to restore.
#[derive(Debug, Clone)]
pub struct Archive {
    /// The archive file (or directory, for `-Fd`).
    pub path: PathBuf,
    /// Its format, told from its content.
    pub format: archive::SourceFormat,
    /// What its files are on disk (device, inode, size, modification and change times): equal fingerprints mean
    /// equal content, so the content's digest is only computed once per archive ([`Archive::digest`]).
    pub fingerprint: String,
    /// The private directory a dump of a live database was written to, removed when the last copy goes.
    pub(crate) _dump_dir: Option<std::sync::Arc<tempfile::TempDir>>,
}

impl Schema {
    /// A SQL source held in memory, reported as `file`.
    pub fn sql(file: impl Into<String>, text: impl Into<String>) -> Schema {
        Schema { file: file.into(), text: text.into().into(), ..Schema::default() }
    }

    /// Reads a source: SQL text, or a `pg_dump` archive (custom, directory or tar format), told apart by content.
    pub fn read(path: &str) -> Result<Schema> {
        let format = archive::detect(Path::new(path))?;
        if format == archive::SourceFormat::Plain {
            let text = std::fs::read_to_string(Path::new(path)).map_err(|e| Error::io(path, e))?;
            return Ok(Schema { file: path.to_owned(), text: text.into(), ..Schema::default() });
        }
        let fingerprint = fingerprint_files(Path::new(path))?;
        let archive = Archive { path: PathBuf::from(path), format, fingerprint, _dump_dir: None };
        Ok(Schema { file: path.to_owned(), archive: Some(archive), ..Schema::default() })
    }
}

impl Schema {
    /// The SHA-256 of the source's content (hex): of the SQL text, or of an archive's files (remembered in `memo`
    /// by the files' fingerprint, when given).
    pub fn sha256(&self, memo: Option<&Path>) -> Result<String> {
        match &self.archive {
            Some(archive) => archive.digest(memo),
            None => Ok(crate::text::hex_digest(self.text.as_bytes())),
        }
    }

    /// The source server's version as its dump header gives it (`None` for hand-written SQL, or before 10).
    pub fn source_version(&self) -> Option<crate::postgres::Version> {
        self.header().dumped_from.as_deref().and_then(crate::postgres::Version::parse)
    }

    /// The extensions the source creates (`CREATE EXTENSION`), so that a shadow that has them can be chosen. An
    /// archive's come from its table of contents, read with a `pg_restore` of this machine that can (none known
    /// without one). Blocking.
    pub fn extensions(&self) -> Vec<String> {
        match &self.archive {
            None => crate::plan::split(&self.text).iter().filter_map(|s| created_extension(&s.text)).collect(),
            Some(archive) => {
                let needs = self.header().dumped_by.as_deref().and_then(crate::postgres::Version::parse);
                let toc = crate::postgres::client_tool("pg_restore", needs, None)
                    .ok()
                    .and_then(|(pg_restore, _)| archive::list(&pg_restore, &archive.path).ok());
                let entries = toc.map(|t| t.entries).unwrap_or_default();
                entries.into_iter().filter(|e| e.desc == "EXTENSION").map(|e| e.name).collect()
            }
        }
    }

    /// What the source's dump header says about the server it came from (nothing for hand-written SQL).
    pub fn header(&self) -> header::DumpHeader {
        match &self.archive {
            Some(archive) => header::of_archive(&archive.path, archive.format).unwrap_or_default(),
            None => header::of_sql(&self.text),
        }
    }
}

/// The extensions `sources` create, each once, in order: what a shadow for them should have
/// ([`Shadow::start`]).
pub fn extensions_of(sources: &[Schema]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    sources.iter().flat_map(Schema::extensions).filter(|e| seen.insert(e.clone())).collect()
}

/// The extension a `CREATE EXTENSION` statement creates, read as the loader reads it ([`privileged::step`]).
fn created_extension(statement: &str) -> Option<String> {
    match privileged::step(statement)? {
        privileged::Step::Create(extension) => Some(extension.name),
        privileged::Step::Comment { .. } => None,
    }
}

impl Archive {
    /// The SHA-256 of the archive's content (every file of a directory archive, in name order): what a cached
    /// template of it is keyed by. With `memo`, a directory to remember digests in by fingerprint, an archive
    /// that has not changed on disk is not read again.
    pub fn digest(&self, memo: Option<&Path>) -> Result<String> {
        let Some(memo) = memo else {
            return digest_files(&self.path);
        };
        let remembered = memo.join(&crate::text::hex_digest(self.fingerprint.as_bytes())[..32]);
        if let Ok(digest) = std::fs::read_to_string(&remembered) {
            if digest.len() == 64 {
                return Ok(digest);
            }
        }
        let digest = digest_files(&self.path)?;
        let written = std::fs::create_dir_all(memo).and_then(|()| std::fs::write(&remembered, &digest));
        if let Err(e) = written {
            tracing::debug!(error = %e, "could not remember an archive's digest");
        }
        Ok(digest)
    }
}

/// A file, or every file of a directory, in name order.
fn files_of(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::io(path, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Device, inode, size, modification and change times of each file: what changes whenever its content does.
fn fingerprint_files(path: &Path) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let mut fingerprint = String::new();
    for file in files_of(path)? {
        let m = std::fs::metadata(&file).map_err(|e| Error::io(&file, e))?;
        fingerprint.push_str(&format!(
            "{}:{}:{}:{}:{}.{}:{}.{};",
            file.display(),
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec()
        ));
    }
    Ok(fingerprint)
}

/// The SHA-256 of a file's content, or of every file of a directory in name order (with the names inside it): a
/// copy under another name has the same digest.
fn digest_files(path: &Path) -> Result<String> {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    let directory = path.is_dir();
    for file in files_of(path)? {
        if directory {
            hasher.update(file.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default());
        }
        let mut reader = std::fs::File::open(&file).map_err(|e| Error::io(&file, e))?;
        let mut buffer = vec![0; 1 << 16];
        loop {
            let n = std::io::Read::read(&mut reader, &mut buffer).map_err(|e| Error::io(&file, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
    }
    Ok(crate::text::hex(&hasher.finalize()))
}

/// Makes a database in `shadow` holding `schema` (if any), owned by the plan role, with the measuring machinery
/// installed. On a cached shadow it is a clone of the source's template database, built by the first load.
pub async fn load(shadow: &Shadow, schema: Option<&Schema>) -> Result<Database> {
    // Once: an archive's digest keys its cached template and is reported too.
    let sha256 = schema.map(|s| s.sha256(shadow.cache_slot().map(|s| s.digests_dir()).as_deref())).transpose()?;
    let mut database = match shadow.cache_slot() {
        Some(slot) => cached::load(shadow, slot, schema, sha256.as_deref()).await?,
        None => load::load_into(shadow, shadow.new_database_name(), schema).await?,
    };
    if let (Some(sha256), Some(info)) = (sha256, &mut database.schema) {
        info.sha256 = sha256;
    }
    shadow.track(&database);
    Ok(database)
}

/// A run on a warm cached cluster ([`crate::shadow::warm`]): asks its supervisor for a clone of `schema`'s template
/// in `cache`, for the binaries `choice` chose, or, with `run`, to run it there. `None` when no supervisor runs there
/// or none has the template. The database is the clone's (as the template's load described the source); with a
/// plan run there, `Some` answer of the supervisor's runner and no lease.
pub(crate) async fn warm(
    cache: &crate::shadow::CacheOptions,
    choice: &crate::postgres::Choice,
    provider_reason: &str,
    schema: Option<&Schema>,
    run: Option<&str>,
) -> Result<Option<(Shadow, Database, crate::shadow::warm::Served)>> {
    use crate::shadow::warm::Served;
    // The digest is remembered where a cached run remembers it (`Slot::digests_dir`).
    let sha256 = schema.map(|s| s.sha256(Some(&cache.dir.join("digests")))).transpose()?;
    let key = cached::template_key(schema, sha256.as_deref());
    let binaries = &choice.installation.binaries;
    let major = choice.installation.version.major.to_string();
    let Some((endpoint, version, served)) = crate::shadow::warm::attach(cache, &major, binaries, &key, run).await
    else {
        return Ok(None);
    };
    let (template, name, login, slot) = match &served {
        Served::Lent(lease) => (&lease.template, &lease.database, &lease.login, &lease.slot),
        Served::Ran(ran) => (&ran.template, &ran.database, &ran.login, &ran.slot),
    };
    let reasons = (choice.reason.clone(), provider_reason.to_owned());
    let shadow = Shadow::attached(endpoint, version, binaries.clone(), reasons, slot.clone());
    let mut database = clone_of(template.clone(), schema, name, login);
    if let (Some(sha256), Some(info)) = (sha256, &mut database.schema) {
        info.sha256 = sha256;
    }
    Ok(Some((shadow, database, served)))
}

/// The database of a clone `name` of a cached `template`, with its own `login` role: as the template's load
/// described `schema`.
pub(crate) fn clone_of(
    template: crate::shadow::cache::Template,
    schema: Option<&Schema>,
    name: &str,
    login: &str,
) -> Database {
    let mut database = cached::database_of(template, schema, true);
    database.name = name.to_owned();
    database.login = Some(login.to_owned());
    database
}

/// Every table's exact row count in `database` (by relation oid): the baseline dry-runs of its clones start from.
pub(crate) async fn count_rows(shadow: &Shadow, database: &Database) -> Result<std::collections::HashMap<u32, i64>> {
    let admin = shadow.admin(database.name()).await?;
    let rows = admin
        .client()
        .query(measure::BASELINE_COUNTS_SQL, &[])
        .await
        .map_err(|e| Error::pg("counting the source's rows", e))?;
    Ok(rows.iter().map(|row| (row.get::<_, u32>(0), row.get::<_, i64>(1))).collect())
}

/// Gives back a database made by [`load()`] once its dry-runs are done: drops it (disconnecting anything still in it),
/// or, for a cached template used in place, undoes what a rolled-back plan still left behind.
pub async fn release(shadow: &Shadow, database: &Database) -> Result<()> {
    if let Some(in_place) = &database.in_place {
        return crate::shadow::database::reset(shadow, database, in_place).await;
    }
    shadow.drop_database(&database.name).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extensions_a_sql_source_creates_are_read_from_its_statements() {
        let schema = Schema::sql(
            "s.sql",
            "-- CREATE EXTENSION in_a_comment;\n\
             CREATE EXTENSION IF NOT EXISTS postgis WITH SCHEMA public;\n\
             create extension \"uuid-ossp\";\n\
             SELECT 'CREATE EXTENSION in_a_string';\n\
             CREATE TABLE extension (id int);\n\
             CREATE EXTENSION Vector CASCADE;",
        );
        assert_eq!(schema.extensions(), ["postgis", "uuid-ossp", "vector"]);
    }
}
