//! A cached cluster kept warm between runs (`PGSHADOW_KEEP_WARM`), as sccache's server or Gradle's daemon are: after
//! a cached run, a small supervisor process (`pgshadow keep-warm`, which the run starts) takes the cluster's slot,
//! starts its server and keeps a fresh clone of the template ready. A later run hands it its plan over the Unix socket
//! `warm.sock` in the slot, and the supervisor runs and measures it in that clone, in a session its `Runner` opened
//! and warmed while no run waited, and answers with the measured statements (a supervisor without a runner lends the
//! clone instead: the run connects to it, runs the plan and hangs up). The supervisor then drops that clone and makes
//! the next one, once the run hung up (a CLI run holds its connection until its process exits, [`hold_until_exit`])
//! or [`HUNG_UP_WITHIN`] passed. It stops after the idle time with no run. It says it took a run on before it does
//! anything for it; a run that hears nothing within [`ACKNOWLEDGED_WITHIN`] (a stopped or hung supervisor) runs cold,
//! on a cluster of its own (the supervisor holds its slot's lock), and the supervisor, reached later, finds it gone
//! and runs nothing.
//!
//! What keeps one run's plan out of the next:
//! - every run gets a clone made from the template for it alone, which is dropped after it, and logs in there as a
//!   role made for that clone (a member of the plan role); while the supervisor runs, the templates accept no
//!   connection (`ALLOW_CONNECTIONS false`), so no plan reaches one;
//! - a run that hangs up without saying it ended cleanly (it crashed, was killed, or a statement of its plan committed:
//!   a spoiled clone) makes the supervisor stop and discard the whole cluster, as such a run does to a cached cluster
//!   without a supervisor;
//! - the supervisor holds the slot's lock, and the slot's `clean` mark is gone while it runs: if the supervisor is
//!   killed, its server gets SIGQUIT (the parent-death signal) and the next run finds the slot unclean and rebuilds
//!   it; a socket left behind refuses connections and is passed over;
//! - on the idle timeout, SIGTERM or SIGINT it drops its clones, opens the templates again and stops the server with
//!   a checkpoint, and the slot is marked clean for the next run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Mutex, Notify};

use super::cache::{CacheOptions, Template};
use super::{local, Backend, Endpoint, LocalOptions, PgBinaries, Role, Session, Shadow};
use crate::error::{Error, Result};

/// The supervisor's socket, in the slot's directory.
const SOCKET: &str = "warm.sock";
/// The supervisor's pid, in the slot's directory (for `ps` and for tests).
const PID_FILE: &str = "warm.pid";
/// The largest template a supervisor keeps warm: each run's clone is a copy of it (`CREATE DATABASE ... TEMPLATE`),
/// which beyond a few megabytes costs more than starting the cluster and using the template in place (a 57 MB
/// template took 200 ms to copy on the benchmark machine, about what a cached run without a supervisor takes).
const LARGEST_TEMPLATE: u64 = 16 << 20;
/// How long a run waits for a supervisor to acknowledge it ([`Answer::Started`]) before it passes the supervisor
/// over and runs cold: a supervisor that runs answers at once, one that is stopped or hung never does. A supervisor
/// reached after this (its run gone) finds the run's socket closed and runs nothing; a run it acknowledged waits for
/// its answer as long as the run's own time limit allows.
const ACKNOWLEDGED_WITHIN: Duration = Duration::from_secs(2);
/// How long a supervisor waits, after it answered a run whose plan it ran, for the run to hang up before it drops the
/// clone and makes the next one: a CLI run holds the connection until its process exits ([`hold_until_exit`]).
const HUNG_UP_WITHIN: Duration = Duration::from_secs(2);
/// The default idle time of a warm cluster.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(30);

/// How a cached run keeps its cluster warm afterwards.
#[derive(Debug, Clone)]
pub struct KeepWarm {
    /// How long the supervisor waits for another run before it stops the cluster.
    pub idle: Duration,
    /// The `pgshadow` binary that runs the supervisor (`pgshadow keep-warm`).
    pub program: PathBuf,
}

