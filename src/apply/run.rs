//! Running an approved plan on its target inside one transaction, and measuring it there: rows per table from the
//! transaction's own counters (`pg_stat_xact_user_tables`, which count the rows foreign-key actions and triggers
//! changed too), rows a TRUNCATE removed by counting the tables it empties just before it (the ones the dry-run saw
//! it empty, and any other it gives new storage, counted on a second run from a savepoint), and the
//! objects dropped from a catalog diff before anything is committed. Nothing is installed on the target: the shadow's
//! measuring machinery (event triggers, helper functions) has no place in production.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::plan::{Plan, PlanStatement, StatementKind};
use crate::profile::{describe, Description};
use crate::proposal::envelope::{Counts, TableCount};

/// Every user table's counters in this transaction: name, inserted, updated, deleted, storage file (-1 below for a
/// table the statement dropped).
const COUNTERS: &str = "SELECT pg_catalog.format('%I.%I', s.schemaname, s.relname), s.n_tup_ins, s.n_tup_upd, \
     s.n_tup_del, c.relfilenode::pg_catalog.int8 \
     FROM pg_catalog.pg_stat_xact_user_tables s JOIN pg_catalog.pg_class c ON c.oid = s.relid";

type Counters = BTreeMap<String, (i64, i64, i64, i64)>;

async fn counters(client: &Client) -> Result<Counters> {
    let rows = client.query(COUNTERS, &[]).await.map_err(|e| Error::pg("reading the target's row counters", e))?;
    Ok(rows.iter().map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4)))).collect())
}

/// The target's catalog, described as the shadow's was.
pub(super) async fn catalog(client: &Client) -> Result<Description> {
    let set = |sql: &'static str| async move {
        client.batch_execute(sql).await.map_err(|e| Error::pg("describing the target's catalog", e))
    };
    set("SET LOCAL search_path = pg_catalog").await?;
    let description = describe(client).await;
    set("SET LOCAL search_path TO DEFAULT").await?;
    description
}

/// The statements of `plan` that apply runs, with their 1-based index: all but the plan's own BEGIN and COMMIT,
/// which stand for the transaction apply runs the plan in (and would put unguarded statements in a transaction
/// block, where they cannot run).
pub(super) fn statements(plan: &Plan) -> impl Iterator<Item = (usize, &PlanStatement)> {
    let own_transaction =
        |s: &PlanStatement| matches!(s.classification.kind, StatementKind::Begin | StatementKind::Commit);
    plan.statements.iter().enumerate().map(|(i, s)| (i + 1, s)).filter(move |(_, s)| !own_transaction(s))
}

/// What the plan did on the target, or the statement that failed.
pub(super) enum Ran {
    /// Every statement ran; what they did.
    Done(Counts),
    /// Statement `index` (1-based) failed with this message.
    Failed(usize, String),
}

/// Runs `plan`'s statements on `client` (inside the caller's transaction; the plan's own BEGIN and COMMIT are
/// left out, being that transaction: [`statements`]), measuring each. `emptied` lists, per statement (1-based), the
/// tables the dry-run saw it truncate or drop, to count just before it. `before` is the catalog before the plan.
pub(super) async fn run(
    client: &Client,
    plan: &Plan,
    emptied: &BTreeMap<usize, Vec<String>>,
    before: &Description,
) -> Result<Ran> {
    let mut counts = Counts::default();
    for (index, statement) in statements(plan) {
        let truncate = statement.classification.kind == StatementKind::Truncate;
        let count = emptied.get(&index).cloned().unwrap_or_default();
        let Measured { start, end, held } = match execute(client, &statement.raw.text, truncate, count).await? {
            Ok(measured) => measured,
            Err(message) => return Ok(Ran::Failed(index, message)),
        };
        let gone = held.iter().filter(|(t, _)| !end.contains_key(*t)).map(|(t, _)| (t.clone(), (0, 0, 0, -1)));
        let end: Counters = end.clone().into_iter().chain(gone).collect();
        for (table, (ins, upd, del, file)) in &end {
            let (i0, u0, d0, f0) = start.get(table).copied().unwrap_or((0, 0, 0, *file));
            let mut deleted = (del - d0).max(0);
            // Dropped (no longer there), or truncated (new storage): the rows it held just before.
            if *file == -1 || (truncate && *file != f0) {
                deleted += held.get(table).copied().unwrap_or(0);
            }
            let change = TableCount {
                inserted: (ins - i0).max(0) as u64,
                updated: (upd - u0).max(0) as u64,
                deleted: deleted as u64,
            };
            if change != TableCount::default() {
                let sum = counts.tables.entry(table.clone()).or_default();
                sum.inserted += change.inserted;
                sum.updated += change.updated;
                sum.deleted += change.deleted;
            }
        }
    }
    let after = catalog(client).await?;
    counts.dropped = dropped(before, &after);
    Ok(Ran::Done(counts))
}

/// One statement's counters before and after it, and the rows it found in the tables it was to empty.
struct Measured {
    start: Counters,
    end: Counters,
    held: BTreeMap<String, i64>,
}

