//! Container shadows (`--shadow container --image REF`): the shadow server runs in a container of any PostgreSQL
//! image (the official `postgres:<major>`, `postgis/postgis`, `pgvector/pgvector`, a team's own), through the
//! `testcontainers` crate, as the image's `postgres` user. pgshadow reaches it one of two ways ([`Reach`]):
//! - **sealed** (a daemon on this machine): **no network** (`--network none`), no host files but a private socket
//!   directory bind-mounted at `/var/run/postgresql`; pgshadow reaches the server through that socket only.
//! - **a port on 127.0.0.1** (a daemon in a virtual machine, such as Docker Desktop, whose containers cannot share a
//!   socket with this machine): the container is on the daemon's default bridge network, its port 5432 published on
//!   127.0.0.1 only, and every role logs in with a password made for this container. The report says the shadow was
//!   not sealed off from the network.
//!
//! The container does not use the image's entrypoint: it runs `initdb` and `postgres` itself (both on the image's
//! `PATH` in the official images and in ours), with the same disposable settings as a local cluster, so nothing
//! depends on an entrypoint's init sequence. Every container carries the labels `org.pgshadow.run` (the run),
//! `org.pgshadow.pid` (the process) and `org.pgshadow.owner` (where that pid means something: the machine's boot and
//! the pid namespace); it is removed on every exit path, and a later run of the same owner removes those whose
//! process is gone (a run killed with SIGKILL). Containers of other pid namespaces sharing the daemon (CI jobs that
//! share a host's Docker socket) are never judged by a pid that means nothing here.

use std::path::Path;
use std::time::{Duration, Instant};

use testcontainers::bollard::models::PortBinding;
use testcontainers::bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use testcontainers::core::Mount;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use crate::error::{Error, Result};

/// The label every container of pgshadow's carries: the run that started it.
pub const RUN_LABEL: &str = "org.pgshadow.run";
/// The label naming the process that started the container.
const PID_LABEL: &str = "org.pgshadow.pid";
/// The label naming where that pid means something: this boot of this machine, and the pid namespace ([`owner`]).
const OWNER_LABEL: &str = "org.pgshadow.owner";

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

/// How pgshadow reaches a container shadow's server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reach {
    /// Through a socket directory where the daemon can share one (it runs on this machine's kernel), else through a
    /// port on 127.0.0.1.
    #[default]
    Auto,
    /// Through a socket directory shared with the container, which has no network at all: sealed off.
    Socket,
    /// Through a port published on 127.0.0.1 only. The container is on the daemon's default bridge network, so it
    /// is not sealed off from the network; every role logs in with a password made for the container.
    Port,
}

/// How to start a container shadow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerOptions {
    /// The image (`postgres:17`, `postgis/postgis:16-3.4`, ...). `None`: `postgres:<major>` for the version asked
    /// for, else for the source's version (with `auto`: an image here that also has the source's extensions).
    pub image: Option<String>,
    /// When to pull it.
    pub pull: Pull,
    /// How to reach it.
    pub reach: Reach,
}

/// How a started container is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reached {
    /// Through the socket directory it was given; it has no network.
    Socket,
    /// Through `port` on 127.0.0.1, the roles' passwords derived from `secret` ([`super::Endpoint::password`]);
    /// `why` not a socket.
    Port { port: u16, secret: String, why: String },
}

impl Reached {
    /// Whether the container was sealed off (no network), and how pgshadow reached it, for the report.
    pub(crate) fn describe(&self) -> (bool, String) {
        match self {
            Reached::Socket => (true, "a socket directory shared with it".to_owned()),
            Reached::Port { port, why, .. } => (
                false,
                format!("127.0.0.1:{port}, published on 127.0.0.1 only ({why}); on the Docker daemon's bridge network"),
            ),
        }
    }
}

/// A running container shadow. Dropping it removes the container.
pub(crate) struct Container {
    inner: Option<ContainerAsync<GenericImage>>,
    pub(crate) image: String,
    pub(crate) reached: Reached,
}