/// `PGSHADOW_KEEP_WARM`'s value: `30s`, `2m`, `500ms`, or seconds (`30`); `0` or `off` turns keeping warm off
/// (`None`).
pub fn parse_idle(text: &str) -> std::result::Result<Option<Duration>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len()));
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration such as 30s, 2m or 0"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        other => return Err(format!("`{other}` is not a unit of time: use ms, s or m (as in 30s)")),
    };
    Ok((seconds > 0.0).then(|| Duration::from_secs_f64(seconds)))
}

/// What a run asks the supervisor for: a clone of the template with this key, or, with `run`, the supervisor to run
/// its plan there ([`Runner`]).
#[derive(Debug, Serialize, Deserialize)]
struct Ask {
    key: String,
    /// The run's request, for the supervisor's [`Runner`].
    #[serde(default)]
    run: Option<String>,
    /// The run waits for [`Answer::Started`] before the answer itself. A run of an older build does not ask for it
    /// (and gets none); an older supervisor ignores it, and its answer comes first (a run takes it as it comes, if
    /// within [`ACKNOWLEDGED_WITHIN`]).
    #[serde(default)]
    acknowledge: bool,
}

/// What a supervisor runs plans with, for runs that hand it their plan rather than borrow a clone: the clone's session
/// is then opened and warmed before the run asks, and its backend's caches are warm. Measuring lives in a layer above
/// this one, which gives the runner ([`crate::keep_warm`]).
pub(crate) trait Runner: Send + Sync + 'static {
    /// Readies a spare clone for a run, off any run's path.
    fn prepare(&self, shadow: Arc<Shadow>, spare: SpareInfo) -> BoxFuture<'static, Prepared>;
    /// Runs `request` on the clone: the answer for the run, and whether the clone stayed clean (nothing committed).
    fn run(
        &self,
        shadow: Arc<Shadow>,
        spare: SpareInfo,
        prepared: Prepared,
        request: String,
    ) -> BoxFuture<'static, (String, bool)>;
}

/// What [`Runner::prepare`] readied, for [`Runner::run`] alone: the plan's session on the spare clone, opened and
/// warmed ahead of the run, when it could be opened.
pub(crate) type Prepared = Option<Session>;

/// A spare clone: the template it copies, its database and its own login role.
#[derive(Debug, Clone)]
pub(crate) struct SpareInfo {
    pub(crate) template: Template,
    pub(crate) database: String,
    pub(crate) login: String,
}

/// A spare clone and what the runner readied for it.
struct Spare {
    database: String,
    login: String,
    prepared: Prepared,
}

/// The supervisor's answer.
#[derive(Debug, Serialize, Deserialize)]
enum Answer {
    /// The supervisor took the run on (sent first, to a run that asked for it): the answer follows.
    Started,
    /// A clone for this run.
    Lent(Box<Lent>),
    /// The run's plan was run on this clone (already dropped): the runner's answer.
    Ran(Box<Lent>, String),
    /// No template with that key in this cluster, or no clone could be made.
    Miss,
}

impl Answer {
    /// The answer for a run whose plan was run here: the run builds its report from the runner's answer and measures
    /// nothing, so the template goes without what only measuring reads (its baseline and row counts, the bulk of
    /// it). Both are optional on the wire, as for a template recorded before they were kept: a run of an older build
    /// reads this answer, and a run of this build reads an older supervisor's, which still has them.
    fn ran(lent: Lent, ran: String) -> Answer {
        let template = Template { baseline: None, row_counts: Vec::new(), ..lent.template };
        Answer::Ran(Box::new(Lent { template, ..lent }), ran)
    }
}

/// A clone lent to one run, and how to reach it.
#[derive(Debug, Serialize, Deserialize)]
struct Lent {
    database: String,
    login: String,
    socket_dir: PathBuf,
    server_version: String,
    template: Template,
}

