//! Phone numbers as one spelling: E.164 (`+14155550123`).
//!
//! `+1 (415) 555-0123`, `+1-415-555-0123` and `14155550123` are one person; stored as written
//! they would be three participants, three room bindings and three rooms. Every address of a
//! phone-numbered type (`tel`, `whatsapp`) is therefore normalised on the way in — REST
//! participants and links, provider inbound senders — with Google's libphonenumber rules (the
//! `phonenumber` crate), so bindings and lookups compare one canonical string.
//!
//! National formats need a region. An account may name one (`default_region`, e.g. `US`);
//! then `(415) 555-0123` is read in it. Without one, a number without `+` is read as
//! international with its country code first (`14155550123`, which is also how WhatsApp and
//! some carriers send it). What is not a valid number after that is refused.

use crate::error::{Error, Result};
use crate::model::{Account, AddressType};
use phonenumber::Mode;
use phonenumber::country::Id;

/// Whether addresses of `kind` are phone numbers (normalised to E.164).
pub fn is_phone(kind: AddressType) -> bool {
    matches!(kind, AddressType::Tel | AddressType::Whatsapp)
}

/// The region `code` names (ISO 3166-1 alpha-2, e.g. `US`), or a 422 `invalid_region`.
pub fn region(code: &str) -> Result<Id> {
    code.trim().to_ascii_uppercase().parse::<Id>().map_err(|_| {
        Error::invalid("invalid_region", format!("default_region `{code}` is not an ISO 3166-1 alpha-2 region code"))
    })
}

/// `raw` in E.164, read in `region` when it is in a national format; 422 `invalid_address`
/// when it is not a valid phone number.
pub fn e164(raw: &str, region: Option<Id>) -> Result<String> {
    let raw = raw.trim();
    let invalid = || Error::invalid("invalid_address", format!("`{raw}` is not a valid phone number"));
    let international = if raw.starts_with('+') { raw.to_string() } else { format!("+{raw}") };
    let parsed = match region {
        Some(r) if !raw.starts_with('+') => {
            // National first (`(415) 555-0123` in US), then as international digits.
            phonenumber::parse(Some(r), raw)
                .ok()
                .filter(|n| n.is_valid())
                .or_else(|| phonenumber::parse(None, &international).ok())
        }
        _ => phonenumber::parse(None, &international).ok(),
    };
    let number = parsed.filter(|n| n.is_valid()).ok_or_else(invalid)?;
    Ok(number.format().mode(Mode::E164).to_string())
}

/// `raw` in E.164 for a peer of `account`, read in the account's `default_region`.
pub fn for_account(account: &Account, raw: &str) -> Result<String> {
    let region = account.default_region.as_deref().map(region).transpose()?;
    e164(raw, region)
}

/// A provider's sender address: E.164 when it reads as a number, else as written (a short code,
/// an alphanumeric sender id: refusing it would only make the provider retry). A sender already
/// in canonical form (`+` and 7 to 15 digits, how Twilio and Telnyx send every number) is taken
/// as it is without parsing: normalising it could only give it back or fail, and failing keeps
/// it as written too. That keeps the number parser off the inbound hot path.
pub fn for_sender(account: &Account, raw: &str) -> String {
    let digits = raw.strip_prefix('+').unwrap_or("");
    if (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0') {
        return raw.to_string();
    }
    for_account(account, raw).unwrap_or_else(|_| raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_canonical_sender_is_taken_as_it_is_and_others_are_read() {
        let account: Account = serde_json::from_value(serde_json::json!({
            "id": uuid::Uuid::nil(), "tenant_id": uuid::Uuid::nil(), "kind": "tel", "provider": "twilio",
            "name": "n", "address": "+15005550006", "credentials": {},
            "tm_create": "2026-01-01T00:00:00Z", "tm_update": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        assert_eq!(for_sender(&account, "+14155550123"), "+14155550123");
        assert_eq!(for_sender(&account, "+15550001234"), "+15550001234");
        assert_eq!(for_sender(&account, "1 (415) 555-0123"), "+14155550123");
        assert_eq!(for_sender(&account, "12345"), "12345");
        assert_eq!(for_sender(&account, "ACME"), "ACME");
    }

    #[test]
    fn every_spelling_is_one_number() {
        for raw in ["+1 (415) 555-0123", "+1-415-555-0123", "14155550123", " +14155550123 "] {
            assert_eq!(e164(raw, None).unwrap(), "+14155550123", "{raw}");
        }
        let us = Some(region("us").unwrap());
        assert_eq!(e164("(415) 555-0123", us).unwrap(), "+14155550123");
        assert_eq!(e164("14155550123", us).unwrap(), "+14155550123");
        assert_eq!(e164("+44 20 7946 0958", us).unwrap(), "+442079460958");
    }

    #[test]
    fn what_is_not_a_number_is_refused() {
        for raw in ["12345", "", "+1", "(415) 555-0123", "hello", "+1 415 555 012"] {
            let e = e164(raw, None).unwrap_err();
            assert_eq!(e.code(), "invalid_address", "{raw}");
        }
        assert_eq!(region("Narnia").unwrap_err().code(), "invalid_region");
    }
}
