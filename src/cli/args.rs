//! Arguments several commands share: where the shadow runs (`run`, `serve`, `mcp`), what a service prepares
//! (`serve`, `mcp`), the cache directory (`cache`, `postgres`), and parsers of sizes and percentages.

use std::path::PathBuf;

use clap::ValueEnum;
use pgshadow::LocalOptions;

#[derive(Debug, clap::Args)]
pub(crate) struct CacheDirArg {
    /// The cache directory. Default: $XDG_CACHE_HOME/pgshadow, else ~/.cache/pgshadow (as root:
    /// /var/cache/pgshadow).
    #[arg(long, value_name = "DIR", env = "PGSHADOW_CACHE_DIR", value_parser = absolute_dir)]
    cache_dir: Option<PathBuf>,
}

/// A directory argument made absolute against the current directory: the shadow's server and a keep-warm
/// supervisor use it from directories of their own.
pub(crate) fn absolute_dir(text: &str) -> Result<PathBuf, String> {
    std::path::absolute(text).map_err(|e| format!("`{text}`: {e}"))
}

impl CacheDirArg {
    pub(crate) fn dir(&self) -> Option<PathBuf> {
        self.cache_dir.clone().or_else(pgshadow::CacheOptions::default_dir)
    }
}

/// What `pgshadow serve` and `pgshadow mcp` share: the sources to prepare and their local shadow.
#[derive(Debug, clap::Args)]
pub(crate) struct ServiceArgs {
    /// A source to prepare at start, besides the configuration's (repeatable): a schema file (plain SQL such as
    /// `pg_dump --schema-only` output, with or without data, or a pg_dump archive) and the name requests use.
    #[arg(long, value_name = "NAME=PATH", value_parser = pgshadow::service::config::source_arg)]
    pub(crate) source: Vec<(String, PathBuf)>,
    /// The shadow's PostgreSQL version (as for `run`; builds in PGSHADOW_CACHE_DIR or the default cache count).
    /// Default: the newest installed.
    #[arg(long, value_name = "VERSION")]
    pg_version: Option<pgshadow::postgres::VersionRequest>,
    /// The shadow's server binaries (as for `run`).
    #[arg(long, value_name = "DIR", env = "PGSHADOW_PG_BIN", conflicts_with = "pg_version")]
    pg_bin: Option<PathBuf>,
    /// When running as root: the OS user to run the shadow server as (default: postgres, else nobody).
    #[arg(long, value_name = "NAME")]
    os_user: Option<String>,
    /// Never install PostgreSQL on first use (as for `run`; PGSHADOW_INSTALL=never does the same).
    #[arg(long)]
    no_install: bool,
    /// Where the shadow runs (serve and mcp: one shadow, a local cluster or one container, serves every dry-run
    /// through clones of template databases; a shadow server is not available there).
    #[command(flatten)]
    provider: ProviderArgs,
}

/// Where the shadow runs, for `run`, `serve` and `mcp`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ProviderArgs {
    /// Where the shadow runs: `auto` picks the best one here (the report and stderr say which and why);
    /// `local`, a private cluster made with this machine's PostgreSQL; `container`, a container of a PostgreSQL
    /// image (--image) with no network; `server` (`run` only), scratch databases on a shadow server your team
    /// runs (--shadow-url), created and dropped per run.
    #[arg(long, value_enum, env = "PGSHADOW_SHADOW", default_value_t = ShadowKind::Auto)]
    shadow: ShadowKind,

    /// With --shadow container or auto: the PostgreSQL image to run (postgres:17, postgis/postgis:16-3.4, your
    /// own). Default: postgres:<major> for --pg-version, else for the source's version, else postgres:latest;
    /// auto also looks for an image here that has the source's extensions.
    #[arg(long, value_name = "REF")]
    image: Option<String>,

    /// When to pull the image: with --shadow container, `missing` unless told; auto never pulls unless told.
    #[arg(long, value_enum)]
    pull: Option<PullArg>,

    /// How pgshadow reaches a container shadow. `socket` seals it off: no network, only a private socket directory
    /// shared with it. Daemons in a virtual machine (Docker Desktop, colima, OrbStack) cannot share a socket, so
    /// `auto` publishes its port on 127.0.0.1 for them instead (`port`); the report then says the shadow was not
    /// sealed off from the network.
    #[arg(long, value_enum, env = "PGSHADOW_REACH", default_value_t = ReachArg::Auto)]
    reach: ReachArg,
}

