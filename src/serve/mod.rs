//! `pgshadow serve`: the dry-run service over HTTP, for approval services. JSON under `/v1/...`, an OpenAPI document
//! at `/v1/openapi.json`, Prometheus metrics at `/v1/metrics`, and the review page for people at `/ui` (`ui.rs`).
//!
//! Security: every path but `/v1/health` and `/v1/openapi.json` needs `Authorization: Bearer <token>` when a token
//! is set (and one must be on a non-loopback address); wrong tokens are limited per address and for everyone
//! (`429 locked_out` with `Retry-After`, `throttle`), on the API and the review page's sign-in; request bodies are
//! limited; at most `max_concurrent`
//! dry-runs and registrations run at a time (`429` with `Retry-After` beyond, `503` once stopping); sources given by
//! path must be inside `allowed_dirs`, links resolved. Errors are JSON with a stable code.

pub mod api;
pub mod openapi;
pub mod proposals;
mod throttle;
mod ui;

use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::proposal::tokens::{constant_time_eq, Caller, Tokens};
use crate::proposal::Store;
use crate::service::config::Config;
use crate::service::{Service, SourceInfo};
use crate::{Plan, Policy, Report, Schema};
use api::{ApiFailure, DryRunRequest, Health, RegisterSource};

/// What the handlers share.
struct Shared {
    service: Arc<Service>,
    config: Config,
    token: Option<String>,
    /// The tokens file's callers, for proposals.
    tokens: Option<Tokens>,
    /// The proposals store, opened on first use.
    store: tokio::sync::OnceCell<Store>,
    permits: Arc<Semaphore>,
    stopping: AtomicBool,
    busy_rejections: AtomicU64,
    unauthorized: AtomicU64,
    /// Failed token attempts, by address and in all ([`throttle`]): the API's and the review page's sign-in.
    throttle: throttle::Throttle,
    locked_out: AtomicU64,
}

type AppState = Arc<Shared>;

/// The address a request came from: the TCP peer's when the router is served with connect info
/// (`into_make_service_with_connect_info`, as [`serve`] does), else `None`, which the [`throttle`] limits as one
/// client. Never rejects a request.
pub(crate) struct Peer(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> std::result::Result<Peer, Self::Rejection> {
        Ok(Peer(parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip())))
    }
}

/// Who sent a request: a caller of the tokens file, or `None` (the server's own token, or no token on loopback).
#[derive(Debug, Clone)]
pub(crate) struct Authenticated(pub(crate) Option<Caller>);

impl Shared {
    /// Whether a token from `client` may be looked at now: `Err(seconds)` to wait while its address, or everyone,
    /// is locked out ([`throttle`]), counted in the metrics. Asked before the token is looked at, right or wrong: a
    /// locked-out guesser learns nothing.
    fn token_admitted(&self, client: Option<IpAddr>) -> std::result::Result<(), u64> {
        self.throttle.check(client, Instant::now()).inspect_err(|_| {
            self.locked_out.fetch_add(1, Ordering::Relaxed);
        })
    }

    /// A request without a valid token: counted in the metrics, and against `client`'s limits when it gave a token
    /// (`given`; a request without one guesses nothing).
    fn token_refused(&self, client: Option<IpAddr>, given: &str) {
        self.unauthorized.fetch_add(1, Ordering::Relaxed);
        if !given.is_empty() {
            self.throttle.failed(client, Instant::now());
        }
    }

    /// The proposals store: the configuration's `store`, else the default one; opened (and migrated) once.
    async fn store(&self) -> Result<&Store> {
        self.store.get_or_try_init(|| Store::open_or_default(self.config.store.as_deref())).await
    }
}

