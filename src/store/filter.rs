//! Which conversations a list returns: the filters of `GET /v1.0/conversations`, and the one
//! definition of what each of them matches.
//!
//! Owns the *meaning* of a filter (`ConversationFilter::matches`) and the normal form of the
//! text `q=` matches (`search_text`, `prefixes`), so the memory backend (which filters while
//! walking) and the Redis backend (which walks an index and re-checks each candidate against the
//! truth) can never disagree. It does not own how an index is stored (each backend does) nor how
//! a query string is read (`api` parses and normalises addresses with `crate::phone`).
//!
//! Why one struct: each filter is one more field, one more check in `matches` and one more
//! "driving index" a backend may walk. A filter owned by another store (a contact's
//! conversations) plugs in the same way: a field here, a check here, a driver in each backend.

use crate::model::{AddressType, Conversation, ConversationStatus, Participant};

/// Which conversations a list returns, by owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerFilter {
    /// Every conversation of the tenant.
    Any,
    /// Only conversations nobody owns.
    Unassigned,
    /// Only conversations owned by this agent.
    Agent(String),
    /// What an agent may see: its own conversations and the unassigned ones.
    AgentOrUnassigned(String),
}

impl OwnerFilter {
    pub fn matches(&self, c: &Conversation) -> bool {
        let owner = c.owner_id.as_deref();
        match self {
            OwnerFilter::Any => true,
            OwnerFilter::Unassigned => owner.is_none(),
            OwnerFilter::Agent(a) => owner == Some(a.as_str()),
            OwnerFilter::AgentOrUnassigned(a) => owner.is_none_or(|o| o == a),
        }
    }
}

/// How many characters of a text the Redis prefix index keeps (`q=` longer than this is
/// walked on its first `PREFIX_CHARS` characters and checked in full on each candidate).
pub const PREFIX_CHARS: usize = 20;

/// Every filter of a conversation list; all given ones must match (AND).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationFilter {
    pub owner: OwnerFilter,
    pub status: Option<ConversationStatus>,
    /// A participant has this endpoint (`type`, normalised target) as its primary address or
    /// a linked one, on any account.
    pub address: Option<(AddressType, String)>,
    /// A participant has an endpoint (primary or linked) of this type.
    pub channel: Option<AddressType>,
    /// In `search_text` form, never empty: a prefix of the conversation's name, or of a
    /// participant's address target or display name.
    pub q: Option<String>,
}

impl ConversationFilter {
    /// Only an owner filter (what lists did before the other filters existed).
    pub fn by_owner(owner: OwnerFilter) -> ConversationFilter {
        ConversationFilter { owner, status: None, address: None, channel: None, q: None }
    }

    /// Whether nothing but the owner narrows the list (the owner indexes serve it alone).
    pub fn owner_only(&self) -> bool {
        self.status.is_none() && self.address.is_none() && self.channel.is_none() && self.q.is_none()
    }

    /// The checks the conversation alone decides: owner and status.
    pub fn matches_conversation(&self, c: &Conversation) -> bool {
        self.owner.matches(c) && self.status.is_none_or(|s| c.lifecycle.status == s)
    }

    /// Whether deciding `c` needs its participants (an address or channel filter, or a `q`
    /// its name does not already meet).
    pub fn needs_participants(&self, c: &Conversation) -> bool {
        self.address.is_some() || self.channel.is_some() || self.q.as_ref().is_some_and(|q| !text_matches(&c.name, q))
    }

    /// The whole filter, given the conversation's participants.
    pub fn matches(&self, c: &Conversation, participants: &[Participant]) -> bool {
        if !self.matches_conversation(c) {
            return false;
        }
        let endpoints = || participants.iter().flat_map(|p| p.endpoints());
        let address = self
            .address
            .as_ref()
            .is_none_or(|(k, t)| endpoints().any(|e| e.address.kind == *k && e.address.target == *t));
        let channel = self.channel.is_none_or(|k| endpoints().any(|e| e.address.kind == k));
        let q = self.q.as_ref().is_none_or(|q| {
            text_matches(&c.name, q)
                || endpoints().any(|e| text_matches(&e.address.target, q) || text_matches(&e.address.name, q))
        });
        address && channel && q
    }
}

/// Whether `q` (in `search_text` form) is a prefix of `text`.
fn text_matches(text: &str, q: &str) -> bool {
    search_text(text).starts_with(q)
}

/// The form `q=` and the texts it matches are compared in: lowercase, without control
/// characters, trimmed.
pub fn search_text(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect::<String>().trim().to_lowercase()
}

/// The prefixes of `text` (in `search_text` form) the index files: from one character up to
/// `PREFIX_CHARS`.
pub fn prefixes(text: &str) -> Vec<String> {
    let t = search_text(text);
    t.char_indices().map(|(i, c)| &t[..i + c.len_utf8()]).take(PREFIX_CHARS).map(str::to_string).collect()
}

/// `q` cut to what the index files (its first `PREFIX_CHARS` characters).
pub fn indexed_prefix(q: &str) -> &str {
    q.char_indices().nth(PREFIX_CHARS).map_or(q, |(i, _)| &q[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_lowercase_and_bounded() {
        assert_eq!(prefixes(" Bé b"), ["b", "bé", "bé ", "bé b"]);
        assert_eq!(prefixes(&"x".repeat(50)).len(), PREFIX_CHARS);
        assert_eq!(indexed_prefix(&"é".repeat(30)).chars().count(), PREFIX_CHARS);
        assert_eq!(indexed_prefix("abc"), "abc");
    }
}
