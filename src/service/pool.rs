//! A source's pool of ready clones: filled in the background up to its size, taken one per dry-run (made on the spot
//! when the pool is empty and no clone is on its way back). After a dry-run that ended normally and committed
//! nothing, the clone is put back as it was (sequences set back, grown tables vacuumed: all a rolled-back transaction
//! leaves) by a task of its own, off the request path, and returns to the pool;
//! any other clone — spoiled by a statement run outside the transaction, cut by a timeout, or whose run was
//! cancelled — is dropped by a task of its own, never reused. The filler keeps the clones in existence (ready and
//! lent) at the pool's size, so clones given back are what serves later runs; only dropped ones are replaced.
//!
//! A clone keeps two sessions across runs: a superuser one that puts it back, and the plan's own, made fit for the
//! next plan by what `DISCARD ALL` does but for its plans, when the last plan left nothing else in it
//! ([`measure::reuse_session`]); and the state before a plan its first run read ([`measure::Carried`]), which every
//! later run on it starts from.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Mutex, Notify};
use tokio::task::JoinHandle;

use super::Metrics;
use crate::error::Result;
use crate::measure::{self, Carried};
use crate::shadow::database::InPlace;
use crate::shadow::{Database, Session, Shadow};

/// A clone to drop: its database and its login role.
type Doomed = (String, Option<String>);

/// A clone ready for a dry-run, with what its next run starts from: a session ([`measure::open_session`], or the last
/// run's, made fit again by [`measure::reuse_session`]) and the state before a plan the last run read; and a
/// superuser session to put it back with, when one could be opened.
struct Ready {
    clone: Database,
    carried: Carried,
    /// Runs the carried session served already.
    runs: u32,
    admin: Option<Session>,
}

/// The most runs one session serves before a fresh one replaces it: a backend's caches only grow.
const RUNS_PER_SESSION: u32 = 500;

/// How often a clone's reset checks the system catalogs' sizes too, in runs of one session (every run checks the
/// source's tables, and a run whose session is not carried on checks the catalogs too): a rolled-back DDL statement
/// leaves a catalog a few dead rows, which a `VACUUM` takes back once they pass a mebibyte.
const CATALOGS_CHECKED_EVERY: u32 = 16;

/// A ready clone of `clone`, put back as it was: what its last run `carried` on (with the runs its session served),
/// the session made fit for the next run, else a session opened now.
async fn ready(shadow: &Shadow, clone: Database, carried: Carried, runs: u32, admin: Option<Session>) -> Ready {
    let Carried { session, baseline } = carried;
    if let Some(session) = session.filter(|session| runs < RUNS_PER_SESSION && !session.is_broken()) {
        match measure::reuse_session(&session).await {
            Ok(()) => return Ready { clone, carried: Carried { session: Some(session), baseline }, runs, admin },
            Err(e) => tracing::debug!(database = clone.name(), error = %e, "a used session could not be reused"),
        }
    }
    let session = match measure::open_session(shadow, &clone).await {
        Ok(session) => Some(session),
        Err(e) => {
            tracing::debug!(database = clone.name(), error = %e, "no session opened ahead; the run opens its own");
            None
        }
    };
    Ready { clone, carried: Carried { session, baseline }, runs: 0, admin }
}

/// A ready clone in the pool's channel, counted in [`Shared::queued`] from the moment it is made ready until it is
/// taken out (destructured) or dropped: the count follows the clones themselves, and no path can leave it wrong.
struct Queued<T = Ready> {
    item: T,
    _counted: Counted,
}

impl<T> Queued<T> {
    fn new(item: T, queued: &Arc<AtomicUsize>) -> Queued<T> {
        queued.fetch_add(1, Ordering::SeqCst);
        Queued { item, _counted: Counted(Arc::clone(queued)) }
    }
}

/// One clone's share of a count: taken off when it is dropped.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(super) struct Pool {
    shared: Arc<Shared>,
    ready: Mutex<mpsc::Receiver<Queued>>,
    filler: JoinHandle<()>,
    dropper: Mutex<Option<JoinHandle<()>>>,
}

