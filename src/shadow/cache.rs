//! The shadow cache: local clusters kept on disk between runs, holding one template database per source, so that a
//! repeated dry-run starts a server and clones a template instead of running `initdb` and loading the source again.
//!
//! Layout, under the cache directory (`$XDG_CACHE_HOME/pgshadow`, `--cache-dir`):
//!
//! ```text
//! clusters/pg15-1a2b3c4d/          one per server binaries (major version + directory)
//!     slot-0/                      one cluster; a run locks a slot for itself, so runs never share a server
//!         lock                     flock(2): held by the run using the slot
//!         clean                    present only while the cluster is known good (see below)
//!         data/                    the cluster (owned by the server's OS user)
//!         templates/<key>.json     one per template database: the source's load report; mtime = last use
//! ```
//!
//! Safety: a run takes a slot's lock, deletes `clean`, and writes it back only when it ends on the normal path with
//! no statement of any plan having committed (a spoiled database) and every clone dropped. A slot found without
//! `clean` (its run was killed, crashed, or committed something) is wiped and rebuilt, so what a plan did never
//! reaches a later run. Concurrent runs take different slots; when every slot is busy the run goes uncached.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::fcntl::{Flock, FlockArg};
use nix::unistd::User;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::report::{Fidelity, SampleInfo, SchemaInfo};

/// How many clusters per server binaries may exist side by side (one per concurrent run).
pub(crate) const SLOTS: usize = 4;

/// Where the cache lives and how big it may grow.
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// The cache directory.
    pub dir: PathBuf,
    /// The most the template databases of one cluster may take on disk; the least recently used ones are dropped
    /// beyond it.
    pub max_size: u64,
    /// Keep the cluster running after a run, for the next one ([`super::warm`]); `None` stops it at once.
    pub keep_warm: Option<super::warm::KeepWarm>,
}

/// The default size cap of a cluster's templates: 4 GiB.
pub const DEFAULT_MAX_SIZE: u64 = 4 << 30;

impl CacheOptions {
    /// The cache in `dir`, with the default size cap.
    pub fn new(dir: impl Into<PathBuf>) -> CacheOptions {
        CacheOptions { dir: dir.into(), max_size: DEFAULT_MAX_SIZE, keep_warm: None }
    }

    /// `$XDG_CACHE_HOME/pgshadow`, else `$HOME/.cache/pgshadow`; as root without `XDG_CACHE_HOME`,
    /// `/var/cache/pgshadow`, since root's home is closed to the OS user the server runs as.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(dir).join("pgshadow"));
        }
        if nix::unistd::geteuid().is_root() {
            return Some(PathBuf::from("/var/cache/pgshadow"));
        }
        let home = std::env::var_os("HOME").filter(|d| !d.is_empty())?;
        Some(PathBuf::from(home).join(".cache").join("pgshadow"))
    }

    /// The directory of the clusters made with binaries of `major` in `bin_dir`.
    pub(crate) fn clusters(&self, major: &str, bin_dir: &Path) -> PathBuf {
        let mut key = bin_dir.as_os_str().as_encoded_bytes().to_vec();
        key.extend_from_slice(CLUSTER_GENERATION.as_bytes());
        let tag = &crate::text::hex_digest(&key)[..8];
        self.dir.join("clusters").join(format!("pg{major}-{tag}"))
    }
}

/// Changes whenever what a cached cluster holds besides templates changes (its roles and their rights), so that a
/// cluster an older pgshadow made is never reused. Generation 2: sources load as a non-superuser.
const CLUSTER_GENERATION: &str = "\0generation 2";

