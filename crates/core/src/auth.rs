//! API keys: how a secret is made, where its id hides, and how it is checked.
//!
//! A secret is `sk_<key id, 26 chars>_<256 random bits, 52 chars>`. The id
//! makes lookup one indexed read; only the SHA-256 of the whole secret is
//! stored (the secret has 256 bits of entropy, so a slow password hash would
//! add cost to every request and no safety), and the comparison is
//! constant-time.

use rand::Rng;
use settle_domain::ids::{ApiKeyId, encode_base32};
use settle_domain::rbac::Permission;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A freshly generated secret; shown to the user once, then dropped.
pub struct NewSecret {
    pub secret: String,
    pub prefix: String,
    pub hash: Vec<u8>,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret")
            .field("prefix", &self.prefix)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// The secret of an `Authorization` value `Bearer <secret>` (scheme in any
/// case); `None` for any other form, which every face treats as no key.
pub fn bearer_secret(authorization: &str) -> Option<String> {
    let (scheme, secret) = authorization.split_once(' ')?;
    let secret = secret.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !secret.is_empty()).then(|| secret.to_owned())
}

pub fn generate_secret(id: ApiKeyId) -> NewSecret {
    let mut rng = rand::rng();
    let random = format!("{}{}", encode_base32(rng.random()), encode_base32(rng.random()));
    let id_part = id.to_string();
    let id_part = id_part.trim_start_matches("key_");
    let secret = format!("sk_{id_part}_{random}");
    let prefix = secret.chars().take(12).collect();
    let hash = hash_secret(&secret);
    NewSecret { secret, prefix, hash }
}

pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// The key id a secret claims; `None` when the secret is not even well formed.
pub fn key_id_of(secret: &str) -> Option<ApiKeyId> {
    let rest = secret.strip_prefix("sk_")?;
    let (id, random) = rest.split_once('_')?;
    if random.len() != 52 {
        return None;
    }
    ApiKeyId::parse(&format!("key_{id}"))
}

/// Constant-time: the time taken does not reveal how many bytes matched.
pub fn hash_matches(secret: &str, stored: &[u8]) -> bool {
    hash_secret(secret).ct_eq(stored).into()
}

/// Who is calling: an authenticated key and what its role allows.
#[derive(Debug, Clone)]
pub struct Principal {
    pub key: ApiKeyId,
    pub name: String,
    pub role: String,
    pub permissions: Vec<Permission>,
}

impl Principal {
    pub fn allows(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use settle_domain::ids::uuid_v7;

    #[test]
    fn secret_round_trip() {
        let id = ApiKeyId::from_uuid(uuid_v7(1_700_000_000_000, 7));
        let s = generate_secret(id);
        assert!(s.secret.starts_with("sk_"));
        assert_eq!(key_id_of(&s.secret), Some(id));
        assert!(hash_matches(&s.secret, &s.hash));
        assert!(!hash_matches(&format!("{}x", s.secret), &s.hash));
        assert!(!format!("{s:?}").contains(&s.secret));
        assert_eq!(key_id_of("sk_nope"), None);
        assert_eq!(key_id_of(""), None);
    }
}
