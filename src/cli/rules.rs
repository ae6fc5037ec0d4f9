//! `pgshadow rules`: the rules of the findings catalog, one a line.

use std::process::ExitCode;

/// Prints every rule with its summary.
pub(crate) fn run() -> ExitCode {
    for rule in pgshadow::policy::Rule::ALL {
        println!("{:<22} {}", rule.id(), rule.summary());
    }
    ExitCode::SUCCESS
}
