//! A conversation's lifecycle: its status (`open`, `pending`, `snoozed`, `resolved`, `closed`)
//! and the timers that move a quiet conversation along (`resolve_after`, `close_after`).
//!
//! Plain data like the rest of `model`: the rules for changing a status live in
//! `conversations::status`, the deadlines in `timers`. Kept beside the conversation so a
//! conversation stored before statuses existed reads as `open` with no timers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// Where a conversation stands. `closed` is final.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConversationStatus {
    #[default]
    Open,
    Pending,
    /// Parked until `snoozed_until` (or a new inbound message).
    Snoozed,
    /// Done; a new inbound message reopens it.
    Resolved,
    /// Final: no more messages; the peer's next message opens a new conversation.
    Closed,
}

impl ConversationStatus {
    pub const ALL: [ConversationStatus; 5] = [Self::Open, Self::Pending, Self::Snoozed, Self::Resolved, Self::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Pending => "pending",
            Self::Snoozed => "snoozed",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<ConversationStatus> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// The status fields of a conversation (flattened into it on the wire).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Lifecycle {
    /// `open` (default), `pending`, `snoozed`, `resolved` or `closed` (final).
    #[serde(default)]
    pub status: ConversationStatus,
    /// With `snoozed`: when it reopens by itself; `null` otherwise.
    #[serde(default)]
    pub snoozed_until: Option<DateTime<Utc>>,
    /// When the status last changed (`null`: never since creation).
    #[serde(default)]
    pub tm_status: Option<DateTime<Utc>>,
}

/// Inactivity timers, in seconds (`0` or absent: off). In requests each also takes an
/// ISO-8601 duration such as `PT10M` or `P1D`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Timers {
    /// An `open` or `pending` conversation with no message for this long becomes `resolved`.
    #[serde(default, deserialize_with = "duration")]
    #[schema(value_type = Option<u64>)]
    pub resolve_after: Option<u64>,
    /// A `resolved` conversation becomes `closed` this long after it was resolved.
    #[serde(default, deserialize_with = "duration")]
    #[schema(value_type = Option<u64>)]
    pub close_after: Option<u64>,
}

impl Timers {
    /// `self` where it sets a timer, else `fallback` (the tenant's defaults).
    pub fn or(self, fallback: Timers) -> Timers {
        Timers {
            resolve_after: self.resolve_after.or(fallback.resolve_after),
            close_after: self.close_after.or(fallback.close_after),
        }
    }
}

/// Seconds, from an integer or an ISO-8601 duration (`P[nD][T[nH][nM][nS]]`, also `PnW`).
pub fn parse_duration(s: &str) -> Option<u64> {
    let rest = s.trim().strip_prefix(['P', 'p'])?;
    if rest.is_empty() {
        return None;
    }
    let (date, time) = match rest.split_once(['T', 't']) {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (rest, None),
    };
    let units = |part: &str, table: &[(char, u64)]| -> Option<u64> {
        let (mut total, mut num, mut at) = (0u64, String::new(), 0usize);
        for ch in part.chars() {
            if ch.is_ascii_digit() {
                num.push(ch);
                continue;
            }
            let i = table.iter().position(|(u, _)| u.eq_ignore_ascii_case(&ch))?;
            if num.is_empty() || i < at {
                return None;
            }
            total = total.checked_add(num.parse::<u64>().ok()?.checked_mul(table[i].1)?)?;
            num.clear();
            at = i + 1;
        }
        num.is_empty().then_some(total)
    };
    let d = units(date, &[('W', 604_800), ('D', 86_400)])?;
    let t = match time {
        Some(t) => units(t, &[('H', 3_600), ('M', 60), ('S', 1)])?,
        None => 0,
    };
    d.checked_add(t)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(serde_json::Number),
        Iso(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Secs(n)) => whole_number(&n)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("`{n}` is no whole number of seconds"))),
        Some(Raw::Iso(s)) => parse_duration(&s)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is no ISO-8601 duration (e.g. PT10M, P1D)"))),
    }
}

/// `n` as a whole, non-negative number: `60` or `60.0` (JSON, and JSON Schema, do not tell
/// them apart, so neither does the server); `None` for `1.5` or `-1`.
pub fn whole_number(n: &serde_json::Number) -> Option<u64> {
    n.as_u64()
        .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(f)).map(|f| f as u64))
}

#[cfg(test)]
mod tests {
    use super::parse_duration as p;

    #[test]
    fn iso_durations() {
        assert_eq!(p("PT10M"), Some(600));
        assert_eq!(p("P1D"), Some(86_400));
        assert_eq!(p("P1DT1H2M3S"), Some(86_400 + 3_723));
        assert_eq!(p("P2W"), Some(1_209_600));
        for bad in ["", "P", "PT", "10M", "PT1X", "PTM", "PT1S1M", "P1H"] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }
}