/// A clone a supervisor lent this run. Dropping it without [`Lease::finish`] tells the supervisor the run did not
/// end cleanly.
pub(crate) struct Lease {
    stream: UnixStream,
    /// The template the clone was made from.
    pub(crate) template: Template,
    /// The clone.
    pub(crate) database: String,
    /// The clone's own login role.
    pub(crate) login: String,
    /// The cached cluster's slot directory.
    pub(crate) slot: PathBuf,
}

impl Lease {
    /// Gives the clone back; `clean` when the run ended normally and nothing of its plan was committed.
    pub(crate) async fn finish(mut self, clean: bool) {
        if clean {
            let _ = self.stream.write_all(b"clean\n").await;
            let _ = self.stream.flush().await;
        }
    }
}

/// What a supervisor did for a run ([`attach`]).
pub(crate) enum Served {
    /// Lent a clone: the run connects to it, then gives it back ([`Lease::finish`]).
    Lent(Box<Lease>),
    /// Ran the run's plan on a clone of the template, now dropped: the runner's answer.
    Ran(Box<Ran>),
}

/// A plan a supervisor ran for a run: where, and what its runner answered.
pub(crate) struct Ran {
    pub(crate) template: Template,
    pub(crate) database: String,
    pub(crate) login: String,
    pub(crate) slot: PathBuf,
    pub(crate) answer: String,
    /// The connection to the supervisor: closed with this, or with [`hold_until_exit`] held in [`HELD`].
    held: Option<UnixStream>,
}

/// Whether this process holds its runs' connections to a supervisor until it exits ([`hold_until_exit`]).
static HOLD_UNTIL_EXIT: AtomicBool = AtomicBool::new(false);
/// The connection of this process's last run a supervisor ran a plan for, when it holds them until it exits.
static HELD: std::sync::Mutex<Option<std::os::unix::net::UnixStream>> = std::sync::Mutex::new(None);

/// Makes this process hold the connection of each run a supervisor ran a plan for until it exits (or its next such
/// run is answered), as a CLI run does: the supervisor drops that run's clone and makes the next one (a `DROP
/// DATABASE` and a `CREATE DATABASE`, whose file copy and checkpoints keep the machine's cores busy for a good 100 ms)
/// once the connection closes, or after [`HUNG_UP_WITHIN`], so that the run writes its report and exits first
/// instead of taking several times as long for it. A process that goes on to other work must not: the next spare
/// clone would wait [`HUNG_UP_WITHIN`] after each of its runs.
pub fn hold_until_exit() {
    HOLD_UNTIL_EXIT.store(true, Ordering::SeqCst);
}

impl Drop for Ran {
    fn drop(&mut self) {
        if !HOLD_UNTIL_EXIT.load(Ordering::SeqCst) {
            return;
        }
        // A plain socket, out of the runtime: it outlives it until the process exits.
        if let Some(stream) = self.held.take().and_then(|s| s.into_std().ok()) {
            // Replacing the last run's connection closes it.
            *HELD.lock().unwrap_or_else(|e| e.into_inner()) = Some(stream);
        }
    }
}

/// Asks the supervisors of the cached clusters of `binaries` (major version `major`) for a clone of the template
/// `key`: the first that has it lends one, or, with `run`, runs it there ([`Runner`]). `None` when no supervisor runs
/// there or none has the template (or one did not take the run on within [`ACKNOWLEDGED_WITHIN`], or a run's answer
/// was lost: the run then goes on as if there were none; a supervisor whose client left mid-run discards its
/// cluster).
pub(crate) async fn attach(
    cache: &CacheOptions,
    major: &str,
    binaries: &PgBinaries,
    key: &str,
    run: Option<&str>,
) -> Option<(Endpoint, String, Served)> {
    let clusters = cache.clusters(major, &binaries.dir);
    for n in 0..super::cache::SLOTS {
        let socket = clusters.join(format!("slot-{n}")).join(SOCKET);
        if !socket.exists() {
            continue;
        }
        match ask(&socket, key, run).await {
            Ok(Some(found)) => return Some(found),
            Ok(None) => {}
            Err(e) => tracing::debug!(socket = %socket.display(), error = %e, "no warm cluster behind this socket"),
        }
    }
    None
}

