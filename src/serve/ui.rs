//! The review page of `pgshadow serve`, under `/ui`: server-rendered HTML that works without JavaScript.
//!
//! - `GET /ui` lists the proposals by state (`?state=` shows one);
//! - `GET /ui/proposals/{id}` shows one: who proposed it and why, where it stands, the unguarded statements, the
//!   decisions, the diff against the proposal it replaces, and its report as `--format html` renders it;
//! - `POST /ui/proposals/{id}/approve` and `.../reject` decide, with a comment, as plain HTML forms;
//! - `GET`/`POST /ui/sign-in` trades a bearer token of the tokens file for a session cookie ([`session`]);
//!   `POST /ui/sign-out` ends it.
//!
//! Wrong tokens at the sign-in count against the same limit as the API's bearer tokens (`429` with `Retry-After`
//! past it); the session cookie is `Secure` unless the server listens on loopback (`secure_cookies`). A form posted
//! from another site is refused, the sign-in's included (login CSRF), and every form of a session carries its CSRF
//! token. Who may decide what is the proposals layer's to say, as for the JSON API and the CLI
//! ([`crate::proposal::Store::decide_as`]): the caller's role, audited when it refuses, and the store's rules (nobody
//! approves their own proposal, one decision per reviewer). Every page is sent with a Content-Security-Policy that allows no script.

mod pages;
mod session;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::{AppState, Peer};
use crate::error::Error;
use crate::proposal::tokens::Action;
use crate::proposal::{Record, State as ProposalState, Verdict};
use crate::report::Report;
use session::{Session, Sessions};

/// What the review page's handlers share: the server's, and the signed-in browsers.
struct Ui {
    app: AppState,
    sessions: Sessions,
    /// Whether the session cookie is `Secure` (sent back over HTTPS only).
    secure: bool,
}

type UiState = Arc<Ui>;

/// The `/ui` routes over the server's state; `secure`: mark the session cookie `Secure`.
pub(super) fn routes(app: AppState, secure: bool) -> Router<AppState> {
    let ui = Arc::new(Ui { app, sessions: Sessions::default(), secure });
    Router::new()
        .route("/ui", get(list))
        .route("/ui/sign-in", get(sign_in_form).post(sign_in))
        .route("/ui/sign-out", post(sign_out))
        .route("/ui/proposals/{id}", get(show))
        .route("/ui/proposals/{id}/approve", post(approve))
        .route("/ui/proposals/{id}/reject", post(reject))
        .route_layer(axum::middleware::from_fn(refuse_cross_site))
        .with_state(ui)
}

/// A form posted from another site is refused before its handler runs: a forged sign-in (login CSRF, which would
/// sign the victim's browser in as the attacker) as much as a forged decision (which the session's CSRF token and
/// the `SameSite=Strict` cookie already stop).
async fn refuse_cross_site(request: Request, next: Next) -> Response {
    let reads = request.method() == Method::GET || request.method() == Method::HEAD;
    if !reads && cross_site(request.headers()) {
        return message(StatusCode::FORBIDDEN, None, CROSS_SITE);
    }
    next.run(request).await
}

const CROSS_SITE: &str = "This form was sent from another site: nothing done. Open the review page itself and use its \
                          forms.";

/// Whether a request says it was started by another site: its `Sec-Fetch-Site` when the browser sends one
/// (`same-origin`, or `none` for what the user did themselves, are this site), else its `Origin` against its
/// `Host`. A request with neither is not a browser's cross-site form (browsers send `Origin` with every POST).
fn cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else { return false };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    // `null` (a file, a sandboxed frame, a redirect from elsewhere) has no host: cross-site.
    let origin_host = origin.to_str().ok().and_then(|o| o.split_once("://")).map(|(_, rest)| rest);
    origin_host.is_none() || origin_host != host
}

/// An HTML response with the headers every page of the review has.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_TYPE, "text/html; charset=utf-8");
    set(headers, header::CONTENT_SECURITY_POLICY, crate::report::html::CONTENT_SECURITY_POLICY);
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::CACHE_CONTROL, "no-store");
    response
}

/// A page of only a message (`alert`), for errors.
fn message(status: StatusCode, session: Option<&Session>, alert: &str) -> Response {
    html(status, pages::page("pgshadow review", session, Some(alert), maud::html! {}))
}

/// Where a request without a session goes.
fn to_sign_in() -> Response {
    Redirect::to("/ui/sign-in").into_response()
}

/// An error of the proposals layer as a page: its status and message.
fn failure(error: Error, session: Option<&Session>) -> Response {
    let status = match &error {
        Error::UnknownProposal(_) => StatusCode::NOT_FOUND,
        Error::Refused(_) => StatusCode::CONFLICT,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(%error, "review page");
    }
    message(status, session, &error.to_string())
}

