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
    Ok(Policy {
        source: file.to_owned(),
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
