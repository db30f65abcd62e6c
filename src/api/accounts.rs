//! `/v1.0/conversation_accounts`: channel accounts (our number / LINE channel / bot).
//!
//! Credentials are write-only: accepted on create and update, checked for the keys the
//! provider needs, never returned (the view lists only which keys are set) and never logged.
//! Website accounts (provider `web`, type `webchat`) carry `widget` settings instead of a
//! provider adapter; their `identity_secret` is a credential like any other (see
//! `api::widget`).

use crate::app::AppState;
use crate::auth::TenantCtx;
use crate::broker::{Event, EventKind};
use crate::error::{Error, ErrorBody, Json, Path, Result};
use crate::events::emit;
use crate::model::{Account, AddressType, MatchMode, ProviderKind, WidgetSettings, now};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// `tel` (SMS/MMS), `line`, `whatsapp`, `telegram`.
    #[serde(rename = "type")]
    pub kind: AddressType,
    /// `twilio`, `telnyx`, `line`, `whatsapp`, `telegram`.
    pub provider: String,
    #[serde(default)]
    pub name: String,
    /// Our address: the phone number (E.164), LINE channel id, WhatsApp number, bot username.
    /// Website accounts may leave it out (their name stands in).
    #[serde(default)]
    pub address: String,
    /// Provider secrets (write-only), e.g. Twilio `{account_sid, auth_token}`.
    #[schema(value_type = Object)]
    pub credentials: serde_json::Map<String, serde_json::Value>,
    /// Override of the provider API base URL.
    pub api_base_url: Option<String>,
    /// Phone accounts: region national numbers are read in (ISO 3166-1 alpha-2, e.g. `US`).
    /// Without it a peer number must carry its country code.
    pub default_region: Option<String>,
    /// How inbound messages find their room: `account` (default: one room per peer on this
    /// account) or `contact` (the contact's latest open conversation, whatever account or
    /// address of theirs it came in on).
    #[serde(default, rename = "match")]
    pub match_mode: MatchMode,
    /// Website accounts (provider `web`): allowed origins, branding, pre-chat form. The
    /// `public_key` is generated (a given one is ignored).
    pub widget: Option<WidgetSettings>,
    /// Messenger and Instagram: message tags this page may send with outside the 24-hour
    /// window (e.g. `["HUMAN_AGENT"]`, once Meta granted the page that permission).
    #[serde(default)]
    pub message_tags: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    pub name: Option<String>,
    pub address: Option<String>,
    /// Replaces all credentials when given.
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<serde_json::Map<String, serde_json::Value>>,
    pub api_base_url: Option<String>,
    /// `""` removes it.
    pub default_region: Option<String>,
    /// `account` or `contact` (see `CreateAccount`).
    #[serde(rename = "match")]
    pub match_mode: Option<MatchMode>,
    /// Website accounts: replaces the widget settings (the public key is kept).
    pub widget: Option<WidgetSettings>,
    /// Messenger and Instagram: replaces the allowed message tags.
    pub message_tags: Option<Vec<String>>,
}

/// An account as the API shows it: no secrets.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: AddressType,
    pub provider: ProviderKind,
    pub name: String,
    pub address: String,
    /// Names of the credentials that are set (values are never returned).
    pub credentials_set: Vec<String>,
    pub api_base_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_region: Option<String>,
    /// `account` or `contact`: how inbound messages find their room.
    #[serde(rename = "match")]
    pub match_mode: MatchMode,
    /// Where to point the provider's webhooks (messages and delivery reports).
    pub inbound_url: String,
    /// Website accounts: the widget's public key, origins, branding and pre-chat form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub widget: Option<WidgetSettings>,
    /// Messenger and Instagram: message tags allowed outside the 24-hour window.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub message_tags: Vec<String>,
    pub tm_create: DateTime<Utc>,
    pub tm_update: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountList {
    pub result: Vec<AccountView>,
}

fn view(state: &AppState, a: &Account) -> AccountView {
    let mut keys: Vec<String> = a.credentials.keys().cloned().collect();
    keys.sort();
    AccountView {
        id: a.id,
        kind: a.kind,
        provider: a.provider,
        name: a.name.clone(),
        address: a.address.clone(),
        credentials_set: keys,
        api_base_url: a.api_base_url.clone(),
        default_region: a.default_region.clone(),
        match_mode: a.match_mode,
        inbound_url: format!("{}/v1.0/hooks/{}/{}", state.public_base(), a.provider, a.id),
        widget: a.widget.clone(),
        message_tags: a.message_tags.clone(),
        tm_create: a.tm_create,
        tm_update: a.tm_update,
    }
}

fn unknown_provider(state: &AppState) -> Error {
    Error::invalid("unknown_provider", format!("provider must be one of {}", state.channels.names().join(", ")))
}

