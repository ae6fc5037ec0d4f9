//! The container provider against a real Docker daemon: `.ci/run` starts one (`scripts/dockerd-up.sh`, no network
//! changes on the machine) and builds a test image from a cached PostgreSQL build (`scripts/container-test-image.sh`),
//! then sets DOCKER_HOST and PGSHADOW_TEST_IMAGE. Without them these tests say they were skipped, and with
//! PGSHADOW_TEST_REQUIRE_DOCKER=1 they fail instead.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{json_of, stderr_of, Sandbox};

/// The tests look at the daemon's containers as a whole: one at a time.
static DOCKER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The test image, or `None` (with a note) when there is no daemon or image to test against.
fn image(test: &str) -> Option<String> {
    let image = std::env::var("PGSHADOW_TEST_IMAGE").ok().filter(|i| !i.is_empty());
    if image.is_none() {
        assert!(
            std::env::var_os("PGSHADOW_TEST_REQUIRE_DOCKER").is_none(),
            "{test}: PGSHADOW_TEST_REQUIRE_DOCKER is set but PGSHADOW_TEST_IMAGE is not"
        );
        eprintln!("{test}: skipped: no PGSHADOW_TEST_IMAGE (and DOCKER_HOST) to run containers with");
    }
    image
}

/// The network namespace the test daemon publishes ports in, or `None` (with a note) when it runs in the machine's
/// own (a daemon `.ci/run` did not start, which the tests leave the machine's network to).
fn netns(test: &str) -> Option<std::path::PathBuf> {
    let netns = common::docker_netns();
    if netns.is_none() {
        eprintln!("{test}: skipped: no PGSHADOW_TEST_DOCKER_NETNS (the test daemon's network namespace)");
    }
    netns
}

