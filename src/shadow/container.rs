//! Container shadows (`--shadow container --image REF`): the shadow server runs in a container of any PostgreSQL
//! image (the official `postgres:<major>`, `postgis/postgis`, `pgvector/pgvector`, a team's own), through the
//! `testcontainers` crate, sealed off: **no network** (`--network none`), no host files but a private socket
//! directory bind-mounted at `/var/run/postgresql`, the server run as the image's `postgres` user. pgshadow reaches
//! it through that socket only; no port is published.
//!
//! The container does not use the image's entrypoint: it runs `initdb` and `postgres` itself (both on the image's
//! `PATH` in the official images and in ours), with the same disposable settings as a local cluster, so nothing
//! depends on an entrypoint's init sequence. Every container carries the labels `org.pgshadow.run` (the run) and
//! `org.pgshadow.pid` (the process); it is removed on every exit path, and a later run removes those whose process
//! is gone (a run killed with SIGKILL).

use std::path::Path;
use std::time::{Duration, Instant};

use testcontainers::bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use testcontainers::core::Mount;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use crate::error::{Error, Result};

/// The label every container of pgshadow's carries: the run that started it.
pub const RUN_LABEL: &str = "org.pgshadow.run";
/// The label naming the process that started the container.
const PID_LABEL: &str = "org.pgshadow.pid";

/// When to pull the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pull {
    /// Never: the image must be there.
    Never,
    /// When it is not there (the default).
    #[default]
    Missing,
    /// Every time.
    Always,
}

/// How to start a container shadow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerOptions {
    /// The image (`postgres:17`, `postgis/postgis:16-3.4`, ...). `None`: `postgres:<major>` for the version asked
    /// for, else for the source's version (with `auto`: an image here that also has the source's extensions).
    pub image: Option<String>,
    /// When to pull it.
    pub pull: Pull,
}

/// A running container shadow. Dropping it removes the container.
pub(crate) struct Container {
    inner: Option<ContainerAsync<GenericImage>>,
    pub(crate) image: String,
}

/// The shell command the container runs: a fresh cluster in the container's own file system, served on the socket
/// directory only.
const RUN: &str = "set -e; initdb -D /tmp/pgshadow-data -U pgshadow_admin -A trust --no-sync >/dev/null; \
    exec postgres -D /tmp/pgshadow-data -k /var/run/postgresql -c listen_addresses= -c port=5432 -c fsync=off \
    -c synchronous_commit=off -c full_page_writes=off -c wal_level=minimal -c max_wal_senders=0 -c autovacuum=off \
    -c track_functions=all -c jit=off";

