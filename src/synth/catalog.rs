//! What synthesis needs to know of the loaded schema, read from the shadow's catalog in three queries: the tables
//! that hold rows (ordinary tables and leaf partitions) with their columns and types (through domains), their CHECK
//! constraints (a partition's bound among them) and foreign keys, and the sequences columns own. Read with
//! `search_path = pg_catalog`, so that every type and expression the server prints is schema-qualified.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::shadow::Session;

/// A relation's oid.
pub(super) type Oid = u32;

/// A table that holds rows: an ordinary table or a leaf partition.
#[derive(Debug, Clone)]
pub(super) struct Table {
    pub(super) oid: Oid,
    /// `schema.table` as SQL writes it.
    pub(super) qualified: String,
    pub(super) schema: String,
    pub(super) name: String,
    pub(super) columns: Vec<Column>,
    /// CHECK constraints, and a partition's bound: (name, expression).
    pub(super) checks: Vec<Check>,
    pub(super) foreign_keys: Vec<ForeignKey>,
}

/// A CHECK constraint (or a partition's bound) as an expression over the table's columns.
#[derive(Debug, Clone)]
pub(super) struct Check {
    pub(super) name: String,
    pub(super) expression: String,
    /// The columns it reads.
    pub(super) columns: Vec<String>,
}

/// A column, with its type as generation needs it.
#[derive(Debug, Clone)]
pub(super) struct Column {
    pub(super) name: String,
    /// The column's type as SQL writes it (`public.positive`, `character varying(80)`).
    pub(super) r#type: String,
    pub(super) not_null: bool,
    /// `attgenerated` is set: Postgres computes it.
    pub(super) generated: bool,
    /// It has a default (or is an identity column).
    pub(super) has_default: bool,
    /// Leads a unique index of one column (partial ones too): its values are generated distinct.
    pub(super) unique: bool,
    /// Through domains: the base type's name (`int4`), its category (`N`, `S`, `A`...), and the typmod.
    pub(super) base: String,
    pub(super) category: String,
    pub(super) typmod: i32,
    /// For an enum (or an array of one): how many labels, and the enum type.
    pub(super) enum_labels: i64,
    pub(super) enum_type: Option<String>,
    /// For an array: its element type's name and category.
    pub(super) element: Option<(String, String)>,
}

/// A foreign key of a table.
#[derive(Debug, Clone)]
pub(super) struct ForeignKey {
    pub(super) name: String,
    pub(super) columns: Vec<String>,
    /// The referenced relation (a partitioned one's rows are its leaves').
    pub(super) parent: Oid,
    pub(super) parent_qualified: String,
    pub(super) parent_partitioned: bool,
    pub(super) parent_columns: Vec<String>,
}

/// The schema as synthesis sees it.
#[derive(Debug, Default)]
pub(super) struct Catalog {
    pub(super) tables: Vec<Table>,
    /// The leaves of every partitioned table, by its oid; with its schema and name.
    pub(super) leaves: BTreeMap<Oid, (String, String, Vec<Oid>)>,
    /// Sequences a column owns (serial, identity): (sequence, table, column), as SQL writes them.
    pub(super) sequences: Vec<(String, String, String)>,
}

impl Catalog {
    /// The tables that hold `oid`'s rows: the leaves of a partitioned table, or the table itself.
    pub(super) fn leaves_of(&self, oid: Oid) -> Vec<Oid> {
        self.leaves.get(&oid).map_or_else(|| vec![oid], |(_, _, leaves)| leaves.clone())
    }

    /// The rows `rows_of` gives the tables that hold `oid`'s rows ([`Catalog::leaves_of`]).
    pub(super) fn rows_under(&self, oid: Oid, rows_of: &BTreeMap<Oid, u64>) -> u64 {
        self.leaves_of(oid).iter().filter_map(|l| rows_of.get(l)).sum()
    }
}

const SCHEMAS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgshadow_internal') \
                       AND n.nspname NOT LIKE 'pg\\_%'";

fn columns_sql() -> String {
    format!(
        "SELECT c.oid, pg_catalog.format('%I.%I', n.nspname, c.relname), n.nspname::text, c.relname::text, \
                a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, \
                a.attgenerated <> '', a.atthasdef OR a.attidentity <> '', \
                EXISTS (SELECT 1 FROM pg_catalog.pg_index x WHERE x.indrelid = c.oid AND x.indisunique \
                        AND x.indnkeyatts = 1 AND x.indkey[0] = a.attnum), \
                b.typname::text, b.typcategory::text, \
                CASE WHEN t.typtype = 'd' THEN COALESCE(NULLIF(t1.typtypmod, -1), t.typtypmod) ELSE a.atttypmod END, \
                (SELECT count(*) FROM pg_catalog.pg_enum e \
                 WHERE e.enumtypid = CASE WHEN b.typcategory = 'A' THEN b.typelem ELSE b.oid END), \
                CASE WHEN b.typtype = 'e' THEN pg_catalog.format_type(b.oid, NULL) \
                     WHEN el.typtype = 'e' THEN pg_catalog.format_type(el.oid, NULL) END, \
                el.typname::text, el.typcategory::text \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
         JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_catalog.pg_type t1 ON t.typtype = 'd' AND t1.oid = t.typbasetype \
         LEFT JOIN pg_catalog.pg_type t2 ON t1.typtype = 'd' AND t2.oid = t1.typbasetype \
         JOIN pg_catalog.pg_type b ON b.oid = COALESCE(t2.oid, t1.oid, t.oid) \
         LEFT JOIN pg_catalog.pg_type el ON b.typcategory = 'A' AND el.oid = b.typelem \
         WHERE c.relkind = 'r' AND {SCHEMAS} \
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass \
                           AND d.objid = c.oid AND d.deptype = 'e') \
         ORDER BY 2, a.attnum"
    )
}