async fn ask(socket: &Path, key: &str, run: Option<&str>) -> std::io::Result<Option<(Endpoint, String, Served)>> {
    let mut stream = tokio::time::timeout(Duration::from_secs(2), UnixStream::connect(socket)).await??;
    let ask = Ask { key: key.to_owned(), run: run.map(str::to_owned), acknowledge: true };
    let mut asked = serde_json::to_string(&ask).map_err(std::io::Error::other)?;
    asked.push('\n');
    stream.write_all(asked.as_bytes()).await?;
    let mut reader = BufReader::new(&mut stream);
    let mut line = String::new();
    let acknowledged = tokio::time::timeout(ACKNOWLEDGED_WITHIN, reader.read_line(&mut line)).await;
    if acknowledged.is_err() {
        // Stopped or hung: dropping the stream closes the socket, so the supervisor never runs this run.
        let message = format!("the supervisor did not take the run on within {ACKNOWLEDGED_WITHIN:?}");
        return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, message));
    }
    acknowledged??;
    let read = |line: &str| serde_json::from_str::<Answer>(line).map_err(std::io::Error::other);
    let mut answer = read(&line)?;
    if let Answer::Started = answer {
        line.clear();
        match run {
            // The run's own time limit bounds a plan the supervisor runs.
            Some(_) => reader.read_line(&mut line).await?,
            // Making a clone on the spot (no spare ready) takes a CREATE DATABASE.
            None => tokio::time::timeout(Duration::from_secs(30), reader.read_line(&mut line)).await??,
        };
        answer = read(&line)?;
    }
    let (lent, ran) = match answer {
        Answer::Lent(lent) => (lent, None),
        Answer::Ran(lent, ran) => (lent, Some(ran)),
        Answer::Miss | Answer::Started => return Ok(None),
    };
    let mut base = tokio_postgres::Config::new();
    base.application_name("pgshadow").host_path(&lent.socket_dir).port(local::PORT);
    let endpoint = Endpoint { base, passwords: Default::default(), secret: None, tls: None, libpq_env: Vec::new() };
    let slot = socket.parent().map(Path::to_path_buf).unwrap_or_default();
    let Lent { database, login, template, server_version, .. } = *lent;
    let served = match ran {
        Some(answer) => Served::Ran(Box::new(Ran { template, database, login, slot, answer, held: Some(stream) })),
        None => Served::Lent(Box::new(Lease { stream, template, database, login, slot })),
    };
    Ok(Some((endpoint, server_version, served)))
}

impl Shadow {
    /// The shadow of a warm cluster a supervisor runs: this run only connects to the clone it was lent.
    pub(crate) fn attached(
        endpoint: Endpoint,
        server_version: String,
        binaries: PgBinaries,
        (reason, provider_reason): (String, String),
        slot: PathBuf,
    ) -> Shadow {
        Shadow {
            backend: Backend::Warm(Attached { binaries, reason, slot }),
            endpoint,
            server_version,
            provider_reason,
            installed: None,
            next_database: std::sync::atomic::AtomicUsize::new(1),
            databases: std::sync::Mutex::default(),
        }
    }
}

/// A warm cluster, as a run that was lent a clone of it sees it.
pub(super) struct Attached {
    pub(super) binaries: PgBinaries,
    pub(super) reason: String,
    /// The cached cluster's slot directory.
    pub(super) slot: PathBuf,
}

