//! `pgshadow keep-warm` (hidden): the supervisor a cached `run` leaves its cluster to, so that the next run reaches
//! a running cluster and a ready clone ([`pgshadow::shadow::warm`]). Runs start it; people set `PGSHADOW_KEEP_WARM`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use pgshadow::{CacheOptions, LocalOptions};

use super::fail;

#[derive(Debug, clap::Args)]
pub(crate) struct KeepWarmArgs {
    /// The shadow cache whose cluster to keep warm.
    #[arg(long, value_name = "DIR")]
    cache_dir: PathBuf,
    /// The size cap of the cluster's templates, in bytes (as the run had it).
    #[arg(long, value_name = "BYTES", default_value_t = pgshadow::shadow::cache::DEFAULT_MAX_SIZE)]
    cache_max_size: u64,
    /// The server binaries of the cluster.
    #[arg(long, value_name = "DIR")]
    pg_bin: PathBuf,
    /// The OS user the server runs as (when running as root).
    #[arg(long, value_name = "USER")]
    os_user: Option<String>,
    /// Stop after this many milliseconds with no run.
    #[arg(long, value_name = "MS")]
    idle_ms: u64,
}

/// Serves runs until the idle time passes; prints `ready` on stdout once runs can reach the cluster.
pub(crate) fn run(args: &KeepWarmArgs) -> ExitCode {
    let options = LocalOptions {
        postgres: pgshadow::postgres::Selection { pg_bin: Some(args.pg_bin.clone()), ..Default::default() },
        os_user: args.os_user.clone(),
        cache: Some(CacheOptions { max_size: args.cache_max_size, ..CacheOptions::new(&args.cache_dir) }),
        ..LocalOptions::default()
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&pgshadow::Error::io("<tokio runtime>", e)),
    };
    let ready = || {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "ready");
        let _ = out.flush();
    };
    match runtime.block_on(pgshadow::keep_warm(&options, Duration::from_millis(args.idle_ms), ready)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// `PGSHADOW_KEEP_WARM` / `--keep-warm`: `30s`, `2m`, `500ms`, seconds; `0` or `off` for not at all (zero).
pub(crate) fn idle_time(text: &str) -> Result<Duration, String> {
    pgshadow::shadow::warm::parse_idle(text).map(Option::unwrap_or_default)
}
