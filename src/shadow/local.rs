//! The `local` provider: a private, throw-away cluster made with the machine's own `initdb` and `postgres`.
//!
//! The cluster lives in a fresh temporary directory (mode 0700) and listens on a Unix socket inside it only
//! (`listen_addresses = ''`), so nothing else on the machine can reach it. It runs with settings that are only safe
//! for a cluster that is thrown away (`fsync = off`, ...). As root, `initdb` and `postgres` run as an unprivileged OS
//! user (they refuse root), who is given the private directory.
//!
//! [`LocalCluster`] owns the server process and the directory: dropping it stops the server (immediate shutdown) and
//! deletes the directory, on every exit path that unwinds. The server also gets `SIGQUIT` from the kernel if this
//! process dies without unwinding (parent-death signal), so even a `SIGKILL`ed pgshadow leaves no server running.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::{Pid, User};

use super::cache::{CacheOptions, Slot};
use crate::error::{Error, Result};
use crate::postgres::{self, PgBinaries, Selection};

/// The bootstrap superuser of every local cluster.
pub(crate) const ADMIN_ROLE: &str = "pgshadow_admin";
/// The port number; with a private socket directory it only names the socket file.
pub(crate) const PORT: u16 = 5432;

/// Settings for a local cluster.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Which PostgreSQL to run: `--pg-bin`, `--pg-version`, the source's version; by default the newest one
    /// installed.
    pub postgres: Selection,
    /// The OS user to run the server as when pgshadow runs as root (`--os-user`); `postgres` if that user exists,
    /// else `nobody`, when `None`. Ignored when not running as root.
    pub os_user: Option<String>,
    /// How long `initdb` plus server start-up may take.
    pub startup_timeout: Duration,
    /// Keep the cluster, and a template database per source, in this cache between runs; `None` starts from
    /// scratch every time. Ignored for plans run as a superuser, which could change the cluster itself.
    pub cache: Option<CacheOptions>,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            postgres: Selection::default(),
            os_user: None,
            startup_timeout: Duration::from_secs(60),
            cache: None,
        }
    }
}

/// A running private cluster. Dropping it stops the server and deletes its directory.
pub(crate) struct LocalCluster {
    /// A container shadow's container (`--shadow container`), instead of a postmaster; removed before its socket
    /// directory goes.
    pub(crate) container: Option<Box<super::container::Container>>,
    /// Declared first: the server must stop before its directories go.
    postmaster: Option<Postmaster>,
    /// The cached cluster the data directory is in, if any; released after the server stopped.
    slot: Option<Slot>,
    /// Set on the normal end of a run that left the cached cluster as it found it.
    pub(crate) reusable: bool,
    /// Held for as long as the run lives: a directory whose lock is free belongs to a run that was killed.
    _alive: nix::fcntl::Flock<std::fs::File>,
    /// The run's private directory: the socket, the server log, and the data directory when not cached.
    dir: Option<tempfile::TempDir>,
    pub(crate) binaries: PgBinaries,
    /// Why it runs the PostgreSQL it runs.
    pub(crate) reason: String,
}

impl LocalCluster {
    /// The directory holding the server's Unix socket.
    pub(crate) fn socket_dir(&self) -> PathBuf {
        let dir = self.dir.as_ref().map_or(Path::new("/nonexistent"), |d| d.path());
        match self.container {
            Some(_) => dir.join("sock"),
            None => dir.to_path_buf(),
        }
    }

    /// The cached cluster in use, if any.
    pub(crate) fn slot(&self) -> Option<&Slot> {
        self.slot.as_ref()
    }

    fn data_dir(&self) -> PathBuf {
        self.slot.as_ref().map_or_else(|| self.socket_dir().join("data"), Slot::data_dir)
    }

