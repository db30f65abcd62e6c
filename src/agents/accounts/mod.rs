//! Agent accounts: who may sign in to a tenant's inbox, with which email, name, role and
//! identity, and the one-time invite through which an agent sets its password.
//!
//! Owns the account documents and their indexes in [`Records`](super::records::Records):
//! `agents:<tenant>` (id → JSON), `agent_emails:<tenant>` and `agent_identities:<tenant>`
//! (uniqueness per tenant), `login:<email>` (tenant → id: the one index that crosses
//! tenants, so a sign-in finds its tenant from the email alone) and `invites` (SHA-256 of the
//! invite token → tenant and agent; the token itself is never stored). Creating claims the
//! email and identity index entries first and gives them back when a later step fails, so two
//! concurrent creates never both win.
//!
//! Passwords, sign-in and refresh tokens are [`super::sessions`]; this module stores the
//! password hash it is given and never sees a password.

mod check;

pub use check::{clean_email, default_identity, identity_for, valid_identity};

use super::records::Records;
use crate::auth::hash_api_key;
use crate::error::{Error, Result};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// How long an invite link stays valid.
pub const INVITE_TTL_DAYS: i64 = 7;

/// What an agent may do once signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An agent token: its own and unassigned conversations.
    Agent,
    /// An operator token (every conversation of the tenant) with the `admin` role.
    Admin,
}

/// The stored account (never leaves the server as is: see [`AgentView`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub avatar_url: Option<String>,
    pub identity: String,
    pub created_at: DateTime<Utc>,
    /// The argon2id PHC string, once the invite was accepted.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// The SHA-256 of the live invite token, if any.
    #[serde(default)]
    pub invite_hash: Option<String>,
    #[serde(default)]
    pub invite_expires_at: Option<DateTime<Utc>>,
}

/// An agent as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentView {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub avatar_url: Option<String>,
    /// The handle used as a conversation's `owner_id` and as the WebSocket identity.
    pub identity: String,
    /// Whether the agent holds an open WebSocket right now (agent presence).
    pub online: bool,
    /// Whether the agent has set a password (accepted an invite).
    pub active: bool,
    pub created_at: DateTime<Utc>,
    /// Only when an invite was just made (create, `…/invite`): the one-time link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invite_url: Option<String>,
    /// When the live invite expires (`null` when there is none).
    pub invite_expires_at: Option<DateTime<Utc>>,
}

impl Account {
    pub fn view(&self, online: bool, invite_url: Option<String>) -> AgentView {
        AgentView {
            id: self.id,
            email: self.email.clone(),
            name: self.name.clone(),
            role: self.role,
            avatar_url: self.avatar_url.clone(),
            identity: self.identity.clone(),
            online,
            active: self.password_hash.is_some(),
            created_at: self.created_at,
            invite_url,
            invite_expires_at: self.invite_expires_at,
        }
    }
}

/// Where an invite token leads: the account it sets the password of.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Invite {
    tenant: Uuid,
    agent: Uuid,
    expires_at: DateTime<Utc>,
}

pub(crate) fn ns_agents(tenant: Uuid) -> String {
    format!("agents:{tenant}")
}
fn ns_emails(tenant: Uuid) -> String {
    format!("agent_emails:{tenant}")
}
fn ns_identities(tenant: Uuid) -> String {
    format!("agent_identities:{tenant}")
}
fn ns_login(email: &str) -> String {
    format!("login:{email}")
}
const NS_INVITES: &str = "invites";

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn parse<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::Internal { message: format!("stored record: {e}"), source: None })
}

/// Stores a new account (email and identity already checked and normalised): 409
/// `email_taken` / `identity_taken` when the tenant has them already.
pub async fn create(r: &dyn Records, a: &Account) -> Result<()> {
    let id = a.id.to_string();
    if !r.insert(&ns_emails(a.tenant_id), &a.email, &id).await? {
        return Err(Error::Refused { code: "email_taken", message: format!("`{}` already has an account", a.email) });
    }
    if !r.insert(&ns_identities(a.tenant_id), &a.identity, &id).await? {
        r.remove_if(&ns_emails(a.tenant_id), &a.email, &id).await?;
        return Err(Error::Refused {
            code: "identity_taken",
            message: format!("identity `{}` already belongs to another agent", a.identity),
        });
    }
    r.put(&ns_agents(a.tenant_id), &id, &json(a)).await?;
    r.put(&ns_login(&a.email), &a.tenant_id.to_string(), &id).await
}

