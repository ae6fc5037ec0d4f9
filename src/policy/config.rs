//! The policy file (TOML): reading it, and refusing with the file's line and column anything it does not understand.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::limits::{Limits, Thresholds};
use super::{Action, Glob, Policy, Rule};
use crate::error::{Error, Result};
use crate::plan::StatementKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    rules: BTreeMap<Spanned<String>, Action>,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    protect: ProtectFile,
    #[serde(default)]
    statements: StatementsFile,
    #[serde(default)]
    approval: ApprovalFile,
    #[serde(default)]
    apply: ApplyFile,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ApprovalFile {
    fail_approvals: Option<usize>,
    expires_after_hours: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ApplyFile {
    tolerance_factor: Option<f64>,
    tolerance_rows: Option<u64>,
    lock_timeout_ms: Option<u64>,
    statement_timeout_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct LimitsFile {
    max_rows_deleted: Option<u64>,
    max_rows_updated: Option<u64>,
    max_rows_destroyed: Option<u64>,
    max_cascade_deleted: Option<u64>,
    max_objects_dropped: Option<u64>,
    max_rows_rewritten: Option<u64>,
    max_rows_locked_exclusive: Option<u64>,
    max_bytes_rewritten: Option<u64>,
    max_bytes_locked_exclusive: Option<u64>,
    #[serde(default)]
    tables: BTreeMap<String, Thresholds>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProtectFile {
    #[serde(default)]
    objects: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StatementsFile {
    #[serde(default)]
    deny: Vec<Spanned<String>>,
    allow: Option<Vec<Spanned<String>>>,
}

/// Parses a policy file; `base` supplies what the file leaves out.
pub(super) fn parse(file: &str, text: &str, base: Option<&Policy>) -> Result<Policy> {
    let parsed: PolicyFile = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        input_error(file, text, at, e.message().trim_end().to_owned())
    })?;
    let mut actions = base.map(|b| b.actions.clone()).unwrap_or_default();
    for (name, action) in parsed.rules {
        let rule = name.get_ref().parse::<Rule>().map_err(|e| {
            let known: Vec<_> = Rule::ALL.iter().map(|r| r.id()).collect();
            input_error(file, text, name.span().start, format!("{e}; the rules are: {}", known.join(", ")))
        })?;
        actions.insert(rule, action);
    }
    let kinds = |list: Vec<Spanned<String>>| -> Result<Vec<StatementKind>> {
        list.into_iter()
            .map(|k| {
                StatementKind::from_id(k.get_ref()).ok_or_else(|| {
                    let message = format!(
                        "unknown statement kind `{}` (use the report's `kind`, e.g. `truncate`, `drop_schema`)",
                        k.get_ref()
                    );
                    input_error(file, text, k.span().start, message)
                })
            })
            .collect()
    };
    let l = parsed.limits;
    let mut approval = base.map(|b| b.approval.clone()).unwrap_or_default();
    let (a, p) = (parsed.approval, parsed.apply);
    approval.fail_approvals = a.fail_approvals.unwrap_or(approval.fail_approvals);
    approval.expires_after_hours = a.expires_after_hours.unwrap_or(approval.expires_after_hours);
    approval.tolerance_factor = p.tolerance_factor.unwrap_or(approval.tolerance_factor);
    approval.tolerance_rows = p.tolerance_rows.unwrap_or(approval.tolerance_rows);
    approval.lock_timeout_ms = p.lock_timeout_ms.unwrap_or(approval.lock_timeout_ms);
    approval.statement_timeout_ms = p.statement_timeout_ms.unwrap_or(approval.statement_timeout_ms);
    if !(approval.tolerance_factor.is_finite() && approval.tolerance_factor >= 1.0) {
        let at = text.find("tolerance-factor").unwrap_or(0);
        return Err(input_error(file, text, at, "apply.tolerance-factor must be 1 or more".to_owned()));
    }
    Ok(Policy {
        source: file.to_owned(),
        sha256: crate::text::hex_digest(text.as_bytes()),
        approval,
        actions,
        limits: Limits {
            total: Thresholds {
                max_rows_deleted: l.max_rows_deleted,
                max_rows_updated: l.max_rows_updated,
                max_rows_destroyed: l.max_rows_destroyed,
            },
            tables: l.tables.into_iter().map(|(pattern, t)| (Glob::new(&pattern), t)).collect(),
            max_cascade_deleted: l.max_cascade_deleted,
            max_objects_dropped: l.max_objects_dropped,
            max_rows_rewritten: l.max_rows_rewritten,
            max_rows_locked_exclusive: l.max_rows_locked_exclusive,
            max_bytes_rewritten: l.max_bytes_rewritten,
            max_bytes_locked_exclusive: l.max_bytes_locked_exclusive,
        },
        protect: parsed.protect.objects.iter().map(|p| Glob::new(p)).collect(),
        deny_kinds: kinds(parsed.statements.deny)?,
        allow_kinds: parsed.statements.allow.map(kinds).transpose()?,
    })
}

/// An input error at byte offset `at` of `text`.
fn input_error(file: &str, text: &str, at: usize, message: String) -> Error {
    Error::input_at(file, text, at, message)
}
