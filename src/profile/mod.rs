//! Profiles: production's sizes and shape, without its rows (`pgshadow profile`).
//!
//! A [`Profile`] is read from a live database in one read-only snapshot ([`take()`]): per table its row estimate,
//! pages and sizes, when it was last analyzed and vacuumed, its partitions; per column what `pg_stats` says of it;
//! per sequence and integer key its last value and its type's maximum; and the [catalog fingerprint](catalog()) of the
//! schema. It is written as pretty, deterministic JSON (sorted keys, sorted entries, no time of its own), so that a
//! nightly job can commit it beside `structure.sql` and its diff reads as what changed. Its JSON Schema is
//! `docs/profile.schema.json` ([`json_schema`]).
//!
//! Column values are data, so they are opt-in ([`ProfileValues`]): by default only the values of keys, numbers and
//! times; never free text unless `--values all` asks.
//!
//! A run given a profile (`run --profile`, [`crate::DryRunOptions::profile`]) compares its fingerprint with the
//! shadow's ([`compare`]) and says in the report whether it describes the schema the plan ran on.

mod catalog;
mod describe;
mod queries;
mod take;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::report::ProfileValues;
pub use catalog::{catalog, compare, of_database, Catalog};
pub use describe::{describe, describe_database, drift, Description, Drift};
pub use take::{take, ProfileOptions};

/// The version of the profile format. Bumped on every breaking change; adding a field is not one.
pub const PROFILE_VERSION: u32 = 1;

/// The JSON Schema of a profile (as published in `docs/profile.schema.json`), generated from these types.
pub fn json_schema() -> String {
    let mut out = serde_json::to_string_pretty(&schemars::schema_for!(Profile)).expect("a schema serializes");
    out.push('\n');
    out
}

/// Production's sizes and shape: what `pgshadow profile` writes and `run --profile` reads.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Profile {
    /// Always [`PROFILE_VERSION`] for profiles this version writes; a newer one is refused.
    pub profile_version: u32,
    /// The pgshadow version that wrote it.
    pub tool_version: String,
    /// The profiled server's `server_version`.
    pub server_version: String,
    /// The profiled database's name.
    pub database: String,
    /// How much of the columns' values it holds.
    pub values: ProfileValues,
    /// The catalog fingerprint of the profiled schema: the SHA-256 of a canonical description of its tables,
    /// columns and types, constraints, indexes and enums, computed the same way on a shadow loaded with its
    /// `structure.sql` (the report's `profile.shadow_catalog_sha256`).
    pub catalog_sha256: String,
    /// Every table and partitioned table outside the system schemas, by schema and name.
    pub tables: Vec<TableProfile>,
    /// Every sequence, by schema and name.
    pub sequences: Vec<SequenceProfile>,
    /// The file it was read from ([`Profile::read`]); not part of the file.
    #[serde(skip)]
    pub file: String,
    /// The SHA-256 of the text it was parsed from ([`Profile::parse`]); empty for a profile made in memory. Not part
    /// of the file.
    #[serde(skip)]
    pub text_sha256: String,
}