/// The server's settings in a container: disposable, as in a local cluster.
const SETTINGS: &str = "-c port=5432 -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
    -c wal_level=minimal -c max_wal_senders=0 -c autovacuum=off -c track_functions=all -c jit=off";

/// The shell command a sealed container runs: a fresh cluster in the container's own file system, served on the
/// socket directory only.
fn run_sealed() -> String {
    format!(
        "set -e; initdb -D /tmp/pgshadow-data -U pgshadow_admin -A trust --no-sync >/dev/null; \
         exec postgres -D /tmp/pgshadow-data -k /var/run/postgresql -c listen_addresses= {SETTINGS}"
    )
}

/// The same, served on TCP as well, where every role needs its password (the admin's is `$PGSHADOW_PASSWORD`); the
/// socket inside the container stays password-free for its own tools.
fn run_on_port() -> String {
    format!(
        "set -e; umask 077; printf '%s\\n' \"$PGSHADOW_PASSWORD\" > /tmp/pgshadow-pw; \
         initdb -D /tmp/pgshadow-data -U pgshadow_admin --auth-local=trust --auth-host=scram-sha-256 \
         --pwfile=/tmp/pgshadow-pw --no-sync >/dev/null; rm -f /tmp/pgshadow-pw; \
         echo 'host all all all scram-sha-256' >> /tmp/pgshadow-data/pg_hba.conf; \
         exec postgres -D /tmp/pgshadow-data -k /var/run/postgresql -c listen_addresses='*' \
         -c password_encryption=scram-sha-256 {SETTINGS}"
    )
}

