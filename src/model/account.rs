//! A channel account — our number, LINE channel, bot or website on one provider — with the
//! provider it speaks through and how inbound messages find their room on it.
//!
//! Plain data, like the rest of `model`. The adapters that speak each provider live in
//! `channels`; the account's secrets are write-only credentials, never shown by the API.

use super::*;

/// A channel account: our number / LINE channel / bot on one provider.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Account {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// The address type of peers on this account: `tel`, `line`, `whatsapp`, `telegram`, `email`.
    pub kind: AddressType,
    /// Which provider adapter serves it (`twilio`, `telnyx`, `line`, `whatsapp`, `telegram`, `smtp`).
    pub provider: ProviderKind,
    pub name: String,
    /// Our address on the channel: a phone number, a LINE channel id, a bot name.
    pub address: String,
    /// Provider secrets; never returned by the API nor logged.
    pub credentials: serde_json::Map<String, serde_json::Value>,
    /// Override of the provider's API base URL (tests, self-hosted gateways).
    pub api_base_url: Option<String>,
    /// How inbound traffic on this account finds its room (`account`, the default, or `contact`).
    #[serde(default, rename = "match", skip_serializing_if = "MatchMode::is_account")]
    pub match_mode: MatchMode,
    /// Region (ISO 3166-1 alpha-2, e.g. `US`) national phone numbers on this account are read
    /// in; without it, a number must carry its country code (see `phone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_region: Option<String>,
    /// Website accounts (provider `web`): the widget's key, origins, branding and form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widget: Option<WidgetSettings>,
    /// Messenger and Instagram: the message tags this page may send with outside the 24-hour
    /// window (e.g. `HUMAN_AGENT`, once Meta granted it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub message_tags: Vec<String>,
    pub tm_create: DateTime<Utc>,
    pub tm_update: DateTime<Utc>,
}

impl Account {
    /// A credential as a non-blank string. A missing, blank or non-string one is an error
    /// (`missing_credentials`), never `""`: nothing is ever signed or verified with an empty key.
    pub fn secret(&self, key: &str) -> Result<&str, crate::error::Error> {
        self.credentials.get(key).and_then(|v| v.as_str()).filter(|s| !s.trim().is_empty()).ok_or_else(|| {
            crate::error::Error::invalid(
                "missing_credentials",
                format!("credentials.{key} is not set on {} account {}", self.provider, self.id),
            )
        })
    }
}

/// How an inbound message on an account finds its room.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MatchMode {
    /// Same account, same peer: one room per `(account, peer address)`.
    #[default]
    Account,
    /// Any address of the contact, on any account of the tenant in this mode: the contact's most
    /// recent conversation that is not closed.
    Contact,
}

impl MatchMode {
    pub fn is_account(&self) -> bool {
        *self == MatchMode::Account
    }
}

/// The provider adapter behind an account. The wire and stored spelling is the lowercase name,
/// which is also the path segment of the account's webhook URL.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Twilio,
    Telnyx,
    Line,
    Whatsapp,
    Telegram,
    /// Email: SMTP out, an inbound hook in.
    Smtp,
    /// Facebook Messenger (Graph API Send API).
    Messenger,
    /// Instagram Direct (Instagram messaging API).
    Instagram,
    /// Viber bots (REST bot API).
    Viber,
    /// A website's chat widget (`api::widget`): visitors are webchat participants, so nothing
    /// is sent through a provider and no adapter is registered for it.
    Web,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 10] = [
        ProviderKind::Instagram,
        ProviderKind::Line,
        ProviderKind::Messenger,
        ProviderKind::Smtp,
        ProviderKind::Telegram,
        ProviderKind::Telnyx,
        ProviderKind::Twilio,
        ProviderKind::Viber,
        ProviderKind::Whatsapp,
        ProviderKind::Web,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Twilio => "twilio",
            ProviderKind::Telnyx => "telnyx",
            ProviderKind::Line => "line",
            ProviderKind::Whatsapp => "whatsapp",
            ProviderKind::Telegram => "telegram",
            ProviderKind::Smtp => "smtp",
            ProviderKind::Messenger => "messenger",
            ProviderKind::Instagram => "instagram",
            ProviderKind::Viber => "viber",
            ProviderKind::Web => "web",
        }
    }

    /// The provider named `name` (its wire spelling), if there is one.
    pub fn parse(name: &str) -> Option<ProviderKind> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
