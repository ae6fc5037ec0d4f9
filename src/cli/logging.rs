//! Setting up standard error: log lines (`tracing`), and the progress spinner where someone watches.

use std::io::IsTerminal;

use super::progress;

/// Logs for `run`, `serve` and `postgres`: warnings by default, more with -v, -vv or RUST_LOG; colour only on a
/// terminal without NO_COLOR. What pgshadow chose and installs for the run (`pgshadow::choice`) is said in plain
/// sentences, not log records.
pub(crate) fn init(quiet: bool, verbose: u8) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "pgshadow=info",
        (false, _) => "pgshadow=debug",
    };
    // What is said in sentences is no log record too. A directive, not a filter function: the filter's level is then
    // known, and the `log` records of the libraries below it (the driver's, per message) are dropped where they are
    // made instead of each being offered to the subscriber.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
        .add_directive("pgshadow::choice=off".parse().expect("a valid directive"));
    let terminal = std::io::stderr().is_terminal();
    let color = terminal && std::env::var_os("NO_COLOR").is_none();
    let log = tracing_subscriber::fmt::layer().with_writer(|| progress::Stderr).with_ansi(color).with_filter(filter);
    let said = tracing_subscriber::fmt::layer()
        .with_writer(|| progress::Stderr)
        .without_time()
        .with_level(false)
        .with_target(false)
        .with_ansi(false)
        .with_filter(tracing_subscriber::filter::Targets::new().with_target("pgshadow::choice", tracing::Level::INFO));
    // A spinner (and a download's bar) only where someone watches, without NO_COLOR, and only when log lines are not
    // already saying the same.
    let spinner = progress::layer(color && !quiet && verbose == 0 && std::env::var_os("RUST_LOG").is_none());
    let progress_events = tracing_subscriber::filter::Targets::new()
        .with_target("pgshadow::progress", tracing::Level::INFO)
        .with_target("pgshadow::download", tracing::Level::INFO);
    tracing_subscriber::registry()
        .with(log)
        .with((!quiet).then_some(said))
        .with(spinner.map(|s| s.with_filter(progress_events)))
        .init();
}

/// Logs for `mcp`: on standard error only, plain (an MCP client shows them in its log): warnings by default.
pub(crate) fn init_plain(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "pgshadow=info",
        _ => "pgshadow=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).with_env_filter(filter).try_init();
}
