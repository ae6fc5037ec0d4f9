//! From measured statements to findings and a verdict.
//!
//! Each rule lives in its own file under `rules/` with its id, its check and its tests. The built-in default
//! policy makes every rule an error, so any finding fails the plan; configurable policies build on [`Policy`].

mod rules;

use std::collections::BTreeMap;

pub use rules::Rule;

use crate::plan::Plan;
use crate::report::{Finding, Severity, StatementReport, Verdict};

/// Which rules apply and how severe each one is.
#[derive(Debug, Clone)]
pub struct Policy {
    severities: BTreeMap<Rule, Severity>,
}

impl Default for Policy {
    /// The built-in policy: fail on any dropped table, any TRUNCATE, any DELETE/UPDATE without WHERE that touched
    /// rows, any cascade that deleted rows in another table, and any statement error.
    fn default() -> Self {
        Policy { severities: Rule::ALL.iter().map(|r| (*r, Severity::Error)).collect() }
    }
}

impl Policy {
    /// Checks every statement against every rule; the verdict is `fail` when any finding is an error.
    pub fn evaluate(&self, plan: &Plan, statements: &[StatementReport]) -> (Vec<Finding>, Verdict) {
        let mut findings = Vec::new();
        for (report, statement) in statements.iter().zip(&plan.statements) {
            for (rule, severity) in &self.severities {
                if let Some(message) = rule.check(report, &statement.classification) {
                    findings.push(Finding {
                        rule: rule.id().to_owned(),
                        severity: *severity,
                        statement: Some(report.index),
                        message,
                    });
                }
            }
        }
        let verdict =
            if findings.iter().any(|f| f.severity == Severity::Error) { Verdict::Fail } else { Verdict::Pass };
        (findings, verdict)
    }
}
