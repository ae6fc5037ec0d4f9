//! `pgshadow mcp`: dry-runs served to an AI agent over the Model Context Protocol, on standard input and output.
//!
//! The server offers four tools: `dry_run` (a plan against a prepared source, with the verdict, the findings and
//! every statement's measured effects), `propose` (the same dry-run, stored as a proposal for people to approve),
//! `list_sources` (what can be dry-run against, and how faithful each shadow is) and `explain_rule` (what a
//! finding's rule catches, and the safer way). A tool's failure (a plan that does not
//! parse, an unknown source, policy or rule, a dry-run that timed out) is a tool result with `isError: true` and a
//! message the agent can act on, never a protocol error.
//!
//! Every dry-run goes through [`Service::dry_run`]: a clone of the source's template database of its own, on the
//! service's own throw-away shadow, inside a transaction that is always rolled back (the clone is then put back as
//! it was, or dropped). Production is never touched.

use std::fmt::Write;
use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::{QuitReason, ServerInitializeError};
use rmcp::{tool, tool_handler, tool_router, ServerHandler, ServiceExt};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::policy::Rule;
use crate::proposal::{Draft, Proposal, Record, Store};
use crate::report::{Severity, StatementReport, Status};
use crate::service::config::Config;
use crate::service::Service;
use crate::{Plan, Report, Verdict};

/// What a busy server tells a client to wait before calling again, as `serve`'s `Retry-After`.
const BUSY_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Serves the tools on standard input and output until the client closes its end (or the future is dropped), then
/// returns. The caller shuts `service` down.
pub async fn serve_stdio(service: Arc<Service>, config: Config) -> Result<()> {
    let server = McpServer::new(service, config);
    let running = match server.serve(rmcp::transport::stdio_pipes()).await {
        Ok(running) => running,
        // The client went away before the handshake: nothing was asked, nothing to do.
        Err(ServerInitializeError::ConnectionClosed(reason)) => {
            tracing::info!(%reason, "the MCP client closed the connection before initializing");
            return Ok(());
        }
        Err(e) => return Err(protocol_error(e)),
    };
    match running.waiting().await {
        Ok(QuitReason::JoinError(e)) | Err(e) => Err(protocol_error(e)),
        Ok(_) => Ok(()),
    }
}

fn protocol_error(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::io("<MCP on stdin/stdout>", std::io::Error::other(e))
}

const INSTRUCTIONS: &str = "\
pgshadow dry-runs SQL on a throw-away shadow copy of a database and reports exactly what it would do, before anything \
touches production. Nothing you send here ever reaches a production database: every plan runs on a private clone of a \
prepared source, inside a transaction that is always rolled back, and the clone is then put back as it was or \
dropped.

Workflow: call list_sources to see which sources (schemas) you can dry-run against; call dry_run with a source and \
the SQL you intend to run; read the verdict (pass, warn or fail) and the findings; for a finding whose rule you do \
not know, call explain_rule for the reason and a safer way to write the change. Revise the SQL and dry-run again \
until the verdict is pass, or explain to the user why a warn or fail is intended.";

const DRY_RUN: &str = "\
Dry-run a SQL plan against a registered source and report its measured impact. Nothing touches production: the plan \
runs on a throw-away shadow copy of the source, inside a transaction that is always rolled back, and the copy is \
put back as it was (or dropped) afterwards. So it is safe to dry-run destructive statements (DROP, DELETE, TRUNCATE, ALTER) to see what they \
would do.

The result starts with the verdict: `pass` (nothing the policy forbids or warns about), `warn` (only warnings; \
usually acceptable, but tell the user) or `fail` (at least one finding of severity error: do not run this plan in \
production as written). Each finding names its rule (call explain_rule with it for the safer way) and the 1-based \
statement it is about. Then come the totals (rows inserted, updated, deleted, truncated and destroyed; objects and \
tables dropped) and, per statement, its status (ok, error, not run), its error, rows affected, the rows it changed in \
each table including foreign-key cascades and triggers, every object it dropped including what CASCADE took, and the \
locks it took (which block reads or writes in production until the transaction ends). The structured content is the \
full pgshadow JSON report (verdict, summary, findings, statements, shadow fidelity).

A statement that fails on the shadow is a result, not a tool error: it shows as status error with Postgres's message \
and would fail in production too. A tool error means the dry-run could not be done: a plan that does not parse, an \
unknown source or policy, a timeout, or a busy server (every dry-run slot taken: call again after the seconds it \
says).";