/// The API's routes over `service`, and the review page's (its session cookie `Secure` when `secure_cookies`).
fn router(state: AppState, secure_cookies: bool) -> Router {
    let body_limit = state.config.body_limit;
    let protected = Router::new()
        .route("/v1/sources", get(list_sources).post(register_source))
        .route("/v1/dry-runs", post(dry_run))
        .route("/v1/proposals", get(proposals::list).post(proposals::propose))
        .route("/v1/proposals/{id}", get(proposals::show))
        .route("/v1/proposals/{id}/approve", post(proposals::approve))
        .route("/v1/proposals/{id}/reject", post(proposals::reject))
        .route("/v1/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(Arc::clone(&state), authenticate));
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/openapi.json", get(openapi_document))
        .merge(protected)
        .merge(ui::routes(Arc::clone(&state), secure_cookies))
        .fallback(|| async {
            ApiFailure::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint (see /v1/openapi.json)")
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(contain_panics))
        .with_state(state)
}

/// Serves the API on `listener` until `stop` resolves; then lets in-flight requests finish for up to `grace` and
/// returns (the caller shuts `service` down). Refuses a non-loopback address without a token.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    config: Config,
    token: Option<String>,
    stop: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> Result<()> {
    let address = listener.local_addr().map_err(|e| Error::io("<listener>", e))?;
    let tokens = config.tokens_file.as_deref().map(Tokens::read).transpose()?;
    if token.is_none() && tokens.is_none() && !address.ip().is_loopback() {
        return Err(Error::Source {
            path: "--listen".into(),
            message: format!(
                "{address} is reachable from other machines: set a token (token_file in the configuration, \
                 --token-file, or PGSHADOW_TOKEN) or listen on 127.0.0.1"
            ),
            detail: String::new(),
        });
    }
    let secure_cookies = config.secure_cookies.unwrap_or(!address.ip().is_loopback());
    let state = shared(service, config, token, tokens);
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    let marker = Arc::clone(&state);
    let stop = async move {
        stop.await;
        marker.stopping.store(true, Ordering::SeqCst);
        tracing::info!("stopping: finishing the requests in flight");
        let _ = stopped_tx.send(());
    };
    let app = router(state, secure_cookies).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(stop);
    let server = std::pin::pin!(std::future::IntoFuture::into_future(server));
    tokio::select! {
        outcome = server => outcome.map_err(|e| Error::io("<http server>", e)),
        () = async {
            let _ = stopped_rx.await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!("requests still in flight after the grace period were cut");
            Ok(())
        }
    }
}

/// The handlers' state, nothing counted yet.
fn shared(service: Arc<Service>, config: Config, token: Option<String>, tokens: Option<Tokens>) -> AppState {
    Arc::new(Shared {
        permits: Arc::new(Semaphore::new(config.max_concurrent)),
        service,
        config,
        token,
        tokens,
        store: tokio::sync::OnceCell::new(),
        stopping: AtomicBool::new(false),
        busy_rejections: AtomicU64::new(0),
        unauthorized: AtomicU64::new(0),
        throttle: throttle::Throttle::default(),
        locked_out: AtomicU64::new(0),
    })
}

/// A handler that panics answers `500 internal` in JSON, like any other error, instead of dropping the connection;
/// the panic itself is logged, never sent.
async fn contain_panics(request: Request, next: Next) -> Response {
    use futures_util::FutureExt as _;
    match std::panic::AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!("a request handler panicked");
            ApiFailure::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "an internal error; the server logged it")
                .into_response()
        }
    }
}

