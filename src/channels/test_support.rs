//! Builders shared by the provider adapters' unit tests: an inbound request as a provider would
//! send it, and an account as the store would hand it over.

use super::HookRequest;
use crate::model::Account;
use axum::http::Method;
use serde_json::{Value, json};

/// A POST with `body`, no headers, no query.
pub(crate) fn req(body: &str) -> HookRequest {
    req_with(Method::POST, &[], body)
}

/// A request with `method`, these query parameters and `body`, no headers.
pub(crate) fn req_with(method: Method, query: &[(&str, &str)], body: &str) -> HookRequest {
    HookRequest {
        method,
        url: String::new(),
        headers: Default::default(),
        query: query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        body: bytes::Bytes::from(body.to_string()),
    }
}

/// An account of address type `kind` on `provider` with `credentials`: nil ids, no name, no
/// address (set `address` where the adapter reads it), the provider's default API base.
pub(crate) fn account(kind: &str, provider: &str, credentials: Value) -> Account {
    serde_json::from_value(json!({"id": uuid::Uuid::nil(), "tenant_id": uuid::Uuid::nil(), "kind": kind,
        "provider": provider, "name": "", "address": "", "credentials": credentials, "api_base_url": null,
        "tm_create": "2024-01-01T00:00:00Z", "tm_update": "2024-01-01T00:00:00Z"}))
    .unwrap()
}
