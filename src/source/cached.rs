//! Sources on a cached shadow: each is loaded once into a template database, which later runs use in place — the
//! plan's transaction is rolled back, so the template is left as it was — or clone when it is already in use.
//!
//! A rolled-back transaction still leaves two traces, and [`reset`](crate::shadow::database::reset) undoes both before the template is used again:
//! sequences (`nextval` is not transactional) are set back to their values, and tables whose files grew (rolled-back
//! inserts) are vacuumed back to their size. Anything a plan committed (a statement that cannot run in a transaction
//! block) spoils the database, and a cached cluster with a spoiled database is wiped ([`crate::Shadow::shutdown`]).

use super::load::load_into;
use super::{Database, Schema};
use crate::error::{Error, Result};
use crate::measure;
use crate::report::SchemaInfo;
use crate::shadow::cache::{Slot, Template};
use crate::shadow::database::InPlace;
use crate::shadow::{Role, Shadow};
use crate::text::hex_digest;

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
            (build(shadow, slot, key.clone(), schema).await?, false)
        }
    };
    let template_name = template.database.clone();
    let mut database = database_of(template, schema, reused);
    if slot.claim(&template_name) {
        let mut in_place = InPlace::capture(shadow, &template_name).await?;
        in_place.template_key = Some(key);
        database.in_place = Some(in_place);
        database.name = template_name;
    } else {
        database.name = shadow.new_database_name();
        tracing::info!(target: "pgshadow::progress", "cloning the cached template");
        shadow.create_database(&database.name, Some(&template_name), Role::Plan).await?;
    }
    Ok(database)
}

/// A database of `template` for a run on `schema` (its name still to be set): what the template's load said of the
/// source, and its row counts.
pub(crate) fn database_of(template: Template, schema: Option<&Schema>, reused: bool) -> Database {
    // The template may have been built from the same source under another file name.
    let file = schema.map_or("", |s| s.file.as_str());
    let mut fidelity = template.fidelity;
    for warning in &mut fidelity.warnings {
        warning.file = file.to_owned();
    }
    let info = template.schema.map(|info| SchemaInfo { file: file.to_owned(), ..info });
    Database {
        name: String::new(),
        spoiled: Default::default(),
        schema: info,
        fidelity,
        sample: template.sample,
        data_loaded: template.data_loaded,
        row_counts: Some(std::sync::Arc::new(template.row_counts.into_iter().collect())),
        template_reused: Some(reused),
        in_place: None,
        login: None,
        baseline: template.baseline.map(std::sync::Arc::new),
    }
}

/// Loads `schema` into a new template database and records it in the cache.
async fn build(shadow: &Shadow, slot: &Slot, key: String, schema: Option<&Schema>) -> Result<Template> {
    let loaded = load_into(shadow, format!("template_{}", &key[..16]), schema).await?;
    let in_template = shadow.admin(&loaded.name).await?;
    let size: i64 = in_template
        .client()
        .query_one("SELECT pg_catalog.pg_database_size(pg_catalog.current_database())", &[])
        .await
        .map_err(|e| Error::pg("measuring the template database", e))?
        .get(0);
    drop(in_template);
    // Counted once here; every dry-run of the template starts from these instead of counting again.
    let row_counts: Vec<(u32, i64)> = super::count_rows(shadow, &loaded).await?.into_iter().collect();
    // Read once here too: what every dry-run of the template reads before its plan (from the counts just made).
    let counted =
        Database { row_counts: Some(std::sync::Arc::new(row_counts.iter().copied().collect())), ..loaded.clone() };
    let baseline = measure::read_baseline(shadow, &counted).await?;
    let template = Template {
        key,
        database: loaded.name,
        source: schema.map_or_else(String::new, |s| s.file.clone()),
        schema: loaded.schema,
        fidelity: loaded.fidelity,
        sample: loaded.sample,
        data_loaded: loaded.data_loaded,
        row_counts,
        baseline,
        size_bytes: u64::try_from(size).unwrap_or(0),
    };
    slot.record(&template)?;
    Ok(template)
}

/// What a template is keyed by: the source's content, this build of the tool and its measuring machinery (which
/// is installed into the template).
pub(crate) fn template_key(schema: Option<&Schema>, sha256: Option<&str>) -> String {
    let mut bytes = Vec::new();
    let content = match schema {
        // An archive by its content's digest, which is its sha256.
        Some(Schema { archive: Some(_), .. }) => sha256.unwrap_or_default(),
        Some(schema) => &*schema.text,
        None => "",
    };
    let sample =
        schema.and_then(|s| s.sample.as_ref()).map_or(String::new(), |s| format!("sample {}% sizes", s.percent));
    let synthesis = schema.and_then(|s| s.synthesis.as_ref()).map_or(String::new(), crate::synth::Synthesis::key);
    // A trusted source loads as a superuser, and may load more than an untrusted one.
    let trust = if schema.is_some_and(|s| s.trusted) { "trusted" } else { "untrusted" };
    // "data_loaded": templates recorded before they remembered whether the source carried rows are not reused; a
    // sample's "sizes": nor sampled ones recorded before they kept the source's table sizes.
    for part in [env!("CARGO_PKG_VERSION"), measure::INSTALL_SQL, content, &sample, trust, "data_loaded"] {
        bytes.extend_from_slice(part.as_bytes());
        bytes.push(0);
    }
    // Only a synthetic source's key has this part: the keys of the others stay as they were.
    if !synthesis.is_empty() {
        bytes.extend_from_slice(synthesis.as_bytes());
    }
    hex_digest(&bytes)
}
