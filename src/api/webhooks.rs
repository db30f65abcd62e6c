//! `/v1.0/webhooks`: customer webhook subscriptions, their secrets and their deliveries.
//!
//! The signing secret is returned only by create and `rotate_secret` (`WebhookWithSecret`);
//! every other view omits it. Rules live in `crate::webhooks`; this file translates shapes.

use super::pagination::{Page, PageParams, decode_cursor, encode_cursor, page_size};
use crate::app::AppState;
use crate::auth::TenantCtx;
use crate::error::{ErrorBody, Json, Path, Query, Result};
use crate::webhooks::{self, Attempt, Changes, Delivery, DeliveryStatus, Mode, OnFailure, Webhook};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where to POST: an http(s) URL on a public address.
    pub url: String,
    /// Event types, or `["*"]`. Default: `["*"]` for notify, `["message.creating"]` for intercept.
    pub events: Option<Vec<String>>,
    /// `notify` (default) or `intercept`.
    pub mode: Option<Mode>,
    /// Intercept only: what a timeout or error means (`allow`, the default, or `reject`).
    pub on_failure: Option<OnFailure>,
    pub description: Option<String>,
}

/// Fields to change; absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    /// Changing the mode without `events` resets them to the new mode's default.
    pub mode: Option<Mode>,
    pub on_failure: Option<OnFailure>,
    pub description: Option<String>,
}

/// A webhook as the API shows it: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub mode: Mode,
    /// Intercept webhooks only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
    pub description: String,
    /// Until then the secret before the last rotation still signs (a second `v1=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub tm_create: DateTime<Utc>,
    pub tm_update: DateTime<Utc>,
}

/// Create and `rotate_secret` answers: the webhook and its signing secret (shown only here).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_…`; the HMAC-SHA256 key of `Switchboard-Signature`.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub result: Vec<WebhookView>,
}

/// One event sent (or being sent) to one webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: Uuid,
    pub webhook_id: Uuid,
    /// The `Switchboard-Event-Id` / body `id`, identical on every attempt and redelivery.
    pub event_id: Uuid,
    pub event_type: crate::wire::EventKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Uuid>,
    pub status: DeliveryStatus,
    /// The newest attempts (up to 50), oldest first.
    pub attempts: Vec<Attempt>,
    pub attempt_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_retry_at: Option<DateTime<Utc>>,
    pub tm_create: DateTime<Utc>,
    pub tm_update: DateTime<Utc>,
}

fn view(w: &Webhook) -> WebhookView {
    WebhookView {
        id: w.id,
        url: w.url.clone(),
        events: w.events.clone(),
        mode: w.mode,
        on_failure: (w.mode == Mode::Intercept).then_some(w.on_failure),
        description: w.description.clone(),
        previous_secret_expires_at: w.previous_secret.as_ref().and(w.previous_secret_expires_at),
        tm_create: w.tm_create,
        tm_update: w.tm_update,
    }
}

fn with_secret(w: &Webhook) -> WebhookWithSecret {
    WebhookWithSecret { webhook: view(w), secret: w.secret.expose().to_string() }
}

fn delivery_view(d: Delivery) -> DeliveryView {
    DeliveryView {
        id: d.id,
        webhook_id: d.webhook_id,
        event_id: d.event_id,
        event_type: d.event_type,
        conversation_id: d.conversation_id,
        status: d.status,
        attempts: d.attempts,
        attempt_count: d.attempt_count,
        next_retry_at: d.next_retry_at,
        tm_create: d.tm_create,
        tm_update: d.tm_update,
    }
}

#[utoipa::path(post, path = "/v1.0/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, body = WebhookWithSecret), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Json(b): Json<CreateWebhook>,
) -> Result<(StatusCode, Json<WebhookWithSecret>)> {
    let c = Changes {
        url: Some(b.url),
        events: b.events,
        mode: b.mode,
        on_failure: b.on_failure,
        description: b.description,
    };
    let w = webhooks::create(&state, t.id, c).await?;
    Ok((StatusCode::CREATED, Json(with_secret(&w))))
}

#[utoipa::path(get, path = "/v1.0/webhooks", tag = "webhooks",
    responses((status = 200, body = WebhookList)), security(("api_key" = [])))]
pub async fn list(State(state): State<AppState>, TenantCtx(t): TenantCtx) -> Result<Json<WebhookList>> {
    let all = webhooks::list(&state, t.id).await?;
    Ok(Json(WebhookList { result: all.iter().map(view).collect() }))
}

#[utoipa::path(get, path = "/v1.0/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
) -> Result<Json<WebhookView>> {
    Ok(Json(view(&webhooks::get(&state, t.id, id).await?)))
}

#[utoipa::path(put, path = "/v1.0/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)), request_body = UpdateWebhook,
    responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
    Json(b): Json<UpdateWebhook>,
) -> Result<Json<WebhookView>> {
    let c =
        Changes { url: b.url, events: b.events, mode: b.mode, on_failure: b.on_failure, description: b.description };
    Ok(Json(view(&webhooks::update(&state, t.id, id, c).await?)))
}

#[utoipa::path(delete, path = "/v1.0/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 200, body = WebhookView, description = "the deleted webhook"), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
) -> Result<Json<WebhookView>> {
    Ok(Json(view(&webhooks::delete(&state, t.id, id).await?)))
}

#[utoipa::path(post, path = "/v1.0/webhooks/{id}/rotate_secret", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 200, body = WebhookWithSecret, description = "the new secret; the old one signs too until `previous_secret_expires_at`"),
        (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
) -> Result<Json<WebhookWithSecret>> {
    Ok(Json(with_secret(&webhooks::rotate_secret(&state, t.id, id).await?)))
}

#[utoipa::path(get, path = "/v1.0/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<DeliveryView>, description = "newest first"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn deliveries(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
    Query(q): Query<PageParams>,
) -> Result<Json<Page<DeliveryView>>> {
    let limits = &state.config.limits;
    let size = page_size(q.page_size, limits.page_size_default, limits.page_size_max)?;
    let before = q.page_token.as_deref().map(decode_cursor).transpose()?;
    let mut result = webhooks::deliveries(&state, t.id, id, before, size + 1).await?;
    let next_page_token = if result.len() > size {
        result.truncate(size);
        result.last().map(|d| encode_cursor(d.id))
    } else {
        None
    };
    Ok(Json(Page { result: result.into_iter().map(delivery_view).collect(), next_page_token }))
}

#[utoipa::path(post, path = "/v1.0/webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = "webhooks",
    params(("id" = Uuid, Path), ("delivery_id" = Uuid, Path)),
    responses((status = 202, body = DeliveryView, description = "queued again"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the delivery is still pending")),
    security(("api_key" = [])))]
pub async fn redeliver(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path((id, delivery_id)): Path<(Uuid, Uuid)>,
) -> Result<(StatusCode, Json<DeliveryView>)> {
    let d = webhooks::redeliver(&state, t.id, id, delivery_id).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery_view(d))))
}
