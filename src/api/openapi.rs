//! The OpenAPI document at `/openapi.json`, made to describe the API as it is served.
//!
//! utoipa derives paths and schemas from the handlers; `document` then adds what derivation
//! cannot know: unique operationIds (`{tag}_{handler}`), the answers every operation can
//! really give (401/403 on secured ones, 429 everywhere, 400/413/422 where there is a JSON body,
//! 404 for a malformed path id, 400 for bad query parameters), the configured limits (page
//! size, token lifetime, name and text lengths, in bytes) and response `links` so a client can
//! follow the ids it created. Routes that are not JSON REST (provider hooks, media proxy,
//! WebSocket upgrade, `/metrics`) are described by the doc-only operations below.

use crate::config::Config;
use serde_json::{Value, json};
use utoipa::OpenApi;

use super::{
    accounts, agents, canned, contacts, conversation_counts, conversations, health, messages, participants, reads,
    sessions, tokens, webhooks,
};

/// The derived part of the document; see [`document`] for the whole.
#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard", description = "Conversation hub REST API. Authenticate with `Authorization: Bearer <api key>`."),
    paths(
        conversations::create, conversations::list, conversations::get, conversations::update, conversations::delete,
        conversation_counts::counts, conversations::unassign, reads::mark,
        agents::create, agents::list, agents::get, agents::update, agents::delete, agents::invite,
        sessions::accept, sessions::sign_in, sessions::refresh, sessions::sign_out,
        canned::list, canned::create, canned::get, canned::update, canned::delete,
        participants::add, participants::list, participants::remove, participants::link,
        messages::post, messages::list, messages::get, messages::edit, messages::delete,
        contacts::create, contacts::list, contacts::get, contacts::update, contacts::delete, contacts::merge,
        contacts::conversations, contacts::export,
        tokens::mint,
        super::widget::session::create, super::widget::room::post,
        accounts::create, accounts::list, accounts::get, accounts::update, accounts::delete,
        super::templates::list_templates,
        webhooks::create, webhooks::list, webhooks::get, webhooks::update, webhooks::delete,
        webhooks::rotate_secret, webhooks::deliveries, webhooks::redeliver,
        health::healthz, health::readyz,
        provider_hook, provider_hook_get, email_hook, smtp_hook, media, websocket, metrics,
        super::media::upload, crate::media::serve::download,
    ),
    components(schemas(crate::error::ErrorBody, crate::broker::Event)),
    modifiers(&ApiKeyScheme),
)]
pub struct ApiDoc;

struct ApiKeyScheme;

impl utoipa::Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Inbound provider callback (Twilio, Telnyx, LINE, WhatsApp, Telegram); the body and its
/// signature are the provider's. Unknown provider or account: 404.
#[utoipa::path(post, path = "/v1.0/hooks/{provider}/{account_id}", tag = "hooks",
    params(("provider" = String, Path), ("account_id" = uuid::Uuid, Path)),
    request_body(content = String, content_type = "application/octet-stream", description = "the provider's payload"),
    responses((status = 200, description = "accepted"), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
#[allow(dead_code)]
fn provider_hook() {}

/// A provider's verification handshake (e.g. WhatsApp `hub.challenge`).
#[utoipa::path(get, path = "/v1.0/hooks/{provider}/{account_id}", tag = "hooks", operation_id = "provider_hook_verify",
    params(("provider" = String, Path), ("account_id" = uuid::Uuid, Path)),
    responses((status = 200, description = "verified"), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
#[allow(dead_code)]
fn provider_hook_get() {}

/// Inbound email from a mail-forwarding service.
#[utoipa::path(post, path = "/v1.0/hooks/email/{account_id}", tag = "hooks",
    params(("account_id" = uuid::Uuid, Path)),
    request_body(content = String, content_type = "application/octet-stream", description = "the message, raw or as the service posts it"),
    responses((status = 200, description = "accepted"), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
#[allow(dead_code)]
fn email_hook() {}

/// The same as the email hook, under the account's own provider name (`smtp`).
#[utoipa::path(post, path = "/v1.0/hooks/smtp/{account_id}", tag = "hooks",
    params(("account_id" = uuid::Uuid, Path)),
    request_body(content = String, content_type = "application/octet-stream", description = "the message"),
    responses((status = 200, description = "accepted"), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
#[allow(dead_code)]
fn smtp_hook() {}

/// A provider's media, proxied: the URL is signed (`sig`) by this server in message `medias`.
#[utoipa::path(get, path = "/v1.0/media/{account_id}/{reference}", tag = "media",
    params(("account_id" = uuid::Uuid, Path), ("reference" = String, Path), ("sig" = String, Query)),
    responses((status = 200, description = "the media", content_type = "application/octet-stream", body = String),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
#[allow(dead_code)]
fn media() {}

/// The WebSocket upgrade (see docs/websocket.md); a refused token closes the socket with its code.
#[utoipa::path(get, path = "/v1.0/ws", tag = "websocket",
    params(("token" = Option<String>, Query, description = "client or agent token")),
    responses((status = 101, description = "switching protocols"),
        (status = 400, body = crate::error::ErrorBody, description = "not a WebSocket upgrade"),
        (status = 403, body = crate::error::ErrorBody, description = "origin not allowed"),
        (status = 503, body = crate::error::ErrorBody, description = "node full")))]
#[allow(dead_code)]
fn websocket() {}

/// This node's metrics in the Prometheus text format (`metrics.token` guards it when set).
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses((status = 200, description = "Prometheus text", content_type = "text/plain", body = String),
        (status = 401, body = crate::error::ErrorBody)))]
#[allow(dead_code)]
fn metrics() {}

/// `/openapi.json` for this node's configuration.
pub async fn serve(axum::extract::State(state): axum::extract::State<crate::app::AppState>) -> axum::Json<Value> {
    axum::Json(document(&state.config))
}

/// The whole document: derived, then completed (see the module docs).
pub fn document(config: &Config) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    super::openapi_schemas::tighten(&mut doc, config);
    let error = json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}});
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return doc };
    for (path, ops) in paths.iter_mut() {
        let Some(ops) = ops.as_object_mut() else { continue };
        for (method, op) in ops.iter_mut() {
            let tag = op["tags"][0].as_str().unwrap_or("api").to_string();
            let id = op["operationId"].as_str().unwrap_or(method).to_string();
            if !id.starts_with(&format!("{tag}_")) {
                op["operationId"] = json!(format!("{tag}_{id}"));
            }
            let secured = op.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
            let json_body = op["requestBody"]["content"].get("application/json").is_some();
            let has_query = op["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
            let mut add = |code: &str| {
                let responses = op["responses"].as_object_mut().expect("operations have responses");
                responses.entry(code.to_string()).or_insert_with(|| error.clone());
            };
            add("429");
            if secured {
                add("401");
                add("403");
            }
            if json_body {
                add("400");
                add("413");
                add("422");
            }
            if has_query {
                add("400");
            }
            if path.contains('{') {
                add("404");
            }
        }
    }
    super::openapi_schemas::links(&mut doc);
    doc
}
