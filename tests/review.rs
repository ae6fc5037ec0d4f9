//! The HTML report and the review page, read in a real headless Chromium through the DevTools protocol: what a
//! reviewer sees is what the DOM of the rendered page holds, with hostile plan text and names left as text.

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::{eval, Chromium};
use serde::Deserialize;

/// A row of the page's "Rows per table", as the browser shows it.
#[derive(Debug, Deserialize)]
struct Row {
    table: String,
    how: String,
    basis: String,
    deleted: String,
    updated: String,
    truncated: String,
    visible: bool,
}

const ROWS: &str = r#"JSON.stringify([...document.querySelectorAll('#rows tbody tr')].map(tr => ({
    table: tr.dataset.table, how: tr.dataset.how, basis: tr.dataset.basis,
    deleted: tr.querySelector('[data-count=deleted]').innerText,
    updated: tr.querySelector('[data-count=updated]').innerText,
    truncated: tr.querySelector('[data-count=truncated]').innerText,
    visible: tr.checkVisibility() })))"#;

async fn rows(page: &chromiumoxide::Page) -> Vec<Row> {
    let json: String = eval(page, ROWS).await;
    serde_json::from_str(&json).expect("rows as JSON")
}

/// Writes `html` to a file and opens it in `browser`.
async fn open_html(browser: &Chromium, dir: &tempfile::TempDir, html: &str) -> chromiumoxide::Page {
    let path = dir.path().join("report.html");
    std::fs::write(&path, html).expect("write the page");
    browser.open(&format!("file://{}", path.display())).await
}

#[tokio::test]
async fn html_report_shows_rows_per_table_and_the_cascade() {
    let dir = common::root().join("scenarios/cascade-delete-two-levels");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("scenario file");
    let report = common::dry_run(&read("schema.sql"), &read("plan.sql")).await;
    let html = pgshadow::report::render_html(&report);

    let browser = Chromium::start().await;
    let files = tempfile::tempdir().expect("temp dir");
    let page = open_html(&browser, &files, &html).await;

    let rows = rows(&page).await;
    let row = |table: &str| rows.iter().find(|r| r.table == table).unwrap_or_else(|| panic!("{table} in {rows:?}"));
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.iter().all(|r| r.visible && r.basis == "measured"), "{rows:?}");
    let customers = row("public.customers");
    assert_eq!((customers.how.as_str(), customers.deleted.as_str()), ("direct", "1"));
    let orders = row("public.orders");
    assert_eq!((orders.how.as_str(), orders.deleted.as_str()), ("cascade", "3"));
    let lines = row("public.order_lines");
    assert_eq!((lines.how.as_str(), lines.deleted.as_str()), ("cascade", "6"));
    let invoices = row("public.invoices");
    assert_eq!((invoices.how.as_str(), invoices.updated.as_str()), ("cascade", "2"));

    let verdict: String = eval(&page, "document.getElementById('verdict').innerText").await;
    assert_eq!(verdict, "FAIL");
    let rules: Vec<String> = serde_json::from_str(
        &eval::<String>(
            &page,
            "JSON.stringify([...document.querySelectorAll('#findings tr[data-rule]')].map(r => r.dataset.rule))",
        )
        .await,
    )
    .expect("rules");
    assert!(rules.contains(&"cascade-delete".to_owned()), "{rules:?}");
    let plan: String = eval(&page, "document.getElementById('plan').innerText").await;
    assert!(plan.contains("DELETE FROM customers WHERE id = 1"), "{plan}");
    // The plan keeps the file's line numbers: the DELETE is on line 2, after a comment.
    let first_line: String = eval(&page, "document.querySelector('#statement-1 td.line').innerText").await;
    assert_eq!(first_line, "2");

    let profile = browser.profile();
    drop(browser);
    assert!(!profile.exists(), "the browser's profile is removed");
    assert!(common::processes_mentioning(&profile.display().to_string()).is_empty(), "no browser process is left");
}

