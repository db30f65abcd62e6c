//! Canned responses: a tenant's saved replies, found by a short code (`/thanks`) in the
//! composer.
//!
//! Records: `canned:<tenant>` (id → JSON) and `canned_codes:<tenant>` (short code → id, the
//! uniqueness index, claimed before the document is written and released when a change or
//! delete gives the code up). Not here: who may call (`api::canned` takes an API key or an
//! agent, admin or operator token of the tenant).

use super::records::Records;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The longest content, in bytes.
pub const MAX_CONTENT: usize = 4096;
/// The longest short code, in characters.
pub const MAX_CODE: usize = 64;
/// How many canned responses one tenant may keep.
pub const MAX_PER_TENANT: usize = 1000;

/// A saved reply.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Canned {
    pub id: Uuid,
    /// 1–64 of `a-z 0-9 _ -`, unique in the tenant.
    pub short_code: String,
    /// The text inserted (at most 4096 bytes).
    pub content: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn ns_docs(tenant: Uuid) -> String {
    format!("canned:{tenant}")
}
fn ns_codes(tenant: Uuid) -> String {
    format!("canned_codes:{tenant}")
}

fn parse(s: &str) -> Result<Canned> {
    serde_json::from_str(s)
        .map_err(|e| Error::Internal { message: format!("stored canned response: {e}"), source: None })
}

fn json(c: &Canned) -> String {
    serde_json::to_string(c).unwrap_or_default()
}

/// 422 `invalid_short_code` unless `code` is 1–64 of `a-z 0-9 _ -`.
pub fn check_code(code: &str) -> Result<()> {
    let ok = !code.is_empty()
        && code.len() <= MAX_CODE
        && code.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
    if ok { Ok(()) } else { Err(Error::invalid("invalid_short_code", "short_code is 1–64 of a-z, 0-9, `_`, `-`")) }
}

/// 422 `invalid_content` when empty (after trimming) or longer than 4096 bytes.
pub fn check_content(content: &str) -> Result<()> {
    if content.trim().is_empty() || content.len() > MAX_CONTENT {
        return Err(Error::invalid("invalid_content", format!("content is 1 to {MAX_CONTENT} bytes")));
    }
    Ok(())
}

fn taken(code: &str) -> Error {
    Error::Refused { code: "short_code_taken", message: format!("short code `{code}` is already in use") }
}

/// Every canned response of the tenant whose short code starts with `prefix`, by short code.
pub async fn list(r: &dyn Records, tenant: Uuid, prefix: &str) -> Result<Vec<Canned>> {
    let mut all: Vec<Canned> = r.all(&ns_docs(tenant)).await?.iter().map(|(_, v)| parse(v)).collect::<Result<_>>()?;
    all.retain(|c| c.short_code.starts_with(prefix));
    all.sort_by(|a, b| a.short_code.cmp(&b.short_code));
    Ok(all)
}

pub async fn get(r: &dyn Records, tenant: Uuid, id: Uuid) -> Result<Canned> {
    r.get(&ns_docs(tenant), &id.to_string())
        .await?
        .map(|s| parse(&s))
        .transpose()?
        .ok_or(Error::NotFound("canned response"))
}

/// Stores a new one (409 `short_code_taken`, 422 `too_many` past the tenant's limit).
pub async fn create(r: &dyn Records, tenant: Uuid, short_code: String, content: String) -> Result<Canned> {
    check_code(&short_code)?;
    check_content(&content)?;
    if r.all(&ns_codes(tenant)).await?.len() >= MAX_PER_TENANT {
        return Err(Error::invalid("too_many", format!("a tenant keeps at most {MAX_PER_TENANT} canned responses")));
    }
    let now = crate::model::now();
    let c = Canned { id: Uuid::now_v7(), short_code, content, created_at: now, updated_at: now };
    if !r.insert(&ns_codes(tenant), &c.short_code, &c.id.to_string()).await? {
        return Err(taken(&c.short_code));
    }
    r.put(&ns_docs(tenant), &c.id.to_string(), &json(&c)).await?;
    Ok(c)
}

/// Changes the short code and/or content.
pub async fn update(
    r: &dyn Records,
    tenant: Uuid,
    id: Uuid,
    short_code: Option<String>,
    content: Option<String>,
) -> Result<Canned> {
    let mut c = get(r, tenant, id).await?;
    if let Some(t) = &content {
        check_content(t)?;
    }
    let old_code = c.short_code.clone();
    if let Some(code) = short_code.filter(|s| *s != old_code) {
        check_code(&code)?;
        if !r.insert(&ns_codes(tenant), &code, &id.to_string()).await? {
            return Err(taken(&code));
        }
        r.remove_if(&ns_codes(tenant), &old_code, &id.to_string()).await?;
        c.short_code = code;
    }
    if let Some(t) = content {
        c.content = t;
    }
    c.updated_at = crate::model::now();
    r.put(&ns_docs(tenant), &id.to_string(), &json(&c)).await?;
    Ok(c)
}

pub async fn delete(r: &dyn Records, tenant: Uuid, id: Uuid) -> Result<Canned> {
    let c = get(r, tenant, id).await?;
    r.remove(&ns_docs(tenant), &id.to_string()).await?;
    r.remove_if(&ns_codes(tenant), &c.short_code, &id.to_string()).await?;
    Ok(c)
}
