//! A source's pool of ready clones: filled in the background up to its size, taken one per dry-run (made on the spot
//! when the pool is empty and no clone is on its way back). After a dry-run that ended normally and committed
//! nothing, the clone is put back as it was (sequences set back, grown tables vacuumed: all a rolled-back transaction
//! leaves) by a task of its own, off the request path, and returns to the pool;
//! any other clone — spoiled by a statement run outside the transaction, cut by a timeout, or whose run was
//! cancelled — is dropped by a task of its own, never reused. The filler keeps the clones in existence (ready and
//! lent) at the pool's size, so clones given back are what serves later runs; only dropped ones are replaced.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Mutex, Notify};
use tokio::task::JoinHandle;

use super::Metrics;
use crate::error::Result;
use crate::measure;
use crate::shadow::database::InPlace;
use crate::shadow::{Database, Session, Shadow};

/// A clone to drop: its database and its login role.
type Doomed = (String, Option<String>);

/// A clone ready for a dry-run, with a session opened for it ahead of time ([`measure::open_session`]), when one
/// could be.
struct Ready {
    clone: Database,
    session: Option<Session>,
}

/// A ready clone of `clone`: its session opened now.
async fn ready(shadow: &Shadow, clone: Database) -> Ready {
    let session = match measure::open_session(shadow, &clone).await {
        Ok(session) => Some(session),
        Err(e) => {
            tracing::debug!(database = clone.name(), error = %e, "no session opened ahead; the run opens its own");
            None
        }
    };
    Ready { clone, session }
}

pub(super) struct Pool {
    shared: Arc<Shared>,
    ready: Mutex<mpsc::Receiver<Ready>>,
    filler: JoinHandle<()>,
    dropper: Mutex<Option<JoinHandle<()>>>,
}

/// What the pool shares with the tasks that put clones back.
struct Shared {
    shadow: Arc<Shadow>,
    template: Database,
    metrics: Arc<Metrics>,
    filled: mpsc::Sender<Ready>,
    /// Clones in existence, ready or lent; the filler makes more only below the pool's size.
    alive: Arc<AtomicUsize>,
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
        let filler = tokio::spawn(fill(
            Filler { shadow: Arc::clone(&shadow), template: template.clone(), metrics: Arc::clone(&metrics) },
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
            dropped,
            discards: std::sync::Mutex::new(Some(discards)),
            returning: AtomicUsize::new(0),
            returned: Notify::new(),
        };
        Pool { shared: Arc::new(shared), ready: Mutex::new(ready), filler, dropper: Mutex::new(Some(dropper)) }
    }

    /// Clones ready now.
    pub(super) fn ready(&self) -> usize {
        self.shared.filled.max_capacity() - self.shared.filled.capacity()
    }

    /// A clone for one dry-run: a ready one, else one being put back, else one made now. Dropping the lease without
    /// [`Lease::give_back`] discards the clone.
    pub(super) async fn take(&self) -> Result<Lease<'_>> {
        let waiting = {
            let mut ready = self.ready.lock().await;
            match ready.try_recv() {
                Ok(clone) => Some(clone),
                // Putting a clone back takes milliseconds, making one a CREATE DATABASE.
                Err(_) if self.shared.returning.load(Ordering::SeqCst) > 0 => {
                    tokio::time::timeout(Duration::from_secs(2), ready.recv()).await.ok().flatten()
                }
                Err(_) => None,
            }
        };
        let (clone, session) = match waiting {
            Some(Ready { clone, session }) => (clone, session),
            None => {
                let shared = &self.shared;
                let clone = clone_of(&shared.shadow, &shared.template, &shared.metrics).await?;
                shared.alive.fetch_add(1, Ordering::SeqCst);
                (clone, None)
            }
        };
        Ok(Lease { pool: self, clone: Some(clone), session })
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
        while let Some(Ready { clone, .. }) = ready.recv().await {
            self.shared.discard(clone);
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
    /// full.
    async fn put_back(&self, clone: Database, in_place: InPlace) {
        match crate::shadow::database::reset(&self.shadow, &clone, &in_place).await {
            Ok(()) => {
                if let Err(full) = self.filled.try_send(ready(&self.shadow, clone).await) {
                    self.discard(full.into_inner().clone);
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
    /// The session opened for the clone ahead of time, until the run takes it.
    session: Option<Session>,
}

impl Lease<'_> {
    /// The clone.
    pub(super) fn database(&self) -> &Database {
        self.clone.as_ref().expect("a lease holds its clone until it ends")
    }

    /// The session opened for the clone ahead of time, if any: for the run alone.
    pub(super) fn session(&mut self) -> Option<Session> {
        self.session.take()
    }

    /// After a run that ended normally: has the clone put back as it was and returned to the pool, by a task of its
    /// own; drops it when it is spoiled.
    pub(super) fn give_back(mut self) {
        let Some(clone) = self.clone.take() else { return };
        let shared = &self.pool.shared;
        match clone.in_place.clone().filter(|_| !clone.spoiled.load(Ordering::SeqCst)) {
            Some(in_place) => {
                shared.returning.fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(shared);
                tokio::spawn(async move {
                    shared.put_back(clone, in_place).await;
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
}

/// Keeps `size` clones in existence: makes one whenever fewer are alive; backs off after a failure.
async fn fill(
    filler: Filler,
    filled: mpsc::Sender<Ready>,
    (alive, dropped, size): (Arc<AtomicUsize>, Arc<Notify>, usize),
) {
    loop {
        while alive.load(Ordering::SeqCst) >= size {
            dropped.notified().await;
        }
        let Ok(permit) = filled.reserve().await else { return };
        match clone_of(&filler.shadow, &filler.template, &filler.metrics).await {
            Ok(clone) => {
                alive.fetch_add(1, Ordering::SeqCst);
                permit.send(ready(&filler.shadow, clone).await);
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
/// other clones are sessions of other roles, which a plan can neither see the queries of nor signal.
async fn clone_of(shadow: &Shadow, template: &Database, metrics: &Metrics) -> Result<Database> {
    let name = shadow.new_database_name();
    shadow.create_database(&name, Some(template.name()), crate::shadow::Role::Plan).await?;
    metrics.clones.fetch_add(1, Ordering::Relaxed);
    let login = format!("{}run_{name}", crate::shadow::ROLE_PREFIX);
    let made = async {
        shadow.create_login_role(&login).await?;
        InPlace::capture(shadow, &name).await
    };
    match made.await {
        Ok(in_place) => Ok(Database {
            name,
            spoiled: Arc::default(),
            in_place: Some(in_place),
            login: Some(login),
            ..template.clone()
        }),
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
