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

#[cfg(test)]
mod tests {
    use super::*;

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