/// A table of the profiled database.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TableProfile {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// `table`, `partitioned` (its rows are in its partitions) or `partition`.
    pub kind: TableKind,
    /// `pg_class.reltuples`: the planner's estimate of its rows, as of its last VACUUM, ANALYZE or CREATE INDEX.
    /// `null` where the server does not know it (PostgreSQL 14 and later say -1 for a table never vacuumed or
    /// analyzed). A partitioned table's rows are its partitions' ([`TableProfile::rows`] adds them up).
    pub reltuples: Option<f64>,
    /// `pg_class.relpages`: its size in pages, as of the same moment.
    pub relpages: i64,
    /// The size of its main data file, in bytes.
    pub heap_bytes: i64,
    /// The size of its TOAST table and the TOAST index, in bytes.
    pub toast_bytes: i64,
    /// The size of its indexes, in bytes.
    pub index_bytes: i64,
    /// Everything together (`pg_total_relation_size`), in bytes.
    pub total_bytes: i64,
    /// Whether the server has statistics of it (`pg_stats` rows, or a recorded ANALYZE). When `false`, its
    /// columns have no `stats`: a profile never guesses them.
    pub analyzed: bool,
    /// When it was last analyzed by hand (UTC, ISO 8601), if ever since the statistics were last reset.
    pub last_analyze: Option<String>,
    /// When autovacuum last analyzed it.
    pub last_autoanalyze: Option<String>,
    /// When it was last vacuumed by hand.
    pub last_vacuum: Option<String>,
    /// When autovacuum last vacuumed it.
    pub last_autovacuum: Option<String>,
    /// For a partition: its partitioned table.
    pub partition_of: Option<TableName>,
    /// For a partitioned table: its partitions, sorted.
    pub partitions: Vec<TableName>,
    /// Its columns, by name.
    pub columns: Vec<ColumnProfile>,
    /// Its integer keys (primary-key columns of type smallint, integer or bigint, and serial or identity
    /// columns), by column name.
    pub integer_keys: Vec<IntegerKey>,
}

/// A table's schema and name, as stored (unquoted).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct TableName {
    /// The schema.
    pub schema: String,
    /// The name.
    pub name: String,
}

/// What kind of table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    /// An ordinary table (a partition is `partition`).
    Table,
    /// A partitioned table: it holds no rows itself.
    Partitioned,
    /// A partition of a partitioned table.
    Partition,
}

/// A column and what `pg_stats` says of it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ColumnProfile {
    /// Its name.
    pub name: String,
    /// Its type, as `format_type` writes it (`integer`, `character varying(80)`, `public.mood`).
    pub r#type: String,
    /// Whether it is NOT NULL.
    pub not_null: bool,
    /// Whether its values are keys, numbers or times rather than free text: those `--values keys` keeps.
    pub key_like: bool,
    /// Its statistics; `null` when `pg_stats` has none (the table was never analyzed, or the profiling role may not
    /// read the column).
    pub stats: Option<ColumnStats>,
}

/// A column's `pg_stats` row. The value lists are `null` where the server has none, or where the profile's
/// `values` mode leaves them out; values are in the server's text form.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ColumnStats {
    /// The fraction of rows where it is null.
    pub null_frac: f64,
    /// Distinct values: a count when positive; when negative, minus the fraction of rows (-1: all distinct).
    pub n_distinct: f64,
    /// The average width of its values, in bytes.
    pub avg_width: i32,
    /// The correlation between its order and the rows' physical order, -1 to 1.
    pub correlation: Option<f64>,
    /// The most common values.
    pub most_common_vals: Option<Vec<String>>,
    /// Their frequencies, in the same order.
    pub most_common_freqs: Option<Vec<f64>>,
    /// Bounds of equal-population buckets of the other values.
    pub histogram_bounds: Option<Vec<String>>,
    /// For arrays and tsvector: the most common elements (`--values all` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub most_common_elems: Option<Vec<String>>,
    /// Their frequencies, and statistics of null elements (`--values all` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub most_common_elem_freqs: Option<Vec<f64>>,
    /// A histogram of the count of distinct non-null elements (`--values all` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elem_count_histogram: Option<Vec<f64>>,
}

/// An integer key and how close it is to its type's end.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct IntegerKey {
    /// The column.
    pub column: String,
    /// `smallint`, `integer` or `bigint`.
    pub r#type: String,
    /// The type's maximum.
    pub max_value: i64,
    /// The sequence it takes its values from (serial, identity), `schema.name` as SQL writes it.
    pub sequence: Option<String>,
    /// Its last value: the sequence's, else the largest in the column (read from the primary key's index). `null`
    /// when neither is known: a sequence never used, a column not leading its primary key, no right to read it.
    pub last_value: Option<i64>,
}

