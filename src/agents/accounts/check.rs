//! Checks and normal forms of an agent account's email and identity.
//!
//! Emails are compared lowercased (one account per address and tenant, whatever the case it
//! was typed in); an identity is the handle a conversation's `owner_id` and the WebSocket use,
//! so it keeps to a small alphabet that is safe in URLs, logs and the page.

use crate::error::{Error, Result};

/// The longest email accepted (RFC 5321's path limit).
const MAX_EMAIL: usize = 254;
/// The longest identity accepted.
const MAX_IDENTITY: usize = 64;

/// The email lowercased and trimmed, if it looks like one (422 `invalid_email` otherwise).
pub fn clean_email(raw: &str) -> Result<String> {
    let e = raw.trim().to_lowercase();
    let bad = || Error::invalid("invalid_email", "email must look like name@example.com");
    if e.len() > MAX_EMAIL || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = e.split_once('@').ok_or_else(bad)?;
    let labels_ok = domain.split('.').all(|l| !l.is_empty()) && domain.contains('.');
    if local.is_empty() || domain.contains('@') || !labels_ok {
        return Err(bad());
    }
    Ok(e)
}

/// Whether `id` is a valid identity: 1–64 of `a-z 0-9 . _ -`.
pub fn valid_identity(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_IDENTITY
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

/// The identity an account gets when none is given: the email's local part, lowercased, with
/// everything outside `a-z 0-9 . _ -` left out (`agent` if nothing is left).
pub fn default_identity(email: &str) -> String {
    let local = email.split('@').next().unwrap_or_default().to_lowercase();
    let id: String = local
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        .take(MAX_IDENTITY)
        .collect();
    if id.is_empty() { "agent".into() } else { id }
}

/// `identity` checked (422 `invalid_identity`), or the default for `email`.
pub fn identity_for(identity: Option<&str>, email: &str) -> Result<String> {
    match identity.map(str::trim) {
        None => Ok(default_identity(email)),
        Some(i) if valid_identity(i) => Ok(i.to_string()),
        Some(_) => Err(Error::invalid("invalid_identity", "identity must be 1–64 of a-z, 0-9, `.`, `_`, `-`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_identities() {
        assert_eq!(clean_email(" Ann.Lee@Example.COM ").unwrap(), "ann.lee@example.com");
        for bad in ["", "ann", "ann@", "@x.y", "ann@localhost", "a b@x.y", "a@b@c.d", "a@x..y"] {
            assert_eq!(clean_email(bad).unwrap_err().code(), "invalid_email", "{bad}");
        }
        assert_eq!(default_identity("Ann.Lee+Help@x.y"), "ann.leehelp");
        assert_eq!(default_identity("ÄÖ@x.y"), "agent");
        assert!(valid_identity("ann_2.b-c") && !valid_identity("Ann") && !valid_identity(""));
        assert_eq!(identity_for(Some("ANN"), "a@b.c").unwrap_err().code(), "invalid_identity");
        assert_eq!(identity_for(None, "Bob@b.c").unwrap(), "bob");
    }
}
