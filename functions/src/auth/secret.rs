//! Secrets: API keys, personal tokens and single-use links. 256 random bits,
//! shown once, stored only as SHA-256, compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A freshly made secret: the text to show once, and its hash to store.
pub struct Fresh {
    pub secret: String,
    pub hash: String,
}

/// Makes a new secret with the given prefix (`tfk_`, `tfp_`, `tfi_`, ...).
pub fn generate(prefix: &str) -> Fresh {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash(&secret);
    Fresh { secret, hash }
}

/// Hex SHA-256 of a secret: the only form ever stored.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares a presented secret with a stored hash in constant time.
pub fn matches(secret: &str, stored_hash: &str) -> bool {
    let presented = hash(secret);
    presented.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// A short random id for keys and tokens (not secret).
pub fn id() -> String {
    let mut bytes = [0u8; 9];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes).replace(['-', '_'], "x")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_match_only_their_hash() {
        let a = generate("tfk_");
        let b = generate("tfk_");
        assert!(a.secret.starts_with("tfk_"));
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.len() >= 4 + 43, "256 bits in base64");
        assert!(matches(&a.secret, &a.hash));
        assert!(!matches(&b.secret, &a.hash));
        assert!(!a.hash.contains(&a.secret));
    }
}