    /// A container shadow: a private directory whose `sock/` the container serves its socket in. Async, unlike
    /// [`LocalCluster::start`]: nothing here blocks.
    pub(crate) async fn start_container(
        opts: &LocalOptions,
        image: &str,
        options: &super::container::ContainerOptions,
    ) -> Result<LocalCluster> {
        let deadline = Instant::now() + opts.startup_timeout;
        sweep_killed_runs(&std::env::temp_dir());
        let dir = private_dir(None)?;
        let alive = lock_alive(dir.path())?;
        let socket_dir = dir.path().join("sock");
        std::fs::create_dir(&socket_dir).map_err(|e| Error::io(&socket_dir, e))?;
        // The container's postgres user writes its socket here; the private directory around it keeps others out.
        std::fs::set_permissions(&socket_dir, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| Error::io(&socket_dir, e))?;
        let run_id = dir.path().file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let started =
            super::container::Container::start(image, options.pull, options.reach, &socket_dir, &run_id, deadline)
                .await?;
        // Client tools (pg_restore) come from this machine, when it has them.
        let binaries = PgBinaries::find(None).unwrap_or(PgBinaries { dir: PathBuf::new(), origin: "nowhere" });
        Ok(LocalCluster {
            reason: format!("the image's ({})", started.image),
            container: Some(Box::new(started)),
            postmaster: None,
            slot: None,
            reusable: false,
            _alive: alive,
            dir: Some(dir),
            binaries,
        })
    }

    /// Makes the directory, runs `initdb` (unless a cached cluster is ready) and starts the server. Blocking: call
    /// from a blocking context.
    pub(crate) fn start(opts: &LocalOptions) -> Result<LocalCluster> {
        LocalCluster::start_with(opts, false)
    }

    /// [`LocalCluster::start`]; with `clean_only` (a keep-warm supervisor), only on a cached cluster that is clean
    /// and free: an error, before anything is made, when there is none.
    pub(crate) fn start_with(opts: &LocalOptions, clean_only: bool) -> Result<LocalCluster> {
        let choice = postgres::select(&opts.postgres)?;
        if let Some(warning) = &choice.warning {
            tracing::warn!("{warning}");
        }
        tracing::info!(version = %choice.installation.version, reason = %choice.reason, "shadow PostgreSQL chosen");
        let binaries = choice.installation.binaries.clone();
        let deadline = Instant::now() + opts.startup_timeout;
        let run_as = os_user(opts.os_user.as_deref())?;
        if let Some(user) = &run_as {
            // As root the server runs as another OS user, who must reach the binaries (a build installed under
            // /root, say, is out of its reach).
            if let Some(blocked) = unreachable_ancestor(&binaries.dir, user) {
                return Err(Error::ShadowStart {
                    message: format!(
                        "the server's OS user {} cannot enter {}, so it cannot run the PostgreSQL binaries in {}; \
                         install builds where it can (`pgshadow postgres install N --cache-dir /var/cache/pgshadow`), \
                         or give --os-user a user who can",
                        user.name,
                        blocked.display(),
                        binaries.dir.display()
                    ),
                    log: String::new(),
                });
            }
        }
        sweep_killed_runs(&std::env::temp_dir());
        let dir = private_dir(run_as.as_ref())?;
        let alive = lock_alive(dir.path())?;
        let slot = match &opts.cache {
            Some(cache) => {
                // The version is known from choosing the build: no second `postgres --version`.
                let major = choice.installation.version.major.to_string();
                let slot = Slot::acquire(cache, &major, &binaries.dir, run_as.as_ref(), clean_only)?;
                if slot.is_none() && clean_only {
                    return Err(start_error("no clean cached cluster is free to keep warm".to_owned()));
                }
                if slot.is_none() {
                    tracing::info!("every cached cluster is in use by other runs; starting an uncached one");
                }
                slot
            }
            None => None,
        };
        let initdb = slot.as_ref().is_none_or(|s| s.fresh);
        let what = if initdb { "creating the shadow cluster (initdb)" } else { "starting the cached shadow" };
        tracing::info!(target: "pgshadow::progress", "{what}");
        let reason = choice.reason;
        let mut cluster = LocalCluster {
            container: None,
            postmaster: None,
            slot,
            reusable: false,
            _alive: alive,
            dir: Some(dir),
            binaries,
            reason,
        };
        let root = cluster.socket_dir().to_path_buf();
        let data = cluster.data_dir();
        if initdb {
            cluster.initdb(&data, run_as.as_ref())?;
            write_settings(&data)?;
        }
        let log = root.join("server.log");
        let postmaster = Postmaster::spawn(&cluster.binaries, &data, &root, &log, run_as.as_ref())?;
        cluster.postmaster = Some(postmaster);
        tracing::debug!(data = %data.display(), "shadow server started, waiting for it to accept connections");
        cluster.wait_ready(&log, deadline)?;
        Ok(cluster)
    }

