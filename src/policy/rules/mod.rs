//! The rules: one file each, holding the check and its tests.

mod cascade_delete;
mod delete_without_where;
mod drop_table;
mod statement_error;
mod truncate;
mod update_without_where;

use std::fmt;
use std::str::FromStr;

use crate::plan::Classification;
use crate::report::StatementReport;

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
}

impl Rule {
    /// Every rule, in catalog order.
    pub const ALL: [Rule; 6] = [
        Rule::DropTable,
        Rule::Truncate,
        Rule::DeleteWithoutWhere,
        Rule::UpdateWithoutWhere,
        Rule::CascadeDelete,
        Rule::StatementError,
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
        }
    }

    /// One line on what the rule catches.
    pub fn summary(self) -> &'static str {
        match self {
            Rule::DropTable => drop_table::SUMMARY,
            Rule::Truncate => truncate::SUMMARY,
            Rule::DeleteWithoutWhere => delete_without_where::SUMMARY,
            Rule::UpdateWithoutWhere => update_without_where::SUMMARY,
            Rule::CascadeDelete => cascade_delete::SUMMARY,
            Rule::StatementError => statement_error::SUMMARY,
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
        let mut report = crate::measure::blank_report(1, statement);
        report.status = Status::Ok;
        report.rows_affected = Some(0);
        (report, statement.classification.clone())
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
            assert!(!rule.summary().is_empty());
        }
        let mut ids: Vec<_> = Rule::ALL.iter().map(|r| r.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), Rule::ALL.len());
        assert_eq!("no-such-rule".parse::<Rule>(), Err(UnknownRule("no-such-rule".to_owned())));
    }
}
