//! The rules: one file each, holding the check and its tests.

mod cascade_delete;
mod char_column;
mod column_type_narrowing;
mod constraint_dropped;
mod constraint_index_build;
mod constraint_validation_scan;
mod delete_without_where;
mod drop_column_with_data;
mod drop_table;
mod enum_value_change;
mod fails_at_commit;
mod index_drop_not_concurrent;
mod index_not_concurrent;
mod integer_key_exhaustion;
mod json_column;
mod lock_without_timeout;
mod not_null_validation_scan;
mod rename;
mod statement_error;
mod statements_after_exclusive_lock;
mod table_rewrite;
mod text;
mod timestamp_without_time_zone;
mod transaction_hygiene;
mod trigger_change;
mod truncate;
mod unbacked_foreign_key;
mod unknown_row_count;
mod update_without_where;
mod varchar_length_shrink;

use std::fmt;
use std::str::FromStr;

use crate::plan::{Classification, StatementKind};
use crate::report::{about, CommitError, EffectEstimate, FoundBy, StatementReport, TableEffect};

/// A rule of the findings catalog. Its id (`drop-table`) is stable: reports, policies and docs use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// A statement dropped a table, named or taken by CASCADE.
    DropTable,
    /// A statement truncated rows.
    Truncate,
    /// A DELETE without WHERE touched rows.
    DeleteWithoutWhere,
    /// An UPDATE without WHERE touched rows.
    UpdateWithoutWhere,
    /// A statement deleted rows in a table it does not name (foreign-key cascade or trigger).
    CascadeDelete,
    /// A statement failed on the shadow.
    StatementError,
    /// A statement rewrote a table with rows.
    TableRewrite,
    /// A lock that blocks reads or writes was taken with no lock_timeout.
    LockWithoutTimeout,
    /// An index was built on an existing table without CONCURRENTLY.
    IndexNotConcurrent,
    /// A column that held values was dropped.
    DropColumnWithData,
    /// SET NOT NULL scanned a table with rows.
    NotNullValidationScan,
    /// A CHECK or FOREIGN KEY was added and validated on a table with rows in one step.
    ConstraintValidationScan,
    /// A column type change altered existing values.
    ColumnTypeNarrowing,
    /// A statement ran while an earlier statement's ACCESS EXCLUSIVE lock was held.
    StatementsAfterExclusiveLock,
    /// A foreign key was added without an index on its referencing columns.
    UnbackedForeignKey,
    /// A UNIQUE, PRIMARY KEY or EXCLUDE constraint built its index under ACCESS EXCLUSIVE on a table with rows.
    ConstraintIndexBuild,
    /// A json column was added (or a column changed to json).
    JsonColumn,
    /// A statement depends on rows of a table the shadow has no rows for.
    UnknownRowCount,
    /// A table, column, schema, view, sequence or type was renamed.
    Rename,
    /// DROP INDEX, REINDEX or DETACH PARTITION without CONCURRENTLY locked an existing table.
    IndexDropNotConcurrent,
    /// A primary key, unique, foreign key, check or not null an existing table had was dropped.
    ConstraintDropped,
    /// A column was made timestamp without time zone.
    TimestampWithoutTimeZone,
    /// A column was made char(n).
    CharColumn,
    /// A column's varchar length limit was lowered.
    VarcharLengthShrink,
    /// The plan commits part-way, leaves a transaction open, or mixes statements outside and inside a transaction.
    TransactionHygiene,
    /// A trigger was created, dropped, disabled or enabled on an existing table.
    TriggerChange,
    /// An enum value was renamed, or added inside a transaction that then uses it.
    EnumValueChange,
    /// A new primary key is integer or smallint, or a foreign key column is narrower than the key it references.
    IntegerKeyExhaustion,
    /// A deferred constraint the plan left violated fails the COMMIT that ends it.
    FailsAtCommit,
}

/// How a rule finds what it reports (`pgshadow rules` shows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// Only from what the shadow measured; the text may confirm it.
    Measured,
    /// From what the shadow measured, and from the text alone where the shadow cannot see.
    StaticAndMeasured,
}

impl RuleKind {
    /// `measured` / `static+measured`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Measured => "measured",
            RuleKind::StaticAndMeasured => "static+measured",
        }
    }
}

