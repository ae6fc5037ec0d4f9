//! `pgshadow profile`: reads production's sizes and shape from a live database, read-only, and writes them as a
//! profile (JSON) for `run --profile`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use pgshadow::profile::{ProfileOptions, ProfileValues};

use super::output::write_atomically;
use super::{fail, logging};

const EXAMPLES: &str = "\
Examples:
  pgshadow profile --from-url \"$DATABASE_URL\" -o db/profile.json    # nightly, committed beside structure.sql
  pgshadow profile -o db/profile.json --values none                  # sizes and fractions only, no values at all
  PGHOST=db PGDATABASE=shop pgshadow profile > profile.json

Then: pgshadow run plan.sql --schema db/structure.sql --profile db/profile.json

Nothing is written to the database: one read-only session (default_transaction_read_only), one REPEATABLE READ
READ ONLY snapshot, and never ANALYZE. Tables the server has no statistics of are marked `analyzed: false`.
The format is documented in docs/profile.md; its JSON Schema is `pgshadow schema --profile`.";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct ProfileArgs {
    /// The database to profile: a postgresql:// URL or a key=value connection string. PGHOST, PGPORT, PGUSER,
    /// PGPASSWORD and PGDATABASE fill in what it leaves out (all of it without one); TLS as its sslmode says.
    #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
    from_url: Option<String>,

    /// Write the profile to FILE (whole, or not at all) instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Which column values the profile keeps (histogram bounds, most-common values): values are data.
    #[arg(long, value_enum, default_value_t = Values::Keys)]
    values: Values,

    /// Print only errors on standard error.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,

    /// More detail on standard error (-v: progress, -vv: debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Values {
    /// No values at all: sizes, counts, fractions, widths and correlations only.
    None,
    /// Values of keys, numbers and times only (integers, numerics, uuids, dates and timestamps, booleans, enums);
    /// none of free text.
    Keys,
    /// Everything pg_stats has, free text included.
    All,
}

pub(crate) fn run(args: &ProfileArgs) -> ExitCode {
    logging::init(args.quiet, args.verbose);
    let values = match args.values {
        Values::None => ProfileValues::None,
        Values::Keys => ProfileValues::Keys,
        Values::All => ProfileValues::All,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&pgshadow::Error::io("<tokio runtime>", e)),
    };
    let url = args.from_url.clone().unwrap_or_default();
    let profile = match runtime.block_on(pgshadow::profile::take(&url, &ProfileOptions { values })) {
        Ok(profile) => profile,
        Err(e) => return fail(&e),
    };
    let text = profile.to_json();
    let written = match &args.output {
        Some(path) => write_atomically(path, &text),
        None => std::io::stdout().lock().write_all(text.as_bytes()).map_err(|e| pgshadow::Error::io("<stdout>", e)),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}
