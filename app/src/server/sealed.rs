//! Secrets Chancery must use again later (an identity provider's client
//! secret) are kept sealed: encrypted and authenticated with XChaCha20-Poly1305
//! under the server's key, which lives in a file outside the database. A copy
//! of the database alone reveals none of them.
//!
//! Each sealed value is bound to what it is for (`context`, e.g. the
//! Organization it belongs to): moved to another row, it no longer opens.

use std::{fmt, io, path::Path, sync::Arc};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as BASE64, Engine};
use chacha20poly1305::{
    aead::{Aead, AeadCore, KeyInit, OsRng, Payload},
    XChaCha20Poly1305, XNonce,
};

/// Marks the format, so another one can follow.
const VERSION: &str = "v1.";
const NONCE_LEN: usize = 24;

/// The server's key. Every replica must use the same one.
#[derive(Clone)]
pub struct SealingKey(Arc<XChaCha20Poly1305>);

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

impl SealingKey {
    /// A key that lives as long as the process (tests).
    pub fn random() -> Self {
        Self(Arc::new(XChaCha20Poly1305::new(&XChaCha20Poly1305::generate_key(&mut OsRng))))
    }

    /// Reads the key at `path`, or creates it there (readable by its owner only)
    /// on the first start. Replicas racing to create it all end up with the one written first.
    pub fn load_or_create(path: &Path) -> io::Result<Self> {
        match Self::load(path) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            loaded => return loaded,
        }
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                io::Write::write_all(&mut file, format!("{}\n", BASE64.encode(key)).as_bytes())?;
                file.sync_all()?;
                Ok(Self(Arc::new(XChaCha20Poly1305::new(&key))))
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Self::load(path),
            Err(err) => Err(err),
        }
    }

    fn load(path: &Path) -> io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        let bytes = BASE64.decode(text.trim()).ok().filter(|bytes| bytes.len() == 32).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "not a key: expected 32 bytes in unpadded base64url")
        })?;
        Ok(Self(Arc::new(XChaCha20Poly1305::new_from_slice(&bytes).map_err(io::Error::other)?)))
    }

    /// Seals `secret` for `context`.
    pub fn seal(&self, secret: &str, context: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .0
            .encrypt(&nonce, Payload { msg: secret.as_bytes(), aad: context.as_bytes() })
            .expect("encrypting in memory does not fail");
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        format!("{VERSION}{}", BASE64.encode(bytes))
    }

    /// The secret sealed for `context`; `None` if it was sealed under another
    /// key or for another context, or altered.
    pub fn open(&self, sealed: &str, context: &str) -> Option<String> {
        let bytes = BASE64.decode(sealed.strip_prefix(VERSION)?).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plain = self
            .0
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: context.as_bytes() })
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_its_key_and_context_only() {
        let key = SealingKey::random();
        let sealed = key.seal("client-secret-123", "org-a");
        assert!(!sealed.contains("client-secret-123"));
        assert_ne!(sealed, key.seal("client-secret-123", "org-a"), "a fresh nonce each time");
        assert_eq!(key.open(&sealed, "org-a").as_deref(), Some("client-secret-123"));
        assert_eq!(key.open(&sealed, "org-b"), None, "moved to another Organization");
        assert_eq!(SealingKey::random().open(&sealed, "org-a"), None, "another server's key");
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(key.open(&String::from_utf8(altered).unwrap(), "org-a"), None);
        assert_eq!(key.open("v1.", "org-a"), None);
        assert_eq!(key.open("plain text", "org-a"), None);
    }

    #[test]
    fn the_key_file_is_created_once_and_read_back() {
        let dir = std::env::temp_dir().join(format!("chancery-key-{}", uuid::Uuid::new_v4()));
        let path = dir.join("secret.key");
        let first = SealingKey::load_or_create(&path).unwrap();
        let sealed = first.seal("s", "c");
        let again = SealingKey::load_or_create(&path).unwrap();
        assert_eq!(again.open(&sealed, "c").as_deref(), Some("s"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
        }
        std::fs::write(&path, "not a key").unwrap();
        assert_eq!(SealingKey::load_or_create(&path).unwrap_err().kind(), io::ErrorKind::InvalidData);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