const LIST_SOURCES: &str = "\
List the sources registered on this server: the names dry_run accepts as `source`, each with its schema file, how \
faithful the shadow copy is (objects in the source, objects loaded, objects that failed to load, PostgreSQL extensions \
the shadow lacks) and its SHA-256. A source whose objects did not all load gives dry-runs that may miss effects on \
the objects that failed. Also lists the named policies dry_run accepts as `policy`. Reads nothing but this server's \
own state.";

const PROPOSE: &str = "\
Propose a plan for production: pgshadow dry-runs it as dry_run does and stores it, with its report, as a proposal \
that people review and approve or reject. Nothing runs in production here; an approved plan is applied later by a \
separate pipeline, which refuses it if production changed or would be hit harder than this dry-run measured. Use it \
once dry_run shows the plan does what you intend; give `intent` (why) and `target` (where it should run).";

const EXPLAIN_RULE: &str = "\
Explain a rule of pgshadow's findings catalog: what it catches, why it matters in production, a plan that triggers \
it and a safer way to write the same change, with the schema the examples assume. Use it for the `rule` of a \
dry_run finding before revising the plan.";

/// The arguments of `dry_run`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DryRunArgs {
    /// The name of a registered source (see list_sources): the schema, with its data, the plan runs against.
    pub source: String,
    /// The plan: SQL statements separated by semicolons, as you would run them in production (several statements
    /// run in order, in one transaction that is rolled back). Or a JSON plan: {"statements": ["...", ...]} with any
    /// other members (such as "agent" or "intent") carried into the report.
    pub sql: String,
    /// A named policy of this server's configuration that gives the verdict (see list_sources); omit it for the
    /// built-in policy.
    #[serde(default)]
    pub policy: Option<String>,
}

/// The arguments of `propose`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ProposeArgs {
    /// The name of a registered source (see list_sources), as for dry_run.
    pub source: String,
    /// The plan, as for dry_run. A JSON plan's "agent" names who proposes it, its "intent" why.
    pub sql: String,
    /// A named policy of this server's configuration; omit it for the built-in one.
    #[serde(default)]
    pub policy: Option<String>,
    /// The name of the target the plan is meant for (as the people who review it call it, e.g. "production").
    #[serde(default)]
    pub target: Option<String>,
    /// Why the plan should run.
    #[serde(default)]
    pub intent: Option<String>,
    /// The number of an earlier proposal this one is a new version of.
    #[serde(default)]
    pub replaces: Option<i64>,
}

/// The arguments of `explain_rule`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExplainRuleArgs {
    /// The rule's id, as a dry_run finding names it (for example `drop-table` or `cascade-delete`).
    pub rule: String,
}