/// One cached cluster, locked by this run for as long as the value lives.
pub(crate) struct Slot {
    dir: PathBuf,
    _lock: Flock<File>,
    /// The cluster was rebuilt by this run (`initdb`), so it holds no template yet.
    pub(crate) fresh: bool,
    /// The size cap of the templates ([`CacheOptions::max_size`]).
    pub(crate) max_size: u64,
    /// Template databases a dry-run of this process is using in place.
    in_use: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Slot {
    /// Locks a free slot for `major`'s binaries in `bin_dir`, wiping it if it is not known good; `None` when every
    /// slot is busy. The slot's directory is given to `run_as` (the server's OS user, when running as root).
    pub(crate) fn acquire(
        options: &CacheOptions,
        major: &str,
        bin_dir: &Path,
        run_as: Option<&User>,
        clean_only: bool,
    ) -> Result<Option<Slot>> {
        let clusters = options.clusters(major, bin_dir);
        create_shared_dirs(&options.dir, &clusters, run_as)?;
        if let Some(user) = run_as {
            if let Some(blocked) = super::local::unreachable_ancestor(&clusters, user) {
                return Err(Error::Source {
                    path: options.dir.clone(),
                    message: format!(
                        "the cache directory cannot be used: the server's OS user {} cannot enter {}; choose another \
                         with --cache-dir (such as /var/cache/pgshadow) or run with --no-cache",
                        user.name,
                        blocked.display()
                    ),
                    detail: String::new(),
                });
            }
        }
        for n in 0..SLOTS {
            let dir = clusters.join(format!("slot-{n}"));
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let lock_path = dir.join("lock");
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| Error::io(&lock_path, e))?;
            let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
                continue;
            };
            if clean_only && !(dir.join("clean").exists() && dir.join("data").join("PG_VERSION").exists()) {
                continue;
            }
            let mut slot =
                Slot { dir, _lock: lock, fresh: false, max_size: options.max_size, in_use: Default::default() };
            slot.open(run_as)?;
            return Ok(Some(slot));
        }
        Ok(None)
    }

    /// Wipes the cluster unless it was left clean, and marks it in use (not clean) until [`Slot::release`].
    fn open(&mut self, run_as: Option<&User>) -> Result<()> {
        let clean = self.dir.join("clean");
        let usable = clean.exists() && self.data_dir().join("PG_VERSION").exists();
        if !usable {
            wait_for_stale_server(&self.data_dir())?;
            for stale in [self.data_dir(), self.dir.join("templates")] {
                if stale.exists() {
                    std::fs::remove_dir_all(&stale).map_err(|e| Error::io(&stale, e))?;
                }
            }
            self.fresh = true;
        }
        std::fs::create_dir_all(self.dir.join("templates")).map_err(|e| Error::io(self.dir.join("templates"), e))?;
        if let Some(user) = run_as {
            nix::unistd::chown(&self.dir, Some(user.uid), Some(user.gid))
                .map_err(|e| Error::io(&self.dir, std::io::Error::from(e)))?;
        }
        set_mode(&self.dir, 0o700)?;
        if clean.exists() {
            std::fs::remove_file(&clean).map_err(|e| Error::io(&clean, e))?;
        }
        Ok(())
    }

    /// The slot's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the digests of archives are remembered (by their fingerprint on disk), for every slot of the cache.
    pub(crate) fn digests_dir(&self) -> PathBuf {
        // <cache>/clusters/<binaries>/slot-<n>
        self.dir.ancestors().nth(3).map_or_else(|| self.dir.join("digests"), |root| root.join("digests"))
    }

    /// The cluster's data directory.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Ends the run's use of the slot, after the server stopped: marks the cluster clean when `reusable`, else wipes
    /// it so that the next run rebuilds it.
    pub(crate) fn release(self, reusable: bool) {
        if reusable {
            if let Err(e) = File::create(self.dir.join("clean")) {
                tracing::warn!(dir = %self.dir.display(), error = %e, "could not mark the cached cluster clean");
            }
            return;
        }
        tracing::info!(dir = %self.dir.display(), "discarding the cached cluster: a plan committed or the run ended early");
        for part in [self.data_dir(), self.dir.join("templates")] {
            if let Err(e) = std::fs::remove_dir_all(&part) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(dir = %part.display(), error = %e, "could not remove part of the cached cluster");
                }
            }
        }
    }

    /// Takes a template database for a dry-run in place; `false` when another dry-run has it.
    pub(crate) fn claim(&self, database: &str) -> bool {
        self.in_use.lock().unwrap_or_else(|e| e.into_inner()).insert(database.to_owned())
    }

    /// Gives a template database back after [`Slot::claim`].
    pub(crate) fn unclaim(&self, database: &str) {
        self.in_use.lock().unwrap_or_else(|e| e.into_inner()).remove(database);
    }

    /// The template recorded under `key`, marked as just used.
    pub(crate) fn template(&self, key: &str) -> Option<Template> {
        let path = self.template_path(key);
        let template: Template = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
        if let Ok(file) = File::options().append(true).open(&path) {
            let _ = file.set_modified(SystemTime::now());
        }
        Some(template)
    }

    /// Records a template database (after it was fully built).
    pub(crate) fn record(&self, template: &Template) -> Result<()> {
        let path = self.template_path(&template.key);
        let json = serde_json::to_vec_pretty(template).expect("a template serializes");
        let mut file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        file.write_all(&json).map_err(|e| Error::io(&path, e))
    }

    /// Forgets a template (its database was dropped).
    pub(crate) fn forget(&self, key: &str) {
        let _ = std::fs::remove_file(self.template_path(key));
    }

    /// Every template of this slot, least recently used first.
    pub(crate) fn templates(&self) -> Vec<(Template, SystemTime)> {
        read_templates(&self.dir.join("templates"))
    }

    fn template_path(&self, key: &str) -> PathBuf {
        self.dir.join("templates").join(format!("{key}.json"))
    }
}

/// A template database: a source loaded once, cloned by every run of a plan against that source.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Template {
    /// The content key: a digest of the source, the tool version and the measuring machinery.
    pub(crate) key: String,
    /// The database's name in the cluster.
    pub(crate) database: String,
    /// The source as it was first given (later runs may name it differently).
    pub(crate) source: String,
    /// What the load said about the source.
    pub(crate) schema: Option<SchemaInfo>,
    /// What did not load.
    pub(crate) fidelity: Fidelity,
    /// The sample of rows copied in, if any.
    #[serde(default)]
    pub(crate) sample: Option<SampleInfo>,
    /// The row count of every table (by oid, the same in every clone): a dry-run's baseline without counting.
    #[serde(default)]
    pub(crate) row_counts: Vec<(u32, i64)>,
    /// What a dry-run reads before its plan, read once when the template was built (measure's, opaque here).
    #[serde(default)]
    pub(crate) baseline: Option<serde_json::Value>,
    /// Whether the source carried its tables' rows (`source::Database::data_loaded`). A template recorded before
    /// this was remembered is keyed differently (`source::cached`), and not reused.
    #[serde(default)]
    pub(crate) data_loaded: bool,
    /// `pg_database_size` of the template.
    pub(crate) size_bytes: u64,
}

