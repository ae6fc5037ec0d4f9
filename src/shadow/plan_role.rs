//! The role a plan logs in as when it runs as a role of the source (`--role`), and the names no source role may
//! take.

use super::{Shadow, ROLE_PREFIX};
use crate::error::{Error, Result};
use crate::text::quote_ident;

/// Makes `role` ready for a plan to log in as (`--role`): created if the source never named it (it then has only
/// what PUBLIC has), given LOGIN if it lacks it. The shadow's own roles and superusers are refused.
pub(crate) async fn prepare_plan_role(shadow: &Shadow, role: &str) -> Result<()> {
    let refuse =
        |why: &str| Error::Source { path: "--role".into(), message: format!("{role} {why}"), detail: String::new() };
    if is_reserved(role) {
        return Err(refuse("is a role of pgshadow's or of Postgres itself; name a role of the source"));
    }
    let admin = shadow.admin(shadow.maintenance_database()).await?;
    let row = admin
        .client()
        .query_opt("SELECT rolsuper, rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = $1", &[&role])
        .await
        .map_err(|e| Error::pg("looking up the --role", e))?;
    let ident = quote_ident(role);
    let sql = match row.map(|r| (r.get::<_, bool>(0), r.get::<_, bool>(1))) {
        Some((true, _)) => return Err(refuse("is a superuser in the shadow; use --superuser to run as one")),
        Some((false, true)) => return Ok(()),
        Some((false, false)) => format!("ALTER ROLE {ident} LOGIN"),
        None => {
            tracing::warn!(role, "the source does not name --role {role}: it gets only what PUBLIC is granted");
            format!("CREATE ROLE {ident} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS")
        }
    };
    admin.client().batch_execute(&sql).await.map_err(|e| Error::pg(format!("preparing role {role}"), e))
}

/// Whether `name` is a role of pgshadow's or of Postgres itself, never one of the source.
pub(crate) fn is_reserved(name: &str) -> bool {
    matches!(name, "current_user" | "current_role" | "session_user" | "public")
        || name.starts_with("pg_")
        || name.starts_with(ROLE_PREFIX)
}
