//! Secrets Settle must read back (webhook signing secrets) are stored
//! encrypted under a master key: ChaCha20-Poly1305 with a random nonce per
//! value. Each stored value names the key that sealed it (a fingerprint),
//! so the master key can be rotated: new values use the current key and
//! old ones still open with the previous keys until they are re-sealed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::Aead;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use sha2::{Digest, Sha256};

const VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a master key must be base64 of exactly 32 bytes")]
    BadKey,
    #[error("no master key can open this secret (was the key rotated out?)")]
    UnknownKey,
    #[error("the stored secret is corrupt or was tampered with")]
    Corrupt,
}

#[derive(Clone)]
struct MasterKey {
    fingerprint: [u8; 4],
    cipher: ChaCha20Poly1305,
}

impl MasterKey {
    fn new(bytes: &[u8]) -> Result<Self, SecretError> {
        if bytes.len() != 32 {
            return Err(SecretError::BadKey);
        }
        let digest = Sha256::digest(bytes);
        Ok(Self {
            fingerprint: [digest[0], digest[1], digest[2], digest[3]],
            cipher: ChaCha20Poly1305::new_from_slice(bytes).map_err(|_| SecretError::BadKey)?,
        })
    }
}

/// The current master key first, then older ones kept for reading.
#[derive(Clone)]
pub struct MasterKeys(Vec<MasterKey>);

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKeys({} keys, ***)", self.0.len())
    }
}

impl MasterKeys {
    /// `SETTLE_MASTER_KEY`'s form: base64 keys separated by commas, the
    /// current one first.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let keys = text
            .split(',')
            .map(|k| STANDARD.decode(k.trim()).map_err(|_| SecretError::BadKey))
            .map(|k| k.and_then(|bytes| MasterKey::new(&bytes)))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(SecretError::BadKey);
        }
        Ok(Self(keys))
    }

    /// A new random key, in the form `parse` reads.
    pub fn generate_text() -> String {
        STANDARD.encode(rand::random::<[u8; 32]>())
    }

    /// `version | key fingerprint (4) | nonce (12) | ciphertext and tag`.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, SecretError> {
        let key = &self.0[0];
        let nonce: [u8; 12] = rand::random();
        let sealed = key
            .cipher
            .encrypt(&Nonce::from(nonce), plaintext)
            .map_err(|_| SecretError::Corrupt)?;
        let mut out = Vec::with_capacity(17 + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&key.fingerprint);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn open(&self, stored: &[u8]) -> Result<Vec<u8>, SecretError> {
        if stored.len() < 17 + 16 || stored[0] != VERSION {
            return Err(SecretError::Corrupt);
        }
        let (fingerprint, nonce, sealed) = (&stored[1..5], &stored[5..17], &stored[17..]);
        let key = self
            .0
            .iter()
            .find(|k| k.fingerprint == fingerprint)
            .ok_or(SecretError::UnknownKey)?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SecretError::Corrupt)?;
        key.cipher
            .decrypt(&Nonce::from(nonce), sealed)
            .map_err(|_| SecretError::Corrupt)
    }

    /// Whether `stored` was sealed with an older key and should be re-sealed.
    pub fn is_stale(&self, stored: &[u8]) -> bool {
        stored.get(1..5) != Some(&self.0[0].fingerprint[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_rotates() {
        let old_text = MasterKeys::generate_text();
        let old = MasterKeys::parse(&old_text).unwrap();
        let sealed = old.seal(b"whsec_secret").unwrap();
        assert!(!sealed.windows(12).any(|w| w == b"whsec_secret"), "stored in clear");
        assert_eq!(old.open(&sealed).unwrap(), b"whsec_secret");
        assert_ne!(old.seal(b"whsec_secret").unwrap(), sealed, "a fresh nonce each time");

        let rotated = MasterKeys::parse(&format!("{},{old_text}", MasterKeys::generate_text())).unwrap();
        assert_eq!(rotated.open(&sealed).unwrap(), b"whsec_secret", "old values still open");
        assert!(rotated.is_stale(&sealed));
        let resealed = rotated.seal(b"whsec_secret").unwrap();
        assert!(!rotated.is_stale(&resealed));
        assert_eq!(old.open(&resealed), Err(SecretError::UnknownKey));

        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(old.open(&tampered), Err(SecretError::Corrupt));
        assert!(MasterKeys::parse("c2hvcnQ=").is_err());
        assert!(format!("{old:?}").contains("***"));
    }
}
