//! Loading sources into a shadow: a plain SQL schema (a `pg_dump` plain dump, with or without data, or a hand-written
//! DDL file, [`sql`]) or a `pg_dump` archive (custom, directory or tar format, [`restore`]) becomes a database of the
//! shadow, ready for dry-runs.
//!
//! Nothing that fails to load is ignored: each failure becomes a fidelity warning (with its line, or its archive
//! entry), failures are tied to the missing extension they are due to, and the load goes on, as `psql` without
//! ON_ERROR_STOP and `pg_restore` without `--exit-on-error` would. The report says how faithful the result is.

pub mod archive;
pub(crate) mod cached;
mod extensions;
pub mod header;
pub mod live;
mod restore;
mod roles;
pub mod sample;
mod sql;

pub(crate) use roles::{prepare_plan_role, quote_ident};

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::measure;
use crate::report::{Fidelity, FidelityWarning, MissingExtension, SampleInfo, SchemaInfo};
use crate::shadow::{Role, Shadow};

/// A source to load: SQL text, or a `pg_dump` archive, and the name to report it under.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// The file name, as the user gave it.
    pub file: String,
    /// The SQL (empty for an archive).
    pub text: String,
    /// Set when the source is a `pg_dump` archive rather than SQL text: it is restored with `pg_restore`.
    pub archive: Option<Archive>,
    /// Set when a sample of a live database's rows is copied in after the schema (`--sample`).
    pub sample: Option<sample::Sample>,
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
        Schema { file: file.into(), text: text.into(), archive: None, sample: None }
    }

    /// Reads a source: SQL text, or a `pg_dump` archive (custom, directory or tar format), told apart by content.
    pub fn read(path: &str) -> Result<Schema> {
        let format = archive::detect(Path::new(path))?;
        if format == archive::SourceFormat::Plain {
            let text = std::fs::read_to_string(Path::new(path)).map_err(|e| Error::io(path, e))?;
            return Ok(Schema { file: path.to_owned(), text, archive: None, sample: None });
        }
        let fingerprint = fingerprint_files(Path::new(path))?;
        let archive = Archive { path: PathBuf::from(path), format, fingerprint, _dump_dir: None };
        Ok(Schema { file: path.to_owned(), text: String::new(), archive: Some(archive), sample: None })
    }
}

