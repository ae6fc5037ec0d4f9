//! The review page's HTML: the list of proposals by state, one proposal with its report, the sign-in form. Built
//! with the report's own HTML renderer ([`crate::report::html`]); every string is escaped by `maud`.

use maud::{html, Markup};

use super::session::Session;
use crate::proposal::store::Summary;
use crate::proposal::tokens::Action;
use crate::proposal::{Record, State};
use crate::report::{html as report_html, Report};

/// A whole page: the bar with who is signed in, any `alert`, then `body`.
pub(super) fn page(title: &str, session: Option<&Session>, alert: Option<&str>, body: Markup) -> String {
    let body = html! {
        nav.bar {
            a href="/ui" { strong { "pgshadow review" } }
            @if let Some(session) = session {
                span.who { "signed in as " strong { (session.caller.name) } " (" (session.caller.role.as_str()) ")" }
                form.inline method="post" action="/ui/sign-out" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button type="submit" { "Sign out" }
                }
            }
        }
        @if let Some(alert) = alert { p.alert role="alert" #alert { (alert) } }
        (body)
    };
    report_html::document(title, body).into_string()
}

/// The sign-in form: a bearer token of the tokens file.
pub(super) fn sign_in() -> Markup {
    html! {
        h1 { "Sign in" }
        form method="post" action="/ui/sign-in" {
            p { label for="token" { "Token (from the tokens file):" } }
            p { input #token type="password" name="token" autocomplete="current-password" required size="48"; }
            p { button #sign-in type="submit" { "Sign in" } }
        }
    }
}

/// Proposals grouped by state, in the order of the loop.
pub(super) fn list(proposals: &[Summary], only: Option<State>) -> Markup {
    html! {
        h1 { "Proposals" }
        p.states {
            a href="/ui" { "all" }
            @for state in State::ALL {
                " · " a href={ "/ui?state=" (state.as_str()) } { (state.as_str()) }
            }
        }
        @for state in State::ALL.into_iter().filter(|s| only.is_none_or(|o| o == *s)) {
            @let here: Vec<&Summary> = proposals.iter().filter(|p| p.state == state).collect();
            section.state id={ "state-" (state.as_str()) } {
                h2 { (state.as_str()) " (" (here.len()) ")" }
                @if !here.is_empty() {
                    table {
                        thead { tr {
                            th { "#" } th { "verdict" } th { "proposer" } th { "intent" } th { "target" }
                            th { "proposed" } th { "approvals" }
                        } }
                        tbody {
                            @for p in here {
                                tr data-id=(p.id) {
                                    td { a href={ "/ui/proposals/" (p.id) } { "#" (p.id) } }
                                    td { span class={ "badge " (verdict_class(&p.verdict)) } { (p.verdict) } }
                                    td { (p.proposer) }
                                    td { (p.intent.as_deref().unwrap_or("")) }
                                    td { (p.target.as_deref().unwrap_or("")) }
                                    td { (p.created_at) }
                                    td { (p.approvals) " of " (p.approvals_required) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The CSS class of a stored verdict (`pass`, `warn`, `fail`), anything else as `fail`.
fn verdict_class(verdict: &str) -> &'static str {
    match verdict {
        "pass" => "pass",
        "warn" => "warn",
        _ => "fail",
    }
}

/// One proposal: who, why, where it stands, the unguarded statements, the decisions, the decision forms, the
/// diff against the proposal it replaces, then the report.
pub(super) fn proposal(record: &Record, replaced: Option<&Record>, report: &Report, session: &Session) -> Markup {
    let p = &record.proposal;
    html! {
        h1 { "Proposal #" (p.id) " " span.state #state data-state=(record.state.as_str()) { (record.state.as_str()) } }
        @if !p.envelope.unguarded.is_empty() {
            p.alert #unguarded {
                strong { "Unguarded: " }
                "statement" @if p.envelope.unguarded.len() > 1 { "s" } " "
                (p.envelope.unguarded.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
                " cannot run inside a transaction (CONCURRENTLY, VACUUM, ...): an apply cannot roll them back, and \
                 refuses them unless the approval accepts them unguarded."
            }
        }
        dl.meta {
            dt { "proposer" } dd #proposer { (p.proposer) }
            dt { "intent" } dd { (p.intent.as_deref().unwrap_or("—")) }
            dt { "target" } dd { (p.target.as_deref().unwrap_or("—")) }
            dt { "proposed" } dd { (p.created_at) }
            dt { "policy" } dd { (p.policy.name) " (SHA-256 " code { (p.policy.sha256) } ")" }
            dt { "approvals" } dd #approvals {
                (record.approvals) " of " (record.approvals_required)
                @if let Some(expires) = &record.expires_at { ", good until " (expires) }
            }
            @if let Some(old) = p.replaces {
                dt { "replaces" } dd { a href={ "/ui/proposals/" (old) } { "#" (old) } }
            }
            @if let Some(outcome) = &record.outcome {
                dt { "apply" } dd {
                    (outcome.at) " by " (outcome.by) " on " (outcome.target) ": "
                    @if let Some(why) = &outcome.refused { strong { "refused" } " — " (why) } @else { "applied" }
                }
            }
        }
        (decisions(record))
        (decide_forms(record, session))
        @if let Some(old) = replaced { (diff(&old.proposal.plan.text, &p.plan.text, old.proposal.id)) }
        (report_html::report_sections(report))
    }
}

fn decisions(record: &Record) -> Markup {
    html! {
        section #decisions {
            @if record.decisions.is_empty() {
                p.hint { "No decision yet." }
            } @else {
                h2 { "Decisions" }
                ul {
                    @for d in &record.decisions {
                        li data-reviewer=(d.reviewer) data-verdict=(d.verdict.as_str()) {
                            strong { (d.reviewer) } " " (d.verdict.as_str()) "d at " (d.at)
                            @if let Some(comment) = &d.comment { ": " q { (comment) } }
                        }
                    }
                }
            }
        }
    }
}

/// Approve and reject, as plain forms, when the proposal waits for decisions and the caller's role may decide.
/// Whether this caller may decide this proposal (not their own, not twice) is the store's to say when they post.
fn decide_forms(record: &Record, session: &Session) -> Markup {
    let id = record.proposal.id;
    if record.state != State::Proposed {
        return html! {};
    }
    if let Err(why) = session.caller.may(Action::Decide) {
        return html! { p.hint { (why.to_string()) } };
    }
    html! {
        section #decide {
            form.decide method="post" {
                input type="hidden" name="csrf" value=(session.csrf);
                label for="comment" { "Comment" }
                textarea #comment name="comment" rows="2" cols="60" placeholder="why (kept with the decision)" {}
                @if !record.proposal.envelope.unguarded.is_empty() {
                    label.unguarded {
                        input #accept-unguarded type="checkbox" name="unguarded";
                        " accept the unguarded statements (they run outside any transaction: apply cannot roll \
                         them back)"
                    }
                }
                button #approve type="submit" formaction={ "/ui/proposals/" (id) "/approve" } { "Approve" }
                button #reject type="submit" formaction={ "/ui/proposals/" (id) "/reject" } { "Reject" }
            }
        }
    }
}

/// The plan's text against the text of the proposal it replaces, line by line.
fn diff(old: &str, new: &str, old_id: i64) -> Markup {
    let diff = similar::TextDiff::from_lines(old, new);
    html! {
        section #diff {
            h2 { "Changes since #" (old_id) }
            table.source {
                @for change in diff.iter_all_changes() {
                    @let (class, sign) = match change.tag() {
                        similar::ChangeTag::Delete => ("removed", "-"),
                        similar::ChangeTag::Insert => ("added", "+"),
                        similar::ChangeTag::Equal => ("same", " "),
                    };
                    tr class=(class) {
                        td.line { (change.old_index().map(|i| (i + 1).to_string()).unwrap_or_default()) }
                        td.line { (change.new_index().map(|i| (i + 1).to_string()).unwrap_or_default()) }
                        td { pre { (sign) " " (change.value().trim_end_matches('\n')) } }
                    }
                }
            }
        }
    }
}