/// A rule's documentation: what it catches, why it matters, and a bad and a safe example that a test runs on a real
/// shadow (the bad one must trigger the rule, the safe one must not).
#[derive(Debug, Clone, Copy)]
pub struct RuleDoc {
    /// One line on what the rule catches.
    pub summary: &'static str,
    /// One line on the safer way, carried by every finding of the rule.
    pub safer: &'static str,
    /// What happens in production, and the safer way.
    pub explanation: &'static str,
    /// The schema the examples run on.
    pub schema: &'static str,
    /// A plan that triggers the rule.
    pub bad: &'static str,
    /// The safer plan.
    pub safe: &'static str,
}

impl Rule {
    /// Every rule, in catalog order.
    pub const ALL: [Rule; 29] = [
        Rule::DropTable,
        Rule::Truncate,
        Rule::DeleteWithoutWhere,
        Rule::UpdateWithoutWhere,
        Rule::CascadeDelete,
        Rule::StatementError,
        Rule::TableRewrite,
        Rule::LockWithoutTimeout,
        Rule::IndexNotConcurrent,
        Rule::DropColumnWithData,
        Rule::NotNullValidationScan,
        Rule::ConstraintValidationScan,
        Rule::ColumnTypeNarrowing,
        Rule::StatementsAfterExclusiveLock,
        Rule::UnbackedForeignKey,
        Rule::ConstraintIndexBuild,
        Rule::JsonColumn,
        Rule::UnknownRowCount,
        Rule::Rename,
        Rule::IndexDropNotConcurrent,
        Rule::ConstraintDropped,
        Rule::TimestampWithoutTimeZone,
        Rule::CharColumn,
        Rule::VarcharLengthShrink,
        Rule::TransactionHygiene,
        Rule::TriggerChange,
        Rule::EnumValueChange,
        Rule::IntegerKeyExhaustion,
        Rule::FailsAtCommit,
    ];

