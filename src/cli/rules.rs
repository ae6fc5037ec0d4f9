//! `pgshadow rules`: the rules of the findings catalog, one a line.

use std::process::ExitCode;

/// Prints every rule with how it finds what it reports (measured, static+measured) and its summary.
pub(crate) fn run() -> ExitCode {
    for rule in pgshadow::policy::Rule::ALL {
        println!("{:<32} {:<16} {}", rule.id(), rule.kind().as_str(), rule.summary());
    }
    ExitCode::SUCCESS
}
