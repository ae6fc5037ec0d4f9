//! The catalog description an apply checks for drift: every table, column and type, constraint, index and enum of the
//! [catalog fingerprint](super::catalog()), plus triggers, views and functions with their signatures and bodies, one
//! entry each, read by the same query from the shadow after its source loaded (when a proposal is made) and from the
//! target (when it is applied). Not the text of a dump: a `structure.sql` and a fresh `pg_dump` of the same database
//! differ in text and are the same catalog.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::shadow::{Database, Shadow};

/// A schema's objects, canonically described.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Description {
    /// The catalog fingerprint (a profile's `catalog_sha256`) of the same schema.
    pub fingerprint: String,
    /// Each object (`column public.orders.total`, `index orders_pkey on public.orders`, `function
    /// public.f(integer)`) and its definition.
    pub objects: BTreeMap<String, String>,
}

/// Triggers, views and functions outside the system schemas and pgshadow's own, not members of an extension:
/// (kind, object, definition).
const MORE_SQL: &str = "\
    SELECT 'trigger', pg_catalog.format('%I on %I.%I', t.tgname, n.nspname, c.relname), \
           pg_catalog.pg_get_triggerdef(t.oid) \
    FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid \
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
    WHERE NOT t.tgisinternal AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgshadow_internal') \
      AND n.nspname NOT LIKE 'pg\\_%' \
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
                      AND d.objid = c.oid AND d.deptype = 'e') \
    UNION ALL \
    SELECT CASE c.relkind WHEN 'm' THEN 'materialized view' ELSE 'view' END, \
           pg_catalog.format('%I.%I', n.nspname, c.relname), pg_catalog.pg_get_viewdef(c.oid) \
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
    WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgshadow_internal') \
      AND n.nspname NOT LIKE 'pg\\_%' \
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
                      AND d.objid = c.oid AND d.deptype = 'e') \
    UNION ALL \
    SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END, \
           pg_catalog.format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)), \
           pg_catalog.pg_get_functiondef(p.oid) \
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
    WHERE p.prokind IN ('f', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgshadow_internal') \
      AND n.nspname NOT LIKE 'pg\\_%' \
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass \
                      AND d.objid = p.oid AND d.deptype = 'e')";

/// Describes the database `client` is connected to. The caller sets `search_path = pg_catalog` first (as for
/// [`super::catalog()`]), inside one snapshot.
pub async fn describe(client: &Client) -> Result<Description> {
    let fingerprint = super::catalog(client).await?.sha256;
    let fail = |e| Error::pg("describing the catalog", e);
    let mut objects = BTreeMap::new();
    for row in client.query(super::queries::catalog_sql().as_str(), &[]).await.map_err(fail)? {
        let (kind, qualified, name): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let object = match kind.as_str() {
            "column" => format!("column {qualified}.{name}"),
            "constraint" | "index" => format!("{kind} {name} on {qualified}"),
            _ => format!("{kind} {qualified}"),
        };
        objects.insert(object, row.get::<_, String>(6));
    }
    for row in client.query(MORE_SQL, &[]).await.map_err(fail)? {
        let (kind, object, definition): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        objects.insert(format!("{kind} {object}"), definition);
    }
    Ok(Description { fingerprint, objects })
}

/// The description of `database` of `shadow`, read as its admin in one read-only snapshot.
pub async fn describe_database(shadow: &Shadow, database: &Database) -> Result<Description> {
    let admin = shadow.admin(database.name()).await?;
    let client = admin.client();
    let begin = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL search_path = pg_catalog";
    client.batch_execute(begin).await.map_err(|e| Error::pg("describing the shadow's catalog", e))?;
    let description = describe(client).await;
    client.batch_execute("COMMIT").await.map_err(|e| Error::pg("describing the shadow's catalog", e))?;
    description
}

/// How a target's catalog differs from the one a plan was measured on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Drift {
    /// Every difference, in words: `column public.orders.note: on the target only (text)`.
    pub differences: Vec<String>,
    /// Objects on the target only that the shadow could not load (a statement of the source that failed names
    /// them): left out of the comparison.
    pub left_out: Vec<String>,
}

/// Compares the `measured` catalog (the shadow's) with the `target`'s. `losses` are the statements of the source
/// the shadow could not load: an object on the target only that one of them names is left out, and listed.
pub fn drift(measured: &Description, target: &Description, losses: &[String]) -> Drift {
    let mut out = Drift::default();
    let named_by_loss = |object: &str| {
        let head = object.split('(').next().unwrap_or(object);
        let head = head.split(" on ").next().unwrap_or(head);
        let name = head.rsplit([' ', '.']).next().unwrap_or_default();
        let name = name.trim_matches('"').to_lowercase();
        !name.is_empty() && losses.iter().any(|l| l.to_lowercase().contains(&name))
    };
    for (object, definition) in &target.objects {
        match measured.objects.get(object) {
            None if named_by_loss(object) => out.left_out.push(object.clone()),
            None => out.differences.push(format!("{object}: on the target only ({})", short(definition))),
            Some(theirs) if theirs != definition => out.differences.push(format!(
                "{object}: {} when measured, {} on the target",
                short(theirs),
                short(definition)
            )),
            Some(_) => {}
        }
    }
    for (object, definition) in &measured.objects {
        if !target.objects.contains_key(object) {
            out.differences.push(format!("{object}: missing on the target ({})", short(definition)));
        }
    }
    out
}

/// A definition cut to one line of at most 80 characters.
fn short(definition: &str) -> String {
    let line = definition.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(80) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description(objects: &[(&str, &str)]) -> Description {
        Description {
            fingerprint: String::new(),
            objects: objects.iter().map(|(o, d)| ((*o).to_owned(), (*d).to_owned())).collect(),
        }
    }

    #[test]
    fn every_difference_is_named_and_losses_are_left_out() {
        let measured = description(&[
            ("table public.orders", "table"),
            ("column public.orders.id", "integer not null"),
            ("column public.orders.total", "numeric"),
            ("index orders_total on public.orders", "CREATE INDEX ..."),
        ]);
        let target = description(&[
            ("table public.orders", "table"),
            ("column public.orders.id", "integer not null"),
            ("column public.orders.total", "bigint"),
            ("column public.orders.note", "text"),
            ("function public.geo_distance(point, point)", "CREATE FUNCTION ..."),
        ]);
        let losses = vec!["CREATE FUNCTION public.geo_distance(a point, b point) RETURNS float8".to_owned()];
        let found = drift(&measured, &target, &losses);
        assert_eq!(
            found.differences,
            [
                "column public.orders.note: on the target only (text)",
                "column public.orders.total: numeric when measured, bigint on the target",
                "index orders_total on public.orders: missing on the target (CREATE INDEX ...)",
            ]
        );
        assert_eq!(found.left_out, ["function public.geo_distance(point, point)"]);
        assert_eq!(drift(&measured, &measured, &[]), Drift::default());
    }
}