/// What the pool shares with the tasks that put clones back.
struct Shared {
    shadow: Arc<Shadow>,
    template: Database,
    metrics: Arc<Metrics>,
    filled: mpsc::Sender<Queued>,
    /// Clones in existence, ready or lent; the filler makes more only below the pool's size.
    alive: Arc<AtomicUsize>,
    /// Clones ready in the channel now, kept by [`Queued`] (the channel's capacity also counts the slot the filler
    /// reserved for a clone it is still making).
    queued: Arc<AtomicUsize>,
    /// Wakes the filler when a clone was dropped.
    dropped: Arc<Notify>,
    /// Taken at stop, so that the dropper ends once it dropped what was sent.
    discards: std::sync::Mutex<Option<mpsc::UnboundedSender<Doomed>>>,
    /// Clones being put back now: a dry-run waits for one of them rather than making a clone.
    returning: AtomicUsize,
    /// Wakes [`Pool::stop`] when a clone was put back.
    returned: Notify,
}

impl Pool {
    /// Starts filling a pool of `size` clones of `template`.
    pub(super) fn start(shadow: Arc<Shadow>, template: Database, size: usize, metrics: Arc<Metrics>) -> Pool {
        let (filled, ready) = mpsc::channel(size.max(1));
        let (alive, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        let queued = Arc::new(AtomicUsize::new(0));
        let filler = tokio::spawn(fill(
            Filler {
                shadow: Arc::clone(&shadow),
                template: template.clone(),
                metrics: Arc::clone(&metrics),
                queued: Arc::clone(&queued),
            },
            filled.clone(),
            (Arc::clone(&alive), Arc::clone(&dropped), size.max(1)),
        ));
        let (discards, mut doomed) = mpsc::unbounded_channel::<Doomed>();
        let dropping = Arc::clone(&shadow);
        let dropper = tokio::spawn(async move {
            while let Some((name, login)) = doomed.recv().await {
                if let Err(e) = drop_clone(&dropping, &name, login.as_deref()).await {
                    tracing::warn!(database = %name, error = %e, "could not drop a used clone");
                }
            }
        });
        let shared = Shared {
            shadow,
            template,
            metrics,
            filled,
            alive,
            queued,
            dropped,
            discards: std::sync::Mutex::new(Some(discards)),
            returning: AtomicUsize::new(0),
            returned: Notify::new(),
        };
        Pool { shared: Arc::new(shared), ready: Mutex::new(ready), filler, dropper: Mutex::new(Some(dropper)) }
    }

    /// Clones ready now.
    pub(super) fn ready(&self) -> usize {
        self.shared.queued.load(Ordering::SeqCst)
    }

    /// A clone for one dry-run: a ready one, else one being put back, else one made now. Dropping the lease without
    /// [`Lease::give_back`] discards the clone.
    pub(super) async fn take(&self) -> Result<Lease<'_>> {
        let waiting = {
            let mut ready = self.ready.lock().await;
            let taken = match ready.try_recv() {
                Ok(clone) => Some(clone),
                // Putting a clone back takes milliseconds, making one a CREATE DATABASE.
                Err(_) if self.shared.returning.load(Ordering::SeqCst) > 0 => {
                    tokio::time::timeout(Duration::from_secs(2), ready.recv()).await.ok().flatten()
                }
                Err(_) => None,
            };
            taken.map(|Queued { item, .. }| item)
        };
        let ready = match waiting {
            Some(ready) => ready,
            None => {
                let shared = &self.shared;
                let (clone, admin) = clone_of(&shared.shadow, &shared.template, &shared.metrics).await?;
                shared.alive.fetch_add(1, Ordering::SeqCst);
                Ready { clone, carried: Carried::default(), runs: 0, admin: Some(admin) }
            }
        };
        Ok(Lease {
            pool: self,
            clone: Some(ready.clone),
            carried: Some(ready.carried),
            runs: ready.runs,
            admin: ready.admin,
        })
    }

