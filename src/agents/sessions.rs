//! Sign-in for agent accounts: passwords (argon2id), sessions, refresh-token rotation and
//! sign-out.
//!
//! A session is a *family* of refresh tokens: signing in starts one, each refresh retires the
//! token it was given and hands out the next, and presenting a retired token again (someone
//! copied it) kills the whole family. Records, each namespace with a deadline so that
//! nothing of an expired or ended session stays behind: `refresh:<SHA-256 of a refresh
//! token>` (its tenant, agent, family, expiry and whether it was used; goes at the token's
//! expiry), `session:<family>` (the live family's tenant and agent; goes with the family's
//! newest refresh token, or at once when the session ends) and
//! `agent_sessions:<tenant>:<agent>` (the agent's families, so deleting the agent ends them
//! all; pruned of dead families at each sign-in, gone with the newest session). Access tokens
//! are the ordinary client tokens (`crate::auth`) with the family in their `sid` claim; the
//! REST and WebSocket doors refuse such a token once its family is gone ([`alive`]), and
//! ending a session closes its open WebSockets on every node (through the broker, close 4001).
//!
//! Not here: the accounts themselves ([`super::accounts`]) and the rate limits on sign-in
//! (`crate::limits`, applied by the handler before any password is checked).

use super::accounts::{Account, Role};
use crate::app::AppState;
use crate::auth::{ClientClaims, hash_api_key};
use crate::error::{Error, Result};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use uuid::Uuid;

/// Password length bounds, in characters.
pub const MIN_PASSWORD: usize = 10;
pub const MAX_PASSWORD: usize = 256;
/// The `role` claim of tokens minted for admin accounts (operator tokens: no conversation scope).
pub const ROLE_ADMIN: &str = "admin";

/// The one key of the single-record namespaces below.
const ONE: &str = "v";
fn ns_refresh(token_hash: &str) -> String {
    format!("refresh:{token_hash}")
}
fn ns_session(family: &str) -> String {
    format!("session:{family}")
}
fn ns_agent_sessions(tenant: Uuid, agent: Uuid) -> String {
    format!("agent_sessions:{tenant}:{agent}")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Refresh {
    tenant: Uuid,
    agent: Uuid,
    family: String,
    expires_at: DateTime<Utc>,
    used: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Family {
    tenant: Uuid,
    agent: Uuid,
}

/// What signing in or refreshing hands out.
#[derive(Debug)]
pub struct Issued {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
}

/// 422 `weak_password` unless the password has 10–256 characters.
pub fn check_password(p: &str) -> Result<()> {
    let n = p.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        return Err(Error::invalid(
            "weak_password",
            format!("a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
        ));
    }
    Ok(())
}

/// The argon2id PHC string of `password` (default parameters, random salt), off the runtime.
pub async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        use rand::RngCore;
        let mut salt = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(internal)?;
        Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(internal)
    })
    .await
    .map_err(|e| Error::Internal { message: format!("hashing task: {e}"), source: None })?
}

/// Whether `password` matches `hash` (a PHC string); with `None`, checks against a dummy hash
/// so an unknown email costs the same time as a wrong password, and answers `false`.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    let known = hash.is_some();
    let ok = tokio::task::spawn_blocking(move || {
        let hash = hash.unwrap_or_else(|| dummy_hash().to_string());
        PasswordHash::new(&hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
    })
    .await
    .unwrap_or(false);
    ok && known
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        SaltString::encode_b64(b"switchboard-dummy")
            .ok()
            .and_then(|salt| {
                Argon2::default().hash_password(b"no account has this password", &salt).ok().map(|h| h.to_string())
            })
            .unwrap_or_default()
    })
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal { message: format!("password hashing: {e}"), source: None }
}

fn parse<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::Internal { message: format!("stored session: {e}"), source: None })
}

fn invalid_refresh() -> Error {
    Error::Denied {
        code: "invalid_refresh",
        message: "this refresh token is unknown, used, expired or signed out".into(),
    }
}

/// Starts a session for `a` and issues its first pair of tokens.
pub async fn start(state: &AppState, a: &Account) -> Result<Issued> {
    let family = Uuid::now_v7().to_string();
    let r = &*state.records;
    let agent_ns = ns_agent_sessions(a.tenant_id, a.id);
    // Families that expired since the last sign-in leave the agent's list now.
    for (old, _) in r.all(&agent_ns).await? {
        if r.get(&ns_session(&old), ONE).await?.is_none() {
            r.remove(&agent_ns, &old).await?;
        }
    }
    let f = serde_json::to_string(&Family { tenant: a.tenant_id, agent: a.id }).unwrap_or_default();
    // Never without a deadline; `issue` moves it to its refresh token's expiry.
    let until = crate::model::now() + refresh_ttl(state);
    r.put_until(&ns_session(&family), ONE, &f, until).await?;
    r.put_until(&agent_ns, &family, "1", until).await?;
    issue(state, a, family).await
}

