//! `GET /v1.0/conversation_accounts/{id}/templates` and the template side of
//! `POST …/messages`: what the inbox's template picker needs when a WhatsApp window is closed.
//!
//! The listing is `channels::templates` (approved templates from the Graph API, cached per
//! node); here it is only served, and a posted `template` is resolved to the account that
//! will carry it and rendered into the message's text, so the room reads naturally.
//!
//! Callers of the listing: an API key, or an agent, admin or operator token of the tenant
//! (agents signed in with email and password use the inbox's picker); end-user tokens get 403.

use crate::agents::Caller;
use crate::app::AppState;
use crate::channels::templates::{self, Template};
use crate::error::{Error, ErrorBody, Json, Path, Result};
use crate::model::{AddressType, TemplateSend};
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// An account's approved templates.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateList {
    pub result: Vec<Template>,
}

#[utoipa::path(get, path = "/v1.0/conversation_accounts/{id}/templates", tag = "accounts", params(("id" = Uuid, Path)),
    description = "A WhatsApp account's approved message templates (read from Meta, cached for 5 minutes). Needs the \
        account's `business_account_id` credential. Send one with `POST …/messages {\"template\": {name, language, parameters}}`.",
    responses((status = 200, body = TemplateList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "not a WhatsApp account, or no `business_account_id`"),
        (status = 503, body = ErrorBody, description = "Meta could not be asked; retry")),
    security(("api_key" = [])))]
pub async fn list_templates(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<TemplateList>> {
    if let Caller::Client(c) = &caller
        && c.convs.is_some()
    {
        return Err(Error::Forbidden("an end-user token cannot list templates".into()));
    }
    let tenant = caller.tenant();
    let account = state
        .channel_store
        .get_account(id)
        .await?
        .filter(|a| a.tenant_id == tenant)
        .ok_or(Error::NotFound("account"))?;
    let list = state.templates.list(&state.http, &state.channels, &account).await?;
    Ok(Json(TemplateList { result: list.as_ref().clone() }))
}

/// The text a `template` send to conversation `id` stores: the template is looked up on the
/// WhatsApp account it will go out on (`via`, else the first WhatsApp recipient's), and its
/// body rendered with the parameters. 422 when the room has no WhatsApp recipient, the
/// template is unknown or the parameters do not fit.
pub async fn render(
    state: &AppState,
    tenant: Uuid,
    id: Uuid,
    send: &TemplateSend,
    via: Option<Uuid>,
) -> Result<String> {
    if send.name.is_empty() || send.name.len() > 512 || send.language.is_empty() || send.language.len() > 16 {
        return Err(Error::invalid("invalid_template", "template needs a name and a language code"));
    }
    if send.parameters.len() > 100 || send.parameters.iter().any(|p| p.len() > state.config.limits.max_text_bytes) {
        return Err(Error::invalid("template_parameters", "too many or too long template parameters"));
    }
    crate::conversations::get(state, tenant, id).await?;
    let participants = state.store.list_participants(id).await?;
    let whatsapp = participants
        .iter()
        .flat_map(|p| p.endpoints())
        .filter(|e| e.address.kind == AddressType::Whatsapp)
        .filter_map(|e| e.account_id)
        .find(|a| via.is_none_or(|v| v == *a))
        .ok_or_else(|| {
            Error::invalid("no_whatsapp_recipient", "a template goes to a WhatsApp participant; this room has none")
        })?;
    let account = state
        .accounts
        .get(state.channel_store.as_ref(), whatsapp)
        .await?
        .ok_or_else(|| Error::invalid("no_whatsapp_recipient", "the WhatsApp account was deleted"))?;
    let list = state.templates.list(&state.http, &state.channels, &account).await?;
    templates::render(templates::find(&list, send)?, send)
}