/// Runs one statement, `text`, counting first the rows of the tables in `count`. A TRUNCATE (`truncate`) that gives
/// a table new storage which was not counted — its CASCADE reached a table the dry-run saw no rows in, or the
/// shadow did not have them — is undone to a savepoint and run again with that table counted too: every row it
/// empties is counted, whatever the dry-run saw. `Err` with the message when a statement fails.
async fn execute(
    client: &Client,
    text: &str,
    truncate: bool,
    mut count: Vec<String>,
) -> Result<std::result::Result<Measured, String>> {
    let savepoint = |sql: &'static str| async move {
        client.batch_execute(sql).await.map_err(|e| Error::pg("counting what a TRUNCATE empties", e))
    };
    if truncate {
        savepoint("SAVEPOINT pgshadow_truncate").await?;
    }
    loop {
        // The tables it empties are locked as the TRUNCATE will lock them before their rows are counted: rows
        // another session commits in between are then counted too, or wait.
        if truncate && !count.is_empty() {
            let lock = format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", count.join(", "));
            if let Err(e) = client.batch_execute(&lock).await {
                return Ok(Err(crate::error::with_causes(&e)));
            }
        }
        let start = counters(client).await?;
        let mut held = BTreeMap::new();
        for table in &count {
            let sql = format!("SELECT pg_catalog.count(*) FROM {table}");
            let rows: i64 = match client.query_one(sql.as_str(), &[]).await {
                Ok(row) => row.get(0),
                Err(e) => return Ok(Err(crate::error::with_causes(&e))),
            };
            held.insert(table.clone(), rows);
        }
        if let Err(e) = client.batch_execute(text).await {
            let message = super::server_message(&e);
            return Ok(Err(message));
        }
        let end = counters(client).await?;
        let renewed = |(table, now): (&String, &(i64, i64, i64, i64))| {
            start.get(table).is_some_and(|then| then.3 != now.3) && !held.contains_key(table)
        };
        let missed: Vec<String> = match truncate {
            true => end.iter().filter(|t| renewed(*t)).map(|(table, _)| table.clone()).collect(),
            false => Vec::new(),
        };
        if missed.is_empty() {
            if truncate {
                savepoint("RELEASE SAVEPOINT pgshadow_truncate").await?;
            }
            return Ok(Ok(Measured { start, end, held }));
        }
        savepoint("ROLLBACK TO SAVEPOINT pgshadow_truncate").await?;
        count.extend(missed);
    }
}

/// The objects of `before` that `after` lacks, named as the report names dropped objects (`table public.t`,
/// `table column public.t.c`, `index public.i`, `table constraint c on public.t`); the columns, constraints,
/// indexes and triggers of a dropped table go with it and are not named apart.
pub(super) fn dropped(before: &Description, after: &Description) -> Vec<String> {
    let gone: Vec<&String> = before.objects.keys().filter(|o| !after.objects.contains_key(*o)).collect();
    let tables: Vec<&str> = gone.iter().filter_map(|o| o.strip_prefix("table ")).collect();
    let of_dropped_table = |table: &str| tables.contains(&table);
    let mut out = Vec::new();
    for object in gone {
        let (kind, rest) = object.split_once(' ').unwrap_or((object, ""));
        let named = match kind {
            "column" => {
                let table = rest.rsplit_once('.').map_or(rest, |(t, _)| t);
                (!of_dropped_table(table)).then(|| format!("table column {rest}"))
            }
            "constraint" | "index" | "trigger" => {
                let (name, table) = rest.split_once(" on ").unwrap_or((rest, ""));
                let schema = table.split_once('.').map_or("", |(s, _)| s);
                (!of_dropped_table(table)).then(|| match kind {
                    "constraint" => format!("table constraint {name} on {table}"),
                    "index" => format!("index {schema}.{name}"),
                    _ => format!("trigger {name} on {table}"),
                })
            }
            _ => Some(object.clone()),
        };
        out.extend(named);
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plans_own_begin_and_commit_are_left_out_and_the_others_keep_their_numbers() {
        let plan = Plan::parse("plan.sql", "BEGIN;\nUPDATE t SET a = 1;\nDELETE FROM t;\nCOMMIT;\n").expect("a plan");
        let ran: Vec<(usize, &str)> = statements(&plan).map(|(index, s)| (index, s.raw.text.trim())).collect();
        assert_eq!(ran, [(2, "UPDATE t SET a = 1"), (3, "DELETE FROM t")]);
        let plain = Plan::parse("plan.sql", "UPDATE t SET a = 1").expect("a plan");
        assert_eq!(statements(&plain).map(|(index, _)| index).collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn a_dropped_table_takes_its_parts_along() {
        let describe = |objects: &[&str]| Description {
            fingerprint: String::new(),
            objects: objects.iter().map(|o| ((*o).to_owned(), String::new())).collect(),
        };
        let before = describe(&[
            "table public.a",
            "column public.a.id",
            "index a_pkey on public.a",
            "table public.b",
            "column public.b.note",
            "constraint b_check on public.b",
            "function public.f(integer)",
        ]);
        let after = describe(&["table public.b"]);
        assert_eq!(
            dropped(&before, &after),
            [
                "function public.f(integer)",
                "table column public.b.note",
                "table constraint b_check on public.b",
                "table public.a",
            ]
        );
    }
}
