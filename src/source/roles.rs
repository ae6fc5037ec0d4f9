//! Roles a schema names: owners (`ALTER TABLE ... OWNER TO app`, `CREATE SCHEMA s AUTHORIZATION app`) are created in
//! the shadow, without login, and granted to the plan role, so ownership loads as written and the plan role can act
//! as the owner; grantees (`GRANT SELECT ON t TO agent`) are created without login, so privileges load as written
//! and a plan can run as one of them (`--role`).

use std::collections::BTreeSet;

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::fidelity::Failures;
use super::load::Loader;
use crate::error::{Error, Result};
use crate::plan::RawStatement;
use crate::shadow::{is_reserved, Role, ROLE_PREFIX};
use crate::text::quote_ident;

/// Creates every role the statements name that the shadow lacks (without login, never a superuser), before the
/// source's statements run. Each owner is granted to the loader (so that `OWNER TO` works without a superuser) and to
/// the plan role (so the plan can act as the owner), and made a member of the load owner (so it has the database
/// owner's rights while the source loads, as an owner has in production). An owner that is a superuser in the
/// shadow, or one of pgshadow's own roles or Postgres's, is refused: it is never granted, so what the source gives
/// it fails to load, and the refusal is reported in `failures`.
pub(super) async fn create_owners(
    target: &Loader<'_>,
    statements: &[RawStatement],
    failures: &mut Failures,
) -> Result<()> {
    let (owners, grantees) = named_roles(statements);
    if owners.is_empty() && grantees.is_empty() {
        return Ok(());
    }
    let shadow = target.shadow;
    let admin = shadow.admin(shadow.maintenance_database()).await?;
    let roles =
        owners.iter().map(|n| (n, true)).chain(grantees.iter().filter(|n| !owners.contains(*n)).map(|n| (n, false)));
    for (name, owner) in roles {
        if name.starts_with(ROLE_PREFIX) {
            if owner {
                failures.refused_owner(name, "it is one of pgshadow's own roles");
            }
            continue;
        }
        let ident = quote_ident(name);
        let superuser = match role_superuser(&admin, name).await? {
            Some(superuser) => superuser,
            None => {
                let sql = format!("CREATE ROLE {ident} NOLOGIN");
                admin.client().batch_execute(&sql).await.map_err(|e| Error::pg(format!("creating role {name}"), e))?;
                tracing::debug!(role = %name, owner, "created a role the schema names");
                false
            }
        };
        if owner && superuser {
            failures.refused_owner(name, "it is a superuser in the shadow");
        } else if owner {
            let (loader, plan, load_owner) =
                (shadow.role(Role::Loader), shadow.role(Role::Plan), shadow.role(Role::LoadOwner));
            let sql = format!("GRANT {ident} TO {loader}, {plan}; GRANT {load_owner} TO {ident}");
            admin.client().batch_execute(&sql).await.map_err(|e| Error::pg(format!("granting role {name}"), e))?;
        }
    }
    Ok(())
}

/// Whether the role `name` is a superuser; `None` when there is no such role.
async fn role_superuser(admin: &crate::shadow::Session, name: &str) -> Result<Option<bool>> {
    Ok(admin
        .client()
        .query_opt("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = $1", &[&name])
        .await
        .map_err(|e| Error::pg("looking up the schema's roles", e))?
        .map(|row| row.get(0)))
}

/// The roles the statements name, folded as Postgres folds identifiers: owners (after `OWNER TO` and
/// `AUTHORIZATION`), and grantees (after `TO` in a `GRANT`, after `FROM` in a `REVOKE`).
fn named_roles(statements: &[RawStatement]) -> (BTreeSet<String>, BTreeSet<String>) {
    let dialect = PostgreSqlDialect {};
    let (mut owners, mut grantees) = (BTreeSet::new(), BTreeSet::new());
    for statement in statements.iter().filter(|s| !s.meta) {
        let Ok(tokens) = Tokenizer::new(&dialect, &statement.text).tokenize() else {
            continue;
        };
        let words: Vec<(String, bool)> = tokens
            .into_iter()
            .filter_map(|t| match t {
                Token::Word(w) => Some((w.value, w.quote_style.is_some())),
                Token::Whitespace(_) => None,
                other => Some((other.to_string(), true)),
            })
            .collect();
        let fold = |(name, quoted): &(String, bool)| if *quoted { name.clone() } else { name.to_lowercase() };
        for (i, (word, quoted)) in words.iter().enumerate() {
            let name = if !quoted && word.eq_ignore_ascii_case("owner") && is_word(words.get(i + 1), "to") {
                words.get(i + 2)
            } else if !quoted && word.eq_ignore_ascii_case("authorization") {
                words.get(i + 1)
            } else {
                None
            };
            // Postgres's own roles (`pg_database_owner`, which pg_dump names as `public`'s owner) are there already.
            if let Some(name) = name.map(fold).filter(|n| !is_keyword_role(n) && !n.starts_with("pg_")) {
                owners.insert(name);
            }
        }
        let list_after = match words.first() {
            Some(first) if is_word(Some(first), "grant") => "to",
            Some(first) if is_word(Some(first), "revoke") => "from",
            _ => continue,
        };
        // `GRANT ... TO a, b WITH GRANT OPTION` / `REVOKE ... FROM a, b CASCADE`; the last TO/FROM starts the list.
        let Some(start) = words.iter().rposition(|w| is_word(Some(w), list_after)) else {
            continue;
        };
        let mut rest = words[start + 1..].iter();
        while let Some(word) = rest.next() {
            if is_word(Some(word), "group") {
                continue;
            }
            let name = fold(word);
            if !is_reserved(&name) && !word.0.starts_with(';') {
                grantees.insert(name);
            }
            if rest.next().is_none_or(|sep| sep.0 != ",") {
                break;
            }
        }
    }
    (owners, grantees)
}

fn is_word(token: Option<&(String, bool)>, word: &str) -> bool {
    token.is_some_and(|(w, quoted)| !quoted && w.eq_ignore_ascii_case(word))
}

/// The words that stand for a role without naming one.
fn is_keyword_role(name: &str) -> bool {
    matches!(name, "current_user" | "current_role" | "session_user" | "public")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::split;

    #[test]
    fn owner_and_authorization_roles_are_found_and_folded() {
        let statements = split(
            "ALTER TABLE public.users OWNER TO App_Owner;\n\
             ALTER FUNCTION f() OWNER TO \"Mixed Case\";\n\
             CREATE SCHEMA billing AUTHORIZATION finance;\n\
             ALTER TABLE t OWNER TO CURRENT_USER;\n\
             COMMENT ON TABLE t IS 'owner to nobody';\n\
             ALTER TABLE x OWNER TO pg_database_owner;",
        );
        let names: Vec<_> = named_roles(&statements).0.into_iter().collect();
        assert_eq!(names, ["Mixed Case", "app_owner", "finance"]);
    }

    #[test]
    fn grantees_are_found_after_to_and_from() {
        let statements = split(
            "GRANT SELECT, INSERT ON TABLE public.t TO agent, \"Report Reader\" WITH GRANT OPTION;\n\
             REVOKE ALL ON SCHEMA public FROM PUBLIC;\n\
             REVOKE UPDATE ON public.t FROM old_app CASCADE;\n\
             GRANT USAGE ON SCHEMA s TO GROUP readers;\n\
             GRANT app TO batch;",
        );
        let names: Vec<_> = named_roles(&statements).1.into_iter().collect();
        assert_eq!(names, ["Report Reader", "agent", "batch", "old_app", "readers"]);
    }
}
