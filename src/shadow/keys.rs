//! The foreign keys of a shadow's database, read from its catalog in one query: what a cascade's estimate follows
//! (`crate::estimate::foreign_keys`) and what a sample's foreign-key closure fetches (`crate::source::sample`).

use super::Session;
use crate::error::{Error, Result};

/// A foreign key: the referencing (child) table and columns, the referenced (parent) table and columns, and what
/// a DELETE of a parent row does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// `name on schema.table`, as the report's cascade paths name it.
    pub identity: String,
    /// The referencing table, `schema.table` quoted where Postgres would quote it.
    pub child: String,
    /// Its referencing columns, as stored.
    pub child_columns: Vec<String>,
    /// The referenced table.
    pub parent: String,
    /// The referenced columns.
    pub parent_columns: Vec<String>,
    /// The referenced columns' types, as `format_type` prints them.
    pub parent_types: Vec<String>,
    /// The referenced table's stored columns (neither dropped nor generated), quoted and comma-separated in their
    /// order: the column list that copies its rows.
    pub parent_stored_columns: String,
    /// `confdeltype`: `c` cascade, `n` set null, `d` set default, `a` no action, `r` restrict.
    pub on_delete: char,
    /// Whether Postgres made it from a foreign key of a partitioned table (`conparentid` set): a partition's copy
    /// of a key that its parent holds already.
    pub inherited: bool,
}

const FOREIGN_KEYS: &str = "\
SELECT pg_catalog.format('%I on %I.%I', k.conname, cn.nspname, c.relname), \
       pg_catalog.format('%I.%I', cn.nspname, c.relname), \
       ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY u(n, i) \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i), \
       pg_catalog.format('%I.%I', pn.nspname, p.relname), \
       ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(k.confkey) WITH ORDINALITY u(n, i) \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i), \
       ARRAY(SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) \
             FROM pg_catalog.unnest(k.confkey) WITH ORDINALITY u(n, i) \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i), \
       (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) \
        FROM pg_catalog.pg_attribute a WHERE a.attrelid = k.confrelid AND a.attnum > 0 \
          AND NOT a.attisdropped AND a.attgenerated = ''), \
       k.confdeltype::text, k.conparentid <> 0 \
FROM pg_catalog.pg_constraint k \
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace \
JOIN pg_catalog.pg_class p ON p.oid = k.confrelid JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace \
WHERE k.contype = 'f' AND cn.nspname <> 'pgshadow_internal' ORDER BY 1";

/// Every foreign key of the database `session` is connected to (but pgshadow's own), ordered by identity.
pub(crate) async fn foreign_keys(session: &Session) -> Result<Vec<ForeignKey>> {
    let rows = session
        .client()
        .query(FOREIGN_KEYS, &[])
        .await
        .map_err(|e| Error::pg("reading the shadow's foreign keys", e))?;
    Ok(rows
        .iter()
        .map(|r| ForeignKey {
            identity: r.get(0),
            child: r.get(1),
            child_columns: r.get(2),
            parent: r.get(3),
            parent_columns: r.get(4),
            parent_types: r.get(5),
            parent_stored_columns: r.get(6),
            on_delete: r.get::<_, String>(7).chars().next().unwrap_or('a'),
            inherited: r.get(8),
        })
        .collect())
}
