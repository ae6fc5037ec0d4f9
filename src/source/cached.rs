//! Sources on a cached shadow: each is loaded once into a template database, which later runs use in place — the
//! plan's transaction is rolled back, so the template is left as it was — or clone when it is already in use.
//!
//! A rolled-back transaction still leaves two traces, and [`reset`] undoes both before the template is used again:
//! sequences (`nextval` is not transactional) are set back to their values, and tables whose files grew (rolled-back
//! inserts) are vacuumed back to their size. Anything a plan committed (a statement that cannot run in a transaction
//! block) spoils the database, and a cached cluster with a spoiled database is wiped ([`crate::Shadow::shutdown`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{load_into, Database, Schema};
use crate::error::{Error, Result};
use crate::measure;
use crate::report::SchemaInfo;
use crate::shadow::cache::{Slot, Template};
use crate::shadow::{hex_digest, Role, Session, Shadow};

/// What a template used in place looked like before the plan, to put it back afterwards.
#[derive(Debug, Clone)]
pub(crate) struct InPlace {
    /// Every sequence: its `last_value` and `is_called`.
    sequences: HashMap<u32, (i64, bool)>,
    /// The size of every table's main file (toast tables included).
    sizes: HashMap<u32, i64>,
    /// Set once [`reset`] put the template back; a cached cluster whose template was not is not kept.
    pub(crate) released: Arc<AtomicBool>,
}

impl InPlace {
    /// What `database` looks like now, to put it back after a dry-run.
    pub(crate) async fn capture(shadow: &Shadow, database: &str) -> Result<InPlace> {
        let admin = shadow.connect(shadow.role(Role::Admin), database).await?;
        Ok(InPlace { sequences: sequences(&admin).await?, sizes: sizes(&admin).await?, released: Arc::default() })
    }
}

/// Makes the database for a run: the template of `schema` itself when this process is not using it already, else
/// a clone of it; the template is built first when the cache does not hold it. `sha256` is the schema's
/// ([`Schema::sha256`]), computed once by the caller.
pub(super) async fn load(
    shadow: &Shadow,
    slot: &Slot,
    schema: Option<&Schema>,
    sha256: Option<&str>,
) -> Result<Database> {
    let key = template_key(schema, sha256);
    let (template, reused) = match slot.template(&key) {
        Some(template) => (template, true),
        None => {
            tracing::info!(target: "pgshadow::progress", "loading the source into the cache (once per source)");
            (build(shadow, slot, key, schema).await?, false)
        }
    };
    // The template may have been built from the same source under another file name.
    let file = schema.map_or("", |s| s.file.as_str());
    let mut fidelity = template.fidelity;
    for warning in &mut fidelity.warnings {
        warning.file = file.to_owned();
    }
    let info = template.schema.map(|info| SchemaInfo { file: file.to_owned(), ..info });
    let mut database = Database {
        name: String::new(),
        spoiled: Default::default(),
        schema: info,
        fidelity,
        sample: template.sample,
        row_counts: Some(std::sync::Arc::new(template.row_counts.into_iter().collect())),
        template_reused: Some(reused),
        in_place: None,
        login: None,
    };
    if slot.claim(&template.database) {
        database.in_place = Some(InPlace::capture(shadow, &template.database).await?);
        database.name = template.database;
    } else {
        database.name = shadow.new_database_name();
        tracing::info!(target: "pgshadow::progress", "cloning the cached template");
        shadow.create_database(&database.name, Some(&template.database)).await?;
    }
    Ok(database)
}