/// The MCP server: the tools over a [`Service`].
#[derive(Clone)]
struct McpServer {
    service: Arc<Service>,
    config: Arc<Config>,
    /// Dry-runs at a time (`max_concurrent`); more are answered [`Error::Busy`] at once, as `serve` answers 429.
    turns: Arc<Semaphore>,
    /// The proposals store, opened on the first `propose`.
    store: Arc<tokio::sync::OnceCell<Store>>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl McpServer {
    fn new(service: Arc<Service>, config: Config) -> McpServer {
        let turns = Arc::new(Semaphore::new(config.max_concurrent.max(1)));
        let store = Arc::new(tokio::sync::OnceCell::new());
        McpServer { service, config: Arc::new(config), turns, store, tool_router: Self::tool_router() }
    }

    #[tool(
        description = DRY_RUN,
        annotations(title = "Dry-run SQL on a shadow copy", read_only_hint = true, open_world_hint = false)
    )]
    async fn dry_run(&self, Parameters(args): Parameters<DryRunArgs>) -> CallToolResult {
        match self.try_dry_run(&args).await {
            Ok(report) => {
                let text = report_text(&report, &args.source);
                match serde_json::to_value(&report) {
                    Ok(json) => with_structure(text, json),
                    Err(e) => tool_error(format!("the report could not be serialized: {e}")),
                }
            }
            Err(e) => tool_error(self.error_text(&e)),
        }
    }

    #[tool(
        description = PROPOSE,
        annotations(title = "Propose a plan for approval", read_only_hint = false, open_world_hint = false)
    )]
    async fn propose(&self, Parameters(args): Parameters<ProposeArgs>) -> CallToolResult {
        match self.try_propose(args).await {
            Ok(record) => {
                let p = &record.proposal;
                let text = format!(
                    "Stored as proposal {}: {} (verdict {}), waiting for {} approval(s) by people. It is applied only \
                     after approval, by a separate pipeline, and only if production does no more than what was \
                     measured here.",
                    p.id, record.state, p.verdict, record.approvals_required
                );
                match serde_json::to_value(&record) {
                    Ok(json) => with_structure(text, json),
                    Err(e) => tool_error(format!("the proposal could not be serialized: {e}")),
                }
            }
            Err(e) => tool_error(self.error_text(&e)),
        }
    }

    #[tool(
        description = LIST_SOURCES,
        annotations(title = "List the sources to dry-run against", read_only_hint = true, open_world_hint = false)
    )]
    async fn list_sources(&self) -> CallToolResult {
        let sources = self.service.sources();
        let policies = self.policy_names();
        let mut text = String::new();
        if sources.is_empty() {
            text.push_str("No sources are registered: dry_run has nothing to run against.\n");
        }
        for source in &sources {
            let fidelity = &source.fidelity;
            let _ = write!(text, "{}", source.name);
            if let Some(schema) = &source.schema {
                let _ = write!(
                    text,
                    ": {} ({} objects, {} loaded, {} failed to load)",
                    schema.file, fidelity.objects_in_source, fidelity.objects_reproduced, schema.failed
                );
            }
            let _ = writeln!(text, "; sha256 {}", source.sha256);
            for line in crate::report::fidelity_lines(fidelity) {
                let _ = writeln!(text, "  fidelity: {line}");
            }
        }
        let _ = writeln!(text, "Shadow: PostgreSQL {}", self.service.server_version());
        let _ = writeln!(text, "Policies: {} (omit `policy` for the built-in one)", policies.join(", "));
        let structured = serde_json::json!({
            "sources": sources,
            "policies": policies,
            "server_version": self.service.server_version(),
        });
        with_structure(text, structured)
    }

    #[tool(
        description = EXPLAIN_RULE,
        annotations(title = "Explain a finding's rule", read_only_hint = true, open_world_hint = false)
    )]
    async fn explain_rule(&self, Parameters(args): Parameters<ExplainRuleArgs>) -> CallToolResult {
        let Ok(rule) = args.rule.trim().parse::<Rule>() else {
            let mut text = format!("unknown rule `{}`. The rules are:\n", args.rule);
            for rule in Rule::ALL {
                let _ = writeln!(text, "  {:<32} {}", rule.id(), rule.summary());
            }
            return tool_error(text);
        };
        let doc = rule.doc();
        let text = rule.explain();
        let structured = serde_json::json!({
            "rule": rule.id(),
            "kind": rule.kind().as_str(),
            "summary": doc.summary,
            "safer": doc.safer,
            "explanation": doc.explanation,
            "bad": doc.bad,
            "safe": doc.safe,
            "schema": doc.schema,
        });
        with_structure(text, structured)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("pgshadow", env!("CARGO_PKG_VERSION"))
                    .with_title("pgshadow")
                    .with_description("Dry-run SQL plans on a throw-away shadow Postgres and report their impact"),
            )
            .with_instructions(INSTRUCTIONS)
    }
}

impl McpServer {
    async fn try_propose(&self, args: ProposeArgs) -> Result<Record> {
        let policy = self.config.policy(args.policy.as_deref().map(str::trim).filter(|p| !p.is_empty()))?;
        let name = if args.sql.trim_start().starts_with('{') { "plan.json" } else { "plan.sql" };
        let plan = Plan::parse(name, &args.sql)?;
        if !self.service.sources().iter().any(|s| s.name == args.source) {
            return Err(Error::UnknownSource(args.source.clone()));
        }
        let store = self.store.get_or_try_init(|| Store::open_or_default(self.config.store.as_deref())).await?;
        let _turn = Arc::clone(&self.turns)
            .try_acquire_owned()
            .map_err(|_| Error::Busy { slots: self.config.max_concurrent.max(1), retry_after: BUSY_RETRY_AFTER })?;
        let (report, catalog) = self.service.dry_run_described(&args.source, &plan, &policy, true).await?;
        let (agent, intent) = Proposal::named_in(&plan);
        let draft = Draft {
            proposer: agent.unwrap_or_else(|| "mcp-agent".to_owned()),
            intent: args.intent.or(intent),
            target: args.target,
            replaces: args.replaces,
            report,
            plan,
            plan_text: args.sql,
            policy,
            catalog,
        };
        store.propose(draft).await
    }

