//! Tables whose production size the shadow cannot know: the source carried no rows ([`Database::data_loaded`]) and
//! the shadow holds none for them. What a statement does to them is reported unknown — could be any number — never
//! 0: a DELETE, UPDATE or TRUNCATE of one, the tables a DELETE reaches from one through foreign-key actions (the
//! catalog knows those paths with no rows), and dropping one.
//!
//! [`Database::data_loaded`]: crate::source::Database::data_loaded

use std::collections::{BTreeSet, HashMap, HashSet};

use super::effects::{mark_unknown, Count, Oid};
use super::{queries, Run};
use crate::error::Result;
use crate::plan::StatementKind;
use crate::report::{CascadePath, StatementReport};

/// The tables of unknown size among `counts` (every table's rows before the plan), or none when the source carried
/// its rows.
pub(super) fn of(data_loaded: bool, counts: &HashMap<Oid, i64>) -> HashSet<Oid> {
    match data_loaded {
        true => HashSet::new(),
        false => counts.iter().filter(|(_, rows)| **rows == 0).map(|(oid, _)| *oid).collect(),
    }
}

/// What one statement touched of the tables of unknown size.
pub(super) struct Touched<'s> {
    pub(super) kind: StatementKind,
    /// The tables the statement names.
    pub(super) direct: &'s HashSet<Oid>,
    /// Tables a TRUNCATE gave new storage (the ones it names, and what its CASCADE reached).
    pub(super) truncated: &'s [Oid],
    /// The names of the tables of unknown size, as of before the statement (a dropped one has no other).
    pub(super) names: &'s HashMap<Oid, String>,
}

impl Run<'_> {
    /// Marks `report`'s counts that depend on rows of tables of unknown size unknown, lists those tables, and for a
    /// DELETE reports the foreign-key paths it follows into other tables.
    pub(super) async fn unknown_counts(&self, report: &mut StatementReport, touched: Touched<'_>) -> Result<()> {
        let Touched { kind, direct, truncated, names } = touched;
        let mut tables: BTreeSet<String> = BTreeSet::new();
        let mut reached = Vec::new();
        let count = match kind {
            StatementKind::Delete => Some(Count::Deleted),
            StatementKind::Update => Some(Count::Updated),
            StatementKind::Truncate => Some(Count::Truncated),
            _ => None,
        };
        for oid in direct.iter().chain(truncated).filter(|oid| self.unknown.contains(oid)) {
            let Some(name) = names.get(oid) else { continue };
            tables.insert(name.clone());
            // A TRUNCATE's new storage for an empty table looks like a rewrite: it is the truncation.
            if kind == StatementKind::Truncate {
                report.rewritten_tables.retain(|r| &r.table != name);
            }
            for rewritten in report.rewritten_tables.iter_mut().filter(|r| &r.table == name) {
                (rewritten.rows, rewritten.size_bytes) = (None, None);
            }
            if let Some(count) = count {
                reached.push((name.clone(), count, true));
            }
        }
        // A path is only reported when it starts in or reaches a table of unknown size: none, no query. An UPDATE's
        // paths start at the columns it sets (any, when its text cannot be read).
        let cascades = matches!(kind, StatementKind::Delete | StatementKind::Update);
        if cascades && !direct.is_empty() && !self.unknown.is_empty() {
            let (paths, restricting) = self.cascade_paths(direct, report, kind).await?;
            // A key that refuses the statement where a row is still referenced changes nothing there.
            report.restricting_keys = restricting;
            for path in paths {
                tables.insert(path.table.clone());
                let count = if path.action == "delete" { Count::Deleted } else { Count::Updated };
                reached.push((path.table.clone(), count, false));
                report.cascade_paths.push(path);
            }
        }
        // A dropped column's table is named by the statement, so among the direct ones already.
        let dropped = report.dropped_objects.iter().filter(|o| !o.rows_known && o.object_type == "table");
        tables.extend(dropped.map(|o| o.identity.clone()));
        mark_unknown(&mut report.table_effects, &reached);
        report.unknown_tables = tables.into_iter().collect();
        report.rows_known = report.table_effects.iter().all(|e| e.rows_known)
            && report.dropped_objects.iter().all(|o| o.rows_known)
            && report.measure_error.is_none();
        Ok(())
    }

    /// The paths along which a DELETE from `roots`, or an UPDATE of them (`kind`), reaches other tables, where the
    /// rows it reaches there are unknown: from a table of unknown size, or (when the shadow deleted or updated rows of
    /// the table) into one. The first (shortest) path to each table; and apart, every foreign key (`NO ACTION`,
    /// `RESTRICT`) that refuses the statement where a row is still referenced.
    async fn cascade_paths(
        &self,
        roots: &HashSet<Oid>,
        report: &StatementReport,
        kind: StatementKind,
    ) -> Result<(Vec<CascadePath>, Vec<CascadePath>)> {
        use tokio_postgres::types::Type;
        let roots: Vec<Oid> = roots.iter().copied().collect();
        let update = kind == StatementKind::Update;
        let rows = match update {
            false => {
                let params: [super::probe::Param; 1] = [(&roots, Type::OID_ARRAY)];
                self.rows(queries::CASCADE_PATHS, &params, "reading the foreign-key paths of the DELETE").await?
            }
            true => {
                let columns = crate::plan::updated_columns(&report.sql);
                let params: [super::probe::Param; 2] = [(&roots, Type::OID_ARRAY), (&columns, Type::TEXT_ARRAY)];
                self.rows(queries::UPDATE_PATHS, &params, "reading the foreign-key paths of the UPDATE").await?
            }
        };
        let (mut paths, mut restricting): (Vec<CascadePath>, Vec<CascadePath>) = (Vec::new(), Vec::new());
        for row in rows {
            let oids: Vec<Oid> = row.get(3);
            let path: Vec<String> = row.get(4);
            let root_unknown = oids.first().is_some_and(|root| self.unknown.contains(root));
            let changed_here = report.table_effects.iter().any(|e| {
                path.first() == Some(&e.table) && if update { e.updated != Some(0) } else { e.deleted != Some(0) }
            });
            let into_unknown = oids.iter().any(|oid| self.unknown.contains(oid));
            let table = path.last().cloned().unwrap_or_default();
            let action = match (row.get::<_, String>(1).as_str(), update) {
                ("c", false) => "delete",
                ("c", true) => "update",
                ("n", _) => "set null",
                ("d", _) => "set default",
                ("r", _) => "restrict",
                _ => "no action",
            };
            let foreign_key: String = row.get(2);
            let refuses = matches!(action, "no action" | "restrict");
            let list = if refuses { &mut restricting } else { &mut paths };
            let seen = list.iter().any(|p| if refuses { p.foreign_key == foreign_key } else { p.table == table });
            if !(root_unknown || (changed_here && into_unknown)) || seen {
                continue;
            }
            list.push(CascadePath { table, action: action.to_owned(), path, foreign_key });
        }
        Ok((paths, restricting))
    }
}
