//! `pgshadow audit verify|export`: the store's hash-chained audit log.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use pgshadow::proposal::tokens::Action;

use super::fail;
use super::output::write_atomically;
use super::store::{runtime, StoreArgs};

const EXAMPLES: &str = "\
Examples:
  pgshadow audit verify
  pgshadow audit export --output audit.jsonl
  pgshadow audit export --store postgres://auditor@db/approvals | jq 'select(.event == \"refused\")'

Exit codes: 0 the chain holds (export: written), 1 the chain is broken (verify names the first bad entry),
2 could not read the store.";

/// `pgshadow audit ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check the chain: every entry links to the one before, and its content matches its SHA-256.
    #[command(after_help = EXAMPLES)]
    Verify(StoreArgs),
    /// Write every entry as JSON Lines, oldest first.
    #[command(after_help = EXAMPLES)]
    Export {
        /// Write to FILE (whole, or not at all) instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub(crate) fn run(command: AuditCommand) -> ExitCode {
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    let outcome = runtime.block_on(async {
        match command {
            AuditCommand::Verify(store) => {
                store.caller(Action::Read)?;
                let verification = store.open().await?.verify().await?;
                Ok(match verification.broken {
                    None => {
                        println!("the audit log holds: {} entries, every link checked", verification.entries);
                        ExitCode::SUCCESS
                    }
                    Some(broken) => {
                        eprintln!("pgshadow: the audit log is broken: {broken}");
                        ExitCode::from(1)
                    }
                })
            }
            AuditCommand::Export { output, store } => {
                store.caller(Action::Read)?;
                let entries = store.open().await?.audit().await?;
                let text: String =
                    entries.iter().map(|e| serde_json::to_string(e).expect("an entry serializes") + "\n").collect();
                match output {
                    Some(path) => write_atomically(&path, &text)?,
                    None => {
                        use std::io::Write;
                        std::io::stdout()
                            .lock()
                            .write_all(text.as_bytes())
                            .map_err(|e| pgshadow::Error::io("<stdout>", e))?;
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    outcome.unwrap_or_else(|e: pgshadow::Error| fail(&e))
}