/// Starts a supervisor for the cached cluster of `binaries` in `cache` (`program keep-warm`), in a session of its
/// own, and waits until it takes runs (or says it will not: no clean cluster was free).
pub(crate) async fn spawn(keep: &KeepWarm, cache: &CacheOptions, binaries: &Path, os_user: Option<&str>) {
    let mut cmd = tokio::process::Command::new(&keep.program);
    cmd.arg("keep-warm")
        .arg("--cache-dir")
        .arg(&cache.dir)
        .arg("--cache-max-size")
        .arg(cache.max_size.to_string())
        .arg("--pg-bin")
        .arg(binaries)
        .arg("--idle-ms")
        .arg(keep.idle.as_millis().to_string());
    if let Some(user) = os_user {
        cmd.arg("--os-user").arg(user);
    }
    cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null());
    // SAFETY: setsid is async-signal-safe. A session of its own: the terminal's Ctrl-C is not for it.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from));
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            tracing::debug!(error = %e, "could not start the keep-warm supervisor");
            return;
        }
    };
    if let Some(stdout) = child.stdout.take() {
        let mut line = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), BufReader::new(stdout).read_line(&mut line)).await;
        tracing::debug!(answer = line.trim(), pid = child.id(), "keep-warm supervisor started");
    }
}

/// The supervisor's state, shared with the tasks serving runs.
struct Supervisor {
    shadow: Arc<Shadow>,
    /// One ready clone per template key (`None` while it is being made).
    spares: Mutex<HashMap<String, Option<Spare>>>,
    /// What runs that hand over their plan are run with.
    runner: Option<Arc<dyn Runner>>,
    /// Runs holding a clone now.
    active: AtomicUsize,
    last_used: std::sync::Mutex<Instant>,
    /// A run ended without saying it ended cleanly: the cluster is discarded.
    poisoned: AtomicBool,
    stop: Notify,
    /// Set once the supervisor stops taking runs: no spare clone is made from then on.
    stopping: AtomicBool,
}

/// Runs a supervisor (`pgshadow keep-warm`): takes a clean cached cluster of `options` that no run holds (an error
/// when there is none), starts it, calls `ready` once runs can reach it, and serves them until `idle` passes with
/// no run, SIGTERM or SIGINT, or a run that did not end cleanly.
pub(crate) async fn supervise(
    options: &LocalOptions,
    idle: Duration,
    ready: impl FnOnce(),
    runner: Option<Arc<dyn Runner>>,
) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut term, mut int) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
    let (Ok(term), Ok(int)) = (term.as_mut(), int.as_mut()) else {
        return Err(Error::io("<signal handlers>", std::io::Error::other("could not install")));
    };
    let shadow = Shadow::start_warm(options).await?;
    let templates: Vec<Template> =
        shadow.cache_slot().map(|s| s.templates().into_iter().map(|(t, _)| t).collect()).unwrap_or_default();
    if templates.last().is_none_or(|t| t.size_bytes > LARGEST_TEMPLATE) {
        tracing::info!("not keeping the cluster warm: its last template is too large to clone for every run");
        return shadow.shutdown().await;
    }
    let shadow = Arc::new(shadow);
    let slot = shadow.cache_slot().map(|s| s.dir().to_path_buf()).expect("a warm shadow has its slot");
    let socket = slot.join(SOCKET);
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).map_err(|e| Error::io(&socket, e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).map_err(|e| Error::io(&socket, e))?;
    }
    let _ = std::fs::write(slot.join(PID_FILE), std::process::id().to_string());
    let served = async {
        allow_connections(&shadow, &templates, false).await?;
        let supervisor = Arc::new(Supervisor {
            shadow: Arc::clone(&shadow),
            spares: Mutex::default(),
            runner,
            active: AtomicUsize::new(0),
            last_used: std::sync::Mutex::new(Instant::now()),
            poisoned: AtomicBool::new(false),
            stop: Notify::new(),
            stopping: AtomicBool::new(false),
        });
        ready();
        // The template the last run used (the most recently used one) gets its spare first.
        if let Some(template) = templates.last().cloned() {
            let first = Arc::clone(&supervisor);
            tokio::spawn(async move { first.make_spare(&template).await });
        }
        tracing::info!(slot = %slot.display(), idle_ms = idle.as_millis() as u64, "warm cluster ready");
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        let supervisor = Arc::clone(&supervisor);
                        tokio::spawn(async move { supervisor.serve(stream).await });
                    }
                }
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    let since = supervisor.last_used.lock().unwrap_or_else(|e| e.into_inner()).elapsed();
                    if supervisor.active.load(Ordering::SeqCst) == 0 && since >= idle {
                        tracing::info!("idle: stopping the warm cluster");
                        break;
                    }
                }
                _ = supervisor.stop.notified() => break,
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        // No run reaches the cluster from here on, and no spare is made: a run being served makes none after it.
        supervisor.stopping.store(true, Ordering::SeqCst);
        let _ = std::fs::remove_file(&socket);
        drop(listener);
        // A spare being made is waited for, then dropped with the others.
        let deadline = Instant::now() + Duration::from_secs(30);
        while supervisor.spares.lock().await.values().any(Option::is_none) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let spares: Vec<Spare> = supervisor.spares.lock().await.drain().filter_map(|(_, c)| c).collect();
        for spare in spares {
            drop(spare.prepared);
            drop_clone(&shadow, &spare.database, &spare.login).await;
        }
        Result::Ok(supervisor.poisoned.load(Ordering::SeqCst))
    };
    let outcome = served.await;
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(slot.join(PID_FILE));
    let poisoned = !matches!(outcome, Ok(false));
    if !poisoned {
        allow_connections(&shadow, &templates, true).await?;
    } else {
        shadow.spoil();
    }
    // Tasks of runs still being served hold the shadow for a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut shadow = shadow;
    loop {
        match Arc::try_unwrap(shadow) {
            Ok(owned) => {
                owned.shutdown().await?;
                break;
            }
            Err(shared) if Instant::now() < deadline => {
                shadow = shared;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(shared) => {
                shared.spoil();
                break;
            }
        }
    }
    outcome.map(|_| ())
}

