//! The settings of a website account (provider `web`): the chat widget a site embeds with one
//! script tag.
//!
//! Plain data. The public key names the account to browsers (it is no secret: every page that
//! embeds the widget shows it); the identity secret, which proves a visitor's identity, is a
//! credential (`credentials.identity_secret`) and so write-only like every provider secret.
//! Sessions, rooms and CORS for these settings live in `api::widget`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A website account's widget: who may embed it, how it looks, what it asks first.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct WidgetSettings {
    /// `pk_…`: generated when the account is created; names the account in the script tag.
    #[serde(default)]
    pub public_key: String,
    /// Origins (`https://shop.example.com`, scheme + host + port) whose pages may open
    /// sessions; a request from any other origin is refused (403 `origin_not_allowed`).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub branding: Branding,
    #[serde(default)]
    pub prechat: Prechat,
}

/// What the visitor sees: the team's name, colour, greeting and avatar.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Branding {
    #[serde(default)]
    pub name: String,
    /// A CSS hex colour, `#rrggbb`.
    #[serde(default = "default_colour")]
    pub colour: String,
    #[serde(default)]
    pub greeting: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
}

fn default_colour() -> String {
    "#2563eb".into()
}

impl Default for Branding {
    fn default() -> Self {
        Branding { name: String::new(), colour: default_colour(), greeting: String::new(), avatar_url: None }
    }
}

/// The pre-chat form: which fields the panel asks before the first message.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Prechat {
    #[serde(default)]
    pub name: FieldRule,
    #[serde(default)]
    pub email: FieldRule,
}

/// Whether a pre-chat field is asked, and whether it must be filled.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldRule {
    #[default]
    Off,
    Optional,
    Required,
}

impl WidgetSettings {
    /// A new public key for account `id`: `pk_` + the account id (32 hex digits) + 16 random
    /// characters. The id inside lets a request (and its CORS preflight) find the account in
    /// one read on any backend, with no index to keep; the random part makes it unguessable
    /// from the id alone.
    pub fn new_key(id: Uuid) -> String {
        use rand::Rng;
        let r: String =
            rand::thread_rng().sample_iter(&rand::distributions::Alphanumeric).take(16).map(char::from).collect();
        format!("pk_{}{r}", id.simple())
    }

    /// The account id a public key names, if it has the shape of one.
    pub fn key_account(key: &str) -> Option<Uuid> {
        let hex = key.strip_prefix("pk_")?.get(..32)?;
        Uuid::try_parse(hex).ok()
    }

    /// Whether a page of `origin` may embed this widget (exact match; a trailing `/` ignored).
    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        self.allowed_origins.iter().any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin))
    }
}