/// What `pgshadow cache list` shows of one template.
#[derive(Debug, Clone, Serialize)]
pub struct CachedTemplate {
    /// The cluster directory it lives in.
    pub cluster: PathBuf,
    /// The source it was loaded from, as first given.
    pub source: String,
    /// The content key.
    pub key: String,
    /// Its size on disk.
    pub size_bytes: u64,
    /// When a run last used it.
    pub last_used: SystemTime,
}

/// Every template in the cache at `dir`, most recently used first.
pub fn list(dir: &Path) -> Vec<CachedTemplate> {
    let mut all = Vec::new();
    for slot in slots(dir) {
        for (template, used) in read_templates(&slot.join("templates")) {
            all.push(CachedTemplate {
                cluster: slot.clone(),
                source: template.source,
                key: template.key,
                size_bytes: template.size_bytes,
                last_used: used,
            });
        }
    }
    all.sort_by_key(|t| std::cmp::Reverse(t.last_used));
    all
}

/// Deletes every cached cluster that no run is using; returns the clusters removed and those skipped as in use.
pub fn prune(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut removed, mut busy) = (Vec::new(), Vec::new());
    for slot in slots(dir) {
        let lock_path = slot.join("lock");
        let Ok(file) = File::options().write(true).open(&lock_path) else {
            continue;
        };
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(_lock) => {
                // Remove everything but the lock file while holding the lock, then the lock file and the directory.
                for entry in std::fs::read_dir(&slot).map_err(|e| Error::io(&slot, e))?.flatten() {
                    let path = entry.path();
                    if path != lock_path {
                        let gone =
                            if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
                        gone.map_err(|e| Error::io(&path, e))?;
                    }
                }
                std::fs::remove_file(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
                let _ = std::fs::remove_dir(&slot);
                removed.push(slot);
            }
            Err(_) => busy.push(slot),
        }
    }
    if busy.is_empty() {
        let digests = dir.join("digests");
        if digests.exists() {
            std::fs::remove_dir_all(&digests).map_err(|e| Error::io(&digests, e))?;
        }
    }
    Ok((removed, busy))
}

/// The total size of the files under `path`.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path).map_or(0, |entries| entries.flatten().map(|e| disk_usage(&e.path())).sum())
}

/// Waits for the server of a run that was killed to finish exiting (it got SIGQUIT when its run died), so that
/// its files are not pulled from under it.
fn wait_for_stale_server(data: &Path) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(data.join("postmaster.pid")) else {
        return Ok(());
    };
    let Some(pid) = text.lines().next().and_then(|l| l.trim().parse::<i32>().ok()) else {
        return Ok(());
    };
    let pid = nix::unistd::Pid::from_raw(pid);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while nix::sys::signal::kill(pid, None).is_ok() {
        if std::time::Instant::now() > deadline {
            return Err(Error::Source {
                path: data.to_path_buf(),
                message: format!(
                    "a server (pid {pid}) of an earlier, interrupted run still uses this cached cluster; stop it, or \
                     run with --no-cache"
                ),
                detail: String::new(),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(())
}

/// Every slot directory under the cache at `dir`.
fn slots(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(clusters) = std::fs::read_dir(dir.join("clusters")) else {
        return out;
    };
    for cluster in clusters.flatten() {
        if let Ok(slots) = std::fs::read_dir(cluster.path()) {
            out.extend(slots.flatten().map(|s| s.path()).filter(|p| p.is_dir()));
        }
    }
    out.sort();
    out
}

fn read_templates(dir: &Path) -> Vec<(Template, SystemTime)> {
    let mut out: Vec<(Template, SystemTime)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let used = entry.metadata().ok()?.modified().ok()?;
            let template = serde_json::from_slice(&std::fs::read(entry.path()).ok()?).ok()?;
            Some((template, used))
        })
        .collect();
    out.sort_by_key(|(_, used)| *used);
    out
}

/// Creates the cache directory and the binaries' cluster directory; as root they stay root's but must be
/// enterable by the server's OS user (0711), as `/tmp`'s parents are.
fn create_shared_dirs(root: &Path, clusters: &Path, run_as: Option<&User>) -> Result<()> {
    std::fs::create_dir_all(clusters).map_err(|e| Error::io(clusters, e))?;
    let mode = if run_as.is_some() { 0o711 } else { 0o700 };
    let mut dir = clusters.to_path_buf();
    loop {
        set_mode(&dir, mode)?;
        if dir == root || !dir.pop() || !dir.starts_with(root) {
            return Ok(());
        }
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| Error::io(path, e))
}
