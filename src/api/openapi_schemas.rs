//! The parts of `/openapi.json` that derivation gets looser than the server: the configured
//! limits on request fields and query parameters, and response `links` between operations.
//!
//! Every bound here mirrors a check the server makes (`limits`, `auth`, `ws` config and the
//! handlers); lengths are the server's byte limits (a multi-byte character counts more, which
//! JSON Schema cannot say, so such strings may still get 422 `too_long`). Request bodies
//! whose struct has `deny_unknown_fields` already say `additionalProperties: false`; nested
//! shapes that serde reads leniently (`Address`, `Media`) do not claim it.

use crate::config::Config;
use serde_json::{Value, json};

/// Adds the configured bounds to the request schemas and query parameters of `doc`.
pub fn tighten(doc: &mut Value, config: &Config) {
    let l = &config.limits;
    let name = json!({"maxLength": l.max_name_bytes});
    let schemas = [
        ("CreateConversation", "name", name.clone()),
        ("CreateConversation", "detail", name.clone()),
        ("UpdateConversation", "name", name.clone()),
        ("UpdateConversation", "detail", name.clone()),
        ("UpdateConversation", "owner_id", name.clone()),
        ("CreateAccount", "name", name.clone()),
        ("UpdateAccount", "name", name.clone()),
        ("Address", "target", name.clone()),
        ("Address", "name", name.clone()),
        ("TokenRequest", "identity", json!({"maxLength": l.max_name_bytes, "pattern": "\\S"})),
        ("TokenRequest", "ttl", json!({"minimum": 1, "maximum": config.auth.token_max_ttl_secs})),
        ("TokenRequest", "conversation_ids", json!({"maxItems": config.ws.max_subscriptions})),
        ("PostMessage", "text", json!({"maxLength": l.max_text_bytes})),
        ("PostMessage", "medias", json!({"maxItems": l.max_medias})),
        ("PostMessage", "client_id", json!({"minLength": 1, "maxLength": 128})),
        ("EditMessage", "text", json!({"maxLength": l.max_text_bytes})),
        ("CreateWebhook", "url", json!({"maxLength": crate::webhooks::guard::MAX_URL_LEN})),
        ("UpdateWebhook", "url", json!({"maxLength": crate::webhooks::guard::MAX_URL_LEN})),
        ("CreateWebhook", "description", name.clone()),
        ("UpdateWebhook", "description", name),
    ];
    for (schema, field, bounds) in schemas {
        if let Some(prop) = doc.pointer_mut(&format!("/components/schemas/{schema}/properties/{field}")) {
            merge(prop, &bounds);
        }
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for op in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|ops| ops.values_mut()) {
        for p in op.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
            if p["in"] != "query" {
                continue;
            }
            // A query string has no `null`: an absent parameter is the optional case.
            if let Some(types) = p["schema"]["type"].as_array() {
                let t = types.iter().find(|t| *t != "null").cloned().unwrap_or(json!("string"));
                p["schema"]["type"] = t;
            }
            // Integers are read as `u64`/`usize`, not `int64`: the bounds below say it. Other
            // formats (`uuid`) stay: the server refuses what does not match them.
            if let Some(schema) = p["schema"].as_object_mut().filter(|s| s.get("type") == Some(&json!("integer"))) {
                schema.remove("format");
            }
            match p["name"].as_str() {
                Some("page_size") => merge(&mut p["schema"], &json!({"minimum": 1, "maximum": l.page_size_max})),
                Some("before" | "after") => merge(&mut p["schema"], &json!({"minimum": 0, "maximum": u64::MAX})),
                // Cursors are base64url (no padding) of a 16-byte id; anything else is 400.
                Some("page_token") => merge(&mut p["schema"], &json!({"pattern": "^[A-Za-z0-9_-]{21}[AQgw]$"})),
                _ => {}
            }
        }
    }
}

fn merge(target: &mut Value, extra: &Value) {
    if let (Some(t), Some(e)) = (target.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            t.insert(k.clone(), v.clone());
        }
    }
}

/// A target operation and its parameters as runtime expressions.
type Link = (&'static str, &'static [(&'static str, &'static str)]);

/// `links` from each create to the operations that take the created id.
pub fn links(doc: &mut Value) {
    const OWN: &str = "$response.body#/id";
    const PARENT: &str = "$request.path.id";
    let table: &[(&str, &str, &[Link])] = &[
        (
            "/v1.0/conversations",
            "post",
            &[
                ("conversations_get", &[("id", OWN)]),
                ("conversations_update", &[("id", OWN)]),
                ("conversations_delete", &[("id", OWN)]),
                ("conversations_unassign", &[("id", OWN)]),
                ("messages_list", &[("id", OWN)]),
                ("messages_post", &[("id", OWN)]),
                ("participants_list", &[("id", OWN)]),
                ("participants_add", &[("id", OWN)]),
            ],
        ),
        (
            "/v1.0/conversations/{id}/participants",
            "post",
            &[
                ("participants_remove", &[("id", PARENT), ("participant_id", OWN)]),
                ("participants_link", &[("id", PARENT), ("participant_id", OWN)]),
            ],
        ),
        (
            "/v1.0/conversations/{id}/messages",
            "post",
            &[
                ("messages_get", &[("id", PARENT), ("message_id", OWN)]),
                ("messages_edit", &[("id", PARENT), ("message_id", OWN)]),
                ("messages_delete", &[("id", PARENT), ("message_id", OWN)]),
            ],
        ),
        (
            "/v1.0/conversation_accounts",
            "post",
            &[
                ("accounts_get", &[("id", OWN)]),
                ("accounts_update", &[("id", OWN)]),
                ("accounts_delete", &[("id", OWN)]),
            ],
        ),
        (
            "/v1.0/webhooks",
            "post",
            &[
                ("webhooks_get", &[("id", OWN)]),
                ("webhooks_update", &[("id", OWN)]),
                ("webhooks_delete", &[("id", OWN)]),
                ("webhooks_rotate_secret", &[("id", OWN)]),
                ("webhooks_deliveries", &[("id", OWN)]),
            ],
        ),
    ];
    for (path, method, targets) in table {
        let pointer = format!("/paths/{}/{method}/responses", path.replace('~', "~0").replace('/', "~1"));
        let Some(responses) = doc.pointer_mut(&pointer).and_then(Value::as_object_mut) else { continue };
        for (code, response) in responses.iter_mut() {
            if !code.starts_with('2') {
                continue;
            }
            let mut links = serde_json::Map::new();
            for (op, params) in *targets {
                let params: serde_json::Map<String, Value> =
                    params.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
                links.insert(op.to_string(), json!({"operationId": op, "parameters": params}));
            }
            response["links"] = Value::Object(links);
        }
    }
}