impl Container {
    /// Starts `options.image` with `socket_dir` as its socket directory, and waits until the server accepts
    /// connections there.
    pub(crate) async fn start(
        image: &str,
        pull_policy: Pull,
        socket_dir: &Path,
        run_id: &str,
        deadline: Instant,
    ) -> Result<Container> {
        let fail = |message: String| Error::ShadowStart { message, log: String::new() };
        let unshareable = |why: String| {
            fail(format!(
                "the Docker daemon {why}, so the shadow's socket directory cannot be shared with it; a published \
                 port on 127.0.0.1 is not built yet: use --shadow local (`pgshadow postgres install N`) meanwhile"
            ))
        };
        if let Some(why) = remote_daemon() {
            return Err(unshareable(why));
        }
        let docker = docker().await?;
        if let Some(why) = in_a_virtual_machine(&docker).await {
            return Err(unshareable(why));
        }
        sweep_killed_runs(&docker).await;
        let (name, tag) = split_reference(image);
        let present = docker.inspect_image(image).await.is_ok();
        match (pull_policy, present) {
            (Pull::Never, false) => {
                return Err(fail(format!("the image {image} is not here and --pull never forbids pulling it")))
            }
            (Pull::Always, _) | (Pull::Missing, false) => {
                tracing::info!(target: "pgshadow::progress", "pulling {image}");
                pull(&docker, image).await?;
            }
            _ => {}
        }
        tracing::info!(target: "pgshadow::progress", "starting a container of {image}");
        let request = GenericImage::new(name, tag)
            .with_entrypoint("sh")
            .with_cmd(["-c", RUN])
            .with_network("none")
            .with_user("postgres")
            .with_mount(Mount::bind_mount(socket_dir.display().to_string(), "/var/run/postgresql"))
            .with_label(RUN_LABEL, run_id)
            .with_label(PID_LABEL, std::process::id().to_string());
        let container =
            request.start().await.map_err(|e| fail(format!("could not start a container of {image}: {e}")))?;
        let container = Container { inner: Some(container), image: image.to_owned() };
        // Ready when a connection is accepted (the socket appears while the server is still starting up).
        let mut probe = tokio_postgres::Config::new();
        probe
            .host_path(socket_dir)
            .port(5432)
            .user("pgshadow_admin")
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(2));
        while probe.connect(tokio_postgres::NoTls).await.is_err() {
            if Instant::now() > deadline {
                let log = container.log().await;
                return Err(Error::ShadowStart { message: format!("{image} did not start a server in time"), log });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(container)
    }

    /// The container's output, for error messages.
    async fn log(&self) -> String {
        let Some(inner) = &self.inner else { return String::new() };
        let (out, err) =
            (inner.stdout_to_vec().await.unwrap_or_default(), inner.stderr_to_vec().await.unwrap_or_default());
        format!("{}{}", String::from_utf8_lossy(&out), String::from_utf8_lossy(&err))
    }

    /// Removes the container (the normal path; dropping it does the same).
    pub(crate) async fn remove(mut self) -> Result<()> {
        match self.inner.take() {
            Some(inner) => inner.rm().await.map_err(|e| Error::ShadowStart {
                message: format!("could not remove the container of {}: {e}", self.image),
                log: String::new(),
            }),
            None => Ok(()),
        }
    }
}

/// `registry:5000/team/pg:16` → (`registry:5000/team/pg`, `16`); no tag means `latest`.
fn split_reference(image: &str) -> (String, String) {
    let (path, last) = image.rsplit_once('/').map_or(("", image), |(p, l)| (p, l));
    let (name, tag) = last.split_once(':').unwrap_or((last, "latest"));
    let name = if path.is_empty() { name.to_owned() } else { format!("{path}/{name}") };
    (name, tag.to_owned())
}

/// The Docker daemon from `DOCKER_HOST` or the default socket, checked to answer.
async fn docker() -> Result<testcontainers::bollard::Docker> {
    let fail = |e: String| Error::ShadowStart {
        message: format!(
            "no Docker daemon answers ({e}); start Docker, or set DOCKER_HOST to its socket (unix:///path/docker.sock)"
        ),
        log: String::new(),
    };
    let docker = testcontainers::bollard::Docker::connect_with_defaults().map_err(|e| fail(e.to_string()))?;
    docker.ping().await.map_err(|e| fail(e.to_string()))?;
    Ok(docker)
}

/// Why a socket directory of this machine cannot be bind-mounted into the daemon's containers, if the daemon is
/// remote (`DOCKER_HOST` over TCP or SSH): a Unix socket does not cross machines.
fn remote_daemon() -> Option<String> {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    let (scheme, _) = host.split_once("://").filter(|(scheme, _)| *scheme != "unix")?;
    Some(format!("is reached over {scheme} (DOCKER_HOST={host})"))
}

/// The same, for a daemon in a virtual machine (Docker Desktop): a Unix socket does not cross into the host.
async fn in_a_virtual_machine(docker: &testcontainers::bollard::Docker) -> Option<String> {
    let system = docker.info().await.ok()?.operating_system.unwrap_or_default();
    system.contains("Docker Desktop").then(|| format!("runs in a virtual machine ({system})"))
}

/// The images the Docker daemon has (`repo:tag`), or `None` when no daemon answers within a few seconds or its
/// containers cannot share a socket directory with this machine.
pub(crate) async fn images_here() -> Option<Vec<String>> {
    if remote_daemon().is_some() {
        return None;
    }
    let listing = async {
        let docker = docker().await.ok()?;
        if in_a_virtual_machine(&docker).await.is_some() {
            return None;
        }
        let images = docker.list_images(None::<testcontainers::bollard::query_parameters::ListImagesOptions>).await;
        Some(images.ok()?.into_iter().flat_map(|i| i.repo_tags).filter(|t| t != "<none>:<none>").collect())
    };
    tokio::time::timeout(Duration::from_secs(5), listing).await.ok().flatten()
}

async fn pull(docker: &testcontainers::bollard::Docker, image: &str) -> Result<()> {
    use futures_util::StreamExt as _;
    let options =
        testcontainers::bollard::query_parameters::CreateImageOptionsBuilder::default().from_image(image).build();
    let mut stream = docker.create_image(Some(options), None, None);
    while let Some(step) = stream.next().await {
        step.map_err(|e| Error::ShadowStart { message: format!("could not pull {image}: {e}"), log: String::new() })?;
    }
    Ok(())
}

/// Removes the containers of runs whose process is gone (killed with SIGKILL: nothing of theirs ran to remove them).
async fn sweep_killed_runs(docker: &testcontainers::bollard::Docker) {
    let filters = std::collections::HashMap::from([("label".to_owned(), vec![RUN_LABEL.to_owned()])]);
    let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    let Ok(containers) = docker.list_containers(Some(options)).await else { return };
    for container in containers {
        let pid = container.labels.as_ref().and_then(|l| l.get(PID_LABEL)).and_then(|p| p.parse::<i32>().ok());
        let alive = pid.is_some_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok());
        if alive {
            continue;
        }
        if let Some(id) = container.id {
            tracing::info!(container = %id, "removing the container of a run that was killed");
            let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
            let _ = docker.remove_container(&id, Some(options)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_reference;

    #[test]
    fn image_references_split_into_name_and_tag() {
        let split = |r: &str| split_reference(r);
        assert_eq!(split("postgres:17"), ("postgres".into(), "17".into()));
        assert_eq!(split("postgis/postgis:16-3.4"), ("postgis/postgis".into(), "16-3.4".into()));
        assert_eq!(split("registry:5000/team/pg:16"), ("registry:5000/team/pg".into(), "16".into()));
        assert_eq!(split("postgres"), ("postgres".into(), "latest".into()));
    }
}