/// A new access token and refresh token in `family`.
async fn issue(state: &AppState, a: &Account, family: String) -> Result<Issued> {
    let refresh_token = crate::auth::random_key("rt_");
    let refresh_expires_at = crate::model::now() + refresh_ttl(state);
    let rec = Refresh {
        tenant: a.tenant_id,
        agent: a.id,
        family: family.clone(),
        expires_at: refresh_expires_at,
        used: false,
    };
    let r = &*state.records;
    let ns = ns_refresh(&hash_api_key(&refresh_token));
    // The token, its family and the agent's list all last until the newest token expires.
    r.put_until(&ns, ONE, &serde_json::to_string(&rec).unwrap_or_default(), refresh_expires_at).await?;
    r.expire_at(&ns_session(&family), refresh_expires_at).await?;
    r.expire_at(&ns_agent_sessions(a.tenant_id, a.id), refresh_expires_at).await?;
    let now = Utc::now().timestamp() as u64;
    let ttl = state.config.auth.token_ttl_secs;
    let role = match a.role {
        Role::Agent => crate::auth::ROLE_AGENT,
        Role::Admin => ROLE_ADMIN,
    };
    let claims = ClientClaims {
        sub: a.identity.clone(),
        tid: a.tenant_id,
        convs: None,
        iat: now,
        exp: now + ttl,
        role: Some(role.into()),
        sid: Some(family),
    };
    let expires_at = DateTime::from_timestamp((now + ttl) as i64, 0).unwrap_or_default();
    Ok(Issued { token: state.tokens.sign(&claims), expires_at, refresh_token, refresh_expires_at })
}

/// `auth.refresh_ttl_secs`.
fn refresh_ttl(state: &AppState) -> Duration {
    // At most ten years (checked with the config).
    Duration::seconds(state.config.auth.refresh_ttl_secs.min(crate::config::validate::MAX_REFRESH_TTL_SECS) as i64)
}

/// Rotates `refresh_token`: the account and a new pair. A used token kills its family (401).
pub async fn refresh(state: &AppState, refresh_token: &str) -> Result<(Account, Issued)> {
    let r = &*state.records;
    let ns = ns_refresh(&hash_api_key(refresh_token));
    let raw = r.get(&ns, ONE).await?.ok_or_else(invalid_refresh)?;
    let rec: Refresh = parse(&raw)?;
    if rec.used {
        tracing::warn!(tenant = %rec.tenant, agent = %rec.agent, "a used refresh token came back; its session is revoked");
        end(state, &rec.family).await?;
        return Err(invalid_refresh());
    }
    if rec.expires_at <= Utc::now() || r.get(&ns_session(&rec.family), ONE).await?.is_none() {
        return Err(invalid_refresh());
    }
    let used = serde_json::to_string(&Refresh { used: true, ..rec.clone() }).unwrap_or_default();
    if !r.swap(&ns, ONE, &raw, &used).await? {
        // Another request rotated it a moment ago: the same token twice is a reuse.
        end(state, &rec.family).await?;
        return Err(invalid_refresh());
    }
    let a = super::accounts::get(r, rec.tenant, rec.agent).await?.ok_or_else(invalid_refresh)?;
    let issued = issue(state, &a, rec.family).await?;
    Ok((a, issued))
}

/// Signs out the session `refresh_token` belongs to (401 `invalid_refresh` if it has none).
pub async fn sign_out(state: &AppState, refresh_token: &str) -> Result<()> {
    let r = &*state.records;
    let raw = r.remove(&ns_refresh(&hash_api_key(refresh_token)), ONE).await?.ok_or_else(invalid_refresh)?;
    let rec: Refresh = parse(&raw)?;
    end(state, &rec.family).await
}

/// Ends one session family: its refresh tokens and the access tokens naming it stop working,
/// its open WebSockets close.
async fn end(state: &AppState, family: &str) -> Result<()> {
    let r = &*state.records;
    if let Some(f) = r.remove(&ns_session(family), ONE).await? {
        let f: Family = parse(&f)?;
        r.remove(&ns_agent_sessions(f.tenant, f.agent), family).await?;
    }
    close_sockets(state, family).await;
    Ok(())
}

/// Ends every session of the agent (deleted, its role or password changed).
pub async fn end_all(state: &AppState, tenant: Uuid, agent: Uuid) -> Result<()> {
    let r = &*state.records;
    let ns = ns_agent_sessions(tenant, agent);
    let families = r.all(&ns).await?;
    for (family, _) in &families {
        r.remove(&ns_session(family), ONE).await?;
    }
    r.clear(&ns).await?;
    for (family, _) in &families {
        close_sockets(state, family).await;
    }
    Ok(())
}

/// Tells every node to close the WebSockets of session `family` (4001). The session is over
/// in the records already, so a lost signal leaves the sockets only until their token expires.
async fn close_sockets(state: &AppState, family: &str) {
    if let Err(e) = state.broker.end_session(family).await {
        tracing::warn!(error = %e.chain(), "the end of a session was not announced to the other nodes");
    }
}

/// Whether a token's session is still live: tokens without a `sid` (minted with an API key)
/// have no session and always are.
pub async fn alive(state: &AppState, claims: &ClientClaims) -> Result<bool> {
    match &claims.sid {
        None => Ok(true),
        Some(sid) => Ok(state.records.get(&ns_session(sid), ONE).await?.is_some()),
    }
}
