//! WhatsApp message templates: an account's approved templates, read from the Graph API
//! (`GET /{version}/{business_account_id}/message_templates`) and kept per node for `TTL`, and
//! the text a template send stores (its body with the parameters filled in).
//!
//! Templates are written and approved in Meta's tools, not here: this module only lists them
//! (for the inbox's picker, through `GET /v1.0/conversation_accounts/{id}/templates`) and
//! renders one. The send itself is the WhatsApp adapter's (`type: template`). A change in
//! Meta's tools shows here within `TTL`.

use crate::error::{Error, Result};
use crate::model::{Account, ProviderKind, TemplateSend};
use dashmap::DashMap;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use utoipa::ToSchema;
use uuid::Uuid;

/// How long a listing is trusted.
const TTL: Duration = Duration::from_secs(300);
/// Most templates listed (one Graph page).
const MAX_TEMPLATES: usize = 250;

/// One approved template.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct Template {
    pub name: String,
    /// Language code (`en_US`).
    pub language: String,
    /// `UTILITY`, `MARKETING`, `AUTHENTICATION`.
    pub category: String,
    /// The body text with its `{{1}}`, `{{2}}`… placeholders.
    pub body: String,
    /// How many parameters the body takes.
    pub parameters: usize,
}

/// Approved templates per account, as recently read.
#[derive(Debug, Default)]
pub struct TemplateCache {
    entries: DashMap<Uuid, (Instant, Arc<Vec<Template>>)>,
}

impl TemplateCache {
    /// `account`'s approved templates, from the cache when read within `TTL`. 422 for an
    /// account that is not WhatsApp or has no `business_account_id`; 503 when Meta cannot be
    /// asked (the caller may retry).
    pub async fn list(
        &self,
        http: &reqwest::Client,
        registry: &super::Registry,
        account: &Account,
    ) -> Result<Arc<Vec<Template>>> {
        if account.provider != ProviderKind::Whatsapp {
            return Err(Error::invalid("not_whatsapp", "templates are a WhatsApp feature"));
        }
        if let Some(e) = self.entries.get(&account.id)
            && e.0.elapsed() < TTL
        {
            return Ok(e.1.clone());
        }
        let waba = account.secret("business_account_id")?;
        let token = account.secret("access_token")?;
        let p = registry.get(ProviderKind::Whatsapp).ok_or(Error::NotFound("provider"))?;
        let url = format!(
            "{}/{}/{waba}/message_templates?status=APPROVED&limit={MAX_TEMPLATES}",
            super::api_base(p.as_ref(), account),
            super::meta::GRAPH_VERSION
        );
        let v = super::meta::call(http.get(url).bearer_auth(token))
            .await
            .map_err(|o| Error::unavailable(format!("WhatsApp templates could not be read: {o:?}")))?;
        let list: Vec<Template> =
            v["data"].as_array().map(Vec::as_slice).unwrap_or_default().iter().filter_map(parse).collect();
        let list = Arc::new(list);
        self.entries.insert(account.id, (Instant::now(), list.clone()));
        Ok(list)
    }
}

/// An approved template from the Graph API's shape; others are skipped.
fn parse(t: &Value) -> Option<Template> {
    if t["status"].as_str().is_some_and(|s| s != "APPROVED") {
        return None;
    }
    let components = t["components"].as_array()?;
    let body = components.iter().find(|c| c["type"].as_str().is_some_and(|k| k.eq_ignore_ascii_case("body")))?;
    let body = body["text"].as_str()?.to_string();
    let parameters = (1..=100).take_while(|i| body.contains(&format!("{{{{{i}}}}}"))).count();
    Some(Template {
        name: t["name"].as_str()?.to_string(),
        language: t["language"].as_str()?.to_string(),
        category: t["category"].as_str().unwrap_or("").to_string(),
        body,
        parameters,
    })
}

/// The text a send of `t` with `send`'s parameters reads. 422 `template_parameters` unless
/// it brings exactly the parameters the body takes.
pub fn render(t: &Template, send: &TemplateSend) -> Result<String> {
    if send.parameters.len() != t.parameters {
        return Err(Error::invalid(
            "template_parameters",
            format!("template {} takes {} parameters, {} given", t.name, t.parameters, send.parameters.len()),
        ));
    }
    let mut text = t.body.clone();
    for (i, p) in send.parameters.iter().enumerate() {
        text = text.replace(&format!("{{{{{}}}}}", i + 1), p);
    }
    Ok(text)
}

/// The approved template `send` names among `list`: 422 `unknown_template` when none is.
pub fn find<'a>(list: &'a [Template], send: &TemplateSend) -> Result<&'a Template> {
    list.iter().find(|t| t.name == send.name && t.language == send.language).ok_or_else(|| {
        Error::invalid("unknown_template", format!("no approved template {} in {}", send.name, send.language))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_approved_bodies_and_renders_parameters() {
        let t = json!({"name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
            "components": [{"type": "HEADER", "format": "TEXT", "text": "Order"},
                           {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."}], "id": "1"});
        let t = parse(&t).unwrap();
        assert_eq!(t.parameters, 2);
        let send = TemplateSend {
            name: "order_update".into(),
            language: "en_US".into(),
            parameters: vec!["Sheena".into(), "#42".into()],
        };
        assert_eq!(render(&t, &send).unwrap(), "Hi Sheena, your order #42 has shipped.");
        assert!(render(&t, &TemplateSend { parameters: vec![], ..send }).is_err());
        assert!(parse(&json!({"name": "x", "language": "en", "status": "REJECTED", "components": []})).is_none());
    }
}