impl Container {
    /// Starts `image`, reached as `reach` says (through `socket_dir` as its socket directory, or a port on
    /// 127.0.0.1), and waits until the server accepts connections.
    pub(crate) async fn start(
        image: &str,
        pull_policy: Pull,
        reach: Reach,
        socket_dir: &Path,
        run_id: &str,
        deadline: Instant,
    ) -> Result<Container> {
        let fail = |message: String| Error::ShadowStart { message, log: String::new() };
        if let Some(why) = remote_daemon() {
            return Err(fail(format!(
                "the Docker daemon {why}: its containers can share neither a socket directory nor a port on this \
                 machine's 127.0.0.1 with pgshadow; use a daemon on this machine, or --shadow local"
            )));
        }
        let docker = docker().await?;
        let (reach, why) = settle(reach, in_a_virtual_machine(&docker).await)?;
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
            .with_user("postgres")
            .with_label(RUN_LABEL, run_id)
            .with_label(PID_LABEL, std::process::id().to_string())
            .with_label(OWNER_LABEL, owner());
        let secret = match reach {
            Reach::Port => Some(super::server::random_hex(24)?),
            _ => None,
        };
        let request = match &secret {
            None => request
                .with_cmd(["-c".to_owned(), run_sealed()])
                .with_network("none")
                .with_mount(Mount::bind_mount(socket_dir.display().to_string(), "/var/run/postgresql"))
                .with_host_config_modifier(|config| {
                    config.publish_all_ports = Some(false);
                    config.port_bindings = None;
                }),
            Some(secret) => request
                .with_cmd(["-c".to_owned(), run_on_port()])
                .with_env_var("PGSHADOW_PASSWORD", super::Endpoint::derive(secret, "pgshadow_admin"))
                .with_host_config_modifier(|config| {
                    // Only 5432, only on 127.0.0.1, on a port the daemon picks: never every exposed port on every
                    // address, as testcontainers would publish them.
                    let binding = PortBinding { host_ip: Some("127.0.0.1".to_owned()), host_port: Some(String::new()) };
                    config.publish_all_ports = Some(false);
                    config.port_bindings = Some([("5432/tcp".to_owned(), Some(vec![binding]))].into());
                }),
        };
        let started =
            request.start().await.map_err(|e| fail(format!("could not start a container of {image}: {e}")))?;
        let published = match secret {
            Some(_) => started.get_host_port_ipv4(5432).await.ok(),
            None => None,
        };
        let mut container = Container { inner: Some(started), image: image.to_owned(), reached: Reached::Socket };
        let mut probe = tokio_postgres::Config::new();
        probe.user("pgshadow_admin").dbname("postgres").connect_timeout(Duration::from_secs(2));
        match secret {
            None => {
                probe.host_path(socket_dir).port(5432);
            }
            Some(secret) => {
                let Some(port) = published else {
                    let log = container.log().await;
                    return Err(Error::ShadowStart { message: format!("{image}: no port was published"), log });
                };
                probe.host("127.0.0.1").port(port).password(super::Endpoint::derive(&secret, "pgshadow_admin"));
                container.reached = Reached::Port { port, secret, why };
            }
        }
        // Ready when a connection is accepted (the socket appears, and the port is open, while the server is still
        // starting up).
        while let Err(e) = probe.connect(tokio_postgres::NoTls).await {
            // The server answered, and not with "starting up": waiting longer will not help.
            if e.code().is_some_and(|c| *c != tokio_postgres::error::SqlState::CANNOT_CONNECT_NOW) {
                let log = container.log().await;
                let message = format!("{image}: the server refused pgshadow: {}", crate::error::with_causes(&e));
                return Err(Error::ShadowStart { message, log });
            }
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

/// Why the daemon is out of reach altogether, if it is on another machine (`DOCKER_HOST` over TCP or SSH to a host
/// other than this one): neither a socket directory nor a port on this machine's 127.0.0.1 reaches its containers.
fn remote_daemon() -> Option<String> {
    remote(&std::env::var("DOCKER_HOST").unwrap_or_default())
}

fn remote(host: &str) -> Option<String> {
    let (scheme, rest) = host.split_once("://").filter(|(scheme, _)| !matches!(*scheme, "unix" | "npipe"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let name = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let name = match name.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => name.split(':').next().unwrap_or_default(),
    };
    let here = name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    (!here).then(|| format!("is reached over {scheme} (DOCKER_HOST={host})"))
}

/// Why the daemon's containers cannot share a socket directory with this machine, if they cannot: the daemon runs
/// in a virtual machine (Docker Desktop; or colima, OrbStack, a Podman machine... which show as another kernel).
async fn in_a_virtual_machine(docker: &testcontainers::bollard::Docker) -> Option<String> {
    let info = docker.info().await.ok()?;
    let ours = nix::sys::utsname::uname().ok().map(|u| u.release().to_string_lossy().into_owned());
    elsewhere(&info.operating_system.unwrap_or_default(), &info.kernel_version.unwrap_or_default(), ours.as_deref())
}

fn elsewhere(system: &str, kernel: &str, our_kernel: Option<&str>) -> Option<String> {
    if system.contains("Docker Desktop") {
        return Some(format!("runs in a virtual machine ({system})"));
    }
    match our_kernel {
        Some(ours) if !kernel.is_empty() && kernel != ours => {
            Some(format!("runs on another kernel than this machine's ({kernel}, here {ours}): in a virtual machine"))
        }
        _ => None,
    }
}

/// How a container is reached, `reach` settled for a daemon that runs `vm` (why, if in a virtual machine), and why
/// through a port if so.
fn settle(reach: Reach, vm: Option<String>) -> Result<(Reach, String)> {
    match (reach, vm) {
        (Reach::Socket, Some(why)) => Err(Error::ShadowStart {
            message: format!(
                "the Docker daemon {why}, so the shadow's socket directory cannot be shared with its containers; \
                 use --reach port (a port published on 127.0.0.1, the container on Docker's bridge network)"
            ),
            log: String::new(),
        }),
        (Reach::Port, _) => Ok((Reach::Port, "asked for with --reach port".to_owned())),
        (Reach::Auto, Some(why)) => Ok((Reach::Port, format!("the Docker daemon {why}: it cannot share a socket"))),
        (Reach::Socket | Reach::Auto, None) => Ok((Reach::Socket, String::new())),
    }
}

/// The images the Docker daemon has (`repo:tag`), or `None` when no daemon answers within a few seconds, it is on
/// another machine, or it cannot share a socket directory and `reach` insists on one.
pub(crate) async fn images_here(reach: Reach) -> Option<Vec<String>> {
    if remote_daemon().is_some() {
        return None;
    }
    let listing = async {
        let docker = docker().await.ok()?;
        settle(reach, in_a_virtual_machine(&docker).await).ok()?;
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

/// Where this process's pid means something: the machine's boot (its `boot_id`, else its host name) and the pid
/// namespace. One daemon can serve several of them (CI jobs in containers that share the host's Docker socket, each
/// with pids of its own): a pid is only ever checked where it was taken.
fn owner() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|b| b.trim().to_owned());
    let boot = boot
        .unwrap_or_else(|_| nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default());
    let namespace = std::fs::read_link("/proc/self/ns/pid").map(|n| n.display().to_string()).unwrap_or_default();
    format!("{boot} {namespace}")
}

/// Removes the containers of runs whose process is gone (killed with SIGKILL: nothing of theirs ran to remove them).
/// Only containers started where this process runs ([`owner`]) are judged: another pid namespace's pids mean
/// nothing here, and a run there may be alive.
async fn sweep_killed_runs(docker: &testcontainers::bollard::Docker) {
    let here = owner();
    let filters = std::collections::HashMap::from([("label".to_owned(), vec![format!("{OWNER_LABEL}={here}")])]);
    let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    let Ok(containers) = docker.list_containers(Some(options)).await else { return };
    for container in containers {
        let labels = container.labels.as_ref();
        if !labels.is_some_and(|l| l.contains_key(RUN_LABEL) && l.get(OWNER_LABEL) == Some(&here)) {
            continue;
        }
        let pid = labels.and_then(|l| l.get(PID_LABEL)).and_then(|p| p.parse::<i32>().ok());
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
    use super::*;

    #[test]
    fn only_a_daemon_on_another_host_is_out_of_reach() {
        assert!(remote("tcp://192.0.2.1:2375").is_some_and(|why| why.contains("over tcp")));
        assert!(remote("ssh://me@build-box").is_some());
        assert_eq!(remote("tcp://127.0.0.1:2375"), None);
        assert_eq!(remote("tcp://localhost:2375"), None);
        assert_eq!(remote("tcp://[::1]:2375"), None);
        assert_eq!(remote("unix:///var/run/docker.sock"), None);
        assert_eq!(remote(""), None);
    }

    #[test]
    fn a_daemon_on_another_kernel_is_reached_through_a_port_unless_a_socket_is_insisted_on() {
        assert_eq!(elsewhere("Debian GNU/Linux 12 (bookworm)", "6.1.0-18-amd64", Some("6.1.0-18-amd64")), None);
        let desktop = elsewhere("Docker Desktop", "6.10.14-linuxkit", Some("6.10.14-linuxkit"));
        assert!(desktop.is_some_and(|why| why.contains("Docker Desktop")));
        let colima = elsewhere("Ubuntu 24.04 LTS", "6.8.0-50-generic", Some("24.1.0"));
        assert!(colima.as_deref().is_some_and(|why| why.contains("another kernel")), "{colima:?}");

        assert_eq!(settle(Reach::Auto, None).expect("auto").0, Reach::Socket);
        let (reach, why) = settle(Reach::Auto, colima.clone()).expect("auto");
        assert!(reach == Reach::Port && why.contains("cannot share a socket"), "{why}");
        assert_eq!(settle(Reach::Port, None).expect("port"), (Reach::Port, "asked for with --reach port".into()));
        match settle(Reach::Socket, colima) {
            Err(e) => assert!(e.to_string().contains("--reach port"), "{e}"),
            Ok(settled) => panic!("a socket cannot cross into a virtual machine: {settled:?}"),
        }
    }

    #[test]
    fn image_references_split_into_name_and_tag() {
        let split = |r: &str| split_reference(r);
        assert_eq!(split("postgres:17"), ("postgres".into(), "17".into()));
        assert_eq!(split("postgis/postgis:16-3.4"), ("postgis/postgis".into(), "16-3.4".into()));
        assert_eq!(split("registry:5000/team/pg:16"), ("registry:5000/team/pg".into(), "16".into()));
        assert_eq!(split("postgres"), ("postgres".into(), "latest".into()));
    }
}
