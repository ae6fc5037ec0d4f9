//! What the proposal commands (`propose`, `proposals`, `apply`, `audit`) share: which store, which configuration,
//! and who is acting.

use std::path::PathBuf;

use pgshadow::proposal::tokens::{Action, Caller, Role, Tokens};
use pgshadow::proposal::Store;
use pgshadow::service::config::Config;

/// Where proposals are kept, and who is acting.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StoreArgs {
    /// The proposals store: a postgres:// URL (TLS and PG* variables as for psql), or an SQLite file. Default: the
    /// configuration's `store`, else proposals.sqlite in the data directory ($XDG_DATA_HOME/pgshadow, else
    /// ~/.local/share/pgshadow; as root /var/lib/pgshadow).
    #[arg(long, value_name = "URL|FILE", env = "PGSHADOW_STORE")]
    pub(crate) store: Option<String>,

    /// A serve configuration (serve.toml) to take `store`, `tokens_file`, `[targets]` and `[[sources]]` from.
    #[arg(long, value_name = "FILE", env = "PGSHADOW_CONFIG")]
    pub(crate) config: Option<PathBuf>,

    /// Who is acting, by name, in proposals, decisions and the audit log. Default: $USER. With a tokens file
    /// (--tokens or the configuration's tokens_file) and PGSHADOW_TOKEN, the token's name and role instead.
    #[arg(long, value_name = "NAME", env = "PGSHADOW_BY")]
    pub(crate) by: Option<String>,

    /// A tokens file (TOML, docs/proposals.md): with PGSHADOW_TOKEN set, the command acts as that token's name and
    /// only within its role.
    #[arg(long, value_name = "FILE", env = "PGSHADOW_TOKENS")]
    pub(crate) tokens: Option<PathBuf>,
}

impl StoreArgs {
    /// The configuration, if one is given.
    pub(crate) fn config(&self) -> pgshadow::Result<Option<Config>> {
        self.config.as_deref().map(Config::read).transpose()
    }

    /// Opens the store these arguments name.
    pub(crate) async fn open(&self) -> pgshadow::Result<Store> {
        let configured = self.config()?.and_then(|c| c.store);
        Store::open_or_default(self.store.clone().or(configured).as_deref()).await
    }

    /// Whether the command acts as a token's caller (a tokens file and PGSHADOW_TOKEN are given).
    pub(crate) fn authenticated(&self) -> bool {
        let file = self.tokens.is_some() || self.config().ok().flatten().is_some_and(|c| c.tokens_file.is_some());
        file && std::env::var("PGSHADOW_TOKEN").is_ok_and(|t| !t.is_empty())
    }

    /// Who is acting, allowed to do `action`: the token's caller when a tokens file and PGSHADOW_TOKEN are given,
    /// else `--by` (or $USER) in the role the action needs — on a terminal, the store's access is the check.
    pub(crate) fn caller(&self, action: Action) -> pgshadow::Result<Caller> {
        let caller = self.identify(action)?;
        caller.may(action)?;
        Ok(caller)
    }

    /// Who is acting, whatever their role: the token's caller, else `--by` (or $USER) in the role `action` needs.
    pub(crate) fn identify(&self, action: Action) -> pgshadow::Result<Caller> {
        let tokens_file = match &self.tokens {
            Some(file) => Some(file.clone()),
            None => self.config()?.and_then(|c| c.tokens_file),
        };
        let token = std::env::var("PGSHADOW_TOKEN").ok().filter(|t| !t.is_empty());
        if let (Some(file), Some(token)) = (tokens_file, token) {
            let tokens = Tokens::read(&file)?;
            return tokens.caller(&token).cloned().ok_or_else(|| {
                pgshadow::Error::Forbidden(format!("PGSHADOW_TOKEN is not a token of {}", file.display()))
            });
        }
        let name = self.by.clone().or_else(|| std::env::var("USER").ok()).filter(|n| !n.is_empty());
        let role = match action {
            Action::Read | Action::Propose => Role::Agent,
            Action::Decide => Role::Reviewer,
            Action::Apply => Role::Applier,
        };
        Ok(Caller { name: name.unwrap_or_else(|| "unknown".to_owned()), role })
    }
}

/// The exit code of a command that may be refused: 1 for a refusal, else 2 (with the error printed).
pub(crate) fn refused_or_failed(error: &pgshadow::Error) -> std::process::ExitCode {
    match error {
        pgshadow::Error::Refused(_) | pgshadow::Error::Forbidden(_) => {
            eprintln!("pgshadow: {error}");
            std::process::ExitCode::from(1)
        }
        other => super::fail(other),
    }
}

/// A tokio runtime for a command.
pub(crate) fn runtime() -> pgshadow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| pgshadow::Error::io("<tokio runtime>", e))
}
