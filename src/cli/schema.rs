//! `pgshadow schema`: the JSON Schema of the JSON report, or of an upgrade rehearsal's.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(crate) struct SchemaArgs {
    /// The schema of the rehearsal document that several --pg-version produce.
    #[arg(long)]
    rehearsal: bool,
}

pub(crate) fn run(args: &SchemaArgs) -> ExitCode {
    match args.rehearsal {
        true => print!("{}", pgshadow::report::rehearsal::json_schema()),
        false => print!("{}", pgshadow::report::json_schema()),
    }
    ExitCode::SUCCESS
}
