//! `pgshadow schema`: the JSON Schema of the JSON report, of an upgrade rehearsal's, or of a profile.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(crate) struct SchemaArgs {
    /// The schema of the rehearsal document that several --pg-version produce.
    #[arg(long, conflicts_with = "profile")]
    rehearsal: bool,
    /// The schema of a profile (`pgshadow profile`), as published in docs/profile.schema.json.
    #[arg(long)]
    profile: bool,
}

/// Prints the JSON Schema asked for.
pub(crate) fn run(args: &SchemaArgs) -> ExitCode {
    match (args.rehearsal, args.profile) {
        (true, _) => print!("{}", pgshadow::report::rehearsal::json_schema()),
        (_, true) => print!("{}", pgshadow::profile::json_schema()),
        _ => print!("{}", pgshadow::report::json_schema()),
    }
    ExitCode::SUCCESS
}
