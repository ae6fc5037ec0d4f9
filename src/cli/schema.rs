//! `pgshadow schema`: the JSON Schema of the JSON report, of an upgrade rehearsal's, of a profile, or of a proposal.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(crate) struct SchemaArgs {
    /// The schema of the rehearsal document that several --pg-version produce.
    #[arg(long, conflicts_with = "profile")]
    rehearsal: bool,
    /// The schema of a profile (`pgshadow profile`), as published in docs/profile.schema.json.
    #[arg(long, conflicts_with = "proposal")]
    profile: bool,
    /// The schema of a proposal as `pgshadow proposals show --format json` and `GET /v1/proposals/{id}` give it,
    /// as published in docs/proposal.schema.json.
    #[arg(long, conflicts_with = "rehearsal")]
    proposal: bool,
}

/// Prints the JSON Schema asked for.
pub(crate) fn run(args: &SchemaArgs) -> ExitCode {
    match (args.rehearsal, args.profile, args.proposal) {
        (true, _, _) => print!("{}", pgshadow::report::rehearsal::json_schema()),
        (_, true, _) => print!("{}", pgshadow::profile::json_schema()),
        (_, _, true) => print!("{}", pgshadow::proposal::json_schema()),
        _ => print!("{}", pgshadow::report::json_schema()),
    }
    ExitCode::SUCCESS
}
