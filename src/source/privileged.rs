//! The steps of a load that need a superuser, which pgshadow does itself for the source instead of letting the
//! source's statements run as one: creating the extensions the source asks for, but only those the shadow's own
//! PostgreSQL has installed (their scripts are part of the installation, not of the source), and commenting on
//! them. The statements are not the source's text: they are rebuilt from the names the source gives, quoted, and run
//! as [`Role::Installer`] (a superuser without login whose objects are handed to the plan role afterwards).
//!
//! Everything else of the source runs as [`Role::Loader`], which is not a superuser: what truly needs one (a program
//! run by `COPY ... PROGRAM`, server files, `ALTER SYSTEM`, event triggers, untrusted languages) fails there and is
//! reported as a fidelity loss ([`needs_superuser`]).

use sqlparser::ast::{CommentObject, Ident, SchemaName, Statement};

use std::collections::HashSet;

use super::load::Loader;
use crate::error::{Error, Result};
use crate::plan::{parse_sql, RawStatement};
use crate::shadow::Role;
use crate::text::{quote_ident, quote_literal};

/// A `CREATE EXTENSION` of the source, as read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Extension {
    pub(super) name: String,
    pub(super) schema: Option<String>,
    pub(super) version: Option<String>,
    pub(super) cascade: bool,
}

/// A statement of the source that pgshadow runs itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// `CREATE EXTENSION`.
    Create(Extension),
    /// `COMMENT ON EXTENSION name IS ...` (`None`: `IS NULL`).
    Comment { extension: String, comment: Option<String> },
}

/// The step a statement of the source asks for, when it is one pgshadow runs itself. Only statements that start
/// with `CREATE EXTENSION` or `COMMENT ON EXTENSION` are parsed: the others cost a look at three words.
pub(super) fn step(statement: &str) -> Option<Step> {
    let words: Vec<String> = statement.split_whitespace().take(3).map(str::to_ascii_lowercase).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    if !matches!(words.as_slice(), ["create", "extension", ..] | ["comment", "on", "extension"]) {
        return None;
    }
    let parsed = parse_sql(statement).ok()?;
    match parsed.as_slice() {
        [Statement::CreateExtension(create)] => Some(Step::Create(Extension {
            name: folded(&create.name),
            schema: create.schema.as_ref().map(folded),
            version: create.version.as_ref().map(|v| v.value.clone()),
            cascade: create.cascade,
        })),
        [Statement::Comment { object_type: CommentObject::Extension, object_name, comment, .. }] => {
            let [name] = object_name.0.as_slice() else { return None };
            Some(Step::Comment { extension: folded(name.as_ident()?), comment: comment.clone() })
        }
        _ => None,
    }
}

/// Whether `statement` is a plain `CREATE SCHEMA` of one of `schemas` (which pgshadow made first, for an
/// extension): the source's own statement is then taken as done. One with `AUTHORIZATION` still runs (and fails).
pub(super) fn creates_schema(statement: &str, schemas: &[String]) -> bool {
    let mut words = statement.split_whitespace();
    let starts = ["create", "schema"].iter().all(|w| words.next().is_some_and(|word| word.eq_ignore_ascii_case(w)));
    if !starts || schemas.is_empty() {
        return false;
    }
    match parse_sql(statement).ok().as_deref() {
        Some([Statement::CreateSchema { schema_name: SchemaName::Simple(name), .. }]) => match name.0.as_slice() {
            [part] => part.as_ident().is_some_and(|ident| schemas.contains(&folded(ident))),
            _ => false,
        },
        _ => false,
    }
}

/// An identifier as Postgres folds it: quoted as written, unquoted in lower case.
fn folded(ident: &Ident) -> String {
    match ident.quote_style {
        Some('"') => ident.value.clone(),
        _ => ident.value.to_lowercase(),
    }
}

impl Step {
    /// The extension the step is about.
    pub(super) fn extension(&self) -> &str {
        match self {
            Step::Create(extension) => &extension.name,
            Step::Comment { extension, .. } => extension,
        }
    }

    /// The statement pgshadow runs for the step: rebuilt from its parts, every name and string quoted.
    pub(super) fn sql(&self) -> String {
        match self {
            Step::Create(extension) => {
                let mut sql = format!("CREATE EXTENSION IF NOT EXISTS {}", quote_ident(&extension.name));
                if let Some(schema) = &extension.schema {
                    sql.push_str(&format!(" SCHEMA {}", quote_ident(schema)));
                }
                if let Some(version) = &extension.version {
                    sql.push_str(&format!(" VERSION {}", quote_literal(version)));
                }
                if extension.cascade {
                    sql.push_str(" CASCADE");
                }
                sql
            }
            Step::Comment { extension, comment } => format!(
                "COMMENT ON EXTENSION {} IS {}",
                quote_ident(extension),
                comment.as_deref().map_or_else(|| "NULL".to_owned(), quote_literal)
            ),
        }
    }
}

/// What pgshadow did for a source before the source's own statements ran.
#[derive(Debug, Default)]
pub(super) struct Prepared {
    /// The statements (by their index) pgshadow ran itself: the loader skips them.
    pub(super) handled: HashSet<usize>,
    /// Schemas pgshadow created because an extension goes there; the source's own `CREATE SCHEMA` of one is then
    /// taken as done.
    pub(super) schemas: Vec<String>,
    /// The statements that failed (by index), with their error.
    pub(super) failures: Vec<(usize, tokio_postgres::Error)>,
}

