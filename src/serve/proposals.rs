//! The proposals endpoints: `POST /v1/proposals` (an agent proposes a plan against a source), `GET /v1/proposals`
//! and `GET /v1/proposals/{id}` (anyone with a token reads), `POST /v1/proposals/{id}/approve` and `.../reject` (a
//! reviewer decides). Callers are known by the tokens file's bearer tokens (`tokens_file`), each with a name and a
//! role; the server's single `token` is for dry-runs only. Apply is not here: it is `pgshadow apply`, run by the
//! pipeline that holds the targets' URLs.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::Deserialize;

use super::api::{self, ApiFailure};
use super::{permit, AppState, Authenticated};
use crate::proposal::store::Summary;
use crate::proposal::tokens::{Action, Caller};
use crate::proposal::{Draft, Proposal, Record, Store, Verdict};
use crate::{Plan, Policy};

/// `POST /v1/proposals`: a plan to dry-run against a registered source and store as a proposal.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{"required": ["plan"]}, {"required": ["statements"]}]))]
pub struct ProposeRequest {
    /// The name of a registered source (`GET /v1/sources`).
    pub source: String,
    /// The plan as SQL text (or a JSON plan's text). Give this or `statements`.
    #[serde(default)]
    #[schemars(with = "String")]
    pub plan: Option<String>,
    /// The plan as a list of statements. Give this or `plan`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub statements: Option<Vec<String>>,
    /// Metadata carried into the report's `plan.metadata` with `statements` (`intent`, ...).
    #[serde(default)]
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// A policy of the server's configuration, by name; the built-in policy when absent.
    #[serde(default)]
    #[schemars(with = "String")]
    pub policy: Option<String>,
    /// The name of the target the plan is meant for (never a URL).
    #[serde(default)]
    #[schemars(with = "String")]
    pub target: Option<String>,
    /// Why: the plan's intent.
    #[serde(default)]
    #[schemars(with = "String")]
    pub intent: Option<String>,
    /// The proposal this one is a new version of.
    #[serde(default)]
    #[schemars(with = "i64")]
    pub replaces: Option<i64>,
}

/// `POST /v1/proposals/{id}/approve` and `.../reject`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// What the reviewer has to say.
    #[serde(default)]
    #[schemars(with = "String")]
    pub comment: Option<String>,
    /// An approval that accepts the plan's statements that cannot run inside a transaction (`CREATE INDEX
    /// CONCURRENTLY`, `VACUUM`, ...): apply runs them one by one and cannot roll them back.
    #[serde(default)]
    pub unguarded: bool,
}

/// `GET /v1/proposals?state=...`.
#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    state: Option<String>,
}

/// The caller, allowed to do `action`.
fn caller(authenticated: &Authenticated, action: Action) -> Result<Caller, ApiFailure> {
    let Some(caller) = &authenticated.0 else {
        return Err(ApiFailure::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "proposals need a bearer token of the tokens file (tokens_file in the configuration)",
        ));
    };
    caller.may(action).map_err(|e| ApiFailure::from_error(e, "token"))?;
    Ok(caller.clone())
}

/// A proposal's number from its path segment (a JSON `bad_request` when it is not one).
fn number(id: &str) -> Result<i64, ApiFailure> {
    id.parse().map_err(|_| ApiFailure::new(StatusCode::BAD_REQUEST, "bad_request", "a proposal's id is a number"))
}

async fn store(state: &AppState) -> Result<&Store, ApiFailure> {
    state.store().await.map_err(|e| ApiFailure::from_error(e, "store"))
}

pub(super) async fn propose(
    State(state): State<AppState>,
    Extension(authenticated): Extension<Authenticated>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<Record>), ApiFailure> {
    let caller = caller(&authenticated, Action::Propose)?;
    let request: ProposeRequest = api::json_body(body)?;
    let (text, source) = match (request.plan, request.statements) {
        (Some(text), None) => (text, "plan"),
        (None, Some(statements)) => {
            let mut json = request.metadata.unwrap_or_default();
            json.insert("statements".to_owned(), serde_json::Value::from(statements));
            (serde_json::to_string_pretty(&serde_json::Value::Object(json)).expect("JSON serializes"), "statements")
        }
        _ => {
            return Err(ApiFailure::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "give exactly one of plan and statements",
            ))
        }
    };
    let plan = Plan::parse(source, &text).map_err(|e| ApiFailure::from_error(e, "plan"))?;
    let policy: Policy =
        state.config.policy(request.policy.as_deref()).map_err(|e| ApiFailure::from_error(e, "policy"))?;
    let store = store(&state).await?;
    let _permit = permit(&state)?;
    let (report, catalog) = state
        .service
        .dry_run_described(&request.source, &plan, &policy, true)
        .await
        .map_err(|e| ApiFailure::from_error(e, "plan"))?;
    let (_, intent) = Proposal::named_in(&plan);
    let draft = Draft {
        proposer: caller.name,
        intent: request.intent.or(intent),
        target: request.target,
        replaces: request.replaces,
        report,
        plan,
        plan_text: text,
        policy,
        catalog,
    };
    let record = store.propose(draft).await.map_err(|e| ApiFailure::from_error(e, "replaces"))?;
    Ok((StatusCode::CREATED, Json(record)))
}

pub(super) async fn list(
    State(state): State<AppState>,
    Extension(authenticated): Extension<Authenticated>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Summary>>, ApiFailure> {
    caller(&authenticated, Action::Read)?;
    let Query(query) = query.map_err(|e| ApiFailure::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let wanted = match query.state.as_deref() {
        None | Some("") => None,
        Some(name) => Some(crate::proposal::State::parse(name).ok_or_else(|| {
            ApiFailure::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "state: proposed, approved, rejected, applied, refused or expired",
            )
        })?),
    };
    let list = store(&state).await?.list(wanted).await.map_err(|e| ApiFailure::from_error(e, "store"))?;
    Ok(Json(list))
}

pub(super) async fn show(
    State(state): State<AppState>,
    Extension(authenticated): Extension<Authenticated>,
    Path(id): Path<String>,
) -> Result<Json<Record>, ApiFailure> {
    caller(&authenticated, Action::Read)?;
    let id = number(&id)?;
    let record = store(&state).await?.get(id).await.map_err(|e| ApiFailure::from_error(e, "id"))?;
    Ok(Json(record))
}

pub(super) async fn approve(
    state: State<AppState>,
    authenticated: Extension<Authenticated>,
    id: Path<String>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Record>, ApiFailure> {
    decide(state, authenticated, id, body, Verdict::Approve).await
}

pub(super) async fn reject(
    state: State<AppState>,
    authenticated: Extension<Authenticated>,
    id: Path<String>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Record>, ApiFailure> {
    decide(state, authenticated, id, body, Verdict::Reject).await
}

async fn decide(
    State(state): State<AppState>,
    Extension(authenticated): Extension<Authenticated>,
    Path(id): Path<String>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
    verdict: Verdict,
) -> Result<Json<Record>, ApiFailure> {
    let id = number(&id)?;
    // Any caller of the tokens file goes on: a role that may not decide is refused, and audited, by the store.
    let caller = caller(&authenticated, Action::Read)?;
    let empty = body.as_ref().is_ok_and(|b| b.is_empty());
    let request: DecisionRequest = if empty { DecisionRequest::default() } else { api::json_body(body)? };
    let store = store(&state).await?;
    let record = store.decide_as(id, &caller, verdict, request.comment, request.unguarded).await;
    Ok(Json(record.map_err(|e| ApiFailure::from_error(e, "id"))?))
}
