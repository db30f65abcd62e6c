//! Who is calling: REST callers by API key, browsers by a signed client token.
//!
//! API keys are stored only as SHA-256 hashes (a leaked store dump yields no usable key) and
//! resolve to a tenant. Client tokens are HS256 JWTs minted by `POST /v1.0/tokens`; they name
//! a tenant, an identity (the webchat participant's address target) and the conversations the
//! holder may join, so a browser never holds an API key.

use crate::app::AppState;
use crate::error::Error;
use crate::model::Tenant;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Hex SHA-256 of an API key: the form in which keys are stored and looked up.
pub fn hash_api_key(key: &str) -> String {
    let d = Sha256::digest(key.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random API key for the dev tenant.
pub fn random_key(prefix: &str) -> String {
    use rand::Rng;
    let s: String =
        rand::thread_rng().sample_iter(&rand::distributions::Alphanumeric).take(32).map(char::from).collect();
    format!("{prefix}{s}")
}

/// Claims of a client token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientClaims {
    /// Identity: the `target` of the holder's webchat address.
    pub sub: String,
    /// Tenant id.
    pub tid: Uuid,
    /// Conversations the holder may subscribe to and write in; `None` = every conversation of
    /// the tenant (operator tokens, minted only with an API key and `all_conversations`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convs: Option<Vec<Uuid>>,
    pub iat: u64,
    pub exp: u64,
    /// `agent` for agent tokens: the holder is an `agent` participant and may act only on
    /// conversations assigned to it or unassigned (see `crate::agents`). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The sign-in session (`POST /v1.0/sessions`) this token was minted for, if any: such a
    /// token dies with its session (sign-out, reuse of a dead refresh token, agent deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// The `role` claim of agent tokens.
pub const ROLE_AGENT: &str = "agent";

impl ClientClaims {
    /// The token's scope only; agents are further limited by assignment (`crate::agents`).
    pub fn may_access(&self, conversation: Uuid) -> bool {
        self.convs.as_ref().is_none_or(|c| c.contains(&conversation))
    }

    pub fn is_agent(&self) -> bool {
        self.role.as_deref() == Some(ROLE_AGENT)
    }

    /// Whether the holder sees private notes (`visibility: internal`): agent and operator
    /// (unscoped) tokens do; scoped end-user tokens never do.
    pub fn sees_internal(&self) -> bool {
        self.is_agent() || self.convs.is_none()
    }

    /// The address type the holder takes part as: `agent` for agent tokens, else `webchat`.
    pub fn address_kind(&self) -> crate::model::AddressType {
        if self.is_agent() { crate::model::AddressType::Agent } else { crate::model::AddressType::Webchat }
    }
}

/// Why a token was refused; each maps to its own WebSocket close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Invalid,
    Expired,
}

/// Signs and checks client tokens.
#[derive(Clone)]
pub struct TokenSigner {
    enc: EncodingKey,
    dec: DecodingKey,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(..)")
    }
}

impl TokenSigner {
    pub fn new(secret: &[u8]) -> Self {
        TokenSigner { enc: EncodingKey::from_secret(secret), dec: DecodingKey::from_secret(secret) }
    }

    pub fn sign(&self, claims: &ClientClaims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.enc).expect("HS256 signing cannot fail")
    }

    pub fn verify(&self, token: &str) -> Result<ClientClaims, TokenError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 0;
        v.validate_exp = true;
        v.set_required_spec_claims(&["exp", "sub"]);
        match jsonwebtoken::decode::<ClientClaims>(token, &self.dec, &v) {
            Ok(d) => Ok(d.claims),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => Err(TokenError::Expired),
            Err(_) => Err(TokenError::Invalid),
        }
    }
}

/// The tenant behind the request's API key.
#[derive(Debug, Clone)]
pub struct TenantCtx(pub Tenant);

impl FromRequestParts<AppState> for TenantCtx {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| Error::Unauthorized("missing `Authorization: Bearer <api key>` header".into()))?;
        let key = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| Error::Unauthorized("expected `Authorization: Bearer <api key>`".into()))?;
        let hash = hash_api_key(key);
        let cached = state.key_cache.get(&hash).map(|t| t.clone());
        let tenant = match cached {
            Some(t) => t,
            None => match state.store.tenant_by_key_hash(&hash).await? {
                Some(t) => {
                    state.key_cache.insert(hash.clone(), t.clone());
                    t
                }
                None => return Err(not_an_api_key(state, key)),
            },
        };
        // Limited per key once it is known to be valid, so unknown keys cannot grow the map.
        if let Err(e) = state.limits.api.check(&hash) {
            state.metrics.rate_limited("api");
            return Err(e);
        }
        Ok(TenantCtx(tenant))
    }
}

/// Compares secrets (signatures, inbound secrets, media link signatures) without leaking
/// through timing where they differ; `subtle` does the comparison.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// Why `key` opened nothing: a valid client or agent token of this node is a real credential
/// that this route does not take (403 `forbidden`); anything else is unknown (401).
fn not_an_api_key(state: &AppState, key: &str) -> Error {
    match state.tokens.verify(key) {
        Ok(_) => Error::Forbidden("this route takes an API key; a client or agent token may not use it".into()),
        Err(TokenError::Expired) => Error::Unauthorized("the token has expired".into()),
        Err(TokenError::Invalid) => Error::Unauthorized("unknown API key".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp_offset: i64) -> ClientClaims {
        let now = chrono::Utc::now().timestamp();
        ClientClaims {
            sub: "alice".into(),
            tid: Uuid::nil(),
            convs: Some(vec![Uuid::nil()]),
            iat: now as u64,
            exp: (now + exp_offset) as u64,
            role: None,
            sid: None,
        }
    }

    #[test]
    fn token_round_trip_and_scope() {
        let s = TokenSigner::new(b"0123456789abcdef0123456789abcdef");
        let c = claims(60);
        let back = s.verify(&s.sign(&c)).unwrap();
        assert_eq!(back, c);
        assert!(back.may_access(Uuid::nil()));
        assert!(!back.may_access(Uuid::now_v7()));
    }

    #[test]
    fn expired_and_forged_tokens_are_refused() {
        let s = TokenSigner::new(b"0123456789abcdef0123456789abcdef");
        assert_eq!(s.verify(&s.sign(&claims(-5))), Err(TokenError::Expired));
        let other = TokenSigner::new(b"another-secret-another-secret-xx");
        assert_eq!(s.verify(&other.sign(&claims(60))), Err(TokenError::Invalid));
        assert_eq!(s.verify("not.a.token"), Err(TokenError::Invalid));
    }

    #[test]
    fn key_hash_is_stable_hex() {
        assert_eq!(hash_api_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
