//! The HTTP surface: REST resources under `/v1.0`, the WebSocket upgrade, health probes,
//! `/openapi.json`, `/metrics`, the static chat client at `/` and the JS client at `/sdk/`.
//!
//! Handlers here translate HTTP to calls on `conversations` (writes) or the store (reads) and
//! back; they hold no business rules of their own. Every error leaves as the JSON error body.

pub mod accounts;
pub mod agents;
pub mod canned;
pub mod contacts;
pub mod conversation_counts;
pub mod conversations;
pub mod health;
pub mod media;
pub mod messages;
pub mod metrics;
pub mod observe;
pub mod openapi;
mod openapi_schemas;
pub mod pagination;
pub mod participants;
pub mod query_parts;
pub mod reads;
pub mod sessions;
pub mod templates;
pub mod tokens;
pub mod webhooks;
pub mod widget;

use crate::app::AppState;
use crate::error::Error;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tower_http::services::{ServeDir, ServeFile};

/// The whole router for `state`.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/conversations", post(conversations::create).get(conversations::list))
        .route("/conversations/counts", get(conversation_counts::counts))
        .route("/conversations/{id}", get(conversations::get).put(conversations::update).delete(conversations::delete))
        .route("/conversations/{id}/unassign", post(conversations::unassign))
        .route("/conversations/{id}/participants", post(participants::add).get(participants::list))
        .route("/conversations/{id}/participants/{participant_id}", axum::routing::delete(participants::remove))
        .route("/conversations/{id}/participants/{participant_id}/links", post(participants::link))
        .route("/conversations/{id}/messages", post(messages::post).get(messages::list))
        .route(
            "/conversations/{id}/messages/{message_id}",
            get(messages::get).put(messages::edit).delete(messages::delete),
        )
        .route("/contacts", post(contacts::create).get(contacts::list))
        .route("/contacts/{id}", get(contacts::get).put(contacts::update).delete(contacts::delete))
        .route("/contacts/{id}/merge", post(contacts::merge))
        .route("/contacts/{id}/conversations", get(contacts::conversations))
        .route("/contacts/{id}/export", get(contacts::export))
        .route("/conversations/{id}/read", post(reads::mark))
        .route("/tokens", post(tokens::mint))
        .route("/agents", post(agents::create).get(agents::list))
        .route("/agents/{id}", get(agents::get).patch(agents::update).delete(agents::delete))
        .route("/agents/{id}/invite", post(agents::invite))
        .route("/invites/accept", post(sessions::accept))
        .route("/sessions", post(sessions::sign_in).delete(sessions::sign_out))
        .route("/sessions/refresh", post(sessions::refresh))
        .route("/canned_responses", post(canned::create).get(canned::list))
        .route("/canned_responses/{id}", get(canned::get).patch(canned::update).delete(canned::delete))
        .route("/conversation_accounts", post(accounts::create).get(accounts::list))
        .route("/conversation_accounts/{id}", get(accounts::get).put(accounts::update).delete(accounts::delete))
        .route("/conversation_accounts/{id}/templates", get(templates::list_templates))
        .route("/webhooks", post(webhooks::create).get(webhooks::list))
        .route("/webhooks/{id}", get(webhooks::get).put(webhooks::update).delete(webhooks::delete))
        .route("/webhooks/{id}/rotate_secret", post(webhooks::rotate_secret))
        .route("/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/webhooks/{id}/deliveries/{delivery_id}/redeliver", post(webhooks::redeliver))
        .route(
            "/hooks/email/{account_id}",
            post(crate::channels::inbound::email_hook).layer(crate::limits::webhook_body_limit(&state.config)),
        )
        // The account's own inbound URL names its provider (`smtp`); same handler.
        .route(
            "/hooks/smtp/{account_id}",
            post(crate::channels::inbound::email_hook).layer(crate::limits::webhook_body_limit(&state.config)),
        )
        .route(
            "/hooks/{provider}/{account_id}",
            get(crate::channels::inbound::hook)
                .post(crate::channels::inbound::hook)
                .layer(crate::limits::webhook_body_limit(&state.config)),
        )
        .route("/media/{account_id}/{reference}", get(crate::channels::media::fetch))
        .route("/media", post(media::upload))
        .route("/media/{id}", get(crate::media::serve::download))
        .route("/ws", get(crate::ws::upgrade))
        .layer(widget::cors::bearer_api())
        .merge(widget::routes(&state))
        .fallback(|| async { Error::NotFound("route") });
    let static_dir = &state.config.server.static_dir;
    let files = ServeDir::new(static_dir).fallback(ServeFile::new(format!("{static_dir}/index.html")));
    let app = Router::new()
        .nest("/v1.0", api)
        .merge(widget::files(static_dir))
        .route("/metrics", get(metrics::scrape))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(openapi::serve))
        .nest_service(
            "/sdk",
            axum::Router::new()
                .fallback_service(ServeDir::new(&state.config.server.sdk_dir))
                .layer(axum::middleware::from_fn(widget::cors::public_files)),
        )
        .fallback_service(files)
        .layer(axum::middleware::map_response(crate::error::json_405))
        .layer(DefaultBodyLimit::max(state.config.limits.max_body_bytes));
    observe::layer(app, &state).with_state(state)
}
