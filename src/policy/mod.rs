//! From measured statements to findings and a verdict.
//!
//! A [`Policy`] says what a plan may do: an action per rule of the catalog (`deny`, `warn`, `allow`; each rule lives
//! in its own file under `rules/` with its check and tests), limits on measured numbers, protected objects, and
//! statement kinds it may not contain. It is read from TOML (`pgshadow.toml`, `--policy FILE`); the built-in default
//! is [`Policy::DEFAULT_TOML`]. The verdict is `fail` when any finding is an error, `warn` when any is a warning.

mod config;
mod disagree;
mod limits;
mod protect;
mod rules;
mod size;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

pub use rules::{Rule, RuleDoc, RuleKind, UnknownRule};

use crate::error::{Error, Result};
use crate::plan::{Plan, StatementKind};
use crate::report::{CommitError, Finding, FoundBy, Severity, StatementReport, Verdict};
use limits::Limits;

/// What a policy does with a rule's findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The finding is an error: the plan fails.
    Deny,
    /// The finding is a warning: the verdict is at least `warn`.
    Warn,
    /// The rule is not checked.
    Allow,
}

/// How proposals judged by a policy are approved and applied (its `[approval]` and `[apply]` tables).
#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    /// Distinct approvals a plan with a fail-level finding needs (others need one).
    pub fail_approvals: usize,
    /// Hours an approval stays good.
    pub expires_after_hours: u64,
    /// An apply may change up to the approved rows times this ...
    pub tolerance_factor: f64,
    /// ... plus this many rows, per table and kind of change.
    pub tolerance_rows: u64,
    /// The target's `lock_timeout` during an apply, in milliseconds.
    pub lock_timeout_ms: u64,
    /// The target's `statement_timeout` during an apply, in milliseconds.
    pub statement_timeout_ms: u64,
}

impl Default for Approval {
    /// The values the built-in policy holds; a file that leaves a key out gets them from it.
    fn default() -> Self {
        Approval {
            fail_approvals: 1,
            expires_after_hours: 24,
            tolerance_factor: 1.5,
            tolerance_rows: 10,
            lock_timeout_ms: 5000,
            statement_timeout_ms: 300_000,
        }
    }
}

/// What a plan may do, and what makes it fail.
#[derive(Debug, Clone)]
pub struct Policy {
    source: String,
    sha256: String,
    approval: Approval,
    actions: BTreeMap<Rule, Action>,
    limits: Limits,
    protect: Vec<Glob>,
    deny_kinds: Vec<StatementKind>,
    allow_kinds: Option<Vec<StatementKind>>,
}

impl Default for Policy {
    /// The built-in policy ([`Policy::DEFAULT_TOML`]): every rule of the catalog denied, no limits, nothing
    /// protected beyond that.
    fn default() -> Self {
        static BUILT_IN: std::sync::LazyLock<Policy> = std::sync::LazyLock::new(|| {
            let mut policy = config::parse("built-in", Policy::DEFAULT_TOML, None).expect("the built-in policy parses");
            policy.source = "built-in".to_owned();
            policy
        });
        // Parsed once: `serve` takes it for every dry-run that names no policy.
        BUILT_IN.clone()
    }
}

impl Policy {
    /// The built-in policy as TOML, a starting point for a `pgshadow.toml`.
    pub const DEFAULT_TOML: &'static str = include_str!("default.toml");

    /// The policy file looked for in the current directory when no `--policy` is given.
    pub const DEFAULT_FILE: &'static str = "pgshadow.toml";

    /// Parses a policy; what it leaves out keeps the built-in value. Anything it does not understand (a syntax
    /// error, an unknown key, rule or statement kind, a wrong type) is an [`Error::Input`] at its line and column.
    pub fn parse(file: &str, text: &str) -> Result<Policy> {
        config::parse(file, text, Some(&Policy::default()))
    }