/// Opens or closes the templates to connections.
async fn allow_connections(shadow: &Shadow, templates: &[Template], allow: bool) -> Result<()> {
    let admin = shadow.admin("postgres").await?;
    for template in templates {
        let sql = format!("ALTER DATABASE {} ALLOW_CONNECTIONS {allow}", crate::text::quote_ident(&template.database));
        admin.client().batch_execute(&sql).await.map_err(|e| Error::pg("opening or closing a template", e))?;
    }
    Ok(())
}

impl Supervisor {
    /// Serves one run: lends it a clone of the template it asks for, and drops the clone when it hangs up; or runs
    /// the plan it hands over there ([`Runner`]) and answers with the outcome.
    async fn serve(self: Arc<Self>, stream: UnixStream) {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let Ok(Some(line)) = lines.next_line().await else { return };
        let Ok(ask) = serde_json::from_str::<Ask>(&line) else { return };
        let Some(template) = self.shadow.cache_slot().and_then(|slot| slot.template(&ask.key)) else {
            let _ = write.write_all(answer(&Answer::Miss).as_bytes()).await;
            return;
        };
        // Before anything is done for the run: a run that gave up waiting for this has closed its socket, and the
        // write fails (it ran cold meanwhile).
        if ask.acknowledge && write.write_all(answer(&Answer::Started).as_bytes()).await.is_err() {
            tracing::info!("a run left before it was taken on: nothing run for it");
            return;
        }
        self.active.fetch_add(1, Ordering::SeqCst);
        let spare = match self.take_spare(&template.key).await {
            Some(spare) => Ok(spare),
            None => make_clone(&self.shadow, &template).await.map(|(database, login)| Spare {
                database,
                login,
                prepared: None,
            }),
        };
        let spare = match spare {
            Ok(spare) => spare,
            Err(e) => {
                tracing::warn!(error = %e, "could not make a clone for a run");
                let _ = write.write_all(answer(&Answer::Miss).as_bytes()).await;
                self.done();
                return;
            }
        };
        let lent = Lent {
            database: spare.database.clone(),
            login: spare.login.clone(),
            socket_dir: self.shadow.endpoint().host().into(),
            server_version: self.shadow.server_version().to_owned(),
            template: template.clone(),
        };
        // The next run's clone: while this one runs when it runs in its own process, after it hung up when it runs
        // here (a `CREATE DATABASE` would compete with it for the same cores).
        let next = Arc::clone(&self);
        let next_template = template.clone();
        let make_next = async move { next.make_spare(&next_template).await };
        let mut make_next = Some(make_next);
        if ask.run.is_none() || self.runner.is_none() {
            tokio::spawn(make_next.take().expect("not taken yet"));
        }
        let clean = match (ask.run, &self.runner) {
            (Some(request), Some(runner)) => {
                let info = SpareInfo { template, database: spare.database.clone(), login: spare.login.clone() };
                // On a task of its own: a run that panics answers nothing and counts as not clean, and this
                // supervisor still drops the clone and goes idle. A run whose client hangs up is cancelled, and
                // counts as not clean too.
                let mut run = tokio::spawn(runner.run(Arc::clone(&self.shadow), info, spare.prepared, request));
                let outcome = tokio::select! {
                    done = &mut run => done.ok(),
                    _ = lines.next_line() => {
                        run.abort();
                        None
                    }
                };
                match outcome {
                    Some((ran, clean)) => {
                        let sent = write.write_all(answer(&Answer::ran(lent, ran)).as_bytes()).await;
                        // The run builds and writes its report now, and exits: the clone's DROP DATABASE and the
                        // next one's CREATE DATABASE wait until it hangs up, not to compete with it for the cores.
                        if sent.is_ok() {
                            let _ = tokio::time::timeout(HUNG_UP_WITHIN, lines.next_line()).await;
                        }
                        clean && sent.is_ok()
                    }
                    None => false,
                }
            }
            _ => {
                drop(spare.prepared);
                let sent = write.write_all(answer(&Answer::Lent(Box::new(lent))).as_bytes()).await.is_ok();
                sent && matches!(lines.next_line().await, Ok(Some(line)) if line == "clean")
            }
        };
        if let Some(make_next) = make_next {
            tokio::spawn(make_next);
        }
        drop_clone(&self.shadow, &spare.database, &spare.login).await;
        if !clean {
            tracing::info!("a run did not end cleanly: discarding the warm cluster");
            self.poisoned.store(true, Ordering::SeqCst);
            self.stop.notify_one();
        }
        self.done();
    }