    async fn try_dry_run(&self, args: &DryRunArgs) -> Result<Report> {
        let policy = self.config.policy(args.policy.as_deref().map(str::trim).filter(|p| !p.is_empty()))?;
        let name = if args.sql.trim_start().starts_with('{') { "plan.json" } else { "plan.sql" };
        let plan = Plan::parse(name, &args.sql)?;
        if !self.service.sources().iter().any(|s| s.name == args.source) {
            return Err(Error::UnknownSource(args.source.clone()));
        }
        // Never queued: a client that floods the server hears "busy" at once rather than waiting without end.
        let _turn = Arc::clone(&self.turns)
            .try_acquire_owned()
            .map_err(|_| Error::Busy { slots: self.config.max_concurrent.max(1), retry_after: BUSY_RETRY_AFTER })?;
        self.service.dry_run(&args.source, &plan, &policy).await
    }

    /// The policies `dry_run` accepts: the built-in one, then the configuration's.
    fn policy_names(&self) -> Vec<String> {
        std::iter::once("default".to_owned()).chain(self.config.policies.keys().cloned()).collect()
    }

    /// An error as the agent should read it: what went wrong, and what to do about it.
    fn error_text(&self, error: &Error) -> String {
        let hint = match error {
            Error::UnknownSource(_) => {
                let names: Vec<String> = self.service.sources().into_iter().map(|s| s.name).collect();
                Some(match names.is_empty() {
                    true => "no sources are registered on this server".to_owned(),
                    false => format!("the registered sources are: {} (see list_sources)", names.join(", ")),
                })
            }
            Error::UnknownPolicy(_) => Some(format!(
                "the policies are: {} (omit `policy` for the built-in one)",
                self.policy_names().join(", ")
            )),
            Error::Input { .. } => Some(
                "`sql` must hold SQL statements separated by semicolons, or a JSON plan {\"statements\": [\"...\"]}"
                    .to_owned(),
            ),
            Error::Timeout(_) => Some(
                "the plan ran longer than this server's limit (timeout_seconds in its configuration); dry-run a \
                 smaller part of it, or one that touches fewer rows"
                    .to_owned(),
            ),
            other => other.hint(),
        };
        match hint {
            Some(hint) => format!("error: {error}\nhint: {hint}"),
            None => format!("error: {error}"),
        }
    }
}

/// A successful result: `text` for the model to read, and `structured` as the structured content.
fn with_structure(text: String, structured: serde_json::Value) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    result
}