/// Loads `schema` into a new template database and records it in the cache.
async fn build(shadow: &Shadow, slot: &Slot, key: String, schema: Option<&Schema>) -> Result<Template> {
    let loaded = load_into(shadow, format!("template_{}", &key[..16]), schema).await?;
    let in_template = shadow.connect(shadow.role(Role::Admin), &loaded.name).await?;
    let size: i64 = in_template
        .client()
        .query_one("SELECT pg_catalog.pg_database_size(pg_catalog.current_database())", &[])
        .await
        .map_err(|e| Error::pg("measuring the template database", e))?
        .get(0);
    drop(in_template);
    // Counted once here; every dry-run of the template starts from these instead of counting again.
    let row_counts = super::count_rows(shadow, &loaded).await?.into_iter().collect();
    let template = Template {
        key,
        database: loaded.name,
        source: schema.map_or_else(String::new, |s| s.file.clone()),
        schema: loaded.schema,
        fidelity: loaded.fidelity,
        sample: loaded.sample,
        row_counts,
        size_bytes: u64::try_from(size).unwrap_or(0),
    };
    slot.record(&template)?;
    Ok(template)
}

/// What a template is keyed by: the source's content, this build of the tool and its measuring machinery (which
/// is installed into the template).
fn template_key(schema: Option<&Schema>, sha256: Option<&str>) -> String {
    let mut bytes = Vec::new();
    let content = match schema {
        // An archive by its content's digest, which is its sha256.
        Some(Schema { archive: Some(_), .. }) => sha256.unwrap_or_default(),
        Some(schema) => schema.text.as_str(),
        None => "",
    };
    let sample = schema.and_then(|s| s.sample.as_ref()).map_or(String::new(), |s| format!("sample {}%", s.percent));
    for part in [env!("CARGO_PKG_VERSION"), measure::INSTALL_SQL, content, &sample] {
        bytes.extend_from_slice(part.as_bytes());
        bytes.push(0);
    }
    hex_digest(&bytes)
}

/// Puts a database dry-run in place back as it was before the plan: sequences set back, grown tables vacuumed.
pub(crate) async fn reset(shadow: &Shadow, database: &Database, in_place: &InPlace) -> Result<()> {
    let admin = shadow.connect(shadow.role(Role::Admin), &database.name).await?;
    let client = admin.client();
    for (oid, (value, called)) in sequences(&admin).await? {
        let Some(&(before, was_called)) = in_place.sequences.get(&oid) else {
            continue;
        };
        if (value, called) != (before, was_called) {
            client
                .execute(
                    "SELECT pg_catalog.setval($1::pg_catalog.oid::pg_catalog.regclass, $2, $3)",
                    &[&oid, &before, &was_called],
                )
                .await
                .map_err(|e| Error::pg("setting a sequence of the template back", e))?;
        }
    }
    let grown: Vec<u32> = sizes(&admin)
        .await?
        .into_iter()
        .filter(|(oid, size)| in_place.sizes.get(oid).is_some_and(|before| size > before))
        .map(|(oid, _)| oid)
        .collect();
    if !grown.is_empty() {
        // A toast table is vacuumed with its table.
        let tables = client
            .query(
                "SELECT DISTINCT pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.oid = ANY($1) OR c.reltoastrelid = ANY($1)",
                &[&grown],
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

/// The state of every sequence of the database.
async fn sequences(admin: &Session) -> Result<HashMap<u32, (i64, bool)>> {
    let client = admin.client();
    let failed = |e| Error::pg("reading the template's sequences", e);
    let names = client
        .query(
            "SELECT c.oid, pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S'",
            &[],
        )
        .await
        .map_err(failed)?;
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let union = names
        .iter()
        .map(|row| {
            format!(
                "SELECT {}::pg_catalog.oid, last_value, is_called FROM {}",
                row.get::<_, u32>(0),
                row.get::<_, String>(1)
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let rows = client.query(&union, &[]).await.map_err(failed)?;
    Ok(rows.iter().map(|row| (row.get(0), (row.get(1), row.get(2)))).collect())
}

/// The size of the main file of every table, materialized view and toast table.
async fn sizes(admin: &Session) -> Result<HashMap<u32, i64>> {
    let rows = admin
        .client()
        .query(
            "SELECT c.oid, pg_catalog.pg_relation_size(c.oid) FROM pg_catalog.pg_class c WHERE c.relkind IN ('r', 'm', 't')",
            &[],
        )
        .await
        .map_err(|e| Error::pg("reading the template's table sizes", e))?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}
