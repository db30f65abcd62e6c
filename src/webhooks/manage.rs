//! The rules for managing webhooks: validation, tenant ownership, secrets and redelivery.
//! REST handlers (`api::webhooks`) call these and only translate shapes.

use super::dispatch;
use super::guard;
use super::model::{Delivery, DeliveryStatus, Mode, OnFailure, Secret, Webhook};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::model::now;
use crate::wire::EventKind;
use uuid::Uuid;

/// Fields a create or update request sets; `None` keeps the current (or default) value.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub mode: Option<Mode>,
    pub on_failure: Option<OnFailure>,
    pub description: Option<String>,
}

fn default_events(mode: Mode) -> Vec<String> {
    match mode {
        Mode::Notify => vec!["*".into()],
        Mode::Intercept => vec![EventKind::MessageCreating.as_str().into()],
    }
}

/// Deduplicated, `["*"]` if it contains `*`, and each type valid for `mode`.
fn normalize_events(mode: Mode, events: Vec<String>) -> Result<Vec<String>> {
    if events.is_empty() {
        return Err(Error::invalid("invalid_events", "events must name at least one event type, or \"*\""));
    }
    if events.iter().any(|e| e == "*") {
        return Ok(vec!["*".into()]);
    }
    let mut out: Vec<String> = Vec::new();
    for e in events {
        let ok = match mode {
            Mode::Notify => EventKind::parse(&e).is_some_and(|k| EventKind::NOTIFY.contains(&k)),
            Mode::Intercept => EventKind::parse(&e) == Some(EventKind::MessageCreating),
        };
        if !ok {
            let allowed = match mode {
                Mode::Notify => EventKind::NOTIFY.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "),
                Mode::Intercept => EventKind::MessageCreating.to_string(),
            };
            let shown: String = e.chars().take(64).collect();
            return Err(Error::invalid("invalid_events", format!("`{shown}` is not one of: *, {allowed}")));
        }
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

/// Applies `c` to `w` (validating everything it touches).
async fn apply(state: &AppState, w: &mut Webhook, c: Changes) -> Result<()> {
    if let Some(u) = c.url {
        guard::check_url(&u, state.config.webhooks.allow_private_targets).await?;
        w.url = u;
    }
    let mode_changed = c.mode.is_some_and(|m| m != w.mode);
    if let Some(m) = c.mode {
        w.mode = m;
    }
    match c.events {
        Some(e) => w.events = normalize_events(w.mode, e)?,
        None if mode_changed => w.events = default_events(w.mode),
        None => {}
    }
    if let Some(f) = c.on_failure {
        if w.mode != Mode::Intercept {
            return Err(Error::invalid("invalid_on_failure", "on_failure applies to intercept webhooks only"));
        }
        w.on_failure = f;
    }
    if let Some(d) = c.description {
        crate::limits::check_name(&state.config.limits, "description", &d)?;
        w.description = d;
    }
    Ok(())
}

/// Refreshes this node's index after a change (the periodic refresh catches up on failure).
async fn reindex(state: &AppState, tenant: Uuid) {
    if let Err(e) = state.webhooks.reload_tenant(tenant).await {
        tracing::warn!(error = %e.chain(), %tenant, "webhook index not reloaded; the next refresh will");
    }
}

/// The webhook if it belongs to `tenant`; else 404 (another tenant's looks the same as none).
pub async fn get(state: &AppState, tenant: Uuid, id: Uuid) -> Result<Webhook> {
    state.webhooks.store.get_webhook(id).await?.filter(|w| w.tenant_id == tenant).ok_or(Error::NotFound("webhook"))
}

pub async fn list(state: &AppState, tenant: Uuid) -> Result<Vec<Webhook>> {
    state.webhooks.store.list_webhooks(Some(tenant)).await
}

/// Creates a webhook; the result carries its secret (shown to the caller once).
pub async fn create(state: &AppState, tenant: Uuid, c: Changes) -> Result<Webhook> {
    let cfg = &state.config.webhooks;
    if state.webhooks.store.list_webhooks(Some(tenant)).await?.len() >= cfg.max_per_tenant {
        return Err(Error::invalid(
            "too_many_webhooks",
            format!("a tenant may have at most {} webhooks", cfg.max_per_tenant),
        ));
    }
    if c.url.is_none() {
        return Err(Error::invalid("invalid_url", "url is required"));
    }
    let mode = c.mode.unwrap_or(Mode::Notify);
    let at = now();
    let mut w = Webhook {
        id: Uuid::now_v7(),
        tenant_id: tenant,
        url: String::new(),
        events: default_events(mode),
        mode,
        on_failure: OnFailure::default(),
        description: String::new(),
        secret: Secret::generate(),
        previous_secret: None,
        previous_secret_expires_at: None,
        tm_create: at,
        tm_update: at,
    };
    apply(state, &mut w, c).await?;
    state.webhooks.store.put_webhook(&w).await?;
    reindex(state, tenant).await;
    Ok(w)
}

pub async fn update(state: &AppState, tenant: Uuid, id: Uuid, c: Changes) -> Result<Webhook> {
    let mut w = get(state, tenant, id).await?;
    apply(state, &mut w, c).await?;
    w.tm_update = now();
    state.webhooks.store.put_webhook(&w).await?;
    reindex(state, tenant).await;
    Ok(w)
}

/// Deletes the webhook and its delivery records; pending deliveries are dropped.
pub async fn delete(state: &AppState, tenant: Uuid, id: Uuid) -> Result<Webhook> {
    let w = get(state, tenant, id).await?;
    if !state.webhooks.store.delete_webhook(&w).await? {
        return Err(Error::NotFound("webhook"));
    }
    reindex(state, tenant).await;
    state.webhooks.limits.remove(&id);
    Ok(w)
}

/// A new secret; the old one keeps signing for `webhooks.secret_grace_secs`.
pub async fn rotate_secret(state: &AppState, tenant: Uuid, id: Uuid) -> Result<Webhook> {
    let mut w = get(state, tenant, id).await?;
    let at = now();
    let grace = i64::try_from(state.config.webhooks.secret_grace_secs).unwrap_or(i64::MAX / 1000);
    let old = std::mem::replace(&mut w.secret, Secret::generate());
    if grace > 0 {
        w.previous_secret = Some(old);
        w.previous_secret_expires_at = Some(at + chrono::Duration::try_seconds(grace).unwrap_or(chrono::Duration::MAX));
    } else {
        w.previous_secret = None;
        w.previous_secret_expires_at = None;
    }
    w.tm_update = at;
    state.webhooks.store.put_webhook(&w).await?;
    reindex(state, tenant).await;
    Ok(w)
}

/// Newest first; `before` is the last delivery id of the previous page.
pub async fn deliveries(
    state: &AppState,
    tenant: Uuid,
    id: Uuid,
    before: Option<Uuid>,
    limit: usize,
) -> Result<Vec<Delivery>> {
    get(state, tenant, id).await?;
    state.webhooks.store.list_deliveries(id, before, limit).await
}

/// Sends a finished delivery again (same event id and body), with a fresh retry horizon.
pub async fn redeliver(state: &AppState, tenant: Uuid, id: Uuid, delivery: Uuid) -> Result<Delivery> {
    get(state, tenant, id).await?;
    let mut d = state.webhooks.store.get_delivery(id, delivery).await?.ok_or(Error::NotFound("delivery"))?;
    if d.status == DeliveryStatus::Pending {
        return Err(Error::Conflict("the delivery is still pending".into()));
    }
    let at = now();
    d.status = DeliveryStatus::Pending;
    d.next_retry_at = None;
    d.retry_until = dispatch::horizon(state, at);
    d.tm_update = at;
    dispatch::queue(state, &d).await?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_checked_per_mode() {
        assert_eq!(normalize_events(Mode::Notify, vec!["a".into(), "*".into()]).unwrap(), vec!["*"]);
        let v = vec!["message.created".into(), "message.created".into(), "account.deleted".into()];
        assert_eq!(normalize_events(Mode::Notify, v).unwrap(), vec!["message.created", "account.deleted"]);
        assert!(normalize_events(Mode::Notify, vec!["message.creating".into()]).is_err());
        assert!(normalize_events(Mode::Intercept, vec!["message.created".into()]).is_err());
        assert!(normalize_events(Mode::Notify, vec![]).is_err());
    }
}