impl ServiceArgs {
    /// The provider these arguments ask for.
    pub(crate) fn provider(&self) -> pgshadow::Result<pgshadow::Provider> {
        if self.provider.shadow == ShadowKind::Server {
            // The service refuses it, saying which providers it runs on.
            return Ok(pgshadow::Provider::Server(pgshadow::ServerOptions { url: String::new() }));
        }
        self.provider.provider(None)
    }

    /// The local shadow these arguments ask for.
    pub(crate) fn shadow(&self) -> LocalOptions {
        let builds = std::env::var_os("PGSHADOW_CACHE_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(pgshadow::CacheOptions::default_dir);
        let postgres = pgshadow::postgres::Selection {
            pg_bin: self.pg_bin.clone(),
            version: self.pg_version,
            source: None,
            builds,
            no_install: self.no_install,
        };
        LocalOptions { postgres, os_user: self.os_user.clone(), ..LocalOptions::default() }
    }
}

impl ProviderArgs {
    /// The provider `--shadow` names, with its options (`url`: --shadow-url).
    pub(crate) fn provider(&self, url: Option<&str>) -> pgshadow::Result<pgshadow::Provider> {
        use pgshadow::shadow::{ContainerOptions, Pull, Reach};
        let pull = |default| match self.pull {
            None => default,
            Some(PullArg::Never) => Pull::Never,
            Some(PullArg::Missing) => Pull::Missing,
            Some(PullArg::Always) => Pull::Always,
        };
        let image = self.image.clone();
        let reach = match self.reach {
            ReachArg::Auto => Reach::Auto,
            ReachArg::Socket => Reach::Socket,
            ReachArg::Port => Reach::Port,
        };
        Ok(match self.shadow {
            // auto never pulls an image unless --pull says so.
            ShadowKind::Auto => pgshadow::Provider::Auto(ContainerOptions { image, pull: pull(Pull::Never), reach }),
            ShadowKind::Local => pgshadow::Provider::Local,
            ShadowKind::Container => {
                pgshadow::Provider::Container(ContainerOptions { image, pull: pull(Pull::Missing), reach })
            }
            ShadowKind::Server => match url {
                Some(url) => pgshadow::Provider::Server(pgshadow::ServerOptions { url: url.to_owned() }),
                None => {
                    return Err(pgshadow::Error::Source {
                        path: "--shadow server".into(),
                        message: "needs --shadow-url URL (or PGSHADOW_SHADOW_URL): a superuser URL of the shadow \
                                  server"
                            .into(),
                        detail: String::new(),
                    })
                }
            },
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PullArg {
    /// The image must be here already.
    Never,
    /// Pull it when it is not here.
    Missing,
    /// Pull it every time.
    Always,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReachArg {
    /// A socket directory where the Docker daemon can share one (it runs on this machine), else a port.
    Auto,
    /// A socket directory shared with the container, which gets no network at all.
    Socket,
    /// A port published on 127.0.0.1 only, the container on Docker's default bridge network, passwords on every
    /// role.
    Port,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ShadowKind {
    /// The best one here: a local PostgreSQL of the source's version (with its extensions), else a container of
    /// an image Docker has for it, else the newest local PostgreSQL.
    Auto,
    /// A private cluster made with this machine's initdb and postgres.
    Local,
    /// A container of a PostgreSQL image (--image), with no network, reached through a private socket directory.
    Container,
    /// Scratch databases on a shadow server (--shadow-url).
    Server,
}

/// A `--cache-max-size` and the like: bytes, with a unit (500M, 10G).
pub(crate) fn byte_size(text: &str) -> Result<u64, String> {
    pgshadow::service::config::byte_size(text)
}

/// A `--sample` percentage: more than 0, at most 100.
pub(crate) fn percent(text: &str) -> Result<f64, String> {
    match text.trim_end_matches('%').parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        _ => Err(format!("{text} is not a percentage between 0 (excluded) and 100")),
    }
}
