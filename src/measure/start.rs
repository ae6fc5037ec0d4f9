//! The start of a run: the dry-run's transaction begun and the state before the plan read, or taken from the run
//! before on the same pooled clone; and what a run hands to the next one there (its session, that state).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::effects::{Oid, Snapshot};
use super::{catalog, probe, queries, unknown, Run};
use crate::error::{Error, Result};
use crate::plan::PlanStatement;
use crate::shadow::{Database, Session, Shadow};

/// What a database looks like before a plan, as a run reads it at its start: its tables, the indexes of its tables,
/// its columns, constraints and rules. A pooled clone put back as it was after a run (rolled back, sequences set back,
/// grown tables vacuumed; never anything committed) looks the same before every run, so a later run on it starts from
/// the first run's rather than reading it again.
///
/// A cached template keeps it too ([`read_baseline`]), as JSON: its clones are copies that keep its oids.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Baseline {
    tables: Snapshot,
    relations: HashMap<Oid, (String, String, Oid)>,
    other_tables: HashMap<Oid, Option<Vec<Oid>>>,
    /// As pairs: JSON's keys are strings only.
    #[serde(with = "pairs")]
    columns: catalog::Columns,
    constraints: catalog::Constraints,
    rules: Vec<probe::Rule>,
}

/// A map with keys JSON cannot have, written as a list of pairs.
mod pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub(super) fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub(super) fn deserialize<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<K, V>, D::Error> {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?.into_iter().collect())
    }
}

impl Baseline {
    /// The baseline a cached template keeps ([`Database::baseline`]), when it has one this build can read.
    pub(crate) fn stored(database: &Database) -> Option<Baseline> {
        serde_json::from_value(database.baseline.as_deref()?.clone()).ok()
    }
}

/// Reads what a run on `database` reads before its plan, as the default plan role, in a transaction rolled back at
/// once: for a cached template to keep ([`Baseline`]). `None` when the transaction found a lock held already.
pub(crate) async fn read_baseline(shadow: &Shadow, database: &Database) -> Result<Option<serde_json::Value>> {
    let session = shadow.connect(super::login_role(shadow, database, &Default::default()), database.name()).await?;
    let baseline = Run::start(&session, database, true, None).await?.baseline();
    session.client().batch_execute("ROLLBACK").await.map_err(|e| Error::pg("reading the state before a plan", e))?;
    Ok(baseline.and_then(|b| serde_json::to_value(b).ok()))
}

/// What a run on a pooled clone hands to the next run on that clone: the session it ran in, when it is fit for
/// another run ([`reuse_session`]), and the state before the plan it read.
#[derive(Debug, Default)]
pub(crate) struct Carried {
    pub(crate) session: Option<Session>,
    pub(crate) baseline: Option<Arc<Baseline>>,
}

impl<'a> Run<'a> {
    /// Starts the dry-run's transaction and reads the state before the plan, in one round trip; with `baseline`,
    /// reads only the transaction's start (and the tables' row counts when the database does not know them).
    pub(super) async fn start(
        session: &'a Session,
        database: &'a Database,
        event_log_complete: bool,
        baseline: Option<&Baseline>,
    ) -> Result<Run<'a>> {
        let mut run = Run {
            session,
            database,
            transaction_start: String::new(),
            known_rows: HashMap::new(),
            unknown: HashSet::new(),
            tables: Snapshot::new(),
            dropped_seq: 0,
            changed_seq: 0,
            existing: HashSet::new(),
            relations: HashMap::new(),
            other_tables: HashMap::new(),
            locks: HashSet::new(),
            lock_since: HashMap::new(),
            calls: HashMap::new(),
            block_start: None,
            adds_enum_value: false,
            unchecked: false,
            columns: catalog::Columns::new(),
            constraints: catalog::Constraints::new(),
            created_by: HashMap::new(),
            rules: Vec::new(),
            event_log_complete,
            session_keeps_state: false,
        };
        // A cached template's counts are known; anything else is counted now.
        let counted = async {
            match &database.row_counts {
                Some(_) => Ok(Vec::new()),
                None => run.rows(queries::BASELINE_COUNTS, &[], "measuring the shadow before the plan").await,
            }
        };
        let begin = async {
            session.client().batch_execute("BEGIN").await.map_err(|e| Error::pg("starting the dry-run transaction", e))
        };
        let counted = match baseline {
            Some(baseline) => {
                let (_, counted, start) = tokio::try_join!(
                    begin,
                    counted,
                    run.rows(queries::TRANSACTION_START, &[], "reading the transaction")
                )?;
                run.transaction_start = probe::one(&start, "reading the transaction")?.get(0);
                run.tables = baseline.tables.clone();
                run.relations = baseline.relations.clone();
                run.other_tables = baseline.other_tables.clone();
                run.columns = baseline.columns.clone();
                run.constraints = baseline.constraints.clone();
                run.rules = baseline.rules.clone();
                counted
            }
            None => {
                let (_, counted, after, indexes, others) = tokio::try_join!(
                    begin,
                    counted,
                    run.read_after(true),
                    run.rows(queries::INDEXES, &[], "listing the indexes"),
                    run.rows(queries::OTHER_TABLES, &[], "listing the partitioned tables"),
                )?;
                run.transaction_start = after.transaction_start;
                run.tables = after.tables;
                run.existing = run.tables.keys().copied().collect();
                run.other_tables = Run::other_tables(&others);
                run.relations = run.existing_relations(&indexes, &others);
                run.locks = run.locks_of(&after.locks);
                run.functions_called(&after.calls);
                if let Some(catalog) = &after.catalog {
                    (run.columns, run.constraints) = run.catalog(catalog);
                }
                counted
            }
        };
        run.existing = run.tables.keys().copied().collect();
        run.known_rows = match &database.row_counts {
            Some(counts) => counts.iter().map(|(oid, rows)| (Oid::from(*oid), *rows)).collect(),
            None => counted.iter().map(|r| (r.get::<_, Oid>(0), r.get::<_, i64>(1))).collect(),
        };
        run.unknown = unknown::of(database.data_loaded, &run.known_rows);
        Ok(run)
    }

    /// The state before the plan as this run read it at its start, for the next run on the same database; none when
    /// the transaction already held a lock or had called a function then (it was not a fresh one).
    pub(super) fn baseline(&self) -> Option<Baseline> {
        Some(Baseline {
            tables: self.tables.clone(),
            relations: self.relations.clone(),
            other_tables: self.other_tables.clone(),
            columns: self.columns.clone(),
            constraints: self.constraints.clone(),
            rules: self.rules.clone(),
        })
        .filter(|_| self.locks.is_empty() && self.calls.values().all(|&calls| calls == 0))
    }
}

