//! API keys: `<prefix>_<public id>_<secret>`.
//!
//! The public id finds the row; only a SHA-256 of the secret is stored, and it
//! is compared in constant time. The whole key is shown once, at creation.

use rand::{distributions::Alphanumeric, rngs::OsRng, Rng};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PUBLIC_ID_LEN: usize = 12;
/// 43 alphanumeric characters: about 256 bits.
const SECRET_LEN: usize = 43;

/// A freshly minted key. `full` goes to the person once and is never stored.
pub struct NewKey {
    pub full: String,
    pub public_id: String,
    pub secret_sha256: String,
    pub secret_last4: String,
}

pub fn generate(prefix: &str) -> NewKey {
    let public_id = random_alphanumeric(PUBLIC_ID_LEN);
    let secret = random_alphanumeric(SECRET_LEN);
    NewKey {
        full: format!("{prefix}_{public_id}_{secret}"),
        secret_sha256: sha256_hex(&secret),
        secret_last4: secret[SECRET_LEN - 4..].to_string(),
        public_id,
    }
}

/// Splits a presented key into `(public_id, secret)` if it has this prefix's shape.
pub fn parse<'a>(prefix: &str, presented: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = presented.strip_prefix(prefix)?.strip_prefix('_')?;
    let (public_id, secret) = rest.split_once('_')?;
    let well_formed = public_id.len() == PUBLIC_ID_LEN
        && secret.len() == SECRET_LEN
        && public_id.bytes().chain(secret.bytes()).all(|b| b.is_ascii_alphanumeric());
    well_formed.then_some((public_id, secret))
}

/// Constant-time check of a presented secret against the stored hash (on
/// every gateway call: nothing is allocated).
pub fn secret_matches(secret: &str, stored_sha256: &str) -> bool {
    sha256_hex_digits(secret)[..].ct_eq(stored_sha256.as_bytes()).into()
}

/// What lists show: enough to recognise a key, nothing to use it.
pub fn masked(prefix: &str, public_id: &str, secret_last4: &str) -> String {
    format!("{prefix}_{public_id}_…{secret_last4}")
}

pub fn sha256_hex(text: &str) -> String {
    String::from_utf8(sha256_hex_digits(text).to_vec()).expect("hex digits are ASCII")
}

/// The SHA-256 of `text` as 64 lower-case hex digits.
fn sha256_hex_digits(text: &str) -> [u8; 64] {
    let mut digits = [0; 64];
    hex::encode_to_slice(Sha256::digest(text.as_bytes()), &mut digits).expect("32 bytes are 64 hex digits");
    digits
}

/// `last used` of a key is written at most this often, not on every request.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// Whether a key last used at `last_used_at` should have `now` written as its last use.
pub fn last_use_is_stale(last_used_at: Option<crate::time::Timestamp>, now: crate::time::Timestamp) -> bool {
    last_used_at.is_none_or(|at| now.0 - at.0 >= LAST_USED_RESOLUTION_MS)
}

/// A one-time token for a link (about 256 bits); only its `sha256_hex` is stored.
pub fn random_token() -> String {
    random_alphanumeric(SECRET_LEN)
}

fn random_alphanumeric(len: usize) -> String {
    OsRng.sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_parses_and_matches_only_its_own_secret() {
        let key = generate("chy_admin");
        let (public_id, secret) = parse("chy_admin", &key.full).expect("well formed");
        assert_eq!(public_id, key.public_id);
        assert!(secret_matches(secret, &key.secret_sha256));
        assert!(!secret_matches(&secret.replace(&secret[..1], "#"), &key.secret_sha256));
        assert!(!key.secret_sha256.contains(secret), "only the hash is kept");
        assert_eq!(
            masked("chy_admin", public_id, &key.secret_last4),
            format!("chy_admin_{public_id}_…{}", &secret[39..])
        );
    }

    #[test]
    fn malformed_or_foreign_keys_do_not_parse() {
        let key = generate("chy_admin");
        assert!(parse("chy_ws", &key.full).is_none(), "another kind of key");
        assert!(parse("chy_admin", &key.full[..key.full.len() - 1]).is_none(), "truncated");
        assert!(parse("chy_admin", "chy_admin_short_secret").is_none());
        assert!(parse("chy_admin", "").is_none());
    }
}