fn validate(state: &AppState, a: &Account) -> Result<()> {
    if a.provider == ProviderKind::Web || a.widget.is_some() {
        return crate::api::widget::settings::validate(state, a);
    }
    let p = state.channels.get(a.provider).ok_or_else(|| unknown_provider(state))?;
    if p.channel() != a.kind {
        return Err(Error::invalid(
            "provider_mismatch",
            format!("provider `{}` serves `{}` accounts", a.provider, p.channel().as_str()),
        ));
    }
    if a.address.trim().is_empty() {
        return Err(Error::invalid("invalid_address", "address must not be empty"));
    }
    crate::conversations::check_name(state, "name", &a.name)?;
    crate::conversations::check_name(state, "address", &a.address)?;
    for k in p.required_credentials() {
        if a.secret(k).is_err() {
            return Err(Error::invalid(
                "missing_credentials",
                format!("credentials.{k} is required for {} (a non-blank string)", a.provider),
            ));
        }
    }
    if let Some(r) = &a.default_region {
        crate::phone::region(r)?;
    }
    if a.message_tags.len() > 16 || !a.message_tags.iter().all(|t| crate::conversations::window::valid_tag(t)) {
        return Err(Error::invalid("invalid_message_tags", "message_tags: at most 16 tags like HUMAN_AGENT"));
    }
    if !a.message_tags.is_empty() && !matches!(a.kind, AddressType::Messenger | AddressType::Instagram) {
        return Err(Error::invalid("invalid_message_tags", "message_tags are for messenger and instagram accounts"));
    }
    if let Some(u) = &a.api_base_url
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        return Err(Error::invalid("invalid_url", "api_base_url must be an http(s) URL"));
    }
    Ok(())
}

async fn owned(state: &AppState, tenant: Uuid, id: Uuid) -> Result<Account> {
    state.channel_store.get_account(id).await?.filter(|a| a.tenant_id == tenant).ok_or(Error::NotFound("account"))
}

async fn announce(state: &AppState, kind: EventKind, a: &AccountView, tenant: Uuid) {
    emit(state, Event::new(kind, tenant, None, a)).await;
}

#[utoipa::path(post, path = "/v1.0/conversation_accounts", tag = "accounts", request_body = CreateAccount,
    responses((status = 201, body = AccountView), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Json(b): Json<CreateAccount>,
) -> Result<(StatusCode, Json<AccountView>)> {
    let at = now();
    let a = Account {
        id: Uuid::now_v7(),
        tenant_id: t.id,
        kind: b.kind,
        provider: ProviderKind::parse(&b.provider).ok_or_else(|| unknown_provider(&state))?,
        name: b.name,
        address: b.address.trim().to_string(),
        credentials: b.credentials,
        api_base_url: b.api_base_url,
        default_region: b.default_region.map(|r| r.trim().to_ascii_uppercase()),
        match_mode: b.match_mode,
        widget: b.widget,
        message_tags: b.message_tags,
        tm_create: at,
        tm_update: at,
    };
    let mut a = a;
    crate::api::widget::settings::prepare(&mut a);
    validate(&state, &a)?;
    state.channel_store.put_account(&a).await?;
    let v = view(&state, &a);
    announce(&state, EventKind::AccountCreated, &v, t.id).await;
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(get, path = "/v1.0/conversation_accounts", tag = "accounts",
    responses((status = 200, body = AccountList)), security(("api_key" = [])))]
pub async fn list(State(state): State<AppState>, TenantCtx(t): TenantCtx) -> Result<Json<AccountList>> {
    let all = state.channel_store.list_accounts(t.id).await?;
    Ok(Json(AccountList { result: all.iter().map(|a| view(&state, a)).collect() }))
}

#[utoipa::path(get, path = "/v1.0/conversation_accounts/{id}", tag = "accounts", params(("id" = Uuid, Path)),
    responses((status = 200, body = AccountView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
) -> Result<Json<AccountView>> {
    Ok(Json(view(&state, &owned(&state, t.id, id).await?)))
}

#[utoipa::path(put, path = "/v1.0/conversation_accounts/{id}", tag = "accounts", params(("id" = Uuid, Path)),
    request_body = UpdateAccount,
    responses((status = 200, body = AccountView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
    Json(b): Json<UpdateAccount>,
) -> Result<Json<AccountView>> {
    let mut a = owned(&state, t.id, id).await?;
    if let Some(n) = b.name {
        a.name = n;
    }
    if let Some(addr) = b.address {
        a.address = addr.trim().to_string();
    }
    if let Some(c) = b.credentials {
        a.credentials = c;
    }
    if let Some(u) = b.api_base_url {
        a.api_base_url = Some(u).filter(|u| !u.is_empty());
    }
    if let Some(r) = b.default_region {
        a.default_region = Some(r.trim().to_ascii_uppercase()).filter(|r| !r.is_empty());
    }
    if let Some(m) = b.match_mode {
        a.match_mode = m;
    }
    if let Some(t) = b.message_tags {
        a.message_tags = t;
    }
    if let Some(w) = b.widget {
        let key = a.widget.as_ref().map(|w| w.public_key.clone());
        a.widget = Some(WidgetSettings { public_key: key.unwrap_or_default(), ..w });
        crate::api::widget::settings::prepare(&mut a);
    }
    a.tm_update = now();
    validate(&state, &a)?;
    state.channel_store.put_account(&a).await?;
    state.accounts.forget(a.id);
    let v = view(&state, &a);
    announce(&state, EventKind::AccountUpdated, &v, t.id).await;
    Ok(Json(v))
}

#[utoipa::path(delete, path = "/v1.0/conversation_accounts/{id}", tag = "accounts", params(("id" = Uuid, Path)),
    responses((status = 200, body = AccountView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
) -> Result<Json<AccountView>> {
    let a = owned(&state, t.id, id).await?;
    if !state.channel_store.delete_account(t.id, id).await? {
        return Err(Error::NotFound("account"));
    }
    state.accounts.forget(id);
    let v = view(&state, &a);
    announce(&state, EventKind::AccountDeleted, &v, t.id).await;
    Ok(Json(v))
}
