//! The HTML report and the review page, read in a real headless Chromium through the DevTools protocol: what a
//! reviewer sees is what the DOM of the rendered page holds, with hostile plan text and names left as text.

mod common;
#[path = "common/browser.rs"]
mod browser;

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
        &eval::<String>(&page, "JSON.stringify([...document.querySelectorAll('#findings tr[data-rule]')].map(r => r.dataset.rule))")
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