pub async fn get(r: &dyn Records, tenant: Uuid, id: Uuid) -> Result<Option<Account>> {
    r.get(&ns_agents(tenant), &id.to_string()).await?.map(|s| parse(&s)).transpose()
}

/// The tenant's account with `identity`, if any.
pub async fn by_identity(r: &dyn Records, tenant: Uuid, identity: &str) -> Result<Option<Account>> {
    let Some(id) = r.get(&ns_identities(tenant), identity).await? else { return Ok(None) };
    match id.parse() {
        Ok(id) => get(r, tenant, id).await,
        Err(_) => Ok(None),
    }
}

/// Every account of the tenant, oldest first (ids are UUIDv7).
pub async fn list(r: &dyn Records, tenant: Uuid) -> Result<Vec<Account>> {
    let mut all: Vec<Account> =
        r.all(&ns_agents(tenant)).await?.iter().map(|(_, v)| parse(v)).collect::<Result<_>>()?;
    all.sort_by_key(|a| a.id);
    Ok(all)
}

/// Writes a changed account (email and identity never change).
pub async fn save(r: &dyn Records, a: &Account) -> Result<()> {
    r.put(&ns_agents(a.tenant_id), &a.id.to_string(), &json(a)).await
}

/// Removes the account, its indexes and its invite; the caller revokes its sessions.
pub async fn delete(r: &dyn Records, a: &Account) -> Result<()> {
    let id = a.id.to_string();
    r.remove(&ns_agents(a.tenant_id), &id).await?;
    r.remove_if(&ns_emails(a.tenant_id), &a.email, &id).await?;
    r.remove_if(&ns_identities(a.tenant_id), &a.identity, &id).await?;
    r.remove_if(&ns_login(&a.email), &a.tenant_id.to_string(), &id).await?;
    if let Some(h) = &a.invite_hash {
        r.remove(NS_INVITES, h).await?;
    }
    Ok(())
}

/// The accounts an email signs in to: `(tenant, agent id)`, at most a few.
pub async fn by_email(r: &dyn Records, email: &str) -> Result<Vec<(Uuid, Uuid)>> {
    let mut out: Vec<(Uuid, Uuid)> =
        r.all(&ns_login(email)).await?.iter().filter_map(|(t, a)| Some((t.parse().ok()?, a.parse().ok()?))).collect();
    out.sort();
    Ok(out)
}

/// Makes a fresh invite for `a` (the old one dies) and saves the account; answers the token.
pub async fn invite(r: &dyn Records, a: &mut Account) -> Result<String> {
    if let Some(old) = a.invite_hash.take() {
        r.remove(NS_INVITES, &old).await?;
    }
    let token = crate::auth::random_key("inv_");
    let hash = hash_api_key(&token);
    let expires_at = crate::model::now() + Duration::days(INVITE_TTL_DAYS);
    r.put(NS_INVITES, &hash, &json(&Invite { tenant: a.tenant_id, agent: a.id, expires_at })).await?;
    a.invite_hash = Some(hash);
    a.invite_expires_at = Some(expires_at);
    save(r, a).await?;
    Ok(token)
}

/// Consumes an invite token: the account it was made for, if the token is live (410
/// `invite_invalid` otherwise: unknown, used, expired, or superseded by a newer one).
pub async fn take_invite(r: &dyn Records, token: &str) -> Result<Account> {
    let dead =
        || Error::Gone { code: "invite_invalid", message: "this invite link is unknown, used or expired".into() };
    let hash = hash_api_key(token);
    let invite: Invite = match r.remove(NS_INVITES, &hash).await? {
        Some(s) => parse(&s)?,
        None => return Err(dead()),
    };
    if invite.expires_at <= Utc::now() {
        return Err(dead());
    }
    let mut a = get(r, invite.tenant, invite.agent).await?.ok_or_else(dead)?;
    if a.invite_hash.as_deref() != Some(hash.as_str()) {
        return Err(dead());
    }
    a.invite_hash = None;
    a.invite_expires_at = None;
    Ok(a)
}