/// A sequence.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SequenceProfile {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// `smallint`, `integer` or `bigint`.
    pub r#type: String,
    /// Its last value; `null` before its first `nextval`, or when the profiling role may not read it.
    pub last_value: Option<i64>,
    /// Its maximum.
    pub max_value: i64,
    /// Its increment.
    pub increment: i64,
    /// Whether it wraps around at its end.
    pub cycle: bool,
    /// The column that owns it (serial, identity), `schema.table.column` as SQL writes it.
    pub owned_by: Option<String>,
}

impl Profile {
    /// Reads a profile file. A file that is not a profile is an [`Error::Input`] at its line and column; a profile of
    /// a newer format than this version reads is refused.
    pub fn read(path: &std::path::Path) -> Result<Profile> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Profile::parse(&path.display().to_string(), &text)
    }

    /// Parses a profile's text; `file` names it in errors and in [`Profile::file`].
    pub fn parse(file: &str, text: &str) -> Result<Profile> {
        let input = |line: usize, column: usize, message: String| Error::Input {
            file: file.to_owned(),
            line: line.max(1),
            column: column.max(1),
            message,
        };
        // The version first, so that a newer profile is refused as such rather than for a field it renamed.
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| input(e.line(), e.column(), format!("not a profile: {}", without_position(&e))))?;
        match value.get("profile_version").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(PROFILE_VERSION) => {}
            Some(v) => {
                return Err(input(
                    1,
                    1,
                    format!("profile_version {v}: this pgshadow reads version {PROFILE_VERSION}; update pgshadow"),
                ))
            }
            None => return Err(input(1, 1, "not a profile: no profile_version".to_owned())),
        }
        let mut profile: Profile = serde_json::from_str(text)
            .map_err(|e| input(e.line(), e.column(), format!("not a profile: {}", without_position(&e))))?;
        profile.file = file.to_owned();
        profile.text_sha256 = crate::text::hex_digest(text.as_bytes());
        Ok(profile)
    }

    /// The profile as its file holds it: pretty JSON, keys sorted, ending with a newline.
    pub fn to_json(&self) -> String {
        // Through a `Value`, whose objects keep their keys sorted.
        let value = serde_json::to_value(self).expect("a profile serializes");
        let mut out = serde_json::to_string_pretty(&value).expect("a value serializes");
        out.push('\n');
        out
    }

    /// The table `schema.name` (as stored: unquoted), if the profile has it.
    pub fn table(&self, schema: &str, name: &str) -> Option<&TableProfile> {
        // Tables are sorted by schema and name in a profile pgshadow wrote; a file edited by hand may not be.
        let at = self.tables.binary_search_by(|t| (t.schema.as_str(), t.name.as_str()).cmp(&(schema, name)));
        at.ok().map(|i| &self.tables[i]).or_else(|| self.tables.iter().find(|t| t.schema == schema && t.name == name))
    }

    /// The sequence `schema.name`, if the profile has it.
    pub fn sequence(&self, schema: &str, name: &str) -> Option<&SequenceProfile> {
        self.sequences.iter().find(|s| s.schema == schema && s.name == name)
    }

    /// Every table and its columns with their types: what [`compare`] checks against the shadow.
    pub fn relations(&self) -> BTreeMap<TableName, BTreeMap<String, String>> {
        self.tables
            .iter()
            .map(|t| {
                let columns = t.columns.iter().map(|c| (c.name.clone(), c.r#type.clone())).collect();
                (TableName { schema: t.schema.clone(), name: t.name.clone() }, columns)
            })
            .collect()
    }
}

impl TableProfile {
    /// The column `name`, if the table has it.
    pub fn column(&self, name: &str) -> Option<&ColumnProfile> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Its rows in production as the server estimates them: `reltuples`, or for a partitioned table whose own is
    /// unknown, the sum of its partitions' (`profile` to look them up). `None` when unknown.
    pub fn rows(&self, profile: &Profile) -> Option<f64> {
        if let Some(rows) = self.reltuples.filter(|r| *r >= 0.0) {
            if self.kind != TableKind::Partitioned || rows > 0.0 {
                return Some(rows);
            }
        }
        if self.kind != TableKind::Partitioned {
            return None;
        }
        self.partitions.iter().map(|p| profile.table(&p.schema, &p.name).and_then(|t| t.rows(profile))).sum()
    }
}

/// A serde_json error's message without its " at line L column C" (the position goes in the error's own fields).
fn without_position(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message,
    }
}