fn tool_error(text: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

/// The report in a few lines for a model: the verdict first, then the totals, the findings and each statement's
/// effects.
fn report_text(report: &Report, source: &str) -> String {
    let mut out = String::new();
    let s = &report.summary;
    let verdict = match report.verdict {
        Verdict::Pass => "PASS",
        Verdict::Warn => "WARN",
        Verdict::Fail => "FAIL",
    };
    let _ = writeln!(out, "Verdict: {verdict} (policy: {})", report.policy.source);
    let _ = writeln!(
        out,
        "Dry-run of {} statement(s) against source {source:?} on a shadow copy (PostgreSQL {}, as {}); rolled back, \
         production untouched.",
        report.plan.statements, report.shadow.server_version, report.shadow.role
    );
    for line in crate::report::fidelity_lines(&report.shadow.fidelity) {
        let _ = writeln!(out, "Fidelity: {line}");
    }
    let _ = writeln!(
        out,
        "Totals: {} ok, {} failed, {} not run; {} rows inserted, {} updated, {} deleted, {} truncated; {} rows \
         destroyed; {} objects dropped ({} tables); {} tables rewritten.",
        s.statements_ok,
        s.statements_failed,
        s.statements_not_run,
        s.rows_inserted,
        crate::report::total_label(s.rows_updated, s.rows_known),
        crate::report::total_label(s.rows_deleted, s.rows_known),
        crate::report::total_label(s.rows_truncated, s.rows_known),
        crate::report::total_label(s.rows_destroyed, s.rows_known),
        s.objects_dropped,
        s.tables_dropped,
        s.tables_rewritten
    );
    if let Some(lock) = &s.longest_exclusive_lock {
        let _ = writeln!(
            out,
            "Longest ACCESS EXCLUSIVE lock: {} from statement {}, held for {} statement(s) ({:.1} ms on the shadow).",
            lock.table, lock.statement, lock.statements_held, lock.held_ms
        );
    }
    if let Some(line) = crate::report::commit_line(report) {
        let _ = writeln!(out, "COMMIT fails: {line}.");
    }
    if let Some(line) = crate::report::estimate_line(report) {
        let _ = writeln!(out, "{line} (estimated).");
    }
    if report.findings.is_empty() {
        out.push_str("\nFindings: none.\n");
    } else {
        out.push_str("\nFindings:\n");
        for f in &report.findings {
            let severity = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let at = f.statement.map(|i| format!(" (statement {i})")).unwrap_or_default();
            let _ = writeln!(out, "- {severity} {}{at}: {}", f.rule, f.message);
            if let Some(hint) = &f.hint {
                let _ = writeln!(out, "  safer: {hint}");
            }
        }
    }
    out.push_str("\nStatements:\n");
    for statement in &report.statements {
        statement_text(&mut out, statement);
    }
    if let Some(cut) = &report.truncated {
        let _ = writeln!(out, "\nReport cut: {cut}. The totals and findings above cover everything.");
    }
    out
}

fn statement_text(out: &mut String, s: &StatementReport) {
    let status = match s.status {
        Status::Ok => "ok",
        Status::Error => "ERROR",
        Status::NotRun => "not run",
    };
    let rows =
        s.rows_affected.map(|_| format!(", {} rows affected", crate::report::affected_label(s))).unwrap_or_default();
    let undone = if s.rolled_back { ", undone by the plan's own ROLLBACK" } else { "" };
    let _ = writeln!(
        out,
        "{}. [{status}] {} (line {}, {}){rows}, {} rows destroyed{undone}",
        s.index,
        shorten(&s.sql, 160),
        s.line,
        s.kind.label(),
        s.rows_destroyed
    );
    if let Some(e) = &s.error {
        let code = e.sqlstate.as_deref().unwrap_or("pgshadow");
        let _ = writeln!(out, "   error [{code}] at {}:{}: {}", e.line, e.column, e.message);
        for (label, text) in [("detail", &e.detail), ("hint", &e.hint)] {
            if let Some(text) = text {
                let _ = writeln!(out, "   {label}: {text}");
            }
        }
    }
    if let Some(note) = &s.note {
        let _ = writeln!(out, "   note: {note}");
    }
    for e in &s.table_effects {
        let counts = crate::report::production_counts(e);
        let how = if e.direct { "direct" } else { "by cascade or trigger" };
        let _ = writeln!(out, "   rows in {}: {} ({how})", e.table, counts.join(", "));
    }
    for line in crate::report::unknown_lines(s) {
        let _ = writeln!(out, "   {line}");
    }
    if !s.dropped_objects.is_empty() {
        let dropped: Vec<String> = s
            .dropped_objects
            .iter()
            .map(|o| {
                let mut label = format!("{} {}", o.object_type, o.identity);
                match (o.rows, o.values) {
                    (Some(rows), _) => label.push_str(&format!(" ({rows} rows)")),
                    (None, Some(values)) => label.push_str(&format!(" ({values} values)")),
                    (None, None) => {}
                }
                if o.cascaded {
                    label.push_str(" [CASCADE]");
                }
                label
            })
            .collect();
        let _ = writeln!(out, "   dropped {} objects: {}", dropped.len(), dropped.join("; "));
    }
    for l in &s.locks {
        let _ = writeln!(
            out,
            "   lock: {} on {} {} ({} rows), blocks {} until the transaction ends",
            l.mode,
            l.kind,
            l.table,
            crate::report::count_label(l.rows),
            crate::report::blocks_label(l)
        );
    }
    for r in &s.rewritten_tables {
        let _ = writeln!(
            out,
            "   rewrote {} ({} rows, {} bytes)",
            r.table,
            crate::report::count_label(r.rows),
            crate::report::count_label(r.size_bytes)
        );
    }
    for c in &s.column_changes {
        let detail = match (&c.from, &c.to) {
            (Some(from), Some(to)) => format!(": {from} -> {to}"),
            _ => String::new(),
        };
        let _ =
            writeln!(out, "   column {} {}{detail} ({} rows)", c.column, c.change, crate::report::count_label(c.rows));
    }
    for c in &s.constraint_changes {
        let _ = writeln!(
            out,
            "   {} constraint {} {} ({} rows)",
            c.constraint_type,
            c.constraint,
            c.change,
            crate::report::count_label(c.rows)
        );
    }
    if !s.functions_called.is_empty() {
        let _ = writeln!(out, "   called: {}", crate::report::functions_label(&s.functions_called));
    }
    if !s.rules_fired.is_empty() {
        let _ = writeln!(out, "   rules fired: {}", crate::report::rules_label(&s.rules_fired));
    }
}

/// `text` on one line, at most `max` characters, with `...` when cut.
fn shorten(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max.saturating_sub(3)).collect();
    cut.push_str("...");
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_statements_are_shortened_on_one_line() {
        assert_eq!(shorten("DELETE\n  FROM users", 60), "DELETE FROM users");
        let long = "x".repeat(200);
        let short = shorten(&long, 20);
        assert_eq!(short.chars().count(), 20);
        assert!(short.ends_with("..."));
    }
}