/// Makes a session a plan ran in fit for the next run on the same database, as a connection pooler does between
/// clients: [`RESET_SESSION`] is `DISCARD ALL` but for `DISCARD PLANS`. It closes cursors, deallocates prepared
/// statements, resets every setting and the session authorization, forgets `LISTEN`s, releases advisory locks, and
/// drops temporary tables and what sequences remembered. The plan's transaction was rolled back, so nothing else it
/// did is left; [`super::run_plan_in`] gives a session back only when the plan called no function of a language that
/// keeps state of its own in a session (PL/Perl's `%_SHARED`, a C function's connections) and neither `LOAD`ed a
/// library nor ran a `DO` block of another language. Its backend's caches stay warm (catalog, compiled PL/pgSQL, the
/// plans of foreign-key triggers and functions, which PostgreSQL invalidates itself when what they rest on changes),
/// as a production server's pooled sessions are.
pub(crate) async fn reuse_session(session: &Session) -> Result<()> {
    session.client().batch_execute(RESET_SESSION).await.map_err(|e| Error::pg("discarding a session's state", e))
}

/// `DISCARD ALL` without `DISCARD PLANS` (PostgreSQL's documentation gives `DISCARD ALL` as these statements).
const RESET_SESSION: &str = "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DEALLOCATE ALL; UNLISTEN *; \
     SELECT pg_catalog.pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES";

/// A statement after which the session is not reused: `LOAD`, or a `DO` block that names its language.
pub(super) fn keeps_session_state(statement: &PlanStatement) -> bool {
    let text = statement.raw.text.to_ascii_lowercase();
    let first = text.split_whitespace().next().map(|w| w.trim_end_matches(';'));
    // `LANGUAGE` anywhere in a DO block (`$$...$$LANGUAGE plperl` too); kept simple, its body may say it as well.
    if statement.classification.kind == crate::plan::StatementKind::Do || first == Some("do") {
        return text.contains("language");
    }
    first == Some("load")
}

#[cfg(test)]
mod tests {
    use super::keeps_session_state;
    use crate::plan::Plan;

    #[test]
    fn load_and_a_do_block_of_another_language_keep_session_state() {
        let keeps = |sql: &str| {
            let plan = Plan::parse("p.sql", sql).expect("plan");
            plan.statements.iter().any(keeps_session_state)
        };
        assert!(keeps("LOAD 'auto_explain';"));
        assert!(keeps("DO LANGUAGE plperl $$ $_SHARED{x} = 1; $$;"));
        assert!(keeps("DO $$ BEGIN NULL; END $$ LANGUAGE plpgsql;"), "named, even as plpgsql: kept simple");
        assert!(!keeps("DO $$ BEGIN PERFORM 1; END $$;"));
        assert!(!keeps("SELECT 'load';\nDELETE FROM t WHERE name = 'language';"));
        assert!(keeps("DO $$ $_SHARED{x} = 1; $$LANGUAGE plperl;"), "no space before LANGUAGE");
    }
}