    /// The stable kebab-case id.
    pub fn id(self) -> &'static str {
        match self {
            Rule::DropTable => "drop-table",
            Rule::Truncate => "truncate",
            Rule::DeleteWithoutWhere => "delete-without-where",
            Rule::UpdateWithoutWhere => "update-without-where",
            Rule::CascadeDelete => "cascade-delete",
            Rule::StatementError => "statement-error",
            Rule::TableRewrite => "table-rewrite",
            Rule::LockWithoutTimeout => "lock-without-timeout",
            Rule::IndexNotConcurrent => "index-not-concurrent",
            Rule::DropColumnWithData => "drop-column-with-data",
            Rule::NotNullValidationScan => "not-null-validation-scan",
            Rule::ConstraintValidationScan => "constraint-validation-scan",
            Rule::ColumnTypeNarrowing => "column-type-narrowing",
            Rule::StatementsAfterExclusiveLock => "statements-after-exclusive-lock",
            Rule::UnbackedForeignKey => "unbacked-foreign-key",
            Rule::ConstraintIndexBuild => "constraint-index-build",
            Rule::JsonColumn => "json-column",
            Rule::UnknownRowCount => "unknown-row-count",
            Rule::Rename => "rename",
            Rule::IntegerKeyExhaustion => "integer-key-exhaustion",
            Rule::EnumValueChange => "enum-value-change",
            Rule::TriggerChange => "trigger-change",
            Rule::TransactionHygiene => "transaction-hygiene",
            Rule::VarcharLengthShrink => "varchar-length-shrink",
            Rule::CharColumn => "char-column",
            Rule::TimestampWithoutTimeZone => "timestamp-without-time-zone",
            Rule::ConstraintDropped => "constraint-dropped",
            Rule::IndexDropNotConcurrent => "index-drop-not-concurrent",
            Rule::FailsAtCommit => "fails-at-commit",
        }
    }

    /// The rule explained for people, as `pgshadow explain` prints it: summary, explanation, a bad and a safer
    /// example, and the schema they run on.
    pub fn explain(self) -> String {
        let doc = self.doc();
        format!(
            "{}: {}\n\n{}\n\nBad:\n    {}\n\nSafer:\n    {}\n\nOn a schema such as:\n    {}\n",
            self.id(),
            doc.summary,
            doc.explanation,
            doc.bad.replace('\n', "\n    "),
            doc.safe.replace('\n', "\n    "),
            doc.schema.replace('\n', "\n    ")
        )
    }

    /// The rule's documentation, with its examples.
    pub fn doc(self) -> &'static RuleDoc {
        match self {
            Rule::DropTable => &drop_table::DOC,
            Rule::Truncate => &truncate::DOC,
            Rule::DeleteWithoutWhere => &delete_without_where::DOC,
            Rule::UpdateWithoutWhere => &update_without_where::DOC,
            Rule::CascadeDelete => &cascade_delete::DOC,
            Rule::StatementError => &statement_error::DOC,
            Rule::TableRewrite => &table_rewrite::DOC,
            Rule::LockWithoutTimeout => &lock_without_timeout::DOC,
            Rule::IndexNotConcurrent => &index_not_concurrent::DOC,
            Rule::DropColumnWithData => &drop_column_with_data::DOC,
            Rule::NotNullValidationScan => &not_null_validation_scan::DOC,
            Rule::ConstraintValidationScan => &constraint_validation_scan::DOC,
            Rule::ColumnTypeNarrowing => &column_type_narrowing::DOC,
            Rule::StatementsAfterExclusiveLock => &statements_after_exclusive_lock::DOC,
            Rule::UnbackedForeignKey => &unbacked_foreign_key::DOC,
            Rule::ConstraintIndexBuild => &constraint_index_build::DOC,
            Rule::JsonColumn => &json_column::DOC,
            Rule::UnknownRowCount => &unknown_row_count::DOC,
            Rule::Rename => &rename::DOC,
            Rule::IntegerKeyExhaustion => &integer_key_exhaustion::DOC,
            Rule::EnumValueChange => &enum_value_change::DOC,
            Rule::TriggerChange => &trigger_change::DOC,
            Rule::TransactionHygiene => &transaction_hygiene::DOC,
            Rule::VarcharLengthShrink => &varchar_length_shrink::DOC,
            Rule::CharColumn => &char_column::DOC,
            Rule::TimestampWithoutTimeZone => &timestamp_without_time_zone::DOC,
            Rule::ConstraintDropped => &constraint_dropped::DOC,
            Rule::IndexDropNotConcurrent => &index_drop_not_concurrent::DOC,
            Rule::FailsAtCommit => &fails_at_commit::DOC,
        }
    }

    /// How the rule finds what it reports: [`RuleKind::Measured`] when only the shadow's measurements give a finding
    /// (the text may confirm it), [`RuleKind::StaticAndMeasured`] when the text alone also gives one where the shadow
    /// cannot see (a table empty here, an object it does not follow, a new table's columns).
    pub fn kind(self) -> RuleKind {
        match self {
            Rule::DeleteWithoutWhere
            | Rule::UpdateWithoutWhere
            | Rule::Rename
            | Rule::TimestampWithoutTimeZone
            | Rule::CharColumn
            | Rule::TransactionHygiene
            | Rule::EnumValueChange
            | Rule::IntegerKeyExhaustion => RuleKind::StaticAndMeasured,
            _ => RuleKind::Measured,
        }
    }

    /// One line on what the rule catches.
    pub fn summary(self) -> &'static str {
        self.doc().summary
    }

    /// The finding's message when the statement's text shows the risk but the shadow could not (a DELETE without
    /// WHERE on a table that happens to be empty here would still delete every row in production). Such findings are
    /// never more than warnings.
    pub fn check_static(self, report: &StatementReport, classification: &Classification) -> Option<String> {
        match self {
            Rule::DeleteWithoutWhere => delete_without_where::check_static(report, classification),
            Rule::UpdateWithoutWhere => update_without_where::check_static(report, classification),
            Rule::Rename => rename::check_static(report),
            Rule::IntegerKeyExhaustion => integer_key_exhaustion::check_static(report),
            Rule::CharColumn => char_column::check_static(report),
            Rule::TimestampWithoutTimeZone => timestamp_without_time_zone::check_static(report),
            _ => None,
        }
    }

    /// Findings over the whole plan rather than one statement: (statement index, message, how it was found). It sees
    /// every statement, rolled back or not (a transaction left open is rolled back).
    pub fn check_plan(self, reports: &[StatementReport]) -> Vec<(usize, String, FoundBy)> {
        match self {
            // The plan's text shows its transaction control, and the run followed it.
            Rule::TransactionHygiene => transaction_hygiene::check_plan(reports)
                .into_iter()
                .map(|(index, message)| (index, message, FoundBy::Confirmed))
                .collect(),
            Rule::EnumValueChange => enum_value_change::check_plan(reports),
            _ => Vec::new(),
        }
    }

    /// The finding's message about the COMMIT that ends the plan, given the error the dry-run met there.
    pub fn check_commit(self, error: Option<&CommitError>) -> Option<String> {
        match self {
            Rule::FailsAtCommit => fails_at_commit::check(error),
            _ => None,
        }
    }

    /// Whether the statement's text alone shows what the rule is about (without the shadow): with a measured
    /// finding, the two agree and the finding is `confirmed`; a finding the text does not show is `measured` only.
    pub fn text_shows(self, report: &StatementReport, classification: &Classification) -> bool {
        let words = || text::tokens(&report.sql);
        let alter_table = classification.kind == StatementKind::AlterTable;
        match self {
            Rule::Rename => rename::text_shows(&report.sql).is_some(),
            Rule::IndexDropNotConcurrent => index_drop_not_concurrent::text_shows(&report.sql).is_some(),
            Rule::ConstraintDropped => constraint_dropped::text_shows(&report.sql),
            Rule::IntegerKeyExhaustion => integer_key_exhaustion::text_shows(&report.sql),
            Rule::DropTable => classification.kind == StatementKind::DropTable,
            Rule::Truncate => classification.kind == StatementKind::Truncate,
            Rule::IndexNotConcurrent => {
                classification.kind == StatementKind::CreateIndex && !text::has(&words(), &["CONCURRENTLY"])
            }
            Rule::DropColumnWithData => alter_table && text::has(&words(), &["DROP", "COLUMN"]),
            // The text shows a type change; whether it rewrites, or changes values, only the shadow can tell.
            Rule::TableRewrite | Rule::ColumnTypeNarrowing => {
                (alter_table && text::has(&words(), &["TYPE"])) || text::has(&words(), &["VACUUM", "FULL"])
            }
            Rule::NotNullValidationScan => text::has(&words(), &["SET", "NOT", "NULL"]),
            Rule::ConstraintValidationScan => {
                let t = words();
                alter_table
                    && (text::has(&t, &["CHECK"])
                        || text::has(&t, &["FOREIGN", "KEY"])
                        || text::has(&t, &["REFERENCES"]))
                    && !text::has(&t, &["NOT", "VALID"])
            }
            Rule::ConstraintIndexBuild => {
                let t = words();
                alter_table
                    && (text::has(&t, &["PRIMARY", "KEY"]) || text::has(&t, &["UNIQUE"]) || text::has(&t, &["EXCLUDE"]))
                    && !text::has(&t, &["USING", "INDEX"])
            }
            Rule::JsonColumn => text::column_types(&report.sql).iter().any(|c| c.data_type == "JSON"),
            Rule::TriggerChange => trigger_change::text_shows(&report.sql),
            Rule::VarcharLengthShrink => varchar_length_shrink::text_shows(&report.sql),
            Rule::CharColumn => char_column::text_shows(&report.sql),
            Rule::TimestampWithoutTimeZone => timestamp_without_time_zone::text_shows(&report.sql),
            _ => self.check_static(report, classification).is_some(),
        }
    }

    /// Why the shadow measured none of what the statement's text shows (`text_shows` is true, and the rule has no
    /// finding): what the text predicts, and what the shadow measured instead. `None` where no honest reason can be
    /// told from what the shadow measured.
    pub(super) fn disagreement(self, seen: &Seen<'_>) -> Option<(String, String)> {
        match self {
            Rule::TableRewrite => table_rewrite::disagreement(seen),
            Rule::ColumnTypeNarrowing => column_type_narrowing::disagreement(seen),
            Rule::NotNullValidationScan => not_null_validation_scan::disagreement(seen),
            Rule::ConstraintValidationScan => constraint_validation_scan::disagreement(seen),
            Rule::ConstraintIndexBuild => constraint_index_build::disagreement(seen),
            Rule::IndexNotConcurrent => index_not_concurrent::disagreement(seen),
            Rule::DropTable => drop_table::disagreement(seen),
            Rule::Truncate => truncate::disagreement(seen),
            Rule::VarcharLengthShrink => varchar_length_shrink::disagreement(seen),
            Rule::DropColumnWithData => drop_column_with_data::disagreement(seen),
            _ => None,
        }
    }

    /// Whether the rule's finding on `report` is a failure certain to come in production (an existing key past half
    /// its range): an error even where the policy only warns of the rule.
    pub fn certain(self, report: &StatementReport) -> bool {
        match self {
            Rule::IntegerKeyExhaustion => integer_key_exhaustion::certain(report),
            _ => false,
        }
    }

    /// The finding's message when the rule matches the measured statement.
    pub fn check(self, report: &StatementReport, classification: &Classification) -> Option<String> {
        match self {
            Rule::DropTable => drop_table::check(report),
            Rule::Truncate => truncate::check(report),
            Rule::DeleteWithoutWhere => delete_without_where::check(report, classification),
            Rule::UpdateWithoutWhere => update_without_where::check(report, classification),
            Rule::CascadeDelete => cascade_delete::check(report),
            Rule::StatementError => statement_error::check(report),
            Rule::TableRewrite => table_rewrite::check(report),
            Rule::LockWithoutTimeout => lock_without_timeout::check(report),
            Rule::IndexNotConcurrent => index_not_concurrent::check(report, classification),
            Rule::DropColumnWithData => drop_column_with_data::check(report),
            Rule::NotNullValidationScan => not_null_validation_scan::check(report),
            Rule::ConstraintValidationScan => constraint_validation_scan::check(report),
            Rule::ColumnTypeNarrowing => column_type_narrowing::check(report),
            Rule::StatementsAfterExclusiveLock => statements_after_exclusive_lock::check(report),
            Rule::UnbackedForeignKey => unbacked_foreign_key::check(report),
            Rule::ConstraintIndexBuild => constraint_index_build::check(report),
            Rule::JsonColumn => json_column::check(report),
            Rule::UnknownRowCount => unknown_row_count::check(report, classification),
            Rule::Rename => rename::check(report),
            Rule::IndexDropNotConcurrent => index_drop_not_concurrent::check(report),
            Rule::ConstraintDropped => constraint_dropped::check(report),
            Rule::TimestampWithoutTimeZone => timestamp_without_time_zone::check(report),
            Rule::CharColumn => char_column::check(report),
            Rule::VarcharLengthShrink => varchar_length_shrink::check(report),
            // A check over the whole plan: see `check_plan`; of its COMMIT: see `check_commit`.
            Rule::TransactionHygiene | Rule::EnumValueChange | Rule::FailsAtCommit => None,
            Rule::IntegerKeyExhaustion => integer_key_exhaustion::check(report),
            Rule::TriggerChange => trigger_change::check(report),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// An id that names no rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rule `{0}`")]
pub struct UnknownRule(pub String);

impl FromStr for Rule {
    type Err = UnknownRule;

    fn from_str(s: &str) -> Result<Rule, UnknownRule> {
        Rule::ALL.into_iter().find(|r| r.id() == s).ok_or_else(|| UnknownRule(s.to_owned()))
    }
}

/// A statement that ran, as a rule's disagreement judges it: what the shadow measured, and what it ran on.
pub(super) struct Seen<'a> {
    /// What the statement did on the shadow.
    pub(super) report: &'a StatementReport,
    /// What its text is.
    pub(super) classification: &'a Classification,
    /// The shadow's PostgreSQL version, `major.minor` (`18.1`); empty when unknown.
    pub(super) version: &'a str,
    /// The plan's statements before it.
    pub(super) earlier: &'a [StatementReport],
}

impl Seen<'_> {
    /// `PostgreSQL 18.1`, for a reason that depends on the server's version.
    fn postgres(&self) -> String {
        match self.version {
            "" => "this PostgreSQL".to_owned(),
            version => format!("PostgreSQL {version}"),
        }
    }

    /// The first table the statement names that an earlier statement of the plan created, as that statement's
    /// catalog identity (`public.t`): no one else reads or writes it yet.
    fn new_table(&self) -> Option<&str> {
        let names = |identity: &str, target: &str| identity == target || identity.ends_with(&format!(".{target}"));
        self.classification.targets.iter().find_map(|target| {
            self.earlier.iter().flat_map(|s| &s.schema_changes).find_map(|c| {
                (c.command == "CREATE TABLE" && c.object_type == "table" && names(&c.identity, target))
                    .then_some(c.identity.as_str())
            })
        })
    }

    /// `{lead}: public.t is new in this plan, ...` when the statement's table was created earlier in the plan.
    fn new_table_reason(&self, lead: &str) -> Option<String> {
        let table = self.new_table()?;
        Some(format!("{lead}: {table} is new in this plan, so nothing else reads or writes it yet"))
    }

    /// A constraint of one of `types` the statement added to a table with no rows here, or to a table new in this
    /// plan: the disagreement of a rule that `expected` it to check rows.
    fn constrained(&self, expected: &str, types: &[&str]) -> Option<(String, String)> {
        let reasons: Vec<String> = self
            .report
            .constraint_changes
            .iter()
            .filter(|c| c.change == "added" && types.contains(&c.constraint_type.as_str()))
            .filter_map(|c| {
                let table = c.constraint.rsplit_once(" on ").map_or(c.constraint.as_str(), |(_, t)| t);
                Some(format!("{}: {}", c.constraint, self.empty_here(table, c.rows)?))
            })
            .collect();
        let measured = match reasons.is_empty() {
            false => format!("no rows to check for {}", reasons.join("; ")),
            true => self.new_table_reason("no rows that matter")?,
        };
        Some((expected.to_owned(), measured))
    }

    /// Why the shadow measured no risk in `table` when it has no rows there, or none the shadow knows; `None` when it
    /// has rows. `rows` is its measured count, `null` when unknown.
    fn empty_here(&self, table: &str, rows: Option<u64>) -> Option<String> {
        let new = self.new_table().is_some_and(|t| t == table);
        match rows {
            Some(0) if new => Some(format!("{table} is new in this plan and has no rows")),
            Some(0) => Some(format!("{table} has no rows on the shadow")),
            None => Some(format!("the shadow has no rows for {table}: production's could be any number")),
            Some(_) => None,
        }
    }
}