/// Runs `work` on a thread that entered the network namespace `netns` (threads it starts are in it too).
fn in_netns<T: Send + 'static>(netns: &std::path::Path, work: impl FnOnce() -> T + Send + 'static) -> T {
    let file = std::fs::File::open(netns).expect("open the network namespace");
    std::thread::spawn(move || {
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        work()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// The containers pgshadow left, as `docker ps -a` lists them, once any removal under way is done (up to 20 s).
fn leftover_containers() -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listed = containers();
        if !listed.iter().any(|c| c.contains("Removal In Progress")) || Instant::now() > deadline {
            return listed;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn containers() -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-a", "--filter", "label=org.pgshadow.run", "--format", "{{.ID}} {{.Image}} {{.Status}}"])
        .output()
        .expect("run docker ps");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

/// Starts a run of `SELECT pg_sleep(60)` on a container of `image` and returns once its plan is running.
fn slow_run(sandbox: &Sandbox, image: &str) -> std::process::Child {
    let plan = sandbox.input("slow.sql");
    std::fs::create_dir_all(plan.parent().expect("a parent")).expect("mkdir");
    std::fs::write(&plan, "SELECT pg_sleep(60);\n").expect("write");
    let child = sandbox
        .command(&["run", &plan.display().to_string(), "--shadow", "container", "--image", image, "--pull", "never"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while containers().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(1500));
    child
}

fn seed_on(sandbox: &Sandbox, image: &str, extra: &[&str]) -> std::process::Output {
    let args = ["run", "scenarios/seed-incident/plan.sql", "--schema", "scenarios/seed-incident/schema.sql"];
    sandbox.run(
        &[&args[..], &["--shadow", "container", "--image", image, "--pull", "never", "-f", "json"], extra].concat(),
    )
}

#[test]
fn the_seed_incident_on_a_container_measures_what_a_local_shadow_of_its_version_does() {
    let _one_at_a_time = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(image) = image("seed on a container") else { return };
    let sandbox = Sandbox::new();
    let output = seed_on(&sandbox, &image, &[]);
    sandbox.assert_clean();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let on_container = json_of(&output);
    assert_eq!(on_container["shadow"]["provider"], "container");
    assert_eq!(on_container["shadow"]["version_reason"], format!("the image's ({image})"));
    assert_eq!(on_container["shadow"]["provider_reason"], "asked for with --shadow container");
    assert_eq!(on_container["shadow"]["container"]["image"], image.as_str());
    assert_eq!(on_container["shadow"]["container"]["sealed"], true, "{:#}", on_container["shadow"]);
    assert!(leftover_containers().is_empty(), "{:?}", leftover_containers());

    // The same run on a local shadow of the same major version, when this machine has one.
    let major =
        on_container["shadow"]["version"].as_str().and_then(|v| v.split('.').next()).unwrap_or_default().to_owned();
    let local = Sandbox::new().with_builds();
    let output = local.run(&[
        "run",
        "scenarios/seed-incident/plan.sql",
        "--schema",
        "scenarios/seed-incident/schema.sql",
        "--pg-version",
        &major,
        "-f",
        "json",
    ]);
    if output.status.code() == Some(2) {
        eprintln!("no local PostgreSQL {major} to compare with: {}", stderr_of(&output));
        return;
    }
    let on_local = json_of(&output);
    for field in ["verdict", "summary"] {
        let (mut a, mut b) = (on_container[field].clone(), on_local[field].clone());
        for v in [&mut a, &mut b] {
            if let Some(o) = v.as_object_mut() {
                o.remove("duration_ms");
                o.remove("longest_exclusive_lock");
            }
        }
        assert_eq!(a, b, "{field} differs between the container and a local {major}");
    }
    assert_eq!(on_container["statements"][0]["dropped_objects"], on_local["statements"][0]["dropped_objects"]);
}

#[test]
fn a_container_reached_through_a_port_publishes_it_on_loopback_only_and_every_role_needs_its_password() {
    let _one_at_a_time = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(image) = image("port") else { return };
    let Some(netns) = netns("port") else { return };
    let sandbox = Sandbox::new();
    let on_container = ["--shadow", "container", "--image", &image, "--pull", "never", "--reach", "port"];
    let seed = ["run", "scenarios/seed-incident/plan.sql", "--schema", "scenarios/seed-incident/schema.sql"];
    let output =
        sandbox.command_in(&netns, &[&seed[..], &on_container, &["-f", "json"]].concat()).output().expect("run");
    sandbox.assert_clean();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let report = json_of(&output);
    assert_eq!(report["summary"]["rows_destroyed"], 8, "{:#}", report["summary"]);
    let container = &report["shadow"]["container"];
    assert_eq!(container["sealed"], false, "the report says the shadow had a network: {container:#}");
    let reached = container["reached_through"].as_str().unwrap_or_default();
    assert!(reached.starts_with("127.0.0.1:") && reached.contains("(asked for with --reach port)"), "{reached}");
    assert!(leftover_containers().is_empty(), "{:?}", leftover_containers());

    // A run that waits, to look at its container: 5432 published on 127.0.0.1 only, every role asked for a password.
    let plan = sandbox.input("slow.sql");
    std::fs::write(&plan, "SELECT pg_sleep(60);\n").expect("write");
    let child = sandbox
        .command_in(&netns, &[&["run", &plan.display().to_string()][..], &on_container].concat())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let child = common::KillOnDrop(Some(child));
    let deadline = Instant::now() + Duration::from_secs(60);
    let (id, published) = loop {
        let id = containers().first().and_then(|c| c.split(' ').next().map(str::to_owned));
        let published = id.as_ref().map_or_else(String::new, |id| {
            let out = Command::new("docker").args(["port", id, "5432"]).output().expect("docker port");
            String::from_utf8_lossy(&out.stdout).into_owned()
        });
        if let (Some(id), false) = (&id, published.trim().is_empty()) {
            break (id.clone(), published);
        }
        assert!(Instant::now() < deadline, "no container with a published port");
        std::thread::sleep(Duration::from_millis(200));
    };
    let bindings = docker(&["inspect", "--format", "{{json .HostConfig.PortBindings}}", &id]);
    assert_eq!(
        bindings.trim(),
        r#"{"5432/tcp":[{"HostIp":"127.0.0.1","HostPort":""}]}"#,
        "only 5432, only on loopback"
    );
    let addresses: Vec<&str> = published.lines().collect();
    assert!(addresses.len() == 1 && addresses[0].starts_with("127.0.0.1:"), "published on {addresses:?}");
    let port: u16 = addresses[0].rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
    std::thread::sleep(Duration::from_millis(1500)); // the run's plan is under way
    let refused = in_netns(&netns, move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let mut refusals = Vec::new();
            for role in ["pgshadow_admin", "pgshadow_loader", "pgshadow_plan"] {
                for password in [None, Some("postgres"), Some("")] {
                    let mut config = tokio_postgres::Config::new();
                    config.host("127.0.0.1").port(port).user(role).dbname("postgres");
                    if let Some(password) = password {
                        config.password(password);
                    }
                    let outcome = config.connect(tokio_postgres::NoTls).await;
                    refusals.push((role, password, outcome.err().map(|e| (e.code().cloned(), format!("{e:?}")))));
                }
            }
            refusals
        })
    });
    for (role, password, refusal) in refused {
        // The server itself refused (it was reached): a wrong password, or none where it asks for one.
        let Some((code, message)) = refusal else { panic!("{role} logged in through the port with {password:?}") };
        match password {
            Some(_) => assert_eq!(code, Some(tokio_postgres::error::SqlState::INVALID_PASSWORD), "{role}: {message}"),
            None => assert!(message.contains("password missing"), "{role}: {message}"),
        }
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .expect("SIGTERM");
    let output = child.wait_with_output();
    assert_eq!(output.status.code(), Some(143));
    assert!(leftover_containers().is_empty(), "{:?}", leftover_containers());
    sandbox.assert_clean();
}

/// `docker ARGS`' output, which must succeed.
fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("run docker");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_superuser_plan_in_the_container_reaches_neither_the_network_nor_the_hosts_files() {
    let _one_at_a_time = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(image) = image("sealed container") else { return };
    let sandbox = Sandbox::new();
    let plan = sandbox.input("plan.sql");
    std::fs::create_dir_all(plan.parent().expect("a parent")).expect("mkdir");
    let host_file = common::root().join("Cargo.toml");
    std::fs::write(
        &plan,
        format!(
            "CREATE EXTENSION dblink;\nSELECT dblink_connect('host=10.1.2.3 port=5432 dbname=x connect_timeout=3');\n\
             SELECT pg_catalog.pg_stat_file('{}');\n",
            host_file.display()
        ),
    )
    .expect("write the plan");
    let plan = plan.display().to_string();
    let run = || {
        sandbox.run(&[
            "run",
            &plan,
            "--schema",
            "scenarios/seed-incident/schema.sql",
            "--shadow",
            "container",
            "--image",
            &image,
            "--pull",
            "never",
            "--superuser",
            "-f",
            "json",
        ])
    };
    let report = json_of(&run());
    sandbox.assert_clean();
    assert_eq!(report["statements"][0]["status"], "ok", "dblink is there: {}", report["statements"][0]);
    let error = report["statements"][1]["error"]["message"].as_str().unwrap_or_default();
    assert!(error.contains("could not") || error.contains("unreachable"), "no network: {error}");
    assert!(leftover_containers().is_empty());

    // The host file, as a separate plan (the first stops at the network error).
    std::fs::write(sandbox.input("plan.sql"), format!("SELECT pg_catalog.pg_stat_file('{}');\n", host_file.display()))
        .expect("write");
    let report = json_of(&run());
    let error = report["statements"][0]["error"]["message"].as_str().unwrap_or_default();
    assert!(error.contains("No such file"), "the host's files are not in the container: {error}");
    sandbox.assert_clean();
}

#[test]
fn a_run_killed_with_sigkill_leaves_a_container_that_the_next_run_removes() {
    let _one_at_a_time = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(image) = image("SIGKILL sweep") else { return };
    let sandbox = Sandbox::new();
    let mut child = slow_run(&sandbox, &image);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL)
        .expect("kill");
    let _ = child.wait();
    assert_eq!(leftover_containers().len(), 1, "the killed run's container is still there");
    let output = seed_on(&sandbox, &image, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    assert!(leftover_containers().is_empty(), "the next run removed it: {:?}", leftover_containers());
}

#[test]
fn the_sweep_removes_only_dead_runs_containers_of_its_own_pid_namespace() {
    let _one_at_a_time = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(image) = image("sweep, owners") else { return };
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot_id");
    let namespace = std::fs::read_link("/proc/self/ns/pid").expect("pid namespace");
    let here = format!("{} {}", boot.trim(), namespace.display());
    // Two containers of runs whose pid is not alive here: one of this pid namespace (its run was killed), one of
    // another (a CI job sharing the daemon, whose pid 4194304 may well be alive there).
    let create = |owner: &str| {
        let labels =
            ["org.pgshadow.run=sweep-test", "org.pgshadow.pid=4194304", &format!("org.pgshadow.owner={owner}")];
        let mut args = vec!["create"];
        for label in &labels {
            args.extend(["--label", label]);
        }
        args.extend([image.as_str(), "postgres"]);
        docker(&args).trim().to_owned()
    };
    let ours = create(&here);
    let theirs = create(&format!("{} pid:[1]", boot.trim()));
    let sandbox = Sandbox::new();
    let output = seed_on(&sandbox, &image, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let left = leftover_containers();
    let _ = Command::new("docker").args(["rm", "-f", &theirs]).output();
    assert!(!left.iter().any(|c| ours.starts_with(c.split(' ').next().unwrap_or("-"))), "ours was not swept: {left:?}");
    assert!(left.iter().any(|c| theirs.starts_with(c.split(' ').next().unwrap_or("-"))), "theirs was swept: {left:?}");
    sandbox.assert_clean();
}

#[test]
fn a_missing_image_with_pull_never_is_a_clear_error() {
    let _one_at_a_time = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    if image("pull never").is_none() {
        return;
    }
    let sandbox = Sandbox::new();
    let output = seed_on(&sandbox, "pgshadow-test/does-not-exist:1", &[]);
    sandbox.assert_clean();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("--pull never"), "{}", stderr_of(&output));
}

#[test]
fn sigterm_mid_run_removes_the_container() {
    let _one_at_a_time = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(image) = image("SIGTERM") else { return };
    let sandbox = Sandbox::new();
    let mut child = slow_run(&sandbox, &image);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .expect("SIGTERM");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(143));
    assert!(leftover_containers().is_empty(), "{:?}", leftover_containers());
    sandbox.assert_clean();
}

/// The major version of the test image (`PGSHADOW_TEST_IMAGE_MAJOR`, default 18).
fn image_major() -> u32 {
    std::env::var("PGSHADOW_TEST_IMAGE_MAJOR").ok().and_then(|m| m.parse().ok()).unwrap_or(18)
}

#[test]
fn auto_runs_a_source_whose_version_is_not_installed_on_an_image_docker_has_and_never_pulls() {
    let _one_at_a_time = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(image) = image("auto") else { return };
    let major = image_major();
    if pgshadow::postgres::discover(None).iter().any(|f| f.version.major == major) {
        eprintln!("auto: skipped: this machine has PostgreSQL {major} itself, so auto rightly runs it locally");
        return;
    }
    let sandbox = Sandbox::new();
    let (plan, schema) = (sandbox.input("plan.sql"), sandbox.input("schema.sql"));
    std::fs::create_dir_all(plan.parent().expect("a parent")).expect("mkdir");
    std::fs::write(&plan, "DELETE FROM t WHERE id = 1;\n").expect("write");
    let dumped = |major: u32| {
        format!("--\n-- Dumped from database version {major}.2\n--\n\nCREATE TABLE t (id int);\nINSERT INTO t VALUES (1), (2);\n")
    };
    let (plan, schema) = (plan.display().to_string(), schema.display().to_string());
    let run = || sandbox.run(&["run", &plan, "--schema", &schema, "-f", "json"]);

    // The image under the official name for the source's version: auto takes it.
    std::fs::write(sandbox.input("schema.sql"), dumped(major)).expect("write");
    let official = format!("postgres:{major}");
    let tagged = Command::new("docker").args(["tag", &image, &official]).status().expect("docker tag");
    assert!(tagged.success());
    let output = run();
    let untagged = Command::new("docker").args(["rmi", &official]).output().expect("docker rmi");
    assert!(untagged.status.success(), "{}", String::from_utf8_lossy(&untagged.stderr));
    sandbox.assert_clean();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let report = json_of(&output);
    assert_eq!(report["shadow"]["provider"], "container", "{:#}", report["shadow"]);
    let reason = report["shadow"]["provider_reason"].as_str().unwrap_or_default();
    assert!(reason.contains(&format!("no PostgreSQL {major} (the source's) installed here")), "{reason}");
    assert!(reason.contains(&format!("Docker has the image {official}")), "{reason}");
    assert!(stderr_of(&output).contains(reason), "stderr says which and why: {}", stderr_of(&output));
    assert_eq!(report["summary"]["rows_deleted"], 1);
    assert!(leftover_containers().is_empty(), "{:?}", leftover_containers());

    // No image for the version: the newest local build, with the mismatch warned about, and nothing pulled (this
    // machine reaches no registry: a pull would fail the run).
    let output = run();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let report = json_of(&output);
    assert_eq!(report["shadow"]["provider"], "local");
    let reason = report["shadow"]["provider_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("no image for it in Docker (--pull missing would pull one)"), "{reason}");
    assert!(stderr_of(&output).contains(&format!("pgshadow postgres install {major}")), "{}", stderr_of(&output));
    sandbox.assert_clean();
}

#[test]
fn concurrent_dry_runs_of_a_service_share_one_container_safely() {
    let _one_at_a_time = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(image) = image("shared container") else { return };
    concurrent_dry_runs_share_one_container(&image, pgshadow::shadow::Reach::Socket);
}

#[test]
fn concurrent_dry_runs_of_a_service_share_one_container_reached_through_a_port() {
    let _one_at_a_time = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(image) = image("shared container, port") else { return };
    let Some(netns) = netns("shared container, port") else { return };
    // Each clone's login role gets a password too: the service's runs log in through the port as those roles.
    in_netns(&netns, move || concurrent_dry_runs_share_one_container(&image, pgshadow::shadow::Reach::Port));
}

/// Eight dry-runs at once on one service of `image`'s container, reached as `reach` says.
fn concurrent_dry_runs_share_one_container(image: &str, reach: pgshadow::shadow::Reach) {
    use pgshadow::service::{Service, ServiceOptions};
    use pgshadow::shadow::{ContainerOptions, Pull};
    use pgshadow::{Plan, Policy, Provider, Schema};

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let seed = std::fs::read_to_string(common::root().join("scenarios/seed-incident/schema.sql")).expect("seed");
    runtime.block_on(async {
        let provider =
            Provider::Container(ContainerOptions { image: Some(image.to_owned()), pull: Pull::Never, reach });
        let options = ServiceOptions { provider, pool_size: 2, ..ServiceOptions::default() };
        let service = std::sync::Arc::new(Service::start(options).await.expect("the service starts"));
        assert_eq!(service.provider().0, "container");
        service.register("seed", &Schema::sql("seed.sql", seed)).await.expect("the seed registers");
        let drop_users = Plan::parse("drop.sql", "DROP TABLE users CASCADE;").expect("plan");
        let delete_some = Plan::parse("delete.sql", "DELETE FROM users WHERE id > 4;").expect("plan");
        let mut runs = Vec::new();
        for i in 0..8 {
            let service = std::sync::Arc::clone(&service);
            let plan = if i % 2 == 0 { drop_users.clone() } else { delete_some.clone() };
            runs.push(tokio::spawn(async move { service.dry_run("seed", &plan, &Policy::default()).await }));
        }
        // One container serves them all.
        assert_eq!(containers().len(), 1, "{:?}", containers());
        for (i, run) in runs.into_iter().enumerate() {
            let report = run.await.expect("task").expect("dry-run");
            assert_eq!(report.shadow.provider, "container");
            if i % 2 == 0 {
                // Every DROP saw the table whole: none ran after another's DROP or waited on another's lock.
                assert_eq!(report.summary.rows_destroyed, 8, "run {i}: {:?}", report.statements[0].error);
            } else {
                let users = report.statements[0].table_effects.iter().find(|e| e.table == "public.users");
                assert_eq!(users.and_then(|e| e.deleted), Some(4), "run {i}: the users the DROPs took are all there");
            }
        }
        assert_eq!(containers().len(), 1, "{:?}", containers());
        let service = std::sync::Arc::try_unwrap(service).unwrap_or_else(|_| panic!("no run holds the service"));
        service.shutdown().await.expect("shutdown");
    });
    assert!(leftover_containers().is_empty(), "the service removed its container: {:?}", leftover_containers());
}

#[test]
fn a_daemon_on_another_machine_is_refused_clearly_and_auto_runs_locally() {
    // Needs no daemon: a remote DOCKER_HOST is told apart before anything is asked of it (192.0.2.1 is TEST-NET-1).
    let sandbox = Sandbox::new();
    let seed = ["run", "scenarios/seed-incident/plan.sql", "--schema", "scenarios/seed-incident/schema.sql"];
    let output = sandbox
        .command(&[&seed[..], &["--shadow", "container"]].concat())
        .env("DOCKER_HOST", "tcp://192.0.2.1:2375")
        .output()
        .expect("run");
    sandbox.assert_clean();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("is reached over tcp"), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("neither a socket directory nor a port"), "{}", stderr_of(&output));
    // auto, for a source of a version not installed here, asks Docker only through a usable daemon: it runs locally.
    let (plan, schema) = (sandbox.input("plan.sql"), sandbox.input("schema.sql"));
    std::fs::create_dir_all(plan.parent().expect("a parent")).expect("mkdir");
    std::fs::write(&plan, "SELECT 1;\n").expect("write");
    std::fs::write(&schema, "--\n-- Dumped from database version 10.3\n--\n\nCREATE TABLE t (id int);\n")
        .expect("write");
    let (plan, schema) = (plan.display().to_string(), schema.display().to_string());
    let output = sandbox
        .command(&["run", &plan, "--schema", &schema, "--pull", "always", "-f", "json"])
        .env("DOCKER_HOST", "tcp://192.0.2.1:2375")
        .output()
        .expect("run");
    sandbox.assert_clean();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let report = json_of(&output);
    assert_eq!(report["shadow"]["provider"], "local");
    let reason = report["shadow"]["provider_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("no Docker daemon answers"), "{reason}");
}

#[test]
fn auto_sends_a_source_whose_extension_the_local_build_lacks_to_an_image_named_for_it() {
    let _one_at_a_time = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(image) = image("auto, extension") else { return };
    let major = image_major();
    let sandbox = Sandbox::new().with_builds();
    let local = pgshadow::postgres::discover(Some(sandbox.cache())).into_iter().find(|f| f.version.major == major);
    let Some(local) = local else {
        eprintln!("auto, extension: skipped: no local PostgreSQL {major} (PGSHADOW_TEST_BUILDS) whose lack to show");
        return;
    };
    let share = local.binaries.dir.parent().expect("a prefix").join("share/postgresql/extension");
    if share.join("vector.control").exists() || !share.join("plpgsql.control").exists() {
        eprintln!("auto, extension: skipped: {} has pgvector, or keeps its extensions elsewhere", share.display());
        return;
    }
    let (plan, schema) = (sandbox.input("plan.sql"), sandbox.input("schema.sql"));
    std::fs::create_dir_all(plan.parent().expect("a parent")).expect("mkdir");
    std::fs::write(&plan, "SELECT 1;\n").expect("write");
    let dump = format!(
        "--\n-- Dumped from database version {major}.1\n--\n\nCREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;\n\
         CREATE TABLE items (id int);\n"
    );
    std::fs::write(&schema, dump).expect("write");
    // The test image stands in for pgvector's under its name: it lacks the extension, which the report then says.
    let named = format!("pgvector/pgvector:pg{major}");
    assert!(Command::new("docker").args(["tag", &image, &named]).status().expect("docker tag").success());
    let output =
        sandbox.run(&["run", &plan.display().to_string(), "--schema", &schema.display().to_string(), "-f", "json"]);
    let untagged = Command::new("docker").args(["rmi", &named]).output().expect("docker rmi");
    assert!(untagged.status.success(), "{}", String::from_utf8_lossy(&untagged.stderr));
    sandbox.assert_clean();
    let report = json_of(&output);
    assert_eq!(report["shadow"]["provider"], "container", "{}", stderr_of(&output));
    let reason = report["shadow"]["provider_reason"].as_str().unwrap_or_default();
    assert!(reason.contains(&format!("the local PostgreSQL {major} (the source's) lacks vector")), "{reason}");
    assert!(reason.contains(&format!("Docker has the image {named}")), "{reason}");
    assert!(leftover_containers().is_empty(), "{:?}", leftover_containers());

    // Without the image: the local build, whose report says what is missing.
    let output =
        sandbox.run(&["run", &plan.display().to_string(), "--schema", &schema.display().to_string(), "-f", "json"]);
    let report = json_of(&output);
    assert_eq!(report["shadow"]["provider"], "local");
    assert_eq!(report["shadow"]["version"], local.version.to_string());
    assert_eq!(report["shadow"]["fidelity"]["missing_extensions"][0]["name"], "vector", "{:#}", report["shadow"]);
    sandbox.assert_clean();
}
