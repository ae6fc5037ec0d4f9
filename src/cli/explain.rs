//! `pgshadow explain RULE`: what a rule catches, why it matters, and a bad and a safe example.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(crate) struct ExplainArgs {
    /// The rule's id (`pgshadow rules` lists them).
    rule: String,
}

/// Prints the rule's explanation; exit 2 for a rule that does not exist.
pub(crate) fn run(args: &ExplainArgs) -> ExitCode {
    match args.rule.parse::<pgshadow::policy::Rule>() {
        Ok(rule) => {
            print!("{}", rule.explain());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}\nhint: `pgshadow rules` lists the rules");
            ExitCode::from(2)
        }
    }
}
