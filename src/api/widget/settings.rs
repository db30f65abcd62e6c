//! Website accounts' settings as the accounts API takes them: filled in on create (a fresh
//! public key) and checked (origins, colour, avatar, identity secret).
//!
//! Only shapes are checked here; what the settings *do* (origin checks, identity proofs) is
//! `session.rs` and `cors.rs`. Kept apart from `api::accounts` so a website account's rules
//! live with the widget, not in the provider accounts' code.

use crate::app::AppState;
use crate::error::{Error, Result};
use crate::model::{Account, AddressType, ProviderKind, WidgetSettings};

/// The one credential a website account takes.
pub const IDENTITY_SECRET: &str = "identity_secret";

/// Fills in what the caller does not choose: the settings themselves, the public key, and the
/// address (a website account has no address on any network; its name stands in).
pub fn prepare(a: &mut Account) {
    if a.provider != ProviderKind::Web {
        return;
    }
    let w = a.widget.get_or_insert_with(WidgetSettings::default);
    if w.public_key.is_empty() {
        w.public_key = WidgetSettings::new_key(a.id);
    }
    if a.address.trim().is_empty() {
        a.address = if a.name.trim().is_empty() { "website".into() } else { a.name.trim().to_string() };
    }
}

/// An origin as browsers send it: `http(s)://host[:port]`, nothing after.
fn is_origin(o: &str) -> bool {
    let Some(rest) = o.strip_prefix("https://").or_else(|| o.strip_prefix("http://")) else { return false };
    let rest = rest.trim_end_matches('/');
    !rest.is_empty() && !rest.contains(['/', '?', '#', ' ', '*'])
}

fn is_colour(c: &str) -> bool {
    c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|ch| ch.is_ascii_hexdigit())
}

/// A website account's settings, or 422 saying which one is wrong.
pub fn validate(state: &AppState, a: &Account) -> Result<()> {
    if a.provider != ProviderKind::Web {
        return Err(Error::invalid("provider_mismatch", "only provider `web` accounts take `widget` settings"));
    }
    if a.kind != AddressType::Webchat {
        return Err(Error::invalid("provider_mismatch", "provider `web` serves `webchat` accounts"));
    }
    crate::conversations::check_name(state, "name", &a.name)?;
    crate::conversations::check_name(state, "address", &a.address)?;
    if let Some(k) = a.credentials.keys().find(|k| *k != IDENTITY_SECRET) {
        return Err(Error::invalid(
            "invalid_credentials",
            format!("a website account takes only `{IDENTITY_SECRET}`, not `{k}`"),
        ));
    }
    if a.credentials.contains_key(IDENTITY_SECRET) && a.secret(IDENTITY_SECRET).is_err() {
        return Err(Error::invalid("missing_credentials", "credentials.identity_secret must be a non-blank string"));
    }
    let w = a.widget.as_ref().ok_or_else(|| Error::invalid("invalid_widget", "a website account needs `widget`"))?;
    if w.allowed_origins.is_empty() {
        return Err(Error::invalid("invalid_widget", "widget.allowed_origins must list at least one origin"));
    }
    if w.allowed_origins.len() > 64 {
        return Err(Error::invalid("invalid_widget", "widget.allowed_origins takes at most 64 origins"));
    }
    if let Some(o) = w.allowed_origins.iter().find(|o| !is_origin(o)) {
        return Err(Error::invalid(
            "invalid_origin",
            format!("`{o}` is no origin: write scheme, host and port only, e.g. https://shop.example.com"),
        ));
    }
    let b = &w.branding;
    if !is_colour(&b.colour) {
        return Err(Error::invalid("invalid_colour", "widget.branding.colour must be #rrggbb"));
    }
    crate::conversations::check_name(state, "widget.branding.name", &b.name)?;
    if b.greeting.len() > state.config.limits.max_text_bytes {
        return Err(Error::invalid("invalid_greeting", "widget.branding.greeting is too long"));
    }
    if let Some(u) = &b.avatar_url
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        return Err(Error::invalid("invalid_url", "widget.branding.avatar_url must be an http(s) URL"));
    }
    Ok(())
}