    /// Reads a policy file.
    pub fn read(path: &Path) -> Result<Policy> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Policy::parse(&path.display().to_string(), &text)
    }

    /// The policy to use: `explicit` (`--policy`) if given, else `pgshadow.toml` in the current directory if it
    /// exists, else the built-in one.
    pub fn discover(explicit: Option<&Path>) -> Result<Policy> {
        match explicit {
            Some(path) => Policy::read(path),
            None if Path::new(Self::DEFAULT_FILE).is_file() => Policy::read(Path::new(Self::DEFAULT_FILE)),
            None => Ok(Policy::default()),
        }
    }

    /// Where the policy came from: a file name, or `built-in`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The SHA-256 of the policy's text (the built-in policy's: of [`Policy::DEFAULT_TOML`]).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// How proposals judged by this policy are approved and applied.
    pub fn approval(&self) -> &Approval {
        &self.approval
    }

    /// Checks the measured statements; returns every finding and the verdict. Where a table effect has an estimate
    /// for production (`estimated`: from a sample, a profile or synthesized rows), rules and limits judge it.
    /// `commit_error` is the error the plan's final COMMIT met ([`crate::report::Report::commit_error`]).
    pub fn evaluate(
        &self,
        plan: &Plan,
        statements: &[StatementReport],
        commit_error: Option<&CommitError>,
    ) -> (Vec<Finding>, Verdict) {
        let mut findings = Vec::new();
        for (report, statement) in statements.iter().zip(&plan.statements).filter(|(r, _)| !r.rolled_back) {
            for (rule, severity) in self.checked() {
                let classification = &statement.classification;
                let measured = rule.check(report, classification).map(|m| {
                    let by_text = rule.text_shows(report, classification);
                    let severity = if rule.certain(report) { Severity::Error } else { severity };
                    (m, severity, if by_text { FoundBy::Confirmed } else { FoundBy::Measured })
                });
                // What only the text shows is never more than a warning.
                let found = measured.or_else(|| {
                    let message = rule.check_static(report, classification)?;
                    Some((message, severity.min(Severity::Warning), FoundBy::Static))
                });
                if let Some((message, severity, found_by)) = found {
                    findings.push(Finding {
                        rule: rule.id().to_owned(),
                        severity,
                        statement: Some(report.index),
                        message,
                        measured: None,
                        limit: None,
                        hint: Some(rule.doc().safer.to_owned()),
                        found_by,
                    });
                }
            }
            if let Some(error) = &report.measure_error {
                // Whatever the rules say: counts that could not be measured cannot pass any of them.
                findings.push(Finding {
                    rule: "measure-error".to_owned(),
                    severity: Severity::Error,
                    statement: Some(report.index),
                    message: format!("measuring the statement failed, so its counts are unknown: {error}"),
                    measured: None,
                    limit: None,
                    hint: None,
                    found_by: FoundBy::Measured,
                });
            }
            findings.extend(protect::protected(&self.protect, report));
            findings.extend(protect::statement_kind(&self.deny_kinds, self.allow_kinds.as_deref(), report));
        }
        for (rule, severity) in self.checked() {
            for (index, message, found_by) in rule.check_plan(statements) {
                findings.push(Finding {
                    rule: rule.id().to_owned(),
                    severity,
                    statement: Some(index),
                    message,
                    measured: None,
                    limit: None,
                    hint: Some(rule.doc().safer.to_owned()),
                    found_by,
                });
            }
        }
        for (rule, severity) in self.checked() {
            if let Some(message) = rule.check_commit(commit_error) {
                // About the COMMIT after the last statement, not a statement of the plan.
                findings.push(Finding {
                    rule: rule.id().to_owned(),
                    severity,
                    statement: None,
                    message,
                    measured: None,
                    limit: None,
                    hint: Some(rule.doc().safer.to_owned()),
                    found_by: FoundBy::Measured,
                });
            }
        }
        findings.extend(limits::check(&self.limits, statements));
        findings.sort_by_key(|f| f.statement);
        let verdict = match findings.iter().map(|f| f.severity).max() {
            Some(Severity::Error) => Verdict::Fail,
            Some(Severity::Warning) => Verdict::Warn,
            None => Verdict::Pass,
        };
        (findings, verdict)
    }
}

impl Policy {
    /// The rules the policy checks (every one it does not `allow`), with the severity of their findings.
    fn checked(&self) -> impl Iterator<Item = (Rule, Severity)> + '_ {
        self.actions.iter().filter_map(|(rule, action)| match action {
            Action::Deny => Some((*rule, Severity::Error)),
            Action::Warn => Some((*rule, Severity::Warning)),
            Action::Allow => None,
        })
    }
}

/// A glob over object names: `*` matches any run of characters (dots included), `?` any one character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob(Vec<char>);

impl Glob {
    pub(crate) fn new(pattern: &str) -> Glob {
        Glob(pattern.chars().collect())
    }

    pub(crate) fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        let (mut p, mut n, mut star, mut mark) = (0, 0, None, 0);
        while n < name.len() {
            if p < self.0.len() && (self.0[p] == '?' || self.0[p] == name[n]) {
                p += 1;
                n += 1;
            } else if p < self.0.len() && self.0[p] == '*' {
                star = Some(p);
                mark = n;
                p += 1;
            } else if let Some(s) = star {
                p = s + 1;
                mark += 1;
                n = mark;
            } else {
                return false;
            }
        }
        self.0[p..].iter().all(|c| *c == '*')
    }
}

#[cfg(test)]
mod tests;
