//! The plain SQL loader: pgshadow's own, so no `psql` is needed. It splits the file like psql, sends each statement,
//! streams `COPY ... FROM stdin` data, and handles the psql meta-commands `pg_dump` writes.

use super::fidelity::{Failures, Loaded};
use super::load::Loader;
use super::{privileged, Schema};
use crate::error::{Error, Result};
use crate::plan::{script_position, split, RawStatement};
use crate::shadow::Session;

/// The statements of `schema`'s SQL, split as psql splits them.
pub(super) fn read(schema: &Schema) -> Vec<RawStatement> {
    split(&schema.text)
}

/// Runs the `statements` of `schema` ([`read`]) in the loader's database one by one, but those pgshadow ran itself
/// (`prepared`); failures go to `failures`.
pub(super) async fn load(
    target: &Loader<'_>,
    schema: &Schema,
    statements: &[RawStatement],
    prepared: privileged::Prepared,
    failures: &mut Failures,
) -> Result<Loaded> {
    let mut prepared_failures = prepared.failures.into_iter().peekable();
    let mut loader = target.session().await?;
    // The session settings so far (`SET ...`, `set_config(...)`), to restore on a new connection.
    let mut settings: Vec<&RawStatement> = Vec::new();
    let mut objects = 0;
    let mut failed_objects = 0;
    // Whether some table's data loaded, and whether some did not.
    let (mut data, mut data_failed) = (false, false);
    for (i, statement) in statements.iter().enumerate() {
        if i % 100 == 0 {
            tracing::info!(target: "pgshadow::progress", "loading {}: statement {} of {}", schema.file, i + 1, statements.len());
        }
        objects += usize::from(!statement.meta);
        let outcome = if prepared.handled.contains(&i) {
            prepared_failures.next_if(|(at, _)| *at == i).map(|(_, e)| failure(statement, &e))
        } else if privileged::creates_schema(&statement.text, &prepared.schemas) {
            // pgshadow made it first, for an extension that goes there.
            None
        } else {
            load_statement(&loader, statement).await
        };
        match outcome {
            Some((line, column, sqlstate, message)) => {
                failed_objects += usize::from(!statement.meta);
                data_failed |= statement.copy_data.is_some();
                let warning = failures.warning(line, column, sqlstate, message, &statement.text);
                failures.push(warning, &statement.text);
            }
            None if is_setting(&statement.text) => settings.push(statement),
            // pg_dump's data: a COPY block for every table. INSERTs alone (a Rails structure.sql's
            // schema_migrations) do not say the other tables are empty: the tables they fill hold rows, and are
            // known by those.
            None if statement.copy_data.is_some() && !statement.meta => data = true,
            None => {}
        }
        if loader.is_broken() {
            loader = target.session().await?;
            for setting in &settings {
                loader.run(setting).await.map_err(|e| Error::pg("restoring the load's session settings", e))?;
            }
        }
    }
    Ok(Loaded {
        objects,
        failed_objects,
        source_version: super::header::of_sql(&schema.text).dumped_from,
        restored_with: None,
        // A table whose rows failed to load is empty here and not in the source: when one did, no empty table is
        // taken as known to be empty.
        data: data && !data_failed,
    })
}

/// A statement that changes a session setting: `SET ...` or pg_dump's `SELECT pg_catalog.set_config(...)`.
fn is_setting(text: &str) -> bool {
    let start: String = text.chars().take(40).collect::<String>().to_ascii_lowercase();
    start.starts_with("set ") || start.starts_with("select pg_catalog.set_config(")
}

/// A failure: line, column, SQLSTATE and message.
type Failure = (usize, usize, Option<String>, String);

/// Runs one statement of the schema; returns its failure, if it failed.
async fn load_statement(loader: &Session, statement: &RawStatement) -> Option<Failure> {
    if statement.meta {
        return meta_command(&statement.text).map(|message| (statement.line, statement.column, None, message));
    }
    let error = loader.run(statement).await.err()?;
    Some(failure(statement, &error))
}

/// How `statement` failed with `error`: where, with which SQLSTATE, and why.
fn failure(statement: &RawStatement, error: &tokio_postgres::Error) -> Failure {
    let Some(db) = error.as_db_error() else {
        return (statement.line, statement.column, None, error.to_string());
    };
    let (line, column) = match db.position() {
        Some(tokio_postgres::error::ErrorPosition::Original(p)) => script_position(statement, *p as usize),
        _ => (statement.line, statement.column),
    };
    (line, column, Some(db.code().code().to_owned()), db.message().to_owned())
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
