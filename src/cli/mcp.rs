//! `pgshadow mcp`: the Model Context Protocol server ([`pgshadow::mcp`]) as a command. Standard output carries the
//! protocol, so everything else (logs, the ready line, errors) goes to standard error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use pgshadow::service::config::Config;
use pgshadow::service::Service;

const EXAMPLES: &str = "\
Examples:
  pgshadow mcp --source seed=scenarios/seed-incident/schema.sql
  pgshadow mcp --config /etc/pgshadow/serve.toml      # sources, named policies, pool and limits

An MCP client starts it as a stdio server, e.g. in its configuration:
  {\"mcpServers\": {\"pgshadow\": {\"command\": \"pgshadow\", \"args\": [\"mcp\", \"--config\", \"/path/serve.toml\"]}}}

Tools: dry_run (a plan against a source: verdict, findings, every statement's effects), list_sources, explain_rule.
It serves until the client closes standard input; SIGTERM or SIGINT stop it too. Either way every shadow is removed.";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct McpArgs {
    /// The configuration (TOML, as for `pgshadow serve`; see examples/serve.toml): the sources to prepare at start,
    /// named policies, pool size, timeout and report size. Its listen address and token are not used.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    service: super::args::ServiceArgs,
    /// More detail on standard error (-v: progress, -vv: debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

/// Serves MCP on standard input and output until the client goes or a signal comes; every shadow is removed.
pub(crate) fn run(args: McpArgs) -> ExitCode {
    super::logging::init_plain(args.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return super::fail(&pgshadow::Error::io("<tokio runtime>", e)),
    };
    let code = runtime.block_on(serve(args));
    // Every shadow is gone by now. When standard input is not a pipe (a terminal), a blocking read of it may still
    // be pending after a signal: do not wait for it.
    runtime.shutdown_timeout(Duration::from_secs(2));
    code
}

/// How serving ended.
enum End {
    Served(pgshadow::Result<()>),
    Signal(&'static str, u8),
}

async fn serve(args: McpArgs) -> ExitCode {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut sigterm), Ok(mut sigint)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return super::fail(&pgshadow::Error::io("<signal handlers>", std::io::Error::other("could not install")));
    };
    let mut config = match &args.config {
        Some(path) => match Config::read(path) {
            Ok(config) => config,
            Err(e) => return super::fail(&e),
        },
        None => Config::default(),
    };
    config.sources.extend(args.service.source.iter().cloned());
    if config.sources.is_empty() {
        eprintln!(
            "error: no sources to dry-run against\nhint: add --source NAME=schema.sql, or --config FILE with \
             [[sources]] entries"
        );
        return ExitCode::from(2);
    }
    let provider = match args.service.provider() {
        Ok(provider) => provider,
        Err(e) => return super::fail(&e),
    };
    let shadow = args.service.shadow();
    // A signal while the sources load drops the service being made, and with it its shadow.
    let service = tokio::select! {
        service = Service::from_config(&config, provider, shadow) => match service {
            Ok(service) => Arc::new(service),
            Err(e) => return super::fail(&e),
        },
        _ = sigterm.recv() => return super::interrupted("SIGTERM", 143),
        _ = sigint.recv() => return super::interrupted("SIGINT", 130),
    };
    let names: Vec<String> = service.sources().into_iter().map(|s| s.name).collect();
    eprintln!(
        "pgshadow mcp: serving dry-runs on PostgreSQL {} against {} over stdin/stdout",
        service.server_version(),
        names.join(", ")
    );
    let end = tokio::select! {
        served = pgshadow::mcp::serve_stdio(Arc::clone(&service), config) => End::Served(served),
        _ = sigterm.recv() => End::Signal("SIGTERM", 143),
        _ = sigint.recv() => End::Signal("SIGINT", 130),
    };
    let stopped = Service::shutdown_shared(service, Duration::from_secs(10)).await;
    match (end, stopped) {
        (End::Served(Err(e)), _) | (_, Err(e)) => super::fail(&e),
        (End::Served(Ok(())), Ok(())) => ExitCode::SUCCESS,
        (End::Signal(name, code), Ok(())) => super::interrupted(name, code),
    }
}
