//! Contacts: the person behind one or more addresses, across channels and numbers.
//!
//! Plain data shared by the contact store, the REST API and the inbound door. Which address
//! belongs to which contact, and the rules for changing that, live in `contacts` (the store)
//! and `conversations::contacts` (the writes); nothing here does I/O.

use super::{AddressType, DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// One person of a tenant, reachable at any of `addresses`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Contact {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Free-form developer data (a JSON object).
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// Every address of this person; each belongs to at most one contact of the tenant.
    pub addresses: Vec<ContactAddress>,
    pub tm_create: DateTime<Utc>,
    pub tm_update: DateTime<Utc>,
}

/// An address of a contact: a channel and a normalised target (`tel` in E.164).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash, ToSchema)]
pub struct ContactAddress {
    #[serde(rename = "type")]
    pub kind: AddressType,
    pub target: String,
}

impl ContactAddress {
    /// `<type>:<target>`, the key the address index uses (and the `address=` filter spelling).
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.target)
    }
}

impl Contact {
    /// Lower-case prefixes this contact is found by (`q=`): its name and each word of it, its
    /// email, and each address target (a phone number also without its `+`).
    pub fn search_terms(&self) -> Vec<String> {
        let mut terms: Vec<String> = Vec::new();
        let mut push = |t: &str| {
            let t = t.trim().to_lowercase();
            if !t.is_empty() && !terms.contains(&t) {
                terms.push(t);
            }
        };
        push(&self.name);
        for w in self.name.split_whitespace() {
            push(w);
        }
        if let Some(e) = &self.email {
            push(e);
        }
        for a in &self.addresses {
            push(&a.target);
            if let Some(digits) = a.target.strip_prefix('+') {
                push(digits);
            }
        }
        terms
    }

    pub fn has_address(&self, a: &ContactAddress) -> bool {
        self.addresses.contains(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_cover_name_words_email_and_numbers() {
        let t = super::super::now();
        let c = Contact {
            id: Uuid::nil(),
            tenant_id: Uuid::nil(),
            name: "Ada  Lovelace".into(),
            email: Some("Ada@Example.com".into()),
            metadata: serde_json::json!({}),
            addresses: vec![ContactAddress { kind: AddressType::Tel, target: "+14155550123".into() }],
            tm_create: t,
            tm_update: t,
        };
        let terms = c.search_terms();
        for want in ["ada  lovelace", "ada", "lovelace", "ada@example.com", "+14155550123", "14155550123"] {
            assert!(terms.contains(&want.to_string()), "{want} in {terms:?}");
        }
    }
}