    /// Stops filling, waits for the clones being put back, drops the ready clones and waits for every drop.
    pub(super) async fn stop(&self) {
        self.filler.abort();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.shared.returning.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            let _ = tokio::time::timeout(Duration::from_millis(100), self.shared.returned.notified()).await;
        }
        let mut ready = self.ready.lock().await;
        ready.close();
        while let Some(Queued { item, .. }) = ready.recv().await {
            self.shared.discard(item.clone);
        }
        // The dropper ends once it dropped everything sent before its sender went.
        drop(self.shared.discards.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(dropper) = self.dropper.lock().await.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), dropper).await;
        }
    }
}

impl Shared {
    /// Drops a used clone, in the background.
    fn discard(&self, clone: Database) {
        self.alive.fetch_sub(1, Ordering::SeqCst);
        self.dropped.notify_one();
        let discards = self.discards.lock().unwrap_or_else(|e| e.into_inner());
        let doomed = (clone.name().to_owned(), clone.login.clone());
        if discards.as_ref().is_none_or(|d| d.send(doomed).is_err()) {
            tracing::debug!(database = clone.name(), "the pool is stopped; the clone goes with the shadow");
        }
    }

    /// Puts a clone back as it was and returns it to the pool, or drops it when it cannot be put back or the pool is
    /// full. `carried` is what the run that just ended handed on, its session having served `runs` runs.
    async fn put_back(
        &self,
        clone: Database,
        in_place: InPlace,
        (carried, runs): (Carried, u32),
        admin: Option<Session>,
    ) {
        let admin = match admin.filter(|a| !a.is_broken()) {
            Some(admin) => Ok(admin),
            None => self.shadow.admin(clone.name()).await,
        };
        let reset = match admin {
            Ok(admin) => {
                // Every so many runs of a session, and after every run whose session is not carried on (its
                // count of runs starts again with the next one).
                let with_catalogs = runs % CATALOGS_CHECKED_EVERY == 0 || carried.session.is_none();
                let reset = crate::shadow::database::reset_in(&admin, &self.shadow, &clone, &in_place, with_catalogs);
                reset.await.map(|_| admin)
            }
            Err(e) => Err(e),
        };
        match reset {
            Ok(admin) => {
                let ready = ready(&self.shadow, clone, carried, runs, Some(admin)).await;
                // Counted before it can be taken.
                if let Err(full) = self.filled.try_send(Queued::new(ready, &self.queued)) {
                    let Queued { item, .. } = full.into_inner();
                    self.discard(item.clone);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, database = clone.name(), "could not put a clone back; dropping it");
                self.discard(clone);
            }
        }
    }
}

/// A clone lent to one dry-run.
pub(super) struct Lease<'a> {
    pool: &'a Pool,
    clone: Option<Database>,
    /// What the run starts from (the session opened ahead of time or the last run's), until the run takes it.
    carried: Option<Carried>,
    /// Runs that session served before this one.
    runs: u32,
    /// The superuser session the clone is put back with.
    admin: Option<Session>,
}

impl Lease<'_> {
    /// The clone.
    pub(super) fn database(&self) -> &Database {
        self.clone.as_ref().expect("a lease holds its clone until it ends")
    }

    /// What the run starts from: for the run alone.
    pub(super) fn carried(&mut self) -> Carried {
        self.carried.take().unwrap_or_default()
    }

    /// After a run that ended normally: has the clone put back as it was and returned to the pool, by a task of its
    /// own; drops it when it is spoiled. `carried` is what the run handed on to the next run on the clone.
    pub(super) fn give_back(mut self, carried: Carried) {
        let Some(clone) = self.clone.take() else { return };
        let shared = &self.pool.shared;
        match clone.in_place.clone().filter(|_| !clone.spoiled.load(Ordering::SeqCst)) {
            Some(in_place) => {
                shared.returning.fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(shared);
                let (runs, admin) = (self.runs + 1, self.admin.take());
                tokio::spawn(async move {
                    shared.put_back(clone, in_place, (carried, runs), admin).await;
                    shared.returning.fetch_sub(1, Ordering::SeqCst);
                    shared.returned.notify_waiters();
                });
            }
            None => shared.discard(clone),
        }
    }
}

