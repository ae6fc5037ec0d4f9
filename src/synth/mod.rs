//! Synthetic shadows (`run --profile FILE --synthesize [ROWS]`): the shadow's tables filled with rows generated
//! from a [profile](crate::profile) of production, shaped like production's (nulls, distinct values, most common
//! values and histograms where the profile holds values, foreign keys' fan-out and skew) without a single row of
//! production. A plan then runs on them exactly as on real rows, and each table's counts are scaled by its own
//! factor (production rows / synthetic rows) into estimates.
//!
//! The rows are generated inside the shadow, in SQL (`INSERT … SELECT` from `generate_series`): `plan` shares the
//! row budget out and orders the tables parents first, `values` builds each column's expression, `fill` runs
//! them. It runs as the loader, the role the source loaded as, never as a superuser: CHECK constraints, domains and
//! defaults can call the source's own functions. The same profile, schema, budget and seed give the same rows,
//! so a synthetic source is cached like any other.

mod catalog;
mod fill;
mod plan;
mod values;

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::profile::Profile;
use crate::report::SyntheticFidelity;
use crate::shadow::Session;

/// The row budget when `--synthesize` gives none.
pub const DEFAULT_ROWS: u64 = 100_000;

/// The most rows a budget may hold.
pub const MAX_ROWS: u64 = 100_000_000;

/// The slowest rate synthesis is planned for, in rows per second: a budget that would take longer than the run's
/// time limit at this rate is refused before anything starts.
pub const SLOWEST_ROWS_PER_SECOND: u64 = 10_000;

/// Rows to generate from a profile.
#[derive(Debug, Clone)]
pub struct Synthesis {
    /// The profile the rows follow.
    pub profile: Arc<Profile>,
    /// The row budget, shared out across the tables by production size.
    pub rows: u64,
    /// The seed: the same seed gives the same rows.
    pub seed: u64,
}

impl Synthesis {
    /// Rows from `profile`: a budget of 0, or more than [`MAX_ROWS`], is refused.
    pub fn new(profile: Arc<Profile>, rows: u64, seed: u64) -> Result<Synthesis> {
        if rows == 0 || rows > MAX_ROWS {
            return Err(refused(format!(
                "a budget of {rows} rows: give between 1 and {MAX_ROWS} (the default is {DEFAULT_ROWS})"
            )));
        }
        Ok(Synthesis { profile, rows, seed })
    }

    /// Refuses a budget that could not be generated within `timeout` at [`SLOWEST_ROWS_PER_SECOND`].
    pub fn check_time(&self, timeout: Duration) -> Result<()> {
        let needs = self.rows / SLOWEST_ROWS_PER_SECOND;
        if needs >= timeout.as_secs() {
            return Err(refused(format!(
                "{} rows may take up to {needs} s to generate (pgshadow plans for {SLOWEST_ROWS_PER_SECOND} rows/s), \
                 which is not within the run's time limit of {} s: give fewer rows or a longer --timeout",
                self.rows,
                timeout.as_secs()
            )));
        }
        Ok(())
    }

    /// What the generated rows depend on besides the schema: the profile's content, the budget and the seed (part of
    /// a cached template's key).
    pub fn key(&self) -> String {
        // The digest of the text it was read from, else (a profile made in memory) of its JSON.
        let profile = match self.profile.text_sha256.is_empty() {
            false => self.profile.text_sha256.clone(),
            true => crate::text::hex_digest(self.profile.to_json().as_bytes()),
        };
        format!("synthesize {profile} rows {} seed {}", self.rows, self.seed)
    }
}

fn refused(message: String) -> Error {
    Error::Source { path: "--synthesize".into(), message, detail: String::new() }
}

/// Fills the tables of the database `session` is in (the loader's, with `session_replication_role = replica`)
/// with rows generated from `synthesis`.
pub(crate) async fn fill(session: &Session, synthesis: &Synthesis) -> Result<SyntheticFidelity> {
    let started = std::time::Instant::now();
    let catalog = catalog::read(session).await?;
    let planned = plan::plan(&catalog, &synthesis.profile, synthesis.rows);
    let filled = fill::fill(session, &catalog, &planned, synthesis.seed).await?;
    let rows_generated = filled.tables.iter().map(|t| t.rows).sum();
    let mut empty_tables = planned.empty;
    empty_tables.extend(filled.empty);
    empty_tables.sort_by(|a, b| a.table.cmp(&b.table));
    tracing::info!(
        rows = rows_generated,
        tables = filled.tables.len(),
        empty = empty_tables.len(),
        seconds = started.elapsed().as_secs_f64(),
        "synthetic rows generated"
    );
    Ok(SyntheticFidelity {
        profile: synthesis.profile.file.clone(),
        budget: synthesis.rows,
        seed: synthesis.seed,
        rows_generated,
        tables: filled.tables,
        empty_tables,
        columns_without_values: filled.columns_without_values,
        profile_tables_not_in_schema: planned.not_in_schema,
    })
}
