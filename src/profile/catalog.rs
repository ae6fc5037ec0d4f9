//! The catalog fingerprint: one digest of a schema's tables, columns and types, constraints, indexes and enums,
//! computed by the same query on the live source ([`super::take()`]) and on a shadow loaded with a dump of it
//! ([`of_database`]), so that a profile and a report can say whether they describe the same schema. The digest of
//! a dump's text (`shadow.schema.sha256`) cannot do that: the live database has no text.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use super::{Profile, TableName};
use crate::error::{Error, Result};
use crate::report::ProfileInfo;
use crate::shadow::{Database, Shadow};

/// A schema as the catalog fingerprint sees it.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// The SHA-256 (hex) of the canonical description: its lines sorted, joined by newlines.
    pub sha256: String,
    /// Every table and its columns with their types (`format_type`).
    pub relations: BTreeMap<TableName, BTreeMap<String, String>>,
}

/// Reads the catalog of the database `client` is connected to. The caller sets `search_path = pg_catalog` first, so
/// that the server writes every name schema-qualified, the same way on every database.
pub async fn catalog(client: &Client) -> Result<Catalog> {
    let rows = client
        .query(super::queries::catalog_sql().as_str(), &[])
        .await
        .map_err(|e| Error::pg("reading the catalog for its fingerprint", e))?;
    let mut lines = Vec::with_capacity(rows.len());
    let mut relations: BTreeMap<TableName, BTreeMap<String, String>> = BTreeMap::new();
    for row in &rows {
        let (kind, qualified, name): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let table = TableName { schema: row.get(3), name: row.get(4) };
        let definition: String = row.get(6);
        match kind.as_str() {
            "table" => {
                relations.entry(table).or_default();
            }
            "column" => {
                relations.entry(table).or_default().insert(name.clone(), row.get(5));
            }
            _ => {}
        }
        lines.push(format!("{kind}\t{qualified}\t{name}\t{definition}"));
    }
    lines.sort();
    Ok(Catalog { sha256: crate::text::hex_digest(lines.join("\n").as_bytes()), relations })
}

/// The catalog of `database` of `shadow`, read as its admin in a transaction of its own.
pub async fn of_database(shadow: &Shadow, database: &Database) -> Result<Catalog> {
    let admin = shadow.admin(database.name()).await?;
    let client = admin.client();
    let begin = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL search_path = pg_catalog";
    client.batch_execute(begin).await.map_err(|e| Error::pg("reading the shadow's catalog", e))?;
    let catalog = catalog(client).await;
    client.batch_execute("COMMIT").await.map_err(|e| Error::pg("reading the shadow's catalog", e))?;
    catalog
}

/// What the report says of `profile` against the shadow's `shadow` catalog: whether their fingerprints match, and
/// the tables and columns only one of them has, and columns whose type differs.
pub fn compare(profile: &Profile, shadow: &Catalog) -> ProfileInfo {
    let ours = profile.relations();
    let show = |t: &TableName| format!("{}.{}", t.schema, t.name);
    let (mut missing_in_shadow, mut missing_in_profile, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    for (table, columns) in &ours {
        let Some(theirs) = shadow.relations.get(table) else {
            missing_in_shadow.push(show(table));
            continue;
        };
        for (column, ty) in columns {
            match theirs.get(column) {
                None => missing_in_shadow.push(format!("{}.{column}", show(table))),
                Some(other) if other != ty => {
                    changed.push(format!("{}.{column}: {ty} in the profile, {other} in the shadow", show(table)))
                }
                Some(_) => {}
            }
        }
        let added = theirs.keys().filter(|c| !columns.contains_key(*c));
        missing_in_profile.extend(added.map(|c| format!("{}.{c}", show(table))));
    }
    missing_in_profile.extend(shadow.relations.keys().filter(|t| !ours.contains_key(*t)).map(show));
    missing_in_profile.sort();
    let matches = profile.catalog_sha256 == shadow.sha256;
    let warning = (!matches).then(|| {
        let what = if missing_in_shadow.is_empty() && missing_in_profile.is_empty() && changed.is_empty() {
            "their tables and columns agree, so constraints, indexes, NOT NULLs or enums differ"
        } else {
            "tables or columns differ"
        };
        format!(
            "the profile {} was taken of another schema than the one the shadow loaded ({what}): refresh it \
             (`pgshadow profile`) or check that the schema file is production's",
            profile.file
        )
    });
    ProfileInfo {
        file: profile.file.clone(),
        values: profile.values,
        server_version: profile.server_version.clone(),
        catalog_sha256: profile.catalog_sha256.clone(),
        shadow_catalog_sha256: shadow.sha256.clone(),
        matches,
        missing_in_shadow,
        missing_in_profile,
        changed,
        warning,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::fixtures::{profile, table};

    #[test]
    fn what_differs_is_named_on_both_sides() {
        let t = table("t", 10.0).with_column("a", "text", None).with_column("id", "integer", None);
        let profile = profile(vec![table("gone", 10.0), t]);
        let mut shadow = Catalog { sha256: "bb".into(), relations: BTreeMap::new() };
        let name = |n: &str| TableName { schema: "public".into(), name: n.into() };
        let columns = [("id", "bigint"), ("b", "text")].map(|(c, t)| (c.to_owned(), t.to_owned()));
        shadow.relations.insert(name("t"), columns.into_iter().collect());
        shadow.relations.insert(name("new"), BTreeMap::new());
        let info = compare(&profile, &shadow);
        assert!(!info.matches);
        assert_eq!(info.missing_in_shadow, ["public.gone", "public.t.a"]);
        assert_eq!(info.missing_in_profile, ["public.new", "public.t.b"]);
        assert_eq!(info.changed, ["public.t.id: integer in the profile, bigint in the shadow"]);
        assert!(info.warning.is_some_and(|w| w.contains("p.json")));

        shadow.sha256 = "aa".into();
        let info = compare(&profile, &shadow);
        assert!(info.matches && info.warning.is_none());
    }
}
