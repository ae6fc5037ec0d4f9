//! Limits on the tables a statement rewrites or locks ACCESS EXCLUSIVE, by their rows or bytes in production: the
//! profile's size where the run has one (`--profile`), the source's where the shadow holds a sample of it
//! (`--sample`), the shadow's where it holds production's rows; unknown (and so failing the limit) where none says.

use super::limits::{finding, unchecked, Limits};
use crate::report::{bytes_label, size_basis, thousands, Finding, SizePart, StatementReport, Status};

/// One finding per rewritten or exclusively locked table over a limit, or whose size the limit cannot know.
pub(super) fn check(limits: &Limits, statements: &[StatementReport]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for s in statements.iter().filter(|s| s.status == Status::Ok && !s.rolled_back) {
        let unknown = |table: &str| s.unknown_tables.iter().any(|t| t == table);
        let rewrites = s.rewritten_tables.iter().map(|r| {
            let rows = r.rows.filter(|_| !unknown(&r.table));
            let bytes = r.size_bytes.filter(|_| rows.is_some());
            (r.table.as_str(), r.production.as_ref(), rows, bytes)
        });
        let exclusive = s.locks.iter().filter(|l| l.kind == "table" && l.mode == "AccessExclusiveLock");
        let locks =
            exclusive.map(|l| (l.table.as_str(), l.production.as_ref(), l.rows.filter(|_| !unknown(&l.table)), None));
        let kinds = [
            (
                ("rewritten", "rewrites", "rewritten"),
                limits.max_rows_rewritten,
                limits.max_bytes_rewritten,
                rewrites.collect::<Vec<_>>(),
            ),
            (
                ("locked ACCESS EXCLUSIVE", "locks ACCESS EXCLUSIVE", "locked-exclusive"),
                limits.max_rows_locked_exclusive,
                limits.max_bytes_locked_exclusive,
                locks.collect(),
            ),
        ];
        for ((what, verb, rule_of), row_limit, byte_limit, tables) in kinds {
            let rule = |unit: &str| format!("max-{unit}-{rule_of}");
            for (table, production, shadow_rows, shadow_bytes) in tables {
                if let Some(limit) = row_limit {
                    let rows = production.and_then(|p| p.rows.map(|r| (r, Some(p)))).or(shadow_rows.map(|r| (r, None)));
                    match rows {
                        None => {
                            findings.push(unchecked(&rule("rows"), s.index, &format!("rows of {table} {what}"), limit))
                        }
                        Some((n, size)) if n > limit => {
                            let n_label = match size {
                                Some(size) => format!("{} rows {}", thousands(n), size_basis(size, SizePart::Rows)),
                                None => format!("{n} rows"),
                            };
                            let message = format!("{verb} {table} ({n_label}), over the limit of {limit}");
                            findings.push(finding(&rule("rows"), s.index, message, n, limit));
                        }
                        Some(_) => {}
                    }
                }
                if let Some(limit) = byte_limit {
                    let bytes =
                        production.map(|p| (p.bytes + p.index_bytes, Some(p))).or(shadow_bytes.map(|b| (b, None)));
                    match bytes {
                        None => findings.push(unchecked(
                            &rule("bytes"),
                            s.index,
                            &format!("bytes of {table} {what}"),
                            limit,
                        )),
                        Some((n, size)) if n > limit => {
                            let from = size.map(|p| format!(" {}", size_basis(p, SizePart::Bytes))).unwrap_or_default();
                            let message =
                                format!("{verb} {table} ({}{from}), over the limit of {limit} bytes", bytes_label(n));
                            findings.push(finding(&rule("bytes"), s.index, message, n, limit));
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    }
    findings
}