/// Checks `Authorization: Bearer <token>` when the server has a token or a tokens file, and says who sent the
/// request ([`Authenticated`]). A client that sent wrong tokens too often is answered `429` ([`throttle`]).
async fn authenticate(State(state): State<AppState>, Peer(client): Peer, mut request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned();
    let checked = state.token.is_some() || state.tokens.is_some();
    // A request without a token guesses nothing: it is neither counted nor held back.
    if checked && !given.is_empty() {
        if let Err(seconds) = state.token_admitted(client) {
            return ApiFailure::new(StatusCode::TOO_MANY_REQUESTS, "locked_out", locked_out(seconds))
                .retry_after(u32::try_from(seconds).unwrap_or(u32::MAX))
                .into_response();
        }
    }
    let caller = state.tokens.as_ref().and_then(|t| t.caller(&given)).cloned();
    request.extensions_mut().insert(Authenticated(caller.clone()));
    if caller.is_none() && checked {
        let token_ok = state.token.as_ref().is_some_and(|t| constant_time_eq(given.as_bytes(), t.as_bytes()));
        if !token_ok {
            state.token_refused(client, &given);
            let mut response =
                ApiFailure::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is required")
                    .into_response();
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    next.run(request).await
}

/// What a client locked out by the failed-attempt limit is told.
fn locked_out(seconds: u64) -> String {
    format!(
        "too many wrong tokens were tried (from this address, or from everyone): nothing is checked for \
         {seconds} s; retry after that"
    )
}

/// A slot for one dry-run or registration: `429` when all are taken, `503` once stopping.
fn permit(state: &Shared) -> std::result::Result<tokio::sync::OwnedSemaphorePermit, ApiFailure> {
    if state.stopping.load(Ordering::SeqCst) {
        return Err(
            ApiFailure::new(StatusCode::SERVICE_UNAVAILABLE, "stopping", "the server is stopping").retry_after(5)
        );
    }
    Arc::clone(&state.permits).try_acquire_owned().map_err(|_| {
        state.busy_rejections.fetch_add(1, Ordering::Relaxed);
        ApiFailure::new(StatusCode::TOO_MANY_REQUESTS, "busy", "every dry-run slot is taken; retry shortly")
            .retry_after(1)
    })
}

async fn health(State(state): State<AppState>) -> Json<Health> {
    let stopping = state.stopping.load(Ordering::SeqCst);
    Json(Health {
        status: if stopping { "stopping" } else { "ok" }.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        server_version: state.service.server_version().to_owned(),
        sources: state.service.sources().len(),
    })
}

async fn openapi_document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], openapi::document()).into_response()
}

async fn list_sources(State(state): State<AppState>) -> Json<Vec<SourceInfo>> {
    Json(state.service.sources())
}

async fn register_source(
    State(state): State<AppState>,
    body: std::result::Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> std::result::Result<(StatusCode, Json<SourceInfo>), ApiFailure> {
    let request: RegisterSource = api::json_body(body)?;
    let valid = !request.name.is_empty()
        && request.name.len() <= 63
        && request.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err(ApiFailure::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "name: letters, digits, _ and -, at most 63 characters",
        ));
    }
    let schema = match (request.schema, request.path) {
        (Some(text), None) => Schema::sql(format!("{}.sql", request.name), text),
        (None, Some(path)) => {
            let real =
                state.config.confined(std::path::Path::new(&path)).map_err(|e| ApiFailure::from_error(e, "path"))?;
            Schema::read(&real.to_string_lossy()).map_err(|e| ApiFailure::from_error(e, "path"))?
        }
        _ => {
            return Err(ApiFailure::new(StatusCode::BAD_REQUEST, "bad_request", "give exactly one of schema and path"))
        }
    };
    let profile = match request.profile {
        Some(value) => {
            // Read as the file it would be, so that an error names its line and column there.
            let text = serde_json::to_string_pretty(&value).expect("a JSON value serializes");
            let file = format!("{}.profile.json", request.name);
            let profile = crate::profile::Profile::parse(&file, &text);
            Some(profile.map_err(|e| ApiFailure::from_error(e, "profile"))?)
        }
        None => None,
    };
    let _permit = permit(&state)?;
    let registered = state.service.register_with_profile(&request.name, &schema, profile).await;
    let info = registered.map_err(|e| ApiFailure::from_error(e, "schema"))?;
    Ok((StatusCode::CREATED, Json(info)))
}