async fn sign_in_form(State(ui): State<UiState>) -> Response {
    let alert = ui.app.tokens.is_none().then_some(NO_TOKENS);
    html(StatusCode::OK, pages::page("Sign in — pgshadow review", None, alert, pages::sign_in()))
}

const NO_TOKENS: &str = "This server has no tokens file (tokens_file in the configuration): nobody can sign in.";

#[derive(Deserialize)]
struct SignIn {
    token: String,
}

async fn sign_in(State(ui): State<UiState>, Peer(client): Peer, Form(form): Form<SignIn>) -> Response {
    let Some(tokens) = ui.app.tokens.as_ref() else {
        ui.app.unauthorized.fetch_add(1, Ordering::Relaxed);
        return html(StatusCode::UNAUTHORIZED, pages::page("Sign in", None, Some(NO_TOKENS), pages::sign_in()));
    };
    let given = form.token.trim();
    // Held back before the token is looked at, right or wrong: a locked-out guesser learns nothing.
    if let Err(seconds) = ui.app.token_admitted(client) {
        let alert = format!(
            "Too many wrong tokens were tried (from your address, or from everyone): sign-in is closed for \
             {seconds} s. Try again after that."
        );
        let mut response =
            html(StatusCode::TOO_MANY_REQUESTS, pages::page("Sign in", None, Some(&alert), pages::sign_in()));
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return response;
    }
    let Some(caller) = tokens.caller(given).cloned() else {
        ui.app.token_refused(client, given);
        let alert = "That token is not in the tokens file.";
        return html(StatusCode::UNAUTHORIZED, pages::page("Sign in", None, Some(alert), pages::sign_in()));
    };
    let id = ui.sessions.start(caller);
    let mut response = Redirect::to("/ui").into_response();
    let cookie = HeaderValue::from_str(&session::set_cookie(&id, ui.secure)).expect("hex id in a cookie");
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

#[derive(Deserialize)]
struct Csrf {
    csrf: String,
}

async fn sign_out(State(ui): State<UiState>, headers: HeaderMap, Form(form): Form<Csrf>) -> Response {
    if let Some(session) = ui.sessions.of(&headers) {
        if !session.csrf_matches(&form.csrf) {
            return message(StatusCode::FORBIDDEN, Some(&session), FORGED);
        }
        ui.sessions.end(&headers);
    }
    let mut response = Redirect::to("/ui/sign-in").into_response();
    let cookie = HeaderValue::from_str(&session::clear_cookie(ui.secure)).expect("a cookie");
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

const FORGED: &str = "This form did not come from this session's page (its CSRF token does not match): nothing done.";

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
}

async fn list(State(ui): State<UiState>, headers: HeaderMap, Query(query): Query<ListQuery>) -> Response {
    let Some(session) = ui.sessions.of(&headers) else { return to_sign_in() };
    let only = query.state.as_deref().filter(|s| !s.is_empty()).and_then(ProposalState::parse);
    let listed = async {
        session.caller.may(Action::Read)?;
        ui.app.store().await?.list(only).await
    };
    match listed.await {
        Ok(proposals) => html(
            StatusCode::OK,
            pages::page("Proposals — pgshadow review", Some(&session), None, pages::list(&proposals, only)),
        ),
        Err(error) => failure(error, Some(&session)),
    }
}

async fn show(State(ui): State<UiState>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    let Some(session) = ui.sessions.of(&headers) else { return to_sign_in() };
    proposal_page(&ui, &session, id, StatusCode::OK, None).await
}

/// Proposal `id`'s page, with `alert` on top (the outcome of a decision that was refused).
async fn proposal_page(ui: &Ui, session: &Session, id: i64, status: StatusCode, alert: Option<&str>) -> Response {
    let loaded = async {
        session.caller.may(Action::Read)?;
        let store = ui.app.store().await?;
        let record = store.get(id).await?;
        let replaced = match record.proposal.replaces {
            Some(old) => Some(store.get(old).await?),
            None => None,
        };
        Ok::<(Record, Option<Record>), Error>((record, replaced))
    };
    let (record, replaced) = match loaded.await {
        Ok(loaded) => loaded,
        Err(error) => return failure(error, Some(session)),
    };
    let report: Report = match serde_json::from_value(record.proposal.report.clone()) {
        Ok(report) => report,
        Err(e) => {
            let why = format!("proposal {id}'s stored report cannot be read by this version of pgshadow: {e}");
            return message(StatusCode::INTERNAL_SERVER_ERROR, Some(session), &why);
        }
    };
    let title = format!("Proposal #{id} ({}) — pgshadow review", record.state.as_str());
    let body = pages::proposal(&record, replaced.as_ref(), &report, session);
    html(status, pages::page(&title, Some(session), alert, body))
}

#[derive(Deserialize)]
struct DecisionForm {
    csrf: String,
    #[serde(default)]
    comment: String,
    /// The "accept the unguarded statements" box: present (`on`) only when ticked.
    #[serde(default)]
    unguarded: Option<String>,
}

async fn approve(state: State<UiState>, headers: HeaderMap, id: Path<i64>, form: Form<DecisionForm>) -> Response {
    decide(state, headers, id, form, Verdict::Approve).await
}

async fn reject(state: State<UiState>, headers: HeaderMap, id: Path<i64>, form: Form<DecisionForm>) -> Response {
    decide(state, headers, id, form, Verdict::Reject).await
}

async fn decide(
    State(ui): State<UiState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<DecisionForm>,
    verdict: Verdict,
) -> Response {
    let Some(session) = ui.sessions.of(&headers) else { return to_sign_in() };
    if !session.csrf_matches(&form.csrf) {
        return message(StatusCode::FORBIDDEN, Some(&session), FORGED);
    }
    let comment = Some(form.comment.trim().to_owned()).filter(|c| !c.is_empty());
    let decided = async {
        let unguarded = form.unguarded.is_some();
        ui.app.store().await?.decide_as(id, &session.caller, verdict, comment, unguarded).await
    };
    match decided.await {
        Ok(_) => Redirect::to(&format!("/ui/proposals/{id}")).into_response(),
        Err(error @ (Error::Refused(_) | Error::Forbidden(_))) => {
            let status =
                if matches!(error, Error::Forbidden(_)) { StatusCode::FORBIDDEN } else { StatusCode::CONFLICT };
            proposal_page(&ui, &session, id, status, Some(&error.to_string())).await
        }
        Err(error) => failure(error, Some(&session)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proposal::tokens::Tokens;
    use crate::service::config::Config;
    use crate::service::{Service, ServiceOptions};

    const TOKEN: &str = "alice-reviews-0123456789";

    /// One `POST /ui/sign-in` with `token` over HTTP/1.1 (`Connection: close`): the status line and headers.
    async fn sign_in_over_http(address: std::net::SocketAddr, token: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = format!("token={token}");
        let request = format!(
            "POST /ui/sign-in HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read the response");
        response.split_once("\r\n\r\n").map_or(response.clone(), |(head, _)| head.to_owned())
    }

    /// The router served on a real socket without connect info, as a library may mount it: signing in works (it
    /// was a 500), and wrong tokens from clients whose address is unknown are limited together, as one address's.
    #[tokio::test]
    async fn the_sign_in_works_on_a_router_served_without_connect_info() {
        let service = Arc::new(Service::start(ServiceOptions::default()).await.expect("a service"));
        let tokens = format!("[[tokens]]\ntoken = \"{TOKEN}\"\nname = \"alice\"\nrole = \"reviewer\"\n");
        let tokens = Tokens::parse("tokens.toml", &tokens).expect("a tokens file");
        let state = super::super::shared(Arc::clone(&service), Config::default(), None, Some(tokens));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("an address");
        let server = axum::serve(listener, super::super::router(state, false));
        let server = tokio::spawn(std::future::IntoFuture::into_future(server));

        let signed_in = sign_in_over_http(address, TOKEN).await;
        assert!(signed_in.starts_with("HTTP/1.1 303"), "{signed_in}");
        assert!(signed_in.to_ascii_lowercase().contains("set-cookie: pgshadow_session="), "{signed_in}");
        let burst = super::super::throttle::PER_ADDRESS.burst;
        for _ in 0..burst {
            let refused = sign_in_over_http(address, "not-a-token-of-the-file").await;
            assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
        }
        // Fewer than the global burst: only the one limit all unknown addresses share closes the sign-in.
        assert!(burst < super::super::throttle::GLOBAL.burst);
        let held_back = sign_in_over_http(address, TOKEN).await;
        assert!(held_back.starts_with("HTTP/1.1 429"), "{held_back}");
        assert!(held_back.to_ascii_lowercase().contains("retry-after:"), "{held_back}");

        server.abort();
        let _ = server.await;
        Service::shutdown_shared(service, std::time::Duration::from_secs(10)).await.expect("the service stops");
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (header::HeaderName::from_static(k), HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn a_form_from_another_site_is_told_apart() {
        assert!(!cross_site(&headers(&[("sec-fetch-site", "same-origin"), ("origin", "https://elsewhere")])));
        assert!(!cross_site(&headers(&[("sec-fetch-site", "none")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])), "a sibling subdomain is another site");
        assert!(!cross_site(&headers(&[("host", "review.example:7432"), ("origin", "https://review.example:7432")])));
        assert!(cross_site(&headers(&[("host", "review.example:7432"), ("origin", "https://evil.example")])));
        assert!(cross_site(&headers(&[("host", "review.example"), ("origin", "null")])));
        assert!(!cross_site(&headers(&[("host", "review.example")])), "curl and other non-browsers send neither");
    }
}