/// The columns a statement added or retyped to a type `is_type` accepts, as the catalog shows them after it:
/// `(schema.table.column, type)`.
fn columns_made(report: &StatementReport, is_type: impl Fn(&str) -> bool) -> Vec<(&str, &str)> {
    report
        .column_changes
        .iter()
        .filter(|c| matches!(c.change.as_str(), "added" | "type changed"))
        .filter_map(|c| c.to.as_deref().filter(|t| is_type(t)).map(|t| (c.column.as_str(), t)))
        .collect()
}

/// `n rows`, or `rows unknown` for a count the shadow cannot know (a table it has no rows for).
fn count(n: Option<u64>) -> String {
    n.map_or_else(|| "rows unknown".to_owned(), rows)
}

/// A table effect's count as a finding says it: the estimate for production where the effect has one (`about 2,700
/// rows (estimated from the profile)`), else the measured count, else `rows unknown`. `pick` chooses the count.
fn effect_count(e: &TableEffect, pick: fn(&EffectEstimate) -> Option<u64>, measured: Option<u64>) -> String {
    match e.estimated.as_ref().and_then(|x| Some((pick(x)?, x.basis))) {
        Some((n, basis)) => about(n, basis),
        None => count(measured),
    }
}

/// What a finding that names unknown counts adds, once: why they are unknown, and that they are not 0.
fn unknown_note(any_unknown: bool) -> &'static str {
    match any_unknown {
        true => "; rows unknown: the shadow has no rows for the table, production's could be any number",
        false => "",
    }
}

