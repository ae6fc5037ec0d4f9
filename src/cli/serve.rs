//! `pgshadow serve`: the HTTP API ([`pgshadow::serve`]) as a command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use pgshadow::service::config::Config;
use pgshadow::service::Service;

const EXAMPLES: &str = "\
Examples:
  pgshadow serve --source seed=scenarios/seed-incident/schema.sql      # 127.0.0.1:7432, no token needed there
  PGSHADOW_TOKEN=$(cat token) pgshadow serve --config examples/serve.toml
  curl -s localhost:7432/v1/dry-runs -H \"Authorization: Bearer $TOKEN\" \\
       -d '{\"source\": \"seed\", \"plan\": \"DROP TABLE users CASCADE;\"}'

Endpoints: GET /v1/health, GET /v1/openapi.json, GET|POST /v1/sources, POST /v1/dry-runs, GET /v1/metrics.
SIGTERM or SIGINT: requests in flight finish (up to --grace seconds), then every shadow stops and its files go.";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct ServeArgs {
    /// The configuration (TOML; see examples/serve.toml): listen address, token file, allowed directories, pool,
    /// limits, sources to prepare at start, named policies.
    #[arg(long, value_name = "FILE", env = "PGSHADOW_SERVE_CONFIG")]
    config: Option<PathBuf>,
    /// The address to listen on, instead of the configuration's (default 127.0.0.1:7432).
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// The file holding the bearer token, instead of the configuration's; else PGSHADOW_TOKEN. Required to listen
    /// on an address other machines can reach.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// How long requests in flight may take to finish after SIGTERM.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    grace: u64,
    #[command(flatten)]
    service: super::args::ServiceArgs,
}

/// Serves the HTTP API until SIGTERM or SIGINT; every shadow is removed.
pub(crate) fn run(args: ServeArgs) -> ExitCode {
    super::logging::init(false, 0);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return super::fail(&pgshadow::Error::io("<tokio runtime>", e)),
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::fail(&e),
    }
}

async fn serve(args: ServeArgs) -> pgshadow::Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::read(path)?,
        None => Config::default(),
    };
    config.sources.extend(args.service.source.iter().cloned());
    config.listen = args.listen.unwrap_or(config.listen);
    let token_file = args.token_file.clone().or(config.token_file.clone());
    let token = match token_file {
        Some(file) => {
            Some(std::fs::read_to_string(&file).map_err(|e| pgshadow::Error::io(&file, e))?.trim().to_owned())
        }
        None => std::env::var("PGSHADOW_TOKEN").ok(),
    }
    .filter(|t| !t.is_empty());
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| pgshadow::Error::io(config.listen.to_string(), e))?;
    let (provider, shadow) = (args.service.provider()?, args.service.shadow());
    let service = Arc::new(Service::from_config(&config, provider, shadow).await?);
    eprintln!(
        "pgshadow serve: listening on http://{} ({} sources, {} PostgreSQL {}, {})",
        listener.local_addr().map_or_else(|_| config.listen.to_string(), |a| a.to_string()),
        service.sources().len(),
        service.provider().0,
        service.server_version(),
        if token.is_some() { "bearer token required" } else { "no token: loopback only" }
    );
    let stop = async {
        use tokio::signal::unix::{signal, SignalKind};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => std::future::pending().await,
        }
    };
    let served =
        pgshadow::serve::serve(listener, Arc::clone(&service), config, token, stop, Duration::from_secs(args.grace))
            .await;
    let stopped = Service::shutdown_shared(service, Duration::from_secs(5)).await;
    eprintln!("pgshadow serve: stopped; every shadow removed");
    served.and(stopped)
}
