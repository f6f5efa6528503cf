//! Standard Webhooks signatures, so any Standard Webhooks or Svix verifier
//! accepts Settle's deliveries: `webhook-signature: v1,<base64 of
//! HMAC-SHA256(secret, "<webhook-id>.<webhook-timestamp>.<body>")>`, one
//! `v1,...` per valid secret, space separated, so a receiver keeps
//! verifying while a rotated-out secret is still in its grace period.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// An endpoint's signing secret: 24 to 64 random bytes, shown to users as
/// `whsec_<base64>`. `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

const PREFIX: &str = "whsec_";

impl SigningSecret {
    /// A fresh secret of 32 random bytes.
    pub fn generate() -> Self {
        Self(rand::random::<[u8; 32]>().to_vec())
    }

    /// Accepts `whsec_<base64>` of 24 to 64 bytes.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = STANDARD.decode(text.strip_prefix(PREFIX)?).ok()?;
        (24..=64).contains(&bytes.len()).then_some(Self(bytes))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        (24..=64).contains(&bytes.len()).then_some(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The form users see once, at creation or rotation.
    pub fn reveal(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    fn sign(&self, content: &[u8]) -> String {
        // HMAC takes a key of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(content);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

/// The `webhook-signature` value for one delivery attempt, signed with
/// every secret given (current first).
pub fn signature(secrets: &[&SigningSecret], message_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut content = format!("{message_id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    secrets.iter().map(|s| s.sign(&content)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(id: &str, ts: i64, sig: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("webhook-id", id.parse().unwrap());
        h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
        h.insert("webhook-signature", sig.parse().unwrap());
        h
    }

    /// Checked by an independent implementation, the `standardwebhooks`
    /// crate, not by our own code.
    #[test]
    fn standard_webhooks_verifiers_accept_it() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let (old, new) = (SigningSecret::generate(), SigningSecret::generate());
        let body = br#"{"id":"evt_1","type":"payment.succeeded"}"#;
        let sig = signature(&[&new, &old], "wd_123", now, body);
        assert_eq!(sig.split(' ').count(), 2);
        for secret in [&new, &old] {
            let verifier = standardwebhooks::Webhook::new(&secret.reveal()).unwrap();
            verifier.verify(body, &headers("wd_123", now, &sig)).unwrap();
        }
        let stranger = standardwebhooks::Webhook::new(&SigningSecret::generate().reveal()).unwrap();
        assert!(stranger.verify(body, &headers("wd_123", now, &sig)).is_err());
        let verifier = standardwebhooks::Webhook::new(&new.reveal()).unwrap();
        assert!(verifier.verify(b"tampered", &headers("wd_123", now, &sig)).is_err());
    }

    #[test]
    fn secrets_round_trip_and_are_bounded() {
        let s = SigningSecret::generate();
        assert_eq!(SigningSecret::parse(&s.reveal()), Some(s.clone()));
        assert!(s.reveal().starts_with("whsec_"));
        assert!(SigningSecret::parse("whsec_c2hvcnQ=").is_none());
        assert!(SigningSecret::parse("nope").is_none());
        assert_eq!(format!("{s:?}"), "SigningSecret(***)");
    }
}
