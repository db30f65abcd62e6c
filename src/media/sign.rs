//! The one URL signer for media downloads: `/v1.0/media/{id}?exp=<unix secs>&sig=<hex>`,
//! `sig` = HMAC-SHA256(node key, `"media:" id ":" variant ":" exp`); and for a provider media
//! not yet copied in (the proxy route `channels::media`):
//! `/v1.0/media/{account}/{reference}?exp=&sig=`, `sig` = HMAC-SHA256(node key,
//! `"provider:" account "/" reference ":" exp`). The prefixes keep one kind of signature from
//! ever passing for the other.
//!
//! A signed URL is a capability, like a presigned S3 link: an `<img src>`, a provider fetching
//! an MMS attachment or a mail client cannot send our bearer header, so the URL itself proves
//! the right to read, and only until `exp`. Every node shares the key (the token secret), so
//! any node serves a URL another one signed. Owns signing and checking only.

use crate::error::{Error, Result};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// Which object of a media a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Original,
    Thumbnail,
}

impl Variant {
    fn tag(self) -> &'static str {
        match self {
            Variant::Original => "original",
            Variant::Thumbnail => "thumbnail",
        }
    }
}

#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
    ttl_secs: u64,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("ttl_secs", &self.ttl_secs).finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Signer {
    pub fn new(key: &[u8], ttl_secs: u64) -> Signer {
        Signer { key: key.to_vec(), ttl_secs }
    }

    fn hmac(&self, what: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(what.as_bytes());
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn mac(&self, id: Uuid, variant: Variant, exp: u64) -> String {
        self.hmac(&format!("media:{id}:{}:{exp}", variant.tag()))
    }

    fn provider_mac(&self, account: Uuid, reference: &str, exp: u64) -> String {
        self.hmac(&format!("provider:{account}/{reference}:{exp}"))
    }

    /// `{base}/v1.0/media/{account}/{reference}?exp=&sig=`: the proxy URL of a provider
    /// media that is not copied in yet, valid for the configured TTL from now.
    pub fn provider_url(&self, base: &str, account: Uuid, reference: &str) -> String {
        let exp = now_secs() + self.ttl_secs;
        let r: String = form_urlencoded::byte_serialize(reference.as_bytes()).collect();
        format!("{base}/v1.0/media/{account}/{r}?exp={exp}&sig={}", self.provider_mac(account, reference, exp))
    }

    /// 403 unless `sig` signs (`account`, `reference`, `exp`) and `exp` is not past.
    pub fn check_provider(&self, account: Uuid, reference: &str, exp: u64, sig: &str) -> Result<()> {
        let expected = self.provider_mac(account, reference, exp);
        Self::verdict(sig, &expected, exp)
    }

    fn verdict(sig: &str, expected: &str, exp: u64) -> Result<()> {
        if !crate::auth::constant_time_eq(sig.as_bytes(), expected.as_bytes()) {
            return Err(Error::Forbidden("media signature does not match".into()));
        }
        if exp < now_secs() {
            return Err(Error::Forbidden("this media link has expired; ask for the message again".into()));
        }
        Ok(())
    }

    /// `{base}/v1.0/media/{id}?…` valid for the configured TTL from now.
    pub fn url(&self, base: &str, id: Uuid, variant: Variant) -> String {
        self.url_until(base, id, variant, now_secs() + self.ttl_secs)
    }

    /// The same, expiring at `exp` (unix seconds).
    pub fn url_until(&self, base: &str, id: Uuid, variant: Variant, exp: u64) -> String {
        let sig = self.mac(id, variant, exp);
        let v = if variant == Variant::Thumbnail { "variant=thumbnail&" } else { "" };
        format!("{base}/v1.0/media/{id}?{v}exp={exp}&sig={sig}")
    }

    /// 403 unless `sig` is this node key's signature of (`id`, `variant`, `exp`) and `exp` is
    /// not past.
    pub fn check(&self, id: Uuid, variant: Variant, exp: u64, sig: &str) -> Result<()> {
        let expected = self.mac(id, variant, exp);
        Self::verdict(sig, &expected, exp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_binds_id_variant_and_expiry() {
        let s = Signer::new(b"k", 60);
        let id = Uuid::new_v4();
        let exp = now_secs() + 60;
        let url = s.url_until("http://h", id, Variant::Original, exp);
        let sig = url.rsplit("sig=").next().unwrap();
        assert!(s.check(id, Variant::Original, exp, sig).is_ok());
        assert!(s.check(id, Variant::Thumbnail, exp, sig).is_err());
        assert!(s.check(id, Variant::Original, exp + 1, sig).is_err());
        assert!(s.check(Uuid::new_v4(), Variant::Original, exp, sig).is_err());
        let old = now_secs() - 1;
        let url = s.url_until("http://h", id, Variant::Original, old);
        assert!(s.check(id, Variant::Original, old, url.rsplit("sig=").next().unwrap()).is_err());
    }

    #[test]
    fn provider_urls_are_signed_apart() {
        let s = Signer::new(b"k", 60);
        let account = Uuid::new_v4();
        let url = s.provider_url("http://h", account, "file/1 2");
        assert!(url.starts_with(&format!("http://h/v1.0/media/{account}/file%2F1+2?exp=")), "{url}");
        let exp: u64 = url.split("exp=").nth(1).unwrap().split('&').next().unwrap().parse().unwrap();
        let sig = url.rsplit("sig=").next().unwrap();
        assert!(s.check_provider(account, "file/1 2", exp, sig).is_ok());
        assert!(s.check_provider(account, "file/1 3", exp, sig).is_err());
        assert!(s.check_provider(Uuid::new_v4(), "file/1 2", exp, sig).is_err());
        assert!(Signer::new(b"other", 60).check_provider(account, "file/1 2", exp, sig).is_err());
    }
}
