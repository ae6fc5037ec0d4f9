//! `pgshadow policy`: prints the built-in policy, or checks a policy file.

use std::path::PathBuf;
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  pgshadow policy --default > pgshadow.toml     # start a policy from the built-in one
  pgshadow policy pgshadow.toml                 # check a policy file (exit 2 with its line if it is wrong)";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct PolicyArgs {
    /// Print the built-in policy as TOML.
    #[arg(long, conflicts_with = "file")]
    default: bool,
    /// A policy file to check.
    #[arg(value_name = "FILE", required_unless_present = "default")]
    file: Option<PathBuf>,
}

/// Prints the built-in policy, or checks the file (exit 2 with its line when it is wrong).
pub(crate) fn run(args: &PolicyArgs) -> ExitCode {
    match &args.file {
        None => {
            print!("{}", pgshadow::Policy::DEFAULT_TOML);
            ExitCode::SUCCESS
        }
        Some(file) => match pgshadow::Policy::read(file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => super::fail(&e),
        },
    }
}
