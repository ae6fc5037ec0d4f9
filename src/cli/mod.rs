//! The commands of the `pgshadow` binary, one module per command: its clap arguments and a `run` that does it and
//! returns the exit code. What several commands share lives beside them: [`args`] (where the shadow runs, the
//! sources a service prepares, value parsers), [`output`] (report formats and how they are written), [`logging`]
//! and [`progress`] (standard error). Errors become a message and exit code 2 here, in [`fail`].
//!
//! A new command is a new file here, with a variant of `Command` in `src/main.rs` that hands its arguments to it.

use std::process::ExitCode;

pub(crate) mod apply;
pub(crate) mod args;
pub(crate) mod audit;
pub(crate) mod cache;
pub(crate) mod explain;
pub(crate) mod logging;
pub(crate) mod mcp;
pub(crate) mod output;
pub(crate) mod policy;
pub(crate) mod postgres;
pub(crate) mod profile;
pub(crate) mod progress;
pub(crate) mod proposals;
pub(crate) mod propose;
pub(crate) mod rules;
pub(crate) mod run;
pub(crate) mod schema;
pub(crate) mod serve;
pub(crate) mod store;

/// Like other Unix tools, stop quietly when the reader of our output goes away (`pgshadow rules | head`) instead of
/// panicking on a broken pipe. A dry-run writes its reports only after its shadow is gone.
pub(crate) fn restore_sigpipe() {
    // SAFETY: restoring the default disposition of SIGPIPE, before any thread starts.
    unsafe {
        let _ = nix::sys::signal::signal(nix::sys::signal::Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl);
    }
}

/// Prints an error of the library (and its hint) on standard error; the exit code of a tool error, 2.
pub(crate) fn fail(error: &pgshadow::Error) -> ExitCode {
    eprintln!("error: {error}");
    if let Some(hint) = error.hint() {
        eprintln!("hint: {hint}");
    }
    ExitCode::from(2)
}

/// Says that a signal stopped the command (after its shadow was removed); its exit code, 128 + the signal.
pub(crate) fn interrupted(signal: &str, code: u8) -> ExitCode {
    progress::clear();
    eprintln!("pgshadow: interrupted by {signal}; the shadow was removed");
    ExitCode::from(code)
}