/// Profiles made by hand, for the unit tests of the modules that read them.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// A profile of the database `shop` on PostgreSQL 15.1, read from `p.json`, with these tables.
    pub(crate) fn profile(tables: Vec<TableProfile>) -> Profile {
        Profile {
            profile_version: PROFILE_VERSION,
            tool_version: "0".into(),
            server_version: "15.1".into(),
            database: "shop".into(),
            values: ProfileValues::Keys,
            catalog_sha256: "aa".into(),
            tables,
            sequences: Vec::new(),
            file: "p.json".into(),
            text_sha256: String::new(),
        }
    }

    /// An analyzed ordinary table `public.name` of `rows` rows (8 kB a page), with no columns yet
    /// ([`TableProfile::with_column`] adds them).
    pub(crate) fn table(name: &str, rows: f64) -> TableProfile {
        TableProfile {
            schema: "public".into(),
            name: name.into(),
            kind: TableKind::Table,
            reltuples: Some(rows),
            relpages: (rows / 100.0).ceil() as i64,
            heap_bytes: 8192 * (rows / 100.0).ceil() as i64,
            toast_bytes: 0,
            index_bytes: 0,
            total_bytes: 8192 * (rows / 100.0).ceil() as i64,
            analyzed: true,
            last_analyze: None,
            last_autoanalyze: None,
            last_vacuum: None,
            last_autovacuum: None,
            partition_of: None,
            partitions: Vec::new(),
            columns: Vec::new(),
            integer_keys: Vec::new(),
        }
    }

    impl TableProfile {
        /// The table with a nullable column `name` of type `r#type` and these statistics added.
        pub(crate) fn with_column(mut self, name: &str, r#type: &str, stats: Option<ColumnStats>) -> TableProfile {
            let column =
                ColumnProfile { name: name.into(), r#type: r#type.into(), not_null: false, key_like: false, stats };
            self.columns.push(column);
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::profile;
    use super::*;

    #[test]
    fn a_profile_round_trips_with_sorted_keys() {
        let text = profile(Vec::new()).to_json();
        let keys: Vec<&str> =
            text.lines().filter_map(|l| l.strip_prefix("  \"")).map(|l| l.split('"').next().unwrap_or("")).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        let back = Profile::parse("p.json", &text).expect("parses");
        assert_eq!(back.file, "p.json");
        assert_eq!(back.to_json(), text);
    }

    #[test]
    fn a_corrupt_or_newer_profile_is_refused_at_its_place() {
        let text = profile(Vec::new()).to_json();
        let cut = &text[..text.len() / 2];
        let Err(Error::Input { line, column, .. }) = Profile::parse("p.json", cut) else {
            panic!("a cut profile is refused")
        };
        assert!(line > 1 && column >= 1, "{line}:{column}");
        let wrong = text.replace("\"server_version\": \"15.1\"", "\"server_version\": 15");
        let Err(Error::Input { line, message, .. }) = Profile::parse("p.json", &wrong) else {
            panic!("a wrong type is refused")
        };
        assert!(line > 1 && message.contains("expected a string"), "{line}: {message}");
        let newer = text.replace("\"profile_version\": 1", "\"profile_version\": 2");
        let Err(Error::Input { message, .. }) = Profile::parse("p.json", &newer) else { panic!("newer refused") };
        assert!(message.contains("profile_version 2"), "{message}");
    }
}