#[tokio::test]
async fn hostile_names_plan_text_and_errors_stay_text() {
    let img = r#"</script><img src=x onerror="document.title='owned'">"#;
    let quoted = img.replace('"', "\"\"");
    let schema = format!(
        "CREATE TABLE \"{quoted}\" (id int PRIMARY KEY);\n\
         CREATE TABLE child (id int, parent int REFERENCES \"{quoted}\" ON DELETE CASCADE);\n\
         INSERT INTO \"{quoted}\" VALUES (1), (2);\nINSERT INTO child VALUES (10, 1), (11, 2);\n"
    );
    let plan = format!(
        "DELETE FROM \"{quoted}\" /* <script>document.title='owned'</script> */ WHERE id = 1;\n\
         SELECT * FROM \"<svg onload=alert(1)>\";\n"
    );
    let report = common::dry_run(&schema, &plan).await;
    let error = report.statements[1].error.as_ref().expect("the second statement fails");
    assert!(error.message.contains("<svg onload=alert(1)>"), "the error message carries the name: {error:?}");
    let html = pgshadow::report::render_html(&report);
    assert!(!html.contains("<img") && !html.contains("<svg") && !html.contains("<script>"), "{html}");

    let browser = Chromium::start().await;
    let files = tempfile::tempdir().expect("temp dir");
    let page = open_html(&browser, &files, &html).await;
    let elements: u32 = eval(&page, "document.querySelectorAll('img, svg, script').length").await;
    assert_eq!(elements, 0);
    let title: String = eval(&page, "document.title").await;
    assert!(title.starts_with("pgshadow: fail"), "{title}");
    let text: String = eval(&page, "document.body.innerText").await;
    assert!(text.contains(&format!("public.\"{quoted}\"")), "the table name reads as Postgres quotes it");
    assert!(text.contains("<svg onload=alert(1)>"), "the error message reads as written");
    assert!(text.contains("<script>document.title='owned'</script>"), "the plan's comment reads as written");
    let rows = rows(&page).await;
    let table = format!("public.\"{quoted}\"");
    assert!(rows.iter().any(|r| r.table == table && r.deleted == "1"), "{rows:?}");
}

#[tokio::test]
async fn unknown_counts_read_unknown_never_zero() {
    let dir = common::root().join("scenarios/schema-only-delete");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("scenario file");
    let report = common::dry_run(&read("schema.sql"), &read("plan.sql")).await;
    assert!(!report.summary.rows_known, "the premise: a schema without rows");
    let html = pgshadow::report::render_html(&report);

    let browser = Chromium::start().await;
    let files = tempfile::tempdir().expect("temp dir");
    let page = open_html(&browser, &files, &html).await;
    let rows = rows(&page).await;
    let sessions = rows.iter().find(|r| r.table == "public.sessions").unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!((sessions.deleted.as_str(), sessions.basis.as_str()), ("unknown", "unknown"), "{rows:?}");
    let audit_log = rows.iter().find(|r| r.table == "public.audit_log").unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(audit_log.truncated, "unknown", "{rows:?}");
    // SET NULL through a cascade from a table of unknown size: the update count is unknown too.
    let reviews = rows.iter().find(|r| r.table == "public.reviews").unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!((reviews.how.as_str(), reviews.updated.as_str()), ("cascade", "unknown"), "{rows:?}");
    let destroyed: String = eval(&page, "document.getElementById('rows-destroyed').innerText").await;
    assert_eq!(destroyed, "unknown");
}

/// A `pgshadow serve` started for one test: the real binary, on a free port of 127.0.0.1. Stopped with SIGTERM
/// (killed if it does not stop) when dropped.
struct Serve {
    child: std::process::Child,
    address: String,
}

impl Serve {
    fn start(sandbox: &common::Sandbox, config: &std::path::Path) -> Serve {
        Serve::start_on(sandbox, config, "127.0.0.1:0")
    }