impl Drop for Lease<'_> {
    /// A run that failed, timed out or was cancelled: its clone may hold anything, or a statement still running.
    fn drop(&mut self) {
        if let Some(clone) = self.clone.take() {
            self.pool.shared.discard(clone);
        }
    }
}

/// What the filler makes clones with.
struct Filler {
    shadow: Arc<Shadow>,
    template: Database,
    metrics: Arc<Metrics>,
    queued: Arc<AtomicUsize>,
}

/// Keeps `size` clones in existence: makes one whenever fewer are alive; backs off after a failure.
async fn fill(
    filler: Filler,
    filled: mpsc::Sender<Queued>,
    (alive, dropped, size): (Arc<AtomicUsize>, Arc<Notify>, usize),
) {
    loop {
        while alive.load(Ordering::SeqCst) >= size {
            dropped.notified().await;
        }
        let Ok(permit) = filled.reserve().await else { return };
        match clone_of(&filler.shadow, &filler.template, &filler.metrics).await {
            Ok((clone, admin)) => {
                alive.fetch_add(1, Ordering::SeqCst);
                let ready = ready(&filler.shadow, clone, Carried::default(), 0, Some(admin)).await;
                // Counted before it can be taken.
                permit.send(Queued::new(ready, &filler.queued));
            }
            Err(e) => {
                drop(permit);
                tracing::warn!(error = %e, "could not make a clone for the pool; retrying in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// A fresh clone of `template`, with what it looks like recorded to put it back after each dry-run, and a login
/// role of its own for the plans run on it (a member of the plan role, so it may do all the plan role may): runs on
/// other clones are sessions of other roles, which a plan can neither see the queries of nor signal. Comes with the
/// superuser session it was recorded through, kept to put the clone back.
async fn clone_of(shadow: &Shadow, template: &Database, metrics: &Metrics) -> Result<(Database, Session)> {
    let name = shadow.new_database_name();
    shadow.create_database(&name, Some(template.name()), crate::shadow::Role::Plan).await?;
    metrics.clones.fetch_add(1, Ordering::Relaxed);
    let login = format!("{}run_{name}", crate::shadow::ROLE_PREFIX);
    let made = async {
        shadow.create_login_role(&login).await?;
        let admin = shadow.admin(&name).await?;
        Ok::<_, crate::error::Error>((InPlace::capture_in(&admin).await?, admin))
    };
    match made.await {
        Ok((in_place, admin)) => Ok((
            Database {
                name,
                spoiled: Arc::default(),
                in_place: Some(in_place),
                login: Some(login),
                ..template.clone()
            },
            admin,
        )),
        Err(e) => {
            let _ = drop_clone(shadow, &name, Some(&login)).await;
            Err(e)
        }
    }
}

/// Drops a clone and its login role.
async fn drop_clone(shadow: &Shadow, name: &str, login: Option<&str>) -> Result<()> {
    shadow.drop_database(name).await?;
    match login {
        Some(login) => shadow.drop_login_role(login).await,
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_count_follows_the_clones_on_every_path() {
        let queued = Arc::new(AtomicUsize::new(0));
        let count = || queued.load(Ordering::SeqCst);
        let (filled, mut ready) = mpsc::channel(2);
        filled.try_send(Queued::new(1, &queued)).expect("room");
        filled.try_send(Queued::new(2, &queued)).expect("room");
        assert_eq!(count(), 2);
        // The channel is full: the clone that could not be queued is not counted.
        let Err(full) = filled.try_send(Queued::new(3, &queued)) else { panic!("the channel is full") };
        assert_eq!(count(), 3, "counted before it can be taken");
        let Queued { item, .. } = full.into_inner();
        assert_eq!((item, count()), (3, 2));
        // Taken out: no longer counted.
        let Ok(Queued { item, .. }) = ready.try_recv() else { panic!("one is ready") };
        assert_eq!((item, count()), (1, 1));
        // Left in a channel that goes away: not counted either.
        drop((filled, ready));
        assert_eq!(count(), 0);
    }
}