/// `n row` / `n rows`.
fn rows(n: u64) -> String {
    if n == 1 {
        "1 row".to_owned()
    } else {
        format!("{n} rows")
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::plan::{Classification, Plan, StatementKind};
    use crate::report::{StatementReport, Status};

    /// A statement that ran and changed nothing, for rule tests.
    pub(crate) fn measured(sql: &str) -> (StatementReport, Classification) {
        let plan = Plan::parse("plan.sql", sql).expect("test SQL is a plan");
        let statement = &plan.statements[0];
        assert_ne!(statement.classification.kind, StatementKind::Unknown, "test SQL must parse: {sql}");
        let mut report = StatementReport::not_run(1, statement);
        report.status = Status::Ok;
        report.rows_affected = Some(0);
        (report, statement.classification.clone())
    }

    /// A measured statement as a disagreement judges it, on PostgreSQL 18.1, after `earlier`.
    pub(crate) fn seen<'a>(
        report: &'a StatementReport,
        classification: &'a Classification,
        earlier: &'a [StatementReport],
    ) -> super::Seen<'a> {
        super::Seen { report, classification, version: "18.1", earlier }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_unique() {
        for rule in Rule::ALL {
            assert_eq!(rule.id().parse::<Rule>(), Ok(rule));
            assert_eq!(rule.to_string(), rule.id());
            let doc = rule.doc();
            assert!(
                !doc.summary.is_empty() && !doc.explanation.is_empty() && !doc.safer.is_empty(),
                "{rule} lacks docs"
            );
            assert!(!doc.schema.is_empty() && !doc.bad.is_empty() && !doc.safe.is_empty(), "{rule} lacks examples");
        }
        let mut ids: Vec<_> = Rule::ALL.iter().map(|r| r.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), Rule::ALL.len());
        assert_eq!("no-such-rule".parse::<Rule>(), Err(UnknownRule("no-such-rule".to_owned())));
    }
}