const CONSTRAINTS_SQL: &str = "\
    SELECT k.conrelid, k.contype::text, k.conname::text, \
           CASE WHEN k.contype = 'c' THEN pg_catalog.pg_get_expr(k.conbin, k.conrelid) END, \
           ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY u(n, i) \
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i), \
           k.confrelid, CASE WHEN p.oid IS NULL THEN '' ELSE pg_catalog.format('%I.%I', pn.nspname, p.relname) END, \
           COALESCE(p.relkind = 'p', false), \
           ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(k.confkey) WITH ORDINALITY u(n, i) \
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i) \
    FROM pg_catalog.pg_constraint k \
    LEFT JOIN pg_catalog.pg_class p ON p.oid = k.confrelid \
    LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace \
    WHERE k.contype IN ('c', 'f') AND k.conrelid = ANY($1) \
    UNION ALL \
    SELECT c.oid, 'p', 'partition bound', pg_catalog.pg_get_partition_constraintdef(c.oid), \
           ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 \
                 AND NOT a.attisdropped), 0::oid, '', false, '{}'::text[] \
    FROM pg_catalog.pg_class c WHERE c.oid = ANY($1) AND c.relispartition \
    ORDER BY 1, 3";

const LEAVES_SQL: &str = "\
    SELECT c.oid, n.nspname::text, c.relname::text, \
           ARRAY(SELECT t.relid::pg_catalog.oid FROM pg_catalog.pg_partition_tree(c.oid) t WHERE t.isleaf) \
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'p'";

const SEQUENCES_SQL: &str = "\
    SELECT pg_catalog.format('%I.%I', sn.nspname, s.relname), pg_catalog.format('%I.%I', n.nspname, c.relname), \
           pg_catalog.quote_ident(a.attname) \
    FROM pg_catalog.pg_depend d \
    JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
    JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace \
    JOIN pg_catalog.pg_class c ON c.oid = d.refobjid \
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid \
    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass \
      AND d.deptype IN ('a', 'i') AND n.nspname <> 'pgshadow_internal' \
    ORDER BY 1";

/// Reads the catalog of the database `session` is in.
pub(super) async fn read(session: &Session) -> Result<Catalog> {
    let client = session.client();
    let fail = |e| Error::pg("reading the schema to synthesize rows for", e);
    client.batch_execute("SET search_path = pg_catalog").await.map_err(fail)?;
    let mut tables: Vec<Table> = Vec::new();
    for row in client.query(columns_sql().as_str(), &[]).await.map_err(fail)? {
        let oid: Oid = row.get(0);
        if tables.last().is_none_or(|t| t.oid != oid) {
            tables.push(Table {
                oid,
                qualified: row.get(1),
                schema: row.get(2),
                name: row.get(3),
                columns: Vec::new(),
                checks: Vec::new(),
                foreign_keys: Vec::new(),
            });
        }
        let element: (Option<String>, Option<String>) = (row.get(15), row.get(16));
        let column = Column {
            name: row.get(4),
            r#type: row.get(5),
            not_null: row.get(6),
            generated: row.get(7),
            has_default: row.get(8),
            unique: row.get(9),
            base: row.get(10),
            category: row.get(11),
            typmod: row.get(12),
            enum_labels: row.get(13),
            enum_type: row.get(14),
            element: element.0.zip(element.1),
        };
        tables.last_mut().expect("a table was pushed").columns.push(column);
    }
    let oids: Vec<Oid> = tables.iter().map(|t| t.oid).collect();
    let by_oid: BTreeMap<Oid, usize> = tables.iter().enumerate().map(|(i, t)| (t.oid, i)).collect();
    for row in client.query(CONSTRAINTS_SQL, &[&oids]).await.map_err(fail)? {
        let Some(&at) = by_oid.get(&row.get::<_, Oid>(0)) else { continue };
        let table = &mut tables[at];
        let (kind, name, columns): (String, String, Vec<String>) = (row.get(1), row.get(2), row.get(4));
        match kind.as_str() {
            "f" => table.foreign_keys.push(ForeignKey {
                name,
                columns,
                parent: row.get(5),
                parent_qualified: row.get(6),
                parent_partitioned: row.get(7),
                parent_columns: row.get(8),
            }),
            _ => {
                if let Some(expression) = row.get::<_, Option<String>>(3) {
                    table.checks.push(Check { name, expression, columns });
                }
            }
        }
    }
    let leaves = client.query(LEAVES_SQL, &[]).await.map_err(fail)?;
    let leaves = leaves.iter().map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3)))).collect();
    let sequences = client.query(SEQUENCES_SQL, &[]).await.map_err(fail)?;
    let sequences = sequences.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    client.batch_execute("RESET search_path").await.map_err(fail)?;
    Ok(Catalog { tables, leaves, sequences })
}