    fn initdb(&self, data: &Path, run_as: Option<&User>) -> Result<()> {
        let mut cmd = Command::new(self.binaries.program("initdb"));
        cmd.arg("-D")
            .arg(data)
            .args(["-U", ADMIN_ROLE, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"])
            .current_dir(self.socket_dir())
            .stdin(Stdio::null());
        as_user(&mut cmd, run_as);
        let out = cmd.output().map_err(|e| Error::ShadowStart {
            message: format!("could not run {}: {e}", self.binaries.program("initdb").display()),
            log: String::new(),
        })?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::ShadowStart {
            message: format!("initdb failed ({})", out.status),
            log: format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        })
    }

    /// Polls the socket until the server accepts connections, the server dies, or the deadline passes.
    fn wait_ready(&self, log: &Path, deadline: Instant) -> Result<()> {
        let socket = self.socket_dir().join(format!(".s.PGSQL.{PORT}"));
        let lock = self.data_dir().join("postmaster.pid");
        loop {
            if let Some(status) = self.postmaster.as_ref().and_then(|p| p.exit_status()) {
                return Err(Error::ShadowStart {
                    message: format!("the server exited during start-up ({status})"),
                    log: tail(log),
                });
            }
            // postmaster.pid's last line reads "ready" once the server accepts connections.
            if socket.exists() && std::fs::read_to_string(&lock).is_ok_and(|s| s.contains("ready")) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::ShadowStart {
                    message: "the server did not accept connections in time".to_owned(),
                    log: tail(log),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Some(postmaster) = self.postmaster.take() {
            // A cached cluster is kept: a fast shutdown writes a checkpoint, so its next start needs no recovery.
            let signal = if self.slot.is_some() { Signal::SIGINT } else { Signal::SIGQUIT };
            let stopped = postmaster.stop(signal);
            self.reusable &= stopped;
        }
        if let Some(slot) = self.slot.take() {
            slot.release(self.reusable);
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            if let Err(e) = dir.close() {
                tracing::warn!(dir = %path.display(), error = %e, "could not remove the shadow's directory");
            }
        }
    }
}

/// The server process, watched by a thread that waits for it.
struct Postmaster {
    pid: Pid,
    /// Set by the watcher thread when the process has exited.
    status: Arc<Mutex<Option<ExitStatus>>>,
    watcher: Option<JoinHandle<()>>,
}

impl Postmaster {
    /// Starts `postgres -D data`. The process is spawned by a dedicated thread that then waits for it: the
    /// parent-death signal is tied to the spawning thread, and this one lives exactly as long as the server.
    fn spawn(
        binaries: &PgBinaries,
        data: &Path,
        socket_dir: &Path,
        log: &Path,
        run_as: Option<&User>,
    ) -> Result<Postmaster> {
        let log_file = std::fs::File::create(log).map_err(|e| Error::io(log, e))?;
        if let Some(user) = run_as {
            nix::unistd::chown(log, Some(user.uid), Some(user.gid))
                .map_err(|e| Error::io(log, std::io::Error::from(e)))?;
        }
        let log_err = log_file.try_clone().map_err(|e| Error::io(log, e))?;
        let mut cmd = Command::new(binaries.program("postgres"));
        // The socket goes into the run's private directory, never into a cached cluster's.
        cmd.arg("-D").arg(data).arg("-k").arg(socket_dir).stdin(Stdio::null()).stdout(log_file).stderr(log_err);
        cmd.current_dir(data).process_group(0);
        as_user(&mut cmd, run_as);
        // SAFETY: the closure only makes async-signal-safe system calls (prctl, getppid).
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGQUIT).map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        let (started_tx, started_rx) = mpsc::channel();
        let status = Arc::new(Mutex::new(None));
        let status_for_watcher = Arc::clone(&status);
        let watcher = std::thread::Builder::new()
            .name("pgshadow-postmaster".to_owned())
            .spawn(move || match cmd.spawn() {
                Ok(mut child) => {
                    let _ = started_tx.send(Ok(child.id()));
                    if let Ok(exit) = child.wait() {
                        *status_for_watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(exit);
                    }
                }
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                }
            })
            .map_err(|e| Error::ShadowStart {
                message: format!("could not start a thread: {e}"),
                log: String::new(),
            })?;
        let pid = match started_rx.recv() {
            Ok(Ok(pid)) => pid,
            Ok(Err(e)) => {
                let _ = watcher.join();
                return Err(Error::ShadowStart {
                    message: format!("could not run {}: {e}", binaries.program("postgres").display()),
                    log: String::new(),
                });
            }
            Err(_) => {
                return Err(Error::ShadowStart { message: "the server watcher died".to_owned(), log: String::new() })
            }
        };
        let pid = Pid::from_raw(i32::try_from(pid).expect("a Linux pid fits in i32"));
        Ok(Postmaster { pid, status, watcher: Some(watcher) })
    }

    fn exit_status(&self) -> Option<ExitStatus> {
        *self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the server with `signal` — SIGQUIT (immediate: every backend stops, no checkpoint; for data that is
    /// thrown away) or SIGINT (fast: backends stop, a checkpoint is written) — escalating to SIGKILL if it has not
    /// exited within five seconds. Returns whether it stopped as asked, cleanly.
    fn stop(mut self, signal: Signal) -> bool {
        let mut clean = true;
        if self.exit_status().is_none() {
            let _ = kill(self.pid, signal);
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.exit_status().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            if self.exit_status().is_none() {
                tracing::warn!(pid = self.pid.as_raw(), ?signal, "shadow server did not stop; killing it");
                let _ = kill(self.pid, Signal::SIGKILL);
                clean = false;
            }
        } else {
            clean = false;
        }
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
        clean && self.exit_status().is_some_and(|s| s.success())
    }
}

/// The OS user to run `initdb` and `postgres` as: `None` when not root (run as ourselves).
fn os_user(requested: Option<&str>) -> Result<Option<User>> {
    if !nix::unistd::geteuid().is_root() {
        if let Some(name) = requested {
            tracing::warn!(os_user = name, "--os-user only applies when running as root; ignoring it");
        }
        return Ok(None);
    }
    let candidates: Vec<&str> = match requested {
        Some(name) => vec![name],
        None => vec!["postgres", "nobody"],
    };
    for name in &candidates {
        if let Ok(Some(user)) = User::from_name(name) {
            if user.uid.is_root() {
                return Err(start_error(format!(
                    "--os-user {name} is root; initdb and postgres refuse to run as root"
                )));
            }
            return Ok(Some(user));
        }
    }
    Err(start_error(format!(
        "running as root, and none of the OS users {} exists to run the server as (initdb and postgres refuse \
         root); create one (`useradd --system postgres`) or pass --os-user NAME",
        candidates.join(", ")
    )))
}

fn start_error(message: String) -> Error {
    Error::ShadowStart { message, log: String::new() }
}

fn as_user(cmd: &mut Command, user: Option<&User>) {
    if let Some(user) = user {
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        cmd.env("HOME", &user.dir).env("USER", &user.name).env("LOGNAME", &user.name);
    }
}

/// The name of the lock file a run holds in its private directory.
const ALIVE: &str = "pgshadow.alive";

/// Locks the run's directory as in use, for as long as the returned lock lives.
fn lock_alive(dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let path = dir.join(ALIVE);
    let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| Error::io(&path, std::io::Error::from(e)))
}

/// Removes the private directories of runs that were killed (SIGKILL leaves no chance to clean up): directories
/// named like ours, holding a lock file that nobody holds, untouched for a minute. Their servers are gone already
/// (parent-death signal). Anything else is left alone.
fn sweep_killed_runs(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let ours =
            entry.file_name().to_str().is_some_and(|n| n.starts_with("pgshadow-") && !n.starts_with("pgshadow-test"));
        let old = entry.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
        if !ours || old.is_none_or(|age| age <= Duration::from_secs(60)) {
            continue;
        }
        let Ok(file) = std::fs::File::options().write(true).open(dir.join(ALIVE)) else {
            continue;
        };
        if let Ok(_lock) = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => tracing::info!(dir = %dir.display(), "removed the directory of a run that was killed"),
                Err(e) => {
                    tracing::debug!(dir = %dir.display(), error = %e, "could not remove a killed run's directory")
                }
            }
        }
    }
}

