//! A database of a shadow with a source loaded, and, for a cached template used in place rather than cloned, what
//! it looked like before a plan, to put it back afterwards.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio_postgres::types::Type;

use super::{Session, Shadow};
use crate::error::{Error, Result};
use crate::report::{Fidelity, SampleInfo, SchemaInfo};

/// A database of a shadow with a source loaded, ready for dry-runs.
#[derive(Debug, Clone)]
pub struct Database {
    pub(crate) name: String,
    /// Set when a plan ended the dry-run's transaction (so its changes may have been committed): the database is
    /// never dry-run again.
    pub(crate) spoiled: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The schema that was loaded, if any.
    pub schema: Option<SchemaInfo>,
    /// What did not load.
    pub fidelity: Fidelity,
    /// The sample of the source's rows copied in, if any (`--sample`).
    pub sample: Option<SampleInfo>,
    /// Whether the source carried its tables' rows: `COPY ... FROM stdin` data in a SQL file (pg_dump writes one for
    /// every table, empty or not), `TABLE DATA` entries in an archive, or a sample (`--sample`) — and none of it
    /// failed to load. Without it, a table that is empty in the shadow may hold any number of rows in production: its
    /// counts are unknown, never 0.
    pub data_loaded: bool,
    /// Every table's row count before any plan, when known already (a cached template's): dry-runs then skip
    /// counting them.
    pub(crate) row_counts: Option<std::sync::Arc<std::collections::HashMap<u32, i64>>>,
    /// On a cached shadow: whether the source's template database was already there (`Some(true)`), or was built by
    /// this load (`Some(false)`).
    pub template_reused: Option<bool>,
    /// Set when the database is a cached template used in place, not a clone: what [`reset`] puts back (called by
    /// [`crate::source::release`]).
    pub(crate) in_place: Option<InPlace>,
    /// A login role of this database's own, a member of the plan role, that plans log in as instead of the plan role
    /// (a service's clones): concurrent runs then cannot see or signal each other's sessions.
    pub(crate) login: Option<String>,
    /// What a run reads before its plan, as measuring read it once when a cached template was built (opaque here;
    /// the same for the template and every clone of it, which keep its oids): runs start from it.
    pub(crate) baseline: Option<std::sync::Arc<serde_json::Value>>,
}

impl Database {
    /// The database's name in the shadow.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What a template used in place looked like before the plan, to put it back afterwards.
#[derive(Debug, Clone)]
pub(crate) struct InPlace {
    /// The query that reads every sequence's `last_value` and `is_called` (none when there is no sequence): the
    /// database's sequences are those it had at capture, since nothing a plan does is committed into it.
    sequence_query: Option<String>,
    /// Every sequence: its `last_value` and `is_called`.
    sequences: HashMap<u32, (i64, bool)>,
    /// The size of every table's main file (toast tables included).
    sizes: HashMap<u32, i64>,
    /// Set once [`reset`] put the template back; a cached cluster whose template was not is not kept.
    pub(crate) released: Arc<AtomicBool>,
    /// The key a cached template is recorded under in its slot, when the database is one.
    pub(crate) template_key: Option<String>,
}

impl InPlace {
    /// What `database` looks like now, to put it back after a dry-run.
    pub(crate) async fn capture(shadow: &Shadow, database: &str) -> Result<InPlace> {
        InPlace::capture_in(&shadow.admin(database).await?).await
    }