    /// [`Serve::start`], listening on `listen`.
    fn start_on(sandbox: &common::Sandbox, config: &std::path::Path, listen: &str) -> Serve {
        use std::io::BufRead;
        let config = config.display().to_string();
        let mut command = sandbox.command(&["serve", "--listen", listen, "--config", &config]);
        command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
        let mut child = command.spawn().expect("spawn pgshadow serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("pgshadow serve: listening on http://") {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_owned());
                }
            }
        });
        let address = rx.recv_timeout(std::time::Duration::from_secs(120));
        let Ok(address) = address else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pgshadow serve did not start listening");
        };
        Serve { child, address }
    }

    /// A plain HTTP/1.1 request; the status, the headers (names lower-cased) and the body.
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Vec<(String, String)>, String) {
        common::http(&self.address, method, path, headers, body)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < give_up {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const AGENT: &str = "agent-token-for-the-review-test";
const REVIEWER: &str = "reviewer-token-for-the-review-test";

/// A sandbox with a tokens file (an agent, a reviewer), an SQLite store and the cascade scenario as source `shop`;
/// returns the configuration file and the store's path.
fn review_setup(sandbox: &common::Sandbox) -> (std::path::PathBuf, std::path::PathBuf) {
    let tokens = sandbox.input("tokens.toml");
    std::fs::write(
        &tokens,
        format!(
            "[[tokens]]\ntoken = \"{AGENT}\"\nname = \"deploy-bot\"\nrole = \"agent\"\n\n\
             [[tokens]]\ntoken = \"{REVIEWER}\"\nname = \"alice\"\nrole = \"reviewer\"\n"
        ),
    )
    .expect("tokens file");
    let store = sandbox.input("proposals.sqlite");
    let schema = common::root().join("scenarios/cascade-delete-two-levels/schema.sql");
    let config = sandbox.input("serve.toml");
    std::fs::write(
        &config,
        format!(
            "store = {:?}\ntokens_file = {:?}\npool_size = 1\n\n[[sources]]\nname = \"shop\"\nschema = {:?}\n",
            store.display().to_string(),
            tokens.display().to_string(),
            schema.display().to_string()
        ),
    )
    .expect("config");
    (config, store)
}

/// The agent proposes the cascade scenario's plan over the JSON API; returns the proposal's number.
fn propose(server: &Serve) -> i64 {
    let plan =
        std::fs::read_to_string(common::root().join("scenarios/cascade-delete-two-levels/plan.sql")).expect("plan");
    let body =
        serde_json::json!({"source": "shop", "plan": plan, "intent": "forget customer 1", "target": "production"});
    let auth = format!("Bearer {AGENT}");
    let (status, _, response) = server.request(
        "POST",
        "/v1/proposals",
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        &body.to_string(),
    );
    assert_eq!(status, 201, "{response}");
    let record: serde_json::Value = serde_json::from_str(&response).expect("JSON");
    record["proposal"]["id"].as_i64().expect("the proposal's number")
}

/// Clicks `selector` (a real mouse click, through the DevTools protocol) and waits until the page it leads to is
/// loaded and `arrived` (JavaScript) is true there.
async fn click_and_wait(page: &chromiumoxide::Page, selector: &str, arrived: &str) {
    let element = page.find_element(selector).await.unwrap_or_else(|e| panic!("{selector}: {e}"));
    element.click().await.unwrap_or_else(|e| panic!("click {selector}: {e}"));
    let check = format!("document.readyState === 'complete' && ({arrived})");
    // A guard against a page that never comes, not a measure of speed.
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !page.evaluate(check.as_str()).await.ok().and_then(|r| r.into_value::<bool>().ok()).unwrap_or(false) {
        assert!(std::time::Instant::now() < give_up, "after clicking {selector}, never: {arrived}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The top of the proposal page, down to the rows per table, as the README shows it (`docs/review-page.png`, made
/// by this test with `PGSHADOW_REVIEW_SCREENSHOT=docs/review-page.png`).
async fn screenshot(page: &chromiumoxide::Page, path: &std::path::Path) {
    use chromiumoxide::cdp::browser_protocol::page::Viewport;
    let bottom: f64 = eval(page, "document.getElementById('rows').getBoundingClientRect().bottom + scrollY + 8").await;
    let width: f64 = eval(page, "document.documentElement.clientWidth").await;
    let clip = Viewport { x: 0.0, y: 0.0, width, height: bottom, scale: 0.75 };
    let params = chromiumoxide::page::ScreenshotParams::builder().clip(clip).capture_beyond_viewport(true).build();
    let png = page.screenshot(params).await.expect("screenshot");
    std::fs::write(path, png).expect("write the screenshot");
}

#[tokio::test]
async fn a_reviewer_approves_in_the_browser_and_the_store_has_the_approval() {
    let sandbox = common::Sandbox::new().with_builds();
    let (config, store_path) = review_setup(&sandbox);
    let server = Serve::start(&sandbox, &config);
    let id = propose(&server);
    let base = format!("http://{}", server.address);

    let browser = Chromium::start().await;
    let page = browser.open(&format!("{base}/ui/proposals/{id}")).await;
    // Not signed in: the page sends the browser to the sign-in form.
    let url: String = eval(&page, "location.pathname").await;
    assert_eq!(url, "/ui/sign-in");
    page.find_element("#token")
        .await
        .expect("token field")
        .click()
        .await
        .expect("focus")
        .type_str(REVIEWER)
        .await
        .expect("type");
    click_and_wait(&page, "#sign-in", "location.pathname === '/ui'").await;
    let listed: Vec<i64> = serde_json::from_str(
        &eval::<String>(
            &page,
            "JSON.stringify([...document.querySelectorAll('#state-proposed tr[data-id]')].map(r => +r.dataset.id))",
        )
        .await,
    )
    .expect("ids");
    assert_eq!(listed, vec![id], "the list shows the proposal under proposed");
    let cookie_visible: String = eval(&page, "document.cookie").await;
    assert!(cookie_visible.is_empty(), "the session cookie is HttpOnly: {cookie_visible}");

    page.goto(format!("{base}/ui/proposals/{id}")).await.expect("open the proposal");
    let proposer: String = eval(&page, "document.getElementById('proposer').innerText").await;
    assert_eq!(proposer, "deploy-bot");
    let rows = rows(&page).await;
    let row = |table: &str| rows.iter().find(|r| r.table == table).unwrap_or_else(|| panic!("{table} in {rows:?}"));
    assert!(rows.iter().all(|r| r.visible), "{rows:?}");
    assert_eq!((row("public.customers").how.as_str(), row("public.customers").deleted.as_str()), ("direct", "1"));
    assert_eq!((row("public.orders").how.as_str(), row("public.orders").deleted.as_str()), ("cascade", "3"));
    assert_eq!((row("public.order_lines").how.as_str(), row("public.order_lines").deleted.as_str()), ("cascade", "6"));
    if let Some(path) = std::env::var_os("PGSHADOW_REVIEW_SCREENSHOT") {
        screenshot(&page, std::path::Path::new(&path)).await;
    }

    page.find_element("#comment")
        .await
        .expect("comment")
        .click()
        .await
        .expect("focus")
        .type_str("ok: customer 1 asked to be forgotten")
        .await
        .expect("type");
    click_and_wait(&page, "#approve", "document.getElementById('state')?.dataset.state === 'approved'").await;
    let state: String = eval(&page, "document.getElementById('state').dataset.state").await;
    assert_eq!(state, "approved");

    let store = pgshadow::proposal::Store::open(&store_path.display().to_string()).await.expect("open the store");
    let record = store.get(id).await.expect("the proposal");
    assert_eq!(record.state, pgshadow::proposal::State::Approved);
    assert_eq!(record.decisions.len(), 1, "{:?}", record.decisions);
    let decision = &record.decisions[0];
    assert_eq!((decision.reviewer.as_str(), decision.verdict), ("alice", pgshadow::proposal::Verdict::Approve));
    assert_eq!(decision.comment.as_deref(), Some("ok: customer 1 asked to be forgotten"));
    drop(browser);
    drop(server);
    sandbox.assert_clean();
}

#[tokio::test]
async fn decisions_need_the_session_csrf_token_and_the_reviewer_role() {
    let sandbox = common::Sandbox::new().with_builds();
    let (config, store_path) = review_setup(&sandbox);
    let server = Serve::start(&sandbox, &config);
    let id = propose(&server);
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let sign_in = |token: &str| {
        let (status, headers, _) = server.request("POST", "/ui/sign-in", &form, &format!("token={token}"));
        assert_eq!(status, 303);
        let cookie = headers.iter().find(|(k, _)| k == "set-cookie").map(|(_, v)| v.clone()).expect("a cookie");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
        assert!(!cookie.contains("Secure"), "on loopback, by default, not Secure: {cookie}");
        cookie.split(';').next().expect("name=value").to_owned()
    };
    let (status, _, _) = server.request("POST", "/ui/sign-in", &form, "token=not-a-token-of-the-file");
    assert_eq!(status, 401);
    let path = format!("/ui/proposals/{id}/approve");

    // Without a session: to the sign-in form, nothing decided.
    let (status, headers, _) = server.request("POST", &path, &form, "csrf=x");
    assert_eq!(status, 303);
    assert!(headers.iter().any(|(k, v)| k == "location" && v == "/ui/sign-in"), "{headers:?}");
    // A reviewer's session, but a forged CSRF token.
    let reviewer = sign_in(REVIEWER);
    let with_cookie = [form[0], ("Cookie", reviewer.as_str())];
    let (status, _, body) = server.request("POST", &path, &with_cookie, "csrf=forged&comment=x");
    assert_eq!(status, 403, "{body}");
    // The agent that proposed it, with its own session and CSRF token: its role cannot decide.
    let agent = sign_in(AGENT);
    let agent_headers = [("Cookie", agent.as_str())];
    let (status, _, page) = server.request("GET", &format!("/ui/proposals/{id}"), &agent_headers, "");
    assert_eq!(status, 200);
    assert!(!page.contains("id=\"approve\""), "no approve button for an agent");
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).and_then(|rest| rest.split('"').next()).expect("csrf");
    let (status, _, body) =
        server.request("POST", &path, &[form[0], ("Cookie", agent.as_str())], &format!("csrf={csrf}&comment=mine"));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("needs the role reviewer"), "{body}");

    let store = pgshadow::proposal::Store::open(&store_path.display().to_string()).await.expect("open the store");
    let record = store.get(id).await.expect("the proposal");
    assert!(record.decisions.is_empty(), "{:?}", record.decisions);
    assert_eq!(record.state, pgshadow::proposal::State::Proposed);
    // The refusal for lack of a role is audited once, with the text the CLI and the API give it.
    let refusals: Vec<_> = store
        .audit()
        .await
        .expect("the audit log")
        .into_iter()
        .filter(|e| e.fact.event == pgshadow::proposal::audit::Event::Refused)
        .map(|e| (e.fact.actor, e.fact.detail.unwrap_or_default()))
        .collect();
    let expected = "approve refused: not allowed: deploy-bot has the role agent; this needs the role reviewer";
    assert_eq!(refusals, vec![("deploy-bot".to_owned(), expected.to_owned())]);
    drop(server);
    sandbox.assert_clean();
}

#[tokio::test]
async fn a_new_version_shows_its_diff_its_unguarded_statement_and_that_it_is_nondeterministic() {
    let sandbox = common::Sandbox::new().with_builds();
    let (config, store_path) = review_setup(&sandbox);
    let server = Serve::start(&sandbox, &config);
    let first = propose(&server);
    let plan = "DELETE FROM orders WHERE placed_on < current_date - 300;\n\
                CREATE INDEX CONCURRENTLY orders_placed_on ON orders (placed_on);\n";
    let body = serde_json::json!({"source": "shop", "plan": plan, "replaces": first, "intent": "<b>old</b> orders"});
    let auth = format!("Bearer {AGENT}");
    let json = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let (status, _, response) = server.request("POST", "/v1/proposals", &json, &body.to_string());
    assert_eq!(status, 201, "{response}");
    let second = serde_json::from_str::<serde_json::Value>(&response).expect("JSON")["proposal"]["id"].as_i64();
    let second = second.expect("the new proposal's number");

    let browser = Chromium::start().await;
    let base = format!("http://{}", server.address);
    let page = browser.open(&format!("{base}/ui/sign-in")).await;
    page.find_element("#token")
        .await
        .expect("token")
        .click()
        .await
        .expect("focus")
        .type_str(REVIEWER)
        .await
        .expect("type");
    click_and_wait(&page, "#sign-in", "location.pathname === '/ui'").await;
    page.goto(format!("{base}/ui/proposals/{second}")).await.expect("open the new version");
    let unguarded: String = eval(&page, "document.getElementById('unguarded').innerText").await;
    assert!(unguarded.contains("statement 2 "), "{unguarded}");
    let nondeterministic: String = eval(&page, "document.getElementById('nondeterministic').innerText").await;
    assert!(nondeterministic.contains("statement 1"), "{nondeterministic}");
    let intent: String = eval(&page, "document.querySelector('dl.meta dd:nth-of-type(2)').innerText").await;
    assert_eq!(intent, "<b>old</b> orders", "the intent is text");
    let diff: Vec<String> = serde_json::from_str(
        &eval::<String>(&page, "JSON.stringify([...document.querySelectorAll('#diff tr')].map(r => r.className + ' ' + r.innerText.trim()))").await,
    )
    .expect("diff lines");
    assert!(
        diff.iter().any(|l| l.starts_with("removed") && l.contains("DELETE FROM customers WHERE id = 1")),
        "{diff:?}"
    );
    assert!(diff.iter().any(|l| l.starts_with("added") && l.contains("CREATE INDEX CONCURRENTLY")), "{diff:?}");

    // Approving with the box ticked accepts the unguarded statement, as `proposals approve --unguarded` does.
    page.find_element("#accept-unguarded").await.expect("the unguarded box").click().await.expect("tick it");
    click_and_wait(&page, "#approve", "document.getElementById('state')?.dataset.state === 'approved'").await;
    let store = pgshadow::proposal::Store::open(&store_path.display().to_string()).await.expect("open the store");
    let record = store.get(second).await.expect("the proposal");
    assert_eq!(record.decisions.len(), 1, "{:?}", record.decisions);
    assert!(record.decisions[0].unguarded, "the approval accepts the unguarded statement: {:?}", record.decisions);
    drop(browser);
    drop(server);
    sandbox.assert_clean();
}

/// A form post to the review page's sign-in; the status, the headers and the body.
fn sign_in_post(server: &Serve, token: &str) -> (u16, Vec<(String, String)>, String) {
    server.request(
        "POST",
        "/ui/sign-in",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("token={token}"),
    )
}

/// Types `token` into the sign-in form of `page` and clicks *Sign in*; waits for the page that answers.
async fn sign_in_with(page: &chromiumoxide::Page, token: &str, arrived: &str) {
    let field = page.find_element("#token").await.expect("token field");
    field.click().await.expect("focus").type_str(token).await.expect("type");
    click_and_wait(page, "#sign-in", arrived).await;
}

#[tokio::test]
async fn sign_in_closes_to_an_address_after_wrong_tokens_and_the_browser_is_told_so() {
    let sandbox = common::Sandbox::new().with_builds();
    let (config, _) = review_setup(&sandbox);
    let server = Serve::start(&sandbox, &config);
    // Signing in with a right token is never held back, however often.
    for _ in 0..15 {
        assert_eq!(sign_in_post(&server, REVIEWER).0, 303);
    }
    // Ten wrong tokens are each told so; then sign-in is closed to this address, for the right token too.
    for attempt in 1..=10 {
        let (status, _, body) = sign_in_post(&server, &format!("wrong-token-number-{attempt}"));
        assert_eq!(status, 401, "attempt {attempt}: {body}");
    }
    let (status, headers, body) = sign_in_post(&server, REVIEWER);
    assert_eq!(status, 429, "{body}");
    let retry = headers.iter().find(|(k, _)| k == "retry-after").and_then(|(_, v)| v.parse::<u64>().ok());
    assert!(retry.is_some_and(|s| s > 0 && s <= 30), "{headers:?}");
    assert!(!headers.iter().any(|(k, _)| k == "set-cookie"), "no session: {headers:?}");
    // The API's bearer check counts against the same limit.
    let auth = format!("Bearer {REVIEWER}");
    let (status, headers, body) = server.request("GET", "/v1/proposals", &[("Authorization", &auth)], "");
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("\"locked_out\"") && headers.iter().any(|(k, _)| k == "retry-after"), "{body}");

    // In a real browser at the same address: a page that says why, and no session.
    let browser = Chromium::start().await;
    let base = format!("http://{}", server.address);
    let page = browser.open(&format!("{base}/ui/sign-in")).await;
    sign_in_with(&page, REVIEWER, "document.body.innerText.includes('Too many wrong tokens')").await;
    let text: String = eval(&page, "document.getElementById('alert').innerText").await;
    assert!(text.contains("sign-in is closed for") && text.contains("Try again"), "{text}");
    page.goto(format!("{base}/ui")).await.expect("the list");
    let url: String = eval(&page, "location.pathname").await;
    assert_eq!(url, "/ui/sign-in", "not signed in");
    drop(browser);
    drop(server);
    sandbox.assert_clean();
}

#[tokio::test]
async fn a_sign_in_form_posted_from_another_site_is_refused() {
    let sandbox = common::Sandbox::new().with_builds();
    let (config, _) = review_setup(&sandbox);
    let server = Serve::start(&sandbox, &config);
    let form = [("Content-Type", "application/x-www-form-urlencoded"), ("Origin", "https://evil.example")];
    let (status, headers, body) = server.request("POST", "/ui/sign-in", &form, &format!("token={AGENT}"));
    assert_eq!(status, 403, "{body}");
    assert!(!headers.iter().any(|(k, _)| k == "set-cookie"), "{headers:?}");

    // Login CSRF in a real browser: another site's page posts the attacker's token to the sign-in.
    let attacker = format!(
        "<!doctype html><form method=post action=\"http://{}/ui/sign-in\">\
         <input type=hidden name=token value=\"{AGENT}\"><button id=go>win a prize</button></form>",
        server.address
    );
    let browser = Chromium::start().await;
    let files = tempfile::tempdir().expect("temp dir");
    let page = open_html(&browser, &files, &attacker).await;
    let host = format!("location.host === '{}'", server.address);
    click_and_wait(&page, "#go", &host).await;
    let text: String = eval(&page, "document.body.innerText").await;
    assert!(text.contains("sent from another site"), "{text}");
    page.goto(format!("http://{}/ui", server.address)).await.expect("the list");
    let url: String = eval(&page, "location.pathname").await;
    assert_eq!(url, "/ui/sign-in", "the browser was not signed in as the attacker");
    drop(browser);
    drop(server);
    sandbox.assert_clean();
}

#[tokio::test]
async fn the_session_cookie_is_secure_when_configured_and_off_loopback() {
    let sandbox = common::Sandbox::new().with_builds();
    let (config, _) = review_setup(&sandbox);
    let cookie_of = |headers: &[(String, String)]| {
        headers.iter().find(|(k, _)| k == "set-cookie").map(|(_, v)| v.clone()).expect("a cookie")
    };
    // Reachable from other machines: Secure by default (a TLS proxy is expected in front).
    let server = Serve::start_on(&sandbox, &config, "0.0.0.0:0");
    let (status, headers, _) = sign_in_post(&server, REVIEWER);
    assert_eq!(status, 303);
    let cookie = cookie_of(&headers);
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    drop(server);

    // `secure_cookies = true` on loopback: Secure, and a browser still signs in (loopback counts as secure).
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("secure_cookies = true\n{text}")).expect("config");
    let server = Serve::start(&sandbox, &config);
    let (_, headers, _) = sign_in_post(&server, REVIEWER);
    assert!(cookie_of(&headers).contains("; Secure"), "{headers:?}");
    let browser = Chromium::start().await;
    let page = browser.open(&format!("http://{}/ui/sign-in", server.address)).await;
    sign_in_with(&page, REVIEWER, "location.pathname === '/ui'").await;
    let title: String = eval(&page, "document.title").await;
    assert!(title.starts_with("Proposals"), "signed in: {title}");
    drop(browser);
    drop(server);
    sandbox.assert_clean();
}
