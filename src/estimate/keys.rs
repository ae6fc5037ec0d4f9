//! The foreign keys of the shadow's database, which a cascade's estimate follows: read from its catalog before the
//! plan runs, since production's schema is the shadow's.

use crate::error::{Error, Result};
use crate::shadow::Shadow;
use crate::source::Database;

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
    /// `confdeltype`: `c` cascade, `n` set null, `d` set default, `a` no action, `r` restrict.
    pub on_delete: char,
}

/// Every foreign key of `database`.
pub async fn foreign_keys(shadow: &Shadow, database: &Database) -> Result<Vec<ForeignKey>> {
    let admin = shadow.admin(database.name()).await?;
    let rows = admin
        .client()
        .query(
            "SELECT pg_catalog.format('%I on %I.%I', k.conname, cn.nspname, c.relname), \
                    pg_catalog.format('%I.%I', cn.nspname, c.relname), \
                    ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY u(n, i) \
                          JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i), \
                    pg_catalog.format('%I.%I', pn.nspname, p.relname), \
                    ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(k.confkey) WITH ORDINALITY u(n, i) \
                          JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i), \
                    k.confdeltype::text \
             FROM pg_catalog.pg_constraint k \
             JOIN pg_catalog.pg_class c ON c.oid = k.conrelid JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace \
             JOIN pg_catalog.pg_class p ON p.oid = k.confrelid JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace \
             WHERE k.contype = 'f' AND cn.nspname <> 'pgshadow_internal' ORDER BY 1",
            &[],
        )
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
            on_delete: r.get::<_, String>(5).chars().next().unwrap_or('a'),
        })
        .collect())
}