    /// [`InPlace::capture`], read through `admin`, a superuser session on the database.
    pub(crate) async fn capture_in(admin: &Session) -> Result<InPlace> {
        let sequence_query = sequence_query(admin).await?;
        Ok(InPlace {
            sequences: sequences(admin, sequence_query.as_deref()).await?,
            sequence_query,
            sizes: sizes(admin, true).await?,
            released: Arc::default(),
            template_key: None,
        })
    }
}

/// How far a table's main file may grow past its size at capture before [`reset`] vacuums it (with its indexes). Rows a
/// rolled-back plan inserted stay as dead rows until a `VACUUM`; a trigger's few rows per run take thousands of runs
/// to fill a mebibyte, and need not cost every run a `VACUUM` on the cores the next runs use. A plan that grew a table
/// by more is vacuumed away at once. Measuring takes a table's size before the plan from the state it kept, not from
/// the file.
const GROWTH_KEPT: i64 = 1 << 20;

/// Puts a database dry-run in place back as it was before the plan: sequences set back, tables grown by more than
/// [`GROWTH_KEPT`] vacuumed, the system catalogs among them. One a plan committed into is dropped instead.
pub(crate) async fn reset(shadow: &Shadow, database: &Database, in_place: &InPlace) -> Result<()> {
    if database.spoiled.load(Ordering::SeqCst) {
        // Something of the plan was committed into it: a cached template is forgotten and dropped, never used in place
        // or cloned again (and the cached cluster is not kept after the shadow stops).
        if let (Some(slot), Some(key)) = (shadow.cache_slot(), &in_place.template_key) {
            slot.forget(key);
        }
        shadow.drop_database(&database.name).await?;
        if let Some(slot) = shadow.cache_slot() {
            slot.unclaim(&database.name);
        }
        return Ok(());
    }
    reset_in(&shadow.admin(&database.name).await?, shadow, database, in_place, true).await
}

/// [`reset`], through `admin`, a superuser session on the database kept for it; the system catalogs' sizes are
/// checked only `with_catalogs` (a pool checks them every few runs: reading the size of every catalog and its toast
/// table was a third of a pooled reset, and a rolled-back DDL statement leaves a catalog only a few dead rows).
pub(crate) async fn reset_in(
    admin: &Session,
    shadow: &Shadow,
    database: &Database,
    in_place: &InPlace,
    with_catalogs: bool,
) -> Result<()> {
    let client = admin.client();
    let sequences_now = sequences(admin, in_place.sequence_query.as_deref());
    let (now, sizes_now) = tokio::try_join!(sequences_now, sizes(admin, with_catalogs))?;
    for (oid, (value, called)) in now {
        let Some(&(before, was_called)) = in_place.sequences.get(&oid) else {
            continue;
        };
        if (value, called) != (before, was_called) {
            let setval = admin
                .prepared(
                    "SELECT pg_catalog.setval($1::pg_catalog.oid::pg_catalog.regclass, $2, $3)",
                    &[Type::OID, Type::INT8, Type::BOOL],
                )
                .await;
            let set = async { client.query(&setval?, &[&oid, &before, &was_called]).await };
            set.await.map_err(|e| Error::pg("setting a sequence of the template back", e))?;
        }
    }
    let grown: Vec<u32> = sizes_now
        .into_iter()
        .filter(|(oid, size)| in_place.sizes.get(oid).is_some_and(|before| *size > before + GROWTH_KEPT))
        .map(|(oid, _)| oid)
        .collect();
    if !grown.is_empty() {
        // A toast table is vacuumed with its table.
        let tables = client
            .query_typed(
                "SELECT DISTINCT pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.oid = ANY($1) OR c.reltoastrelid = ANY($1)",
                &[(&grown, Type::OID_ARRAY)],
            )
            .await
            .map_err(|e| Error::pg("finding the tables to vacuum", e))?;
        for row in tables {
            let table: String = row.get(0);
            // One statement per call: VACUUM refuses to run in the implicit transaction of a multi-statement query.
            client
                .batch_execute(&format!("VACUUM {table}"))
                .await
                .map_err(|e| Error::pg(format!("vacuuming {table} back to its size"), e))?;
        }
    }
    in_place.released.store(true, Ordering::SeqCst);
    if let Some(slot) = shadow.cache_slot() {
        slot.unclaim(&database.name);
    }
    Ok(())
}

/// The query that reads the state of every sequence of the database, if it has any.
async fn sequence_query(admin: &Session) -> Result<Option<String>> {
    let names = admin
        .client()
        .query_typed(
            "SELECT c.oid, pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S'",
            &[],
        )
        .await
        .map_err(|e| Error::pg("reading the template's sequences", e))?;
    let selects: Vec<String> = names
        .iter()
        .map(|row| {
            format!(
                "SELECT {}::pg_catalog.oid, last_value, is_called FROM {}",
                row.get::<_, u32>(0),
                row.get::<_, String>(1)
            )
        })
        .collect();
    Ok((!selects.is_empty()).then(|| selects.join(" UNION ALL ")))
}

/// The state of every sequence of the database, read with [`sequence_query`]'s query.
async fn sequences(admin: &Session, query: Option<&str>) -> Result<HashMap<u32, (i64, bool)>> {
    let Some(query) = query else { return Ok(HashMap::new()) };
    let read = async { admin.client().query(&admin.prepared(query, &[]).await?, &[]).await };
    let rows = read.await.map_err(|e| Error::pg("reading the template's sequences", e))?;
    Ok(rows.iter().map(|row| (row.get(0), (row.get(1), row.get(2)))).collect())
}

/// The size of the main file of every table, materialized view and toast table; without `catalogs`, of those the
/// source made (oids from 16384, `FirstNormalObjectId`: not the system catalogs and their toast tables).
async fn sizes(admin: &Session, catalogs: bool) -> Result<HashMap<u32, i64>> {
    // No parameter: a statement without one is planned once, where `OR $1` was planned again at every call.
    let sql = match catalogs {
        true => {
            "SELECT c.oid, pg_catalog.pg_relation_size(c.oid) FROM pg_catalog.pg_class c \
                 WHERE c.relkind IN ('r', 'm', 't')"
        }
        false => {
            "SELECT c.oid, pg_catalog.pg_relation_size(c.oid) FROM pg_catalog.pg_class c \
                  WHERE c.relkind IN ('r', 'm', 't') AND c.oid >= 16384"
        }
    };
    let read = async { admin.client().query(&admin.prepared(sql, &[]).await?, &[]).await };
    let rows = read.await.map_err(|e| Error::pg("reading the template's table sizes", e))?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}