async fn dry_run(
    State(state): State<AppState>,
    body: std::result::Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> std::result::Result<Json<Report>, ApiFailure> {
    let request: DryRunRequest = api::json_body(body)?;
    let plan = match (request.plan, request.statements) {
        (Some(text), None) => Plan::parse("plan", &text),
        (None, Some(statements)) => {
            let mut json = request.metadata.unwrap_or_default();
            json.insert("statements".to_owned(), serde_json::Value::from(statements));
            Plan::parse("statements", &serde_json::Value::Object(json).to_string())
        }
        _ => {
            return Err(ApiFailure::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "give exactly one of plan and statements",
            ))
        }
    }
    .map_err(|e| ApiFailure::from_error(e, "plan"))?;
    let policy = match (request.policy, request.policy_toml) {
        (name, None) => state.config.policy(name.as_deref()),
        (None, Some(toml)) => Policy::parse("policy_toml", &toml),
        (Some(_), Some(_)) => {
            return Err(ApiFailure::new(StatusCode::BAD_REQUEST, "bad_request", "give policy or policy_toml, not both"))
        }
    }
    .map_err(|e| ApiFailure::from_error(e, "policy_toml"))?;
    let _permit = permit(&state)?;
    let report =
        state.service.dry_run(&request.source, &plan, &policy).await.map_err(|e| ApiFailure::from_error(e, "plan"))?;
    Ok(Json(report))
}

/// Prometheus text format.
async fn metrics(State(state): State<AppState>) -> Response {
    let m = state.service.metrics();
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let finished = get(&m.pass) + get(&m.warn) + get(&m.fail) + get(&m.errors);
    let mut out = String::new();
    // A sample's "labels" may also be a suffix (`_sum`, `_count` of a summary).
    let mut metric = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, value) in samples {
            out.push_str(&format!("{name}{labels} {value}\n"));
        }
    };
    metric(
        "pgshadow_dry_runs_total",
        "counter",
        "Dry-runs that produced a report, by verdict.",
        ["pass", "warn", "fail"]
            .into_iter()
            .zip([&m.pass, &m.warn, &m.fail])
            .map(|(verdict, count)| (format!("{{verdict=\"{verdict}\"}}"), get(count).to_string()))
            .collect(),
    );
    metric(
        "pgshadow_dry_run_failures_total",
        "counter",
        "Dry-runs that ended in an error (timeouts included).",
        vec![(String::new(), get(&m.errors).to_string())],
    );
    metric(
        "pgshadow_dry_run_timeouts_total",
        "counter",
        "Dry-runs stopped by their timeout.",
        vec![(String::new(), get(&m.timeouts).to_string())],
    );
    metric(
        "pgshadow_dry_run_duration_seconds",
        "summary",
        "Wall time of dry-runs.",
        vec![
            ("_sum".to_owned(), format!("{:.6}", get(&m.duration_micros) as f64 / 1e6)),
            ("_count".to_owned(), finished.to_string()),
        ],
    );
    metric(
        "pgshadow_clones_total",
        "counter",
        "Clones of source templates made.",
        vec![(String::new(), get(&m.clones).to_string())],
    );
    let sources = state.service.sources();
    metric(
        "pgshadow_pool_ready",
        "gauge",
        "Clones ready per source.",
        sources.iter().map(|s| (format!("{{source=\"{}\"}}", s.name), s.ready.to_string())).collect(),
    );
    metric("pgshadow_sources", "gauge", "Sources registered.", vec![(String::new(), sources.len().to_string())]);
    let in_flight = state.config.max_concurrent - state.permits.available_permits();
    metric(
        "pgshadow_in_flight",
        "gauge",
        "Dry-runs and registrations running.",
        vec![(String::new(), in_flight.to_string())],
    );
    metric(
        "pgshadow_rejected_total",
        "counter",
        "Requests refused, by reason.",
        vec![
            ("{reason=\"busy\"}".to_owned(), get(&state.busy_rejections).to_string()),
            ("{reason=\"unauthorized\"}".to_owned(), get(&state.unauthorized).to_string()),
            ("{reason=\"locked_out\"}".to_owned(), get(&state.locked_out).to_string()),
        ],
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn tokens_compare_equal_only_when_equal() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secreT", b"secret"));
        assert!(!constant_time_eq(b"secret-and-more", b"secret"));
        assert!(!constant_time_eq(b"", b"secret"));
        assert!(!constant_time_eq(b"sec", b"secret"));
    }
}
