//! What a synthetic shadow holds (`run --profile FILE --synthesize`): the report's `shadow.fidelity.synthetic`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How the shadow's rows were generated from a profile, and where they could not follow it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct SyntheticFidelity {
    /// The profile the rows were generated from.
    pub profile: String,
    /// The row budget shared out across the tables.
    pub budget: u64,
    /// The seed: the same profile, schema, budget and seed give the same rows.
    pub seed: u64,
    /// Rows generated in all tables.
    pub rows_generated: u64,
    /// Every table that got rows: how many, and the factor its measured counts are multiplied by.
    pub tables: Vec<SyntheticTable>,
    /// Tables left empty, and why (never analyzed, empty in production, not in the profile, ...). Their counts are
    /// unknown unless production's are known to be 0.
    pub empty_tables: Vec<EmptyTable>,
    /// Columns generated without values from the profile (it holds none for them: free text, `--values none`):
    /// from their type, `null_frac`, `n_distinct` and `avg_width` only, as `schema.table.column`.
    pub columns_without_values: Vec<String>,
    /// Tables of the profile the schema does not have (`schema.table`): nothing was generated for them.
    pub profile_tables_not_in_schema: Vec<String>,
}

/// A table that got synthetic rows.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SyntheticTable {
    /// `schema.table`, quoted where Postgres would quote it.
    pub table: String,
    /// Its rows in production, as the profile estimates them (`reltuples`).
    pub production_rows: f64,
    /// Rows generated into the shadow.
    pub rows: u64,
    /// `production_rows / rows`: what its measured counts are multiplied by.
    pub scale: f64,
    /// Rows of its share left out, and the constraint that refused them.
    pub left_out: Vec<LeftOut>,
}

/// Rows a constraint refused.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LeftOut {
    /// The constraint (or `unique`, `partition bound`) that refused them.
    pub constraint: String,
    /// How many rows.
    pub rows: u64,
    /// What Postgres said, when it refused them with an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A table left empty.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EmptyTable {
    /// `schema.table`.
    pub table: String,
    /// Why.
    pub reason: String,
    /// True when production holds no rows either: its counts are known to be 0.
    pub empty_in_production: bool,
}

impl SyntheticFidelity {
    /// The scale of `table` (`schema.table` as the report names it), when it got rows.
    pub fn scale_of(&self, table: &str) -> Option<f64> {
        self.tables.iter().find(|t| t.table == table).map(|t| t.scale)
    }
}
