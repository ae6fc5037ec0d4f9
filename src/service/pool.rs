//! A source's pool of ready clones: filled in the background up to its size, taken one per dry-run (made on the spot
//! when the pool is empty), and dropped after use by a task of its own.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;

use super::Metrics;
use crate::error::Result;
use crate::shadow::Shadow;
use crate::source::Database;

pub(super) struct Pool {
    shadow: Arc<Shadow>,
    template: Database,
    metrics: Arc<Metrics>,
    ready: Mutex<mpsc::Receiver<Database>>,
    filled: mpsc::Sender<Database>,
    filler: JoinHandle<()>,
    /// Taken at stop, so that the dropper ends once it dropped what was sent.
    discards: std::sync::Mutex<Option<mpsc::UnboundedSender<String>>>,
    dropper: Mutex<Option<JoinHandle<()>>>,
}

impl Pool {
    /// Starts filling a pool of `size` clones of `template`.
    pub(super) fn start(shadow: Arc<Shadow>, template: Database, size: usize, metrics: Arc<Metrics>) -> Pool {
        let (filled, ready) = mpsc::channel(size.max(1));
        let filler = tokio::spawn(fill(Arc::clone(&shadow), template.clone(), filled.clone(), Arc::clone(&metrics)));
        let (discards, mut doomed) = mpsc::unbounded_channel::<String>();
        let dropping = Arc::clone(&shadow);
        let dropper = tokio::spawn(async move {
            while let Some(name) = doomed.recv().await {
                if let Err(e) = dropping.drop_database(&name).await {
                    tracing::warn!(database = %name, error = %e, "could not drop a used clone");
                }
            }
        });
        Pool {
            shadow,
            template,
            metrics,
            ready: Mutex::new(ready),
            filled,
            filler,
            discards: std::sync::Mutex::new(Some(discards)),
            dropper: Mutex::new(Some(dropper)),
        }
    }

    /// Clones ready now.
    pub(super) fn ready(&self) -> usize {
        self.filled.max_capacity() - self.filled.capacity()
    }

    /// A clone for one dry-run: a ready one, else one made now.
    pub(super) async fn take(&self) -> Result<Database> {
        if let Ok(clone) = self.ready.lock().await.try_recv() {
            return Ok(clone);
        }
        clone_of(&self.shadow, &self.template, &self.metrics).await
    }

    /// Drops a used clone, in the background.
    pub(super) fn discard(&self, clone: Database) {
        let discards = self.discards.lock().unwrap_or_else(|e| e.into_inner());
        if discards.as_ref().is_none_or(|d| d.send(clone.name().to_owned()).is_err()) {
            tracing::debug!(database = clone.name(), "the pool is stopped; the clone goes with the shadow");
        }
    }

    /// Stops filling, drops the ready clones and waits for every drop.
    pub(super) async fn stop(&self) {
        self.filler.abort();
        let mut ready = self.ready.lock().await;
        ready.close();
        while let Some(clone) = ready.recv().await {
            self.discard(clone);
        }
        // The dropper ends once it dropped everything sent before its sender went.
        drop(self.discards.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(dropper) = self.dropper.lock().await.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), dropper).await;
        }
    }
}

/// Keeps the pool full: makes a clone whenever there is room; backs off after a failure.
async fn fill(shadow: Arc<Shadow>, template: Database, filled: mpsc::Sender<Database>, metrics: Arc<Metrics>) {
    loop {
        let Ok(permit) = filled.reserve().await else { return };
        match clone_of(&shadow, &template, &metrics).await {
            Ok(clone) => permit.send(clone),
            Err(e) => {
                drop(permit);
                tracing::warn!(error = %e, "could not make a clone for the pool; retrying in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// A fresh clone of `template`.
async fn clone_of(shadow: &Shadow, template: &Database, metrics: &Metrics) -> Result<Database> {
    let name = shadow.new_database_name();
    shadow.create_database(&name, Some(template.name())).await?;
    metrics.clones.fetch_add(1, Ordering::Relaxed);
    Ok(Database { name, spoiled: Arc::default(), ..template.clone() })
}