    fn done(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.active.fetch_sub(1, Ordering::SeqCst);
    }

    /// The spare clone of the template `key`: a ready one, or the one being made (waited for: a second clone made
    /// at the same time would take longer); `None` when there is neither.
    async fn take_spare(&self, key: &str) -> Option<Spare> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            {
                let mut spares = self.spares.lock().await;
                match spares.get(key) {
                    Some(Some(_)) => return spares.remove(key).flatten(),
                    Some(None) if Instant::now() < deadline => {}
                    _ => return None,
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Makes the spare clone of `template`, unless there is one or one is being made.
    async fn make_spare(&self, template: &Template) {
        {
            let mut spares = self.spares.lock().await;
            // Checked under the lock the supervisor's stop takes to wait for the spares being made.
            if spares.contains_key(&template.key) || self.stopping.load(Ordering::SeqCst) {
                return;
            }
            spares.insert(template.key.clone(), None);
        }
        match make_clone(&self.shadow, template).await {
            Ok((database, login)) => {
                let prepared = match &self.runner {
                    Some(runner) => {
                        let info =
                            SpareInfo { template: template.clone(), database: database.clone(), login: login.clone() };
                        runner.prepare(Arc::clone(&self.shadow), info).await
                    }
                    None => None,
                };
                self.spares.lock().await.insert(template.key.clone(), Some(Spare { database, login, prepared }));
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not make a spare clone");
                self.spares.lock().await.remove(&template.key);
            }
        }
    }
}

fn answer(answer: &Answer) -> String {
    let mut line = serde_json::to_string(answer).unwrap_or_else(|_| "\"Miss\"".to_owned());
    line.push('\n');
    line
}

/// A clone of `template` owned by the plan role, with a login role of its own: database and login.
async fn make_clone(shadow: &Shadow, template: &Template) -> Result<(String, String)> {
    let name = shadow.new_database_name();
    // Copying the files is faster than WAL-logging every page (PostgreSQL 15's default) on a cluster with fsync off.
    let strategy = match crate::postgres::Version::parse(shadow.server_version()) {
        Some(version) if version.major >= 15 => " STRATEGY FILE_COPY",
        _ => "",
    };
    let sql = format!(
        "CREATE DATABASE {} TEMPLATE {} OWNER {}{strategy}",
        crate::text::quote_ident(&name),
        crate::text::quote_ident(&template.database),
        shadow.role(Role::Plan)
    );
    let admin = shadow.admin(shadow.maintenance_database()).await?;
    admin.client().batch_execute(&sql).await.map_err(|e| Error::pg("creating a clone of the template", e))?;
    drop(admin);
    // The supervisor's pid in the name: a role a killed supervisor left in a cluster never stands in the way.
    let login = format!("{}run_{}_{name}", super::ROLE_PREFIX, std::process::id());
    if let Err(e) = shadow.create_login_role(&login).await {
        let _ = shadow.drop_database(&name).await;
        return Err(e);
    }
    Ok((name, login))
}

async fn drop_clone(shadow: &Shadow, database: &str, login: &str) {
    let dropped = async {
        shadow.drop_database(database).await?;
        shadow.drop_login_role(login).await
    };
    if let Err(e) = dropped.await {
        tracing::warn!(database, error = %e, "could not drop a used clone");
        shadow.spoil();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_times_are_read_as_people_write_them() {
        assert_eq!(parse_idle("30s"), Ok(Some(Duration::from_secs(30))));
        assert_eq!(parse_idle("30"), Ok(Some(Duration::from_secs(30))));
        assert_eq!(parse_idle("2m"), Ok(Some(Duration::from_secs(120))));
        assert_eq!(parse_idle("500ms"), Ok(Some(Duration::from_millis(500))));
        assert_eq!(parse_idle("0"), Ok(None));
        assert_eq!(parse_idle("off"), Ok(None));
        assert!(parse_idle("soon").is_err());
        assert!(parse_idle("5h").is_err());
    }

    #[test]
    fn a_ran_answer_carries_no_baseline_and_reads_as_before() {
        let template = Template {
            key: "k".into(),
            database: "template_k".into(),
            source: "schema.sql".into(),
            schema: None,
            fidelity: Default::default(),
            sample: None,
            row_counts: vec![(16384, 5)],
            baseline: Some(serde_json::json!({"tables": [1, 2, 3]})),
            data_loaded: true,
            size_bytes: 1,
        };
        let lent = |template: Template| Lent {
            database: "clone".into(),
            login: "login".into(),
            socket_dir: "/tmp".into(),
            server_version: "15.0".into(),
            template,
        };
        let sent = answer(&Answer::ran(lent(template.clone()), "measured".into()));
        let wire: serde_json::Value = serde_json::from_str(&sent).expect("json");
        let on_wire = &wire["Ran"][0]["template"];
        assert_eq!(on_wire["baseline"], serde_json::Value::Null, "{sent}");
        assert_eq!(on_wire["row_counts"], serde_json::json!([]), "{sent}");
        let Ok(Answer::Ran(read, ran)) = serde_json::from_str(&sent) else { panic!("a Ran answer: {sent}") };
        assert_eq!((read.template.key.as_str(), ran.as_str()), ("k", "measured"));
        // An older supervisor's answer, with the template whole, still reads.
        let older = answer(&Answer::Ran(Box::new(lent(template)), "measured".into()));
        assert!(older.contains("\"baseline\":{"), "{older}");
        assert!(matches!(serde_json::from_str(&older), Ok(Answer::Ran(..))), "{older}");
    }
}
