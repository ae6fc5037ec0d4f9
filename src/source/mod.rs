//! Loading sources into a shadow: a plain SQL schema (a `pg_dump` plain dump, with or without data, or a hand-written
//! DDL file) becomes a fresh database of the shadow, ready for dry-runs.
//!
//! The loader is pgshadow's own (no `psql` needed): it splits the file like psql, sends each statement, streams
//! `COPY ... FROM stdin` data, and handles the psql meta-commands `pg_dump` writes. A statement that fails is not
//! ignored: it becomes a fidelity warning with its line, and the load goes on, as `psql` without ON_ERROR_STOP would.

mod cached;
mod roles;

pub(crate) use roles::quote_ident;

use std::path::Path;

use crate::error::{Error, Result};
use crate::measure;
use crate::plan::{script_position, split, RawStatement};
use crate::report::{Fidelity, FidelityWarning, SchemaInfo};
use crate::shadow::{Session, Shadow, ADMIN_ROLE, LOADER_ROLE, PLAN_ROLE};

/// A schema to load: SQL text and the name to report it under.
#[derive(Debug, Clone)]
pub struct Schema {
    /// The file name, as the user gave it.
    pub file: String,
    /// The SQL.
    pub text: String,
}

impl Schema {
    /// Reads a schema file.
    pub fn read(path: &str) -> Result<Schema> {
        let text = std::fs::read_to_string(Path::new(path)).map_err(|e| Error::io(path, e))?;
        Ok(Schema { file: path.to_owned(), text })
    }
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
    /// On a cached shadow: whether the source's template database was already there (`Some(true)`), or was built by
    /// this load (`Some(false)`).
    pub template_reused: Option<bool>,
    /// Set when the database is a cached template used in place, not a clone: what [`release`] resets.
    pub(crate) in_place: Option<cached::InPlace>,
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
    let database = match shadow.cache_slot() {
        Some(slot) => cached::load(shadow, slot, schema).await?,
        None => load_into(shadow, shadow.new_database_name(), schema).await?,
    };
    shadow.track(&database);
    Ok(database)
}

/// Creates the database `name`, loads `schema` into it (if any), hands every loaded object to the plan role, and
/// installs the measuring machinery.
async fn load_into(shadow: &Shadow, name: String, schema: Option<&Schema>) -> Result<Database> {
    let admin = shadow.connect(ADMIN_ROLE, "postgres").await?;
    let create = format!("CREATE DATABASE {} OWNER {PLAN_ROLE}", quote_ident(&name));
    admin.client().batch_execute(&create).await.map_err(|e| Error::pg("creating the shadow database", e))?;
    drop(admin);

    let mut fidelity = Fidelity::default();
    let mut info = None;
    if let Some(schema) = schema {
        let statements = split(&schema.text);
        roles::create_owners(shadow, &statements).await?;
        let loader = shadow.connect(LOADER_ROLE, &name).await?;
        let mut count = 0;
        for statement in &statements {
            if !statement.meta {
                count += 1;
            }
            if let Some(warning) = load_statement(&loader, schema, statement).await {
                fidelity.warnings.push(warning);
            }
        }
        tracing::info!(file = %schema.file, statements = count, failed = fidelity.warnings.len(), "schema loaded");
        info = Some(SchemaInfo { file: schema.file.clone(), statements: count, failed: fidelity.warnings.len() });
    }

    let admin = shadow.connect(ADMIN_ROLE, &name).await?;
    let handover = format!("REASSIGN OWNED BY {LOADER_ROLE} TO {PLAN_ROLE}");
    admin.client().batch_execute(&handover).await.map_err(|e| Error::pg("handing the schema to the plan role", e))?;
    measure::install(&admin).await?;
    Ok(Database { name, spoiled: Default::default(), schema: info, fidelity, template_reused: None, in_place: None })
}

/// Runs one statement of the schema; a failure becomes a fidelity warning.
async fn load_statement(loader: &Session, schema: &Schema, statement: &RawStatement) -> Option<FidelityWarning> {
    let warning = |line, column, sqlstate: Option<String>, message: String| FidelityWarning {
        file: schema.file.clone(),
        line,
        column,
        sqlstate,
        message,
        statement: excerpt(&statement.text),
    };
    if statement.meta {
        return meta_command(&statement.text).map(|message| warning(statement.line, statement.column, None, message));
    }
    let error = loader.run(statement).await.err()?;
    let Some(db) = error.as_db_error() else {
        return Some(warning(statement.line, statement.column, None, error.to_string()));
    };
    let (line, column) = match db.position() {
        Some(tokio_postgres::error::ErrorPosition::Original(p)) => script_position(statement, *p as usize),
        _ => (statement.line, statement.column),
    };
    Some(warning(line, column, Some(db.code().code().to_owned()), db.message().to_owned()))
}

/// What a psql meta-command in a schema means for the load: `None` when it is honoured or harmless, else why it
/// could not be.
fn meta_command(text: &str) -> Option<String> {
    let command = text.split_whitespace().next().unwrap_or("\\");
    match command {
        // pg_dump's guards against meta-commands smuggled into a dump, and output-only commands.
        "\\restrict" | "\\unrestrict" | "\\echo" | "\\qecho" | "\\warn" | "\\set" | "\\pset" | "\\timing" => None,
        // A dump of one database made with -C connects to it; the shadow database stands in for it.
        "\\connect" | "\\c" => None,
        _ => Some(format!("psql meta-command {command} is not supported by the loader; it was skipped")),
    }
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
    let admin = shadow.connect(ADMIN_ROLE, "postgres").await?;
    let sql = format!("DROP DATABASE {} WITH (FORCE)", database.name);
    admin.client().batch_execute(&sql).await.map_err(|e| Error::pg("dropping the shadow database", e))
}