/// Creates the extensions `statements` ask for, and comments on them, before anything else of the source runs (so
/// no object of the source's exists yet that an extension's script, run as a superuser, could resolve to). An
/// extension the shadow's PostgreSQL has installed is created by the installer, in the schema the source names (made
/// first when missing); one it lacks is left to the source's own statement, run as the loader, which fails as it
/// would have (`extension "postgis" is not available`) so that later failures are tied to it.
pub(super) async fn prepare(target: &Loader<'_>, statements: &[RawStatement]) -> Result<Prepared> {
    let mut prepared = Prepared::default();
    let steps: Vec<(usize, &RawStatement, Step)> = statements
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.meta)
        .filter_map(|(i, s)| step(&s.text).map(|step| (i, s, step)))
        .collect();
    if steps.is_empty() {
        return Ok(prepared);
    }
    let admin = target.admin;
    let mut loader = None;
    for (i, statement, step) in steps {
        prepared.handled.insert(i);
        let installed = admin
            .client()
            .query_opt("SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = $1", &[&step.extension()])
            .await
            .map_err(|e| Error::pg("looking up the shadow's extensions", e))?;
        let outcome = match installed {
            Some(_) => install(target, &step, &mut prepared.schemas).await?,
            None => {
                if loader.is_none() {
                    loader = Some(target.session().await?);
                }
                let session = loader.as_ref().expect("the loader's session was just made");
                session.run(statement).await.map(drop)
            }
        };
        if let Err(e) = outcome {
            prepared.failures.push((i, e));
        }
    }
    Ok(prepared)
}

/// Runs `step` as the installer, first making the schema it names when there is none (owned by the load owner, as
/// if the source had made it). Returns the statement's own outcome; an error of pgshadow's is an `Err` of the outer
/// result.
async fn install(
    target: &Loader<'_>,
    step: &Step,
    schemas: &mut Vec<String>,
) -> Result<std::result::Result<(), tokio_postgres::Error>> {
    let (admin, shadow) = (target.admin, target.shadow);
    if let Step::Create(Extension { schema: Some(schema), .. }) = step {
        let exists = admin
            .client()
            .query_opt("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", &[schema])
            .await
            .map_err(|e| Error::pg("looking up an extension's schema", e))?
            .is_some();
        if !exists {
            let sql =
                format!("SET ROLE {}; CREATE SCHEMA {}; RESET ROLE", shadow.role(Role::LoadOwner), quote_ident(schema));
            admin.client().batch_execute(&sql).await.map_err(|e| Error::pg("creating an extension's schema", e))?;
            schemas.push(schema.clone());
        }
    }
    // Without a schema, the extension goes where the source's session would put it: the first schema of the
    // default search_path (`public`), or the one its control file fixes.
    let path = match step {
        Step::Create(Extension { schema: None, .. }) => "public, pg_catalog, pg_temp",
        _ => "pg_catalog, pg_temp",
    };
    let sql = format!(
        "SET search_path = {path}; SET ROLE {}; {}; RESET ROLE; SET search_path = pg_catalog, pg_temp",
        shadow.role(Role::Installer),
        step.sql()
    );
    let outcome = admin.client().batch_execute(&sql).await;
    if outcome.is_err() {
        // The batch stopped at the failing statement, still as the installer.
        admin
            .client()
            .batch_execute("RESET ROLE; SET search_path = pg_catalog, pg_temp")
            .await
            .map_err(|e| Error::pg("resetting pgshadow's session", e))?;
    }
    Ok(outcome)
}

/// Whether a failure to load is one that only a superuser could have avoided: SQLSTATE 42501,
/// insufficient_privilege, raised for `COPY ... PROGRAM`, server files, `ALTER SYSTEM`, event triggers, untrusted
/// languages, superuser-only settings and roles. `pg_restore` reports no SQLSTATE, so an archive entry's message is
/// read instead. What an untrusted source may not do.
pub(crate) fn needs_superuser(sqlstate: Option<&str>, message: &str) -> bool {
    match sqlstate {
        Some(sqlstate) => sqlstate == "42501",
        None => ["permission denied", "must be superuser", "must be member of role", "must be able to SET ROLE"]
            .iter()
            .any(|m| message.contains(m)),
    }
}

/// The reason given with such a failure.
pub(crate) const NEEDS_SUPERUSER: &str =
    "needs superuser: not loaded; a source cannot run code on the host (--trust-source loads it as a superuser)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_statements_are_read_and_rebuilt_quoted() {
        let create =
            step("CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\" WITH SCHEMA Ext VERSION '1.1' CASCADE").unwrap();
        assert_eq!(
            create,
            Step::Create(Extension {
                name: "uuid-ossp".into(),
                schema: Some("ext".into()),
                version: Some("1.1".into()),
                cascade: true
            })
        );
        assert_eq!(create.sql(), "CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\" SCHEMA \"ext\" VERSION '1.1' CASCADE");
        let comment = step("COMMENT ON EXTENSION pgcrypto IS 'it''s crypto'").unwrap();
        assert_eq!(comment.sql(), "COMMENT ON EXTENSION \"pgcrypto\" IS 'it''s crypto'");
        assert_eq!(step("create extension citext").map(|s| s.extension().to_owned()).as_deref(), Some("citext"));
    }

    #[test]
    fn a_schema_made_for_an_extension_is_recognised() {
        let made = ["extensions".to_owned()];
        assert!(creates_schema("CREATE SCHEMA Extensions", &made));
        assert!(!creates_schema("CREATE SCHEMA extensions AUTHORIZATION app", &made));
        assert!(!creates_schema("CREATE SCHEMA other", &made));
    }

    #[test]
    fn anything_else_is_left_to_the_loader() {
        for other in [
            "CREATE TABLE extension (id int)",
            "COMMENT ON TABLE t IS 'x'",
            "CREATE EXTENSION pgcrypto; COPY (SELECT 1) TO PROGRAM 'id'",
            "SELECT 'CREATE EXTENSION x'",
        ] {
            assert_eq!(step(other), None, "{other}");
        }
    }
}