/// A fresh private directory (0700) for the cluster, given to `run_as` when set.
fn private_dir(run_as: Option<&User>) -> Result<tempfile::TempDir> {
    let base = std::env::temp_dir();
    let dir = tempfile::Builder::new()
        .prefix("pgshadow-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(&base)
        .map_err(|e| Error::io(&base, e))?;
    // The socket path must fit in sockaddr_un (107 bytes on Linux).
    let socket = dir.path().join(format!(".s.PGSQL.{PORT}"));
    if socket.as_os_str().len() > 107 {
        return Err(start_error(format!(
            "the socket path {} is too long for a Unix socket; set TMPDIR to a shorter directory such as /tmp",
            socket.display()
        )));
    }
    if let Some(user) = run_as {
        nix::unistd::chown(dir.path(), Some(user.uid), Some(user.gid))
            .map_err(|e| Error::io(dir.path(), std::io::Error::from(e)))?;
        if let Some(blocked) = unreachable_ancestor(&base, user) {
            return Err(start_error(format!(
                "the OS user {} cannot reach {} (the server's directory is inside it); set TMPDIR to a directory \
                 every user can enter, such as /tmp",
                user.name,
                blocked.display()
            )));
        }
    }
    Ok(dir)
}

/// The first directory from `/` down to `dir` that `user` may not enter, judged by its permission bits.
pub(super) fn unreachable_ancestor(dir: &Path, user: &User) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut path = PathBuf::new();
    for part in dir.components() {
        path.push(part);
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let mode = meta.mode();
        let can_enter = if meta.uid() == user.uid.as_raw() {
            mode & 0o100 != 0
        } else if meta.gid() == user.gid.as_raw() {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !can_enter {
            return Some(path);
        }
    }
    None
}

/// Appends the disposable-cluster settings to `postgresql.conf`. The socket directory is given at each start.
fn write_settings(data: &Path) -> Result<()> {
    let conf = data.join("postgresql.conf");
    let settings = format!(
        "\n# pgshadow: a private, disposable cluster\n\
         listen_addresses = ''\n\
         port = {PORT}\n\
         fsync = off\n\
         synchronous_commit = off\n\
         full_page_writes = off\n\
         wal_level = minimal\n\
         max_wal_senders = 0\n\
         autovacuum = off\n\
         track_functions = all\n\
         jit = off\n\
         logging_collector = off\n"
    );
    let mut file = std::fs::OpenOptions::new().append(true).open(&conf).map_err(|e| Error::io(&conf, e))?;
    file.write_all(settings.as_bytes()).map_err(|e| Error::io(&conf, e))
}

/// The last lines of a log file, for error messages.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
