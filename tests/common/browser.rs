//! A real headless Chromium for the tests of the HTML report and the review page, driven through the DevTools
//! protocol with `chromiumoxide`.
//!
//! The test starts Chromium itself (Debian's `chromium`, which `.ci/run` installs; `PGSHADOW_TEST_CHROMIUM` names
//! another binary) in a process group of its own, with a temporary profile, and connects to it. Dropping a
//! [`Chromium`] kills the whole group, waits for it and removes the profile, on every path a test can leave by,
//! a failed assertion included.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chromiumoxide::{Browser, Page};
use futures_util::StreamExt;

/// A headless Chromium and the connection to it.
pub struct Chromium {
    browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    process: Child,
    /// Declared last: removed after the process is gone.
    profile: tempfile::TempDir,
}

/// The Chromium binary the tests run.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PGSHADOW_TEST_CHROMIUM").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file());
    found.expect("no chromium on PATH: install Debian's (`apt-get install chromium`, as .ci/run does)")
}

impl Chromium {
    /// Starts Chromium headless (as root it needs `--no-sandbox`) and connects to it.
    pub async fn start() -> Chromium {
        let profile = tempfile::Builder::new().prefix("pgshadow-test-chromium-").tempdir().expect("profile dir");
        let process = Command::new(binary())
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-crash-reporter",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1100,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromium");
        // Owned from here on: a panic below still kills it.
        let mut guard = ProcessGuard(Some(process));
        let url = devtools_url(&profile, guard.0.as_mut().expect("just set")).await;
        let (browser, mut handler) = Browser::connect(url).await.expect("connect to chromium");
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        let process = guard.0.take().expect("just set");
        Chromium { browser, handler, process, profile }
    }

    /// A new tab at `url`, once it has loaded.
    pub async fn open(&self, url: &str) -> Page {
        let page = self.browser.new_page(url).await.expect("open a page");
        page.wait_for_navigation().await.expect("page loads");
        page
    }

    /// The directory of the browser's profile (the tests check nothing of the browser is left behind).
    pub fn profile(&self) -> PathBuf {
        self.profile.path().to_owned()
    }
}

/// Evaluates `expression` in `page` and reads its value as `T` (`JSON.stringify`-able values).
pub async fn eval<T: serde::de::DeserializeOwned>(page: &Page, expression: &str) -> T {
    let result = page.evaluate(expression).await.unwrap_or_else(|e| panic!("evaluate {expression}: {e}"));
    result.into_value().unwrap_or_else(|e| panic!("value of {expression}: {e}"))
}

/// The `ws://` address Chromium writes to `DevToolsActivePort` in its profile once it listens.
async fn devtools_url(profile: &tempfile::TempDir, process: &mut Child) -> String {
    let file = profile.path().join("DevToolsActivePort");
    // A guard against a browser that never comes up, not a measure of speed.
    let give_up = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                return format!("ws://127.0.0.1:{port}{path}");
            }
        }
        if let Some(status) = process.try_wait().expect("poll chromium") {
            panic!("chromium exited before it listened: {status}");
        }
        assert!(Instant::now() < give_up, "chromium did not open its DevTools port");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Kills the process group led by a child and reaps it.
fn kill_group(process: &mut Child) {
    let group = nix::unistd::Pid::from_raw(process.id() as i32);
    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    let _ = process.wait();
}

struct ProcessGuard(Option<Child>);

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        if let Some(process) = &mut self.0 {
            kill_group(process);
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        self.handler.abort();
        kill_group(&mut self.process);
        // Renderers and the zygote are in the same group; wait until none is left, so the profile can go.
        let group = self.process.id() as i32;
        let give_up = Instant::now() + Duration::from_secs(30);
        while group_alive(group) && Instant::now() < give_up {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(group), nix::sys::signal::Signal::SIGKILL);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether any process of the group is left.
fn group_alive(group: i32) -> bool {
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(group), None).is_ok()
}
