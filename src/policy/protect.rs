//! Protected objects and statement kinds: what a plan may never touch, whatever the rules say.

use super::Glob;
use crate::plan::StatementKind;
use crate::report::{Finding, FoundBy, Severity, StatementReport, Status};

/// A finding for every protected object a statement dropped, truncated or deleted from.
pub(super) fn protected(patterns: &[Glob], s: &StatementReport) -> Vec<Finding> {
    let is_protected = |name: &str| patterns.iter().any(|p| p.matches(name));
    let mut reasons: Vec<String> = s
        .dropped_objects
        .iter()
        .filter(|o| is_protected(&o.identity))
        .map(|o| format!("drops protected {} {}", o.object_type, o.identity))
        .collect();
    for e in s.table_effects.iter().filter(|e| is_protected(&e.table)) {
        // An unknown count could be any number: the protected table may lose rows.
        match e.deleted {
            Some(0) => {}
            Some(n) => reasons.push(format!("deletes {n} rows from protected table {}", e.table)),
            None => reasons.push(format!("deletes an unknown number of rows from protected table {}", e.table)),
        }
        match e.truncated {
            Some(0) => {}
            Some(n) => reasons.push(format!("truncates protected table {} ({n} rows)", e.table)),
            None => reasons.push(format!("truncates protected table {} (rows unknown)", e.table)),
        }
    }
    reasons.into_iter().map(|message| error("protected-object", s.index, message, FoundBy::Measured)).collect()
}

/// A finding when the statement's kind is denied, or not among the allowed ones.
pub(super) fn statement_kind(
    deny: &[StatementKind],
    allow: Option<&[StatementKind]>,
    s: &StatementReport,
) -> Option<Finding> {
    if s.status == Status::NotRun || s.note.is_some() {
        return None;
    }
    let message = if deny.contains(&s.kind) {
        format!("{} statements are denied by the policy", s.kind.label())
    } else if allow.is_some_and(|allowed| !allowed.contains(&s.kind)) {
        format!("{} is not among the statement kinds the policy allows", s.kind.label())
    } else {
        return None;
    };
    Some(error("denied-statement", s.index, message, FoundBy::Static))
}

fn error(rule: &str, statement: usize, message: String, found_by: FoundBy) -> Finding {
    Finding {
        rule: rule.to_owned(),
        severity: Severity::Error,
        statement: Some(statement),
        message,
        measured: None,
        limit: None,
        hint: None,
        found_by,
    }
}
