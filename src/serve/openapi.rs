//! The OpenAPI 3.1 document of the HTTP API, generated from the Rust types: every body's schema comes from the same
//! `schemars` derivation as `docs/report.schema.json` (OpenAPI 3.1 schemas are JSON Schema 2020-12), and the paths
//! are listed here beside the handlers they describe.

use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use super::api::{DryRunRequest, ErrorBody, Health, RegisterSource};
use super::proposals::{DecisionRequest, ProposeRequest};
use crate::proposal::store::Summary;
use crate::proposal::Record;
use crate::service::SourceInfo;
use crate::Report;

/// A `429` of an endpoint behind the bearer check ([`super::throttle`]).
const LOCKED_OUT: &str = "Too many wrong tokens from this address or from everyone (locked_out); see Retry-After";

/// A `429` of an endpoint that also takes a dry-run slot.
const BUSY_OR_LOCKED_OUT: &str = "Every slot is taken (busy), or too many wrong tokens (locked_out); see Retry-After";

/// The document, as served at `/v1/openapi.json`.
pub fn document() -> String {
    let mut schemas = Map::new();
    add::<Report>(&mut schemas, "Report");
    add::<DryRunRequest>(&mut schemas, "DryRunRequest");
    add::<RegisterSource>(&mut schemas, "RegisterSource");
    add::<SourceInfo>(&mut schemas, "SourceInfo");
    add::<Health>(&mut schemas, "Health");
    add::<ErrorBody>(&mut schemas, "Error");
    add::<ProposeRequest>(&mut schemas, "ProposeRequest");
    add::<DecisionRequest>(&mut schemas, "DecisionRequest");
    add::<Record>(&mut schemas, "ProposalRecord");
    add::<Summary>(&mut schemas, "ProposalSummary");
    let error = |description: &str| json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let body = |schema: &str| json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
    let ok = |description: &str, schema: Value| json!({"description": description, "content": {"application/json": {"schema": schema}}});
    let reference = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    let decision = |id: &str, summary: &str| {
        json!({
            "operationId": id, "summary": summary,
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "format": "int64"}}],
            "requestBody": {"required": false, "content": {"application/json": {"schema": reference("DecisionRequest")}}},
            "responses": {
                "200": ok("Decided: the proposal as it stands now", reference("ProposalRecord")),
                "400": error("A malformed request"),
                "401": error("No or a wrong bearer token"),
                "429": error(LOCKED_OUT),
                "403": error("The token's role may not decide"),
                "404": error("No such proposal"),
                "409": error("Refused by the rules: not waiting for decisions, one's own proposal, decided already"),
                "413": error("The body is over the limit"),
            },
        })
    };
    let document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "pgshadow",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Dry-run SQL plans on a throw-away shadow Postgres and get their measured impact and a verdict. \
                            Nothing touches production: every plan runs on a clone of a prepared source, in a transaction \
                            that is rolled back, and the clone is dropped.",
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/health": {"get": {
                "operationId": "health", "summary": "Liveness, version, sources registered", "security": [],
                "responses": {"200": ok("The server is up", reference("Health"))},
            }},
            "/v1/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document", "security": [],
                "responses": {"200": ok("The OpenAPI document", json!({"type": "object"}))},
            }},
            "/v1/sources": {
                "get": {
                    "operationId": "listSources", "summary": "The registered sources, with their fidelity",
                    "responses": {
                        "200": ok("The sources", json!({"type": "array", "items": reference("SourceInfo")})),
                        "401": error("No or a wrong bearer token"),
                        "429": error(LOCKED_OUT),
                    },
                },
                "post": {
                    "operationId": "registerSource",
                    "summary": "Prepare a source (schema text, or a path inside the server's allowed directories)",
                    "requestBody": body("RegisterSource"),
                    "responses": {
                        "201": ok("Prepared: what loaded", reference("SourceInfo")),
                        "400": error("A malformed request"),
                        "401": error("No or a wrong bearer token"),
                        "403": error("The path is outside the allowed directories"),
                        "409": error("A source of that name exists"),
                        "413": error("The body is over the limit"),
                        "422": error("The source could not be read or loaded"),
                        "429": error(BUSY_OR_LOCKED_OUT),
                        "503": error("The server is stopping"),
                    },
                },
            },
            "/v1/dry-runs": {"post": {
                "operationId": "dryRun",
                "summary": "Dry-run a plan against a source: the report (as `pgshadow run --format json`), with the verdict",
                "requestBody": body("DryRunRequest"),
                "responses": {
                    "200": ok("The report; its verdict is pass, warn or fail", reference("Report")),
                    "400": error("A malformed request"),
                    "401": error("No or a wrong bearer token"),
                    "404": error("No such source or policy"),
                    "413": error("The body is over the limit"),
                    "422": error("The plan or the inline policy does not parse (line and column given)"),
                    "429": error(BUSY_OR_LOCKED_OUT),
                    "503": error("The server is stopping"),
                    "504": error("The dry-run took longer than the server's timeout"),
                },
            }},
            "/v1/proposals": {
                "get": {
                    "operationId": "listProposals", "summary": "Proposals, newest first (any role)",
                    "parameters": [{"name": "state", "in": "query", "required": false, "schema": {"type": "string",
                        "enum": ["proposed", "approved", "rejected", "applied", "refused", "expired"]}}],
                    "responses": {
                        "200": ok("The proposals", json!({"type": "array", "items": reference("ProposalSummary")})),
                        "400": error("An unknown state"),
                        "401": error("No or a wrong bearer token"),
                        "429": error(LOCKED_OUT),
                        "403": error("Not a token of the tokens file"),
                    },
                },
                "post": {
                    "operationId": "propose",
                    "summary": "Dry-run a plan against a source and store it as a proposal (role agent)",
                    "requestBody": body("ProposeRequest"),
                    "responses": {
                        "201": ok("Stored, waiting for approval", reference("ProposalRecord")),
                        "400": error("A malformed request"),
                        "401": error("No or a wrong bearer token"),
                        "403": error("The token's role may not propose"),
                        "404": error("No such source, policy or replaced proposal"),
                        "413": error("The body is over the limit"),
                        "422": error("The plan does not parse (line and column given)"),
                        "429": error(BUSY_OR_LOCKED_OUT),
                        "503": error("The server is stopping"),
                        "504": error("The dry-run took longer than the server's timeout"),
                    },
                },
            },
            "/v1/proposals/{id}": {"get": {
                "operationId": "showProposal", "summary": "One proposal: its plan, report, state and decisions",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "format": "int64"}}],
                "responses": {
                    "200": ok("The proposal", reference("ProposalRecord")),
                    "400": error("A malformed id"),
                    "401": error("No or a wrong bearer token"),
                    "429": error(LOCKED_OUT),
                    "403": error("Not a token of the tokens file"),
                    "404": error("No such proposal"),
                },
            }},
            "/v1/proposals/{id}/approve": {"post": decision("approveProposal", "Approve a proposal (role reviewer; not one's own)")},
            "/v1/proposals/{id}/reject": {"post": decision("rejectProposal", "Reject a proposal (role reviewer)")},
            "/v1/metrics": {"get": {
                "operationId": "metrics", "summary": "Prometheus metrics: runs, verdicts, durations, pool, rejections",
                "responses": {
                    "200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}},
                    "401": error("No or a wrong bearer token"),
                    "429": error(LOCKED_OUT),
                },
            }},
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    });
    let text = serde_json::to_string_pretty(&document).expect("the document serializes");
    // schemars refers to definitions under `$defs`; in the document they are components.
    text.replace("#/$defs/", "#/components/schemas/") + "\n"
}

/// Adds `T`'s schema as `name`, and the definitions it refers to beside it.
fn add<T: JsonSchema>(schemas: &mut Map<String, Value>, name: &str) {
    let mut schema = serde_json::to_value(schemars::schema_for!(T)).expect("a schema serializes");
    drop_null_defaults(&mut schema);
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
        if let Some(Value::Object(defs)) = object.remove("$defs") {
            for (def, value) in defs {
                schemas.entry(def).or_insert(value);
            }
        }
    }
    schemas.insert(name.to_owned(), schema);
}

/// Removes `"default": null` (what an optional request field's default serializes to): a field that is absent is
/// not null, and validators hold a default to its field's type.
fn drop_null_defaults(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if object.get("default") == Some(&Value::Null) {
                object.remove("default");
            }
            object.values_mut().for_each(drop_null_defaults);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null_defaults),
        _ => {}
    }
}
