//! Owner roles a schema names (`ALTER TABLE ... OWNER TO app`, `CREATE SCHEMA s AUTHORIZATION app`): they are
//! created in the shadow, without login, and granted to the plan role, so ownership loads as written and the plan
//! role can act as the owner.

use std::collections::BTreeSet;

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::{Error, Result};
use crate::plan::RawStatement;
use crate::shadow::{Shadow, ADMIN_ROLE, LOADER_ROLE, PLAN_ROLE};

/// Creates every owner role the statements name that the shadow lacks, and grants it to the plan role.
pub(super) async fn create_owners(shadow: &Shadow, statements: &[RawStatement]) -> Result<()> {
    let names = owner_roles(statements);
    if names.is_empty() {
        return Ok(());
    }
    let admin = shadow.connect(ADMIN_ROLE, "postgres").await?;
    for name in names {
        let exists = admin
            .client()
            .query_opt("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", &[&name])
            .await
            .map_err(|e| Error::pg("looking up the schema's roles", e))?
            .is_some();
        if exists {
            continue;
        }
        let ident = quote_ident(&name);
        let sql = format!("CREATE ROLE {ident} NOLOGIN; GRANT {ident} TO {PLAN_ROLE}");
        admin.client().batch_execute(&sql).await.map_err(|e| Error::pg(format!("creating role {name}"), e))?;
        tracing::debug!(role = %name, "created an owner role the schema names");
    }
    Ok(())
}

/// The role names after `OWNER TO` and `AUTHORIZATION` in the statements, folded as Postgres folds identifiers.
fn owner_roles(statements: &[RawStatement]) -> BTreeSet<String> {
    let dialect = PostgreSqlDialect {};
    let mut names = BTreeSet::new();
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
        for (i, (word, quoted)) in words.iter().enumerate() {
            let name = if !quoted && word.eq_ignore_ascii_case("owner") && is_word(words.get(i + 1), "to") {
                words.get(i + 2)
            } else if !quoted && word.eq_ignore_ascii_case("authorization") {
                words.get(i + 1)
            } else {
                None
            };
            if let Some((name, quoted)) = name {
                let name = if *quoted { name.clone() } else { name.to_lowercase() };
                if !is_reserved(&name) {
                    names.insert(name);
                }
            }
        }
    }
    names
}

fn is_word(token: Option<&(String, bool)>, word: &str) -> bool {
    token.is_some_and(|(w, quoted)| !quoted && w.eq_ignore_ascii_case(word))
}

fn is_reserved(name: &str) -> bool {
    matches!(name, "current_user" | "current_role" | "session_user" | "public" | ADMIN_ROLE | LOADER_ROLE | PLAN_ROLE)
        || name.starts_with("pg_")
}

/// `"name"`, with inner quotes doubled.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
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
        let names: Vec<_> = owner_roles(&statements).into_iter().collect();
        assert_eq!(names, ["Mixed Case", "app_owner", "finance"]);
    }

    #[test]
    fn identifiers_are_quoted_safely() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