impl Schema {
    /// The SHA-256 of the source's content (hex): of the SQL text, or of an archive's files (remembered in `memo`
    /// by the files' fingerprint, when given).
    pub fn sha256(&self, memo: Option<&Path>) -> Result<String> {
        match &self.archive {
            Some(archive) => archive.digest(memo),
            None => Ok(crate::shadow::hex_digest(self.text.as_bytes())),
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

/// The extension a `CREATE EXTENSION` statement creates, as the plan classifier reads its target. Only statements
/// that start with those words are parsed: a dump's other statements cost a look at two words.
fn created_extension(statement: &str) -> Option<String> {
    let mut words = statement.split_whitespace();
    let starts = ["create", "extension"].iter().all(|w| words.next().is_some_and(|word| word.eq_ignore_ascii_case(w)));
    let classified = starts.then(|| crate::plan::classify(statement))?;
    (classified.kind == crate::plan::StatementKind::CreateExtension).then(|| classified.targets.into_iter().next())?
}

impl Archive {
    /// The SHA-256 of the archive's content (every file of a directory archive, in name order): what a cached
    /// template of it is keyed by. With `memo`, a directory to remember digests in by fingerprint, an archive
    /// that has not changed on disk is not read again.
    pub fn digest(&self, memo: Option<&Path>) -> Result<String> {
        let Some(memo) = memo else {
            return digest_files(&self.path);
        };
        let remembered = memo.join(&crate::shadow::hex_digest(self.fingerprint.as_bytes())[..32]);
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
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// A database of a shadow with a source loaded, ready for dry-runs.
#[derive(Debug, Clone)]
pub struct Database {
    pub(crate) name: String,
    /// Set when a plan ended the dry-run's transaction (so its changes may have been committed): the database is
    /// never dry-run again.
    pub(crate) spoiled: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The schema that was loaded, if any.
    pub schema: Option<SchemaInfo>,
    /// What did not load.
    pub fidelity: Fidelity,
    /// The sample of the source's rows copied in, if any (`--sample`).
    pub sample: Option<SampleInfo>,
    /// Every table's row count before any plan, when known already (a cached template's): dry-runs then skip
    /// counting them.
    pub(crate) row_counts: Option<std::sync::Arc<std::collections::HashMap<u32, i64>>>,
    /// On a cached shadow: whether the source's template database was already there (`Some(true)`), or was built by
    /// this load (`Some(false)`).
    pub template_reused: Option<bool>,
    /// Set when the database is a cached template used in place, not a clone: what [`release`] resets.
    pub(crate) in_place: Option<cached::InPlace>,
    /// A login role of this database's own, a member of the plan role, that plans log in as instead of the plan role
    /// (a service's clones): concurrent runs then cannot see or signal each other's sessions.
    pub(crate) login: Option<String>,
}

impl Database {
    /// The database's name in the shadow.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Makes a database in `shadow` holding `schema` (if any), owned by the plan role, with the measuring machinery
/// installed. On a cached shadow it is a clone of the source's template database, built by the first load.
pub async fn load(shadow: &Shadow, schema: Option<&Schema>) -> Result<Database> {
    // Once: an archive's digest keys its cached template and is reported too.
    let sha256 = schema.map(|s| s.sha256(shadow.cache_slot().map(|s| s.digests_dir()).as_deref())).transpose()?;
    let mut database = match shadow.cache_slot() {
        Some(slot) => cached::load(shadow, slot, schema, sha256.as_deref()).await?,
        None => load_into(shadow, shadow.new_database_name(), schema).await?,
    };
    if let (Some(sha256), Some(info)) = (sha256, &mut database.schema) {
        info.sha256 = sha256;
    }
    shadow.track(&database);
    Ok(database)
}

/// Every table's exact row count in `database` (by relation oid): the baseline dry-runs of its clones start from.
pub(crate) async fn count_rows(shadow: &Shadow, database: &Database) -> Result<std::collections::HashMap<u32, i64>> {
    let admin = shadow.connect(shadow.role(Role::Admin), database.name()).await?;
    let rows = admin
        .client()
        .query(measure::BASELINE_COUNTS_SQL, &[])
        .await
        .map_err(|e| Error::pg("counting the source's rows", e))?;
    Ok(rows.iter().map(|row| (row.get::<_, u32>(0), row.get::<_, i64>(1))).collect())
}

/// Creates the database `name`, loads `schema` into it (if any), hands every loaded object to the plan role, and
/// installs the measuring machinery.
async fn load_into(shadow: &Shadow, name: String, schema: Option<&Schema>) -> Result<Database> {
    shadow.create_database(&name, None).await?;

    let mut fidelity = Fidelity::default();
    let mut info = None;
    let mut sampled = None;
    if let Some(schema) = schema {
        let mut failures = Failures::new(&schema.file, shadow.server_version());
        failures.own_build = shadow.binaries_origin() == crate::postgres::CACHE_ORIGIN;
        failures.image = shadow.container_image().map(str::to_owned);
        let loaded = match &schema.archive {
            Some(archive) => restore::load(shadow, &name, archive, &mut failures).await?,
            None => sql::load(shadow, &name, schema, &mut failures).await?,
        };
        fidelity = failures.into_fidelity(loaded);
        if let Some(sample) = &schema.sample {
            let rows = sample::copy(shadow, &name, sample).await?;
            sampled = Some(SampleInfo { percent: sample.percent, rows_copied: rows });
        }
        tracing::info!(
            file = %schema.file,
            objects = fidelity.objects_in_source,
            failed = fidelity.warnings.len(),
            "schema loaded"
        );
        info = Some(SchemaInfo {
            file: schema.file.clone(),
            statements: fidelity.objects_in_source,
            failed: fidelity.warnings.len(),
            sha256: String::new(),
        });
    }

    let admin = shadow.connect(shadow.role(Role::Admin), &name).await?;
    let handover = format!("REASSIGN OWNED BY {} TO {}", shadow.role(Role::Loader), shadow.role(Role::Plan));
    admin.client().batch_execute(&handover).await.map_err(|e| Error::pg("handing the schema to the plan role", e))?;
    measure::install(&admin).await?;
    Ok(Database {
        name,
        spoiled: Default::default(),
        schema: info,
        fidelity,
        sample: sampled,
        row_counts: None,
        template_reused: None,
        in_place: None,
        login: None,
    })
}

/// What a loader reports besides its failures.
pub(crate) struct Loaded {
    /// Objects in the source: statements of a SQL file, entries of an archive.
    objects: usize,
    /// Objects that failed (an archive entry may fail more than once).
    failed_objects: usize,
    /// The source server's version, where the source says it.
    source_version: Option<String>,
    /// The `pg_restore` an archive was restored with.
    restored_with: Option<String>,
}

/// The failures of one load, tied to the missing extensions they are due to as they come.
pub(crate) struct Failures {
    file: String,
    shadow_major: u32,
    /// Set when the shadow runs a build of `pgshadow postgres install`, which an extension package cannot extend.
    own_build: bool,
    /// The image of a container shadow: a missing extension then calls for another image, not a package.
    image: Option<String>,
    warnings: Vec<FidelityWarning>,
    missing: Vec<String>,
    /// Relations (unqualified, lower-case) whose creation failed for a missing extension, and that extension.
    lost_relations: Vec<(String, String)>,
}

impl Failures {
    fn new(file: &str, shadow_version: &str) -> Failures {
        let shadow_major = crate::shadow::major_of(shadow_version).and_then(|m| m.parse().ok()).unwrap_or(0);
        Failures {
            file: file.to_owned(),
            shadow_major,
            own_build: false,
            image: None,
            warnings: Vec::new(),
            missing: Vec::new(),
            lost_relations: Vec::new(),
        }
    }

    /// Records a failure; `statement` is the failing statement's full text (or the archive entry's command).
    fn push(&mut self, mut warning: FidelityWarning, statement: &str) {
        let failure =
            extensions::Failure { statement, sqlstate: warning.sqlstate.as_deref(), message: &warning.message };
        if let Some(extension) = extensions::missing_extension(&failure) {
            if !self.missing.contains(&extension) {
                self.missing.push(extension.clone());
            }
            warning.extension = Some(extension);
        } else if let Some(extension) = extensions::lost_to(&failure, &self.missing) {
            warning.extension = Some(extension.to_owned());
        } else if let Some(missing) = missing_relation(&warning.message) {
            // A table lost to the extension takes its indexes, constraints and data with it.
            let lost = self.lost_relations.iter().find(|(name, _)| *name == missing);
            warning.extension = lost.map(|(_, extension)| extension.clone());
        }
        if let (Some(extension), Some(created)) = (&warning.extension, created_relation(statement)) {
            self.lost_relations.push((created, extension.clone()));
        }
        self.warnings.push(warning);
    }

    /// A warning about this load's file, with no extension attributed yet.
    fn warning(
        &self,
        line: usize,
        column: usize,
        sqlstate: Option<String>,
        message: String,
        statement: &str,
    ) -> FidelityWarning {
        FidelityWarning {
            file: self.file.clone(),
            line,
            column,
            entry: None,
            sqlstate,
            message,
            statement: excerpt(statement),
            extension: None,
        }
    }

    fn into_fidelity(self, loaded: Loaded) -> Fidelity {
        let missing_extensions = self
            .missing
            .iter()
            .map(|name| MissingExtension {
                name: name.clone(),
                package: match self.image {
                    Some(_) => None,
                    None => extensions::package(name, self.shadow_major),
                },
                note: match (&self.image, self.own_build) {
                    (Some(image), _) => Some(extensions::image_note(name, image, self.shadow_major)),
                    (None, true) => Some(format!(
                        "the shadow runs pgshadow's own PostgreSQL {} build, which has the contrib extensions only: \
                         install the extension for a system PostgreSQL {} and run there (--pg-bin)",
                        self.shadow_major, self.shadow_major
                    )),
                    (None, false) => extensions::note(name, self.shadow_major),
                },
                objects_lost: self.warnings.iter().filter(|w| w.extension.as_ref() == Some(name)).count(),
            })
            .collect();
        let version_warning = loaded.source_version.as_deref().and_then(crate::shadow::major_of).and_then(|source| {
            let shadow = self.shadow_major.to_string();
            (source != shadow).then(|| {
                format!(
                    "the source ran PostgreSQL {source} and the shadow runs {shadow}: syntax, lock levels and \
                     rewrites can differ between major versions; `--pg-version {source}` runs a faithful shadow \
                     (`pgshadow postgres install {source}` fetches it)"
                )
            })
        });
        Fidelity {
            source_version: loaded.source_version,
            version_warning,
            objects_in_source: loaded.objects,
            objects_reproduced: loaded.objects.saturating_sub(loaded.failed_objects),
            missing_extensions,
            warnings: self.warnings,
            restored_with: loaded.restored_with,
            newer_version: None,
        }
    }
}

/// The relation a "relation ... does not exist" error names, unqualified and lower-case.
fn missing_relation(message: &str) -> Option<String> {
    let rest = message.split_once("relation \"")?.1;
    let (name, tail) = rest.split_once('"')?;
    tail.trim_start().starts_with("does not exist").then(|| unqualified(name))
}

/// The relation a `CREATE [UNLOGGED] TABLE | [MATERIALIZED] VIEW | FOREIGN TABLE` statement creates, unqualified
/// and lower-case.
fn created_relation(statement: &str) -> Option<String> {
    let words: Vec<String> = statement.split_whitespace().take(9).map(str::to_ascii_lowercase).collect();
    if words.first().map(String::as_str) != Some("create") {
        return None;
    }
    let skip = ["or", "replace", "unlogged", "temp", "temporary", "materialized", "foreign", "recursive"];
    let mut rest = words[1..].iter().skip_while(|w| skip.contains(&w.as_str()));
    if !matches!(rest.next().map(String::as_str), Some("table" | "view")) {
        return None;
    }
    let mut name = rest.next()?;
    if name == "if" {
        name = rest.nth(2)?;
    }
    Some(unqualified(name.split('(').next().unwrap_or(name)))
}

/// `public."Stores"` -> `stores`: the last part of a possibly qualified name, without quotes.
fn unqualified(name: &str) -> String {
    name.rsplit('.').next().unwrap_or(name).trim_matches('"').to_ascii_lowercase()
}

/// The first line of a statement, cut to a readable length.
fn excerpt(text: &str) -> String {
    let first = text.lines().next().unwrap_or("");
    let mut out: String = first.chars().take(80).collect();
    if out.len() < text.len() {
        out.push_str(" ...");
    }
    out
}

/// Gives back a database made by [`load`] once its dry-runs are done: drops it (disconnecting anything still in it),
/// or, for a cached template used in place, undoes what a rolled-back plan still left behind.
pub async fn release(shadow: &Shadow, database: &Database) -> Result<()> {
    if let Some(in_place) = &database.in_place {
        return cached::reset(shadow, database, in_place).await;
    }
    shadow.drop_database(&database.name).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_are_named_as_created_and_as_missing() {
        assert_eq!(created_relation("CREATE TABLE public.stores (\n id int)").as_deref(), Some("stores"));
        assert_eq!(created_relation("create unlogged table if not exists \"Geo\"(id int)").as_deref(), Some("geo"));
        assert_eq!(created_relation("CREATE MATERIALIZED VIEW app.v AS SELECT 1").as_deref(), Some("v"));
        assert_eq!(created_relation("CREATE INDEX i ON t (a)"), None);
        assert_eq!(missing_relation("relation \"public.stores\" does not exist").as_deref(), Some("stores"));
        assert_eq!(missing_relation("relation \"stores\" already exists"), None);
    }

    #[test]
    fn failures_after_a_missing_extension_are_tied_to_it() {
        let mut failures = Failures::new("schema.sql", "15.18 (Debian 15.18-0+deb12u1)");
        let mut push = |statement: &str, sqlstate: &str, message: &str| {
            let warning = failures.warning(1, 1, Some(sqlstate.to_owned()), message.to_owned(), statement);
            failures.push(warning, statement);
        };
        push("CREATE EXTENSION IF NOT EXISTS postgis", "0A000", "extension \"postgis\" is not available");
        push("CREATE TABLE public.stores (g public.geometry)", "42704", "type \"public.geometry\" does not exist");
        push("CREATE INDEX s_g ON public.stores USING gist (g)", "42P01", "relation \"public.stores\" does not exist");
        push("CREATE INDEX o_x ON public.other (x)", "42P01", "relation \"public.other\" does not exist");
        let loaded = Loaded {
            objects: 10,
            failed_objects: 4,
            source_version: Some("16.4 (Ubuntu)".into()),
            restored_with: None,
        };
        let fidelity = failures.into_fidelity(loaded);
        let tied: Vec<Option<&str>> = fidelity.warnings.iter().map(|w| w.extension.as_deref()).collect();
        assert_eq!(tied, [Some("postgis"), Some("postgis"), Some("postgis"), None]);
        assert_eq!(fidelity.missing_extensions[0].objects_lost, 3);
        assert_eq!(fidelity.missing_extensions[0].package.as_deref(), Some("postgresql-15-postgis-3"));
        assert_eq!(fidelity.objects_reproduced, 6);
        assert!(fidelity.version_warning.is_some_and(|w| w.contains("PostgreSQL 16 and the shadow runs 15")));
        assert_eq!(crate::shadow::major_of("9.5.4").as_deref(), Some("9.5"));
        assert_eq!(crate::shadow::major_of("16.4 (Ubuntu 16.4-1)").as_deref(), Some("16"));
    }

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
