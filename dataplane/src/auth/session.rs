//! STS session tokens: temporary credentials sealed with AES-256-GCM, so that the data plane
//! can open them itself with no lookup and no state.
//!
//! A token is `base64url(version || key id || nonce || ciphertext || tag)`, unpadded:
//! - `version` is one byte, `1`;
//! - `key id` is 8 bytes naming the sealing key (a hash of it, see [`SessionKey::id`]);
//! - `nonce` is 12 random bytes;
//! - the ciphertext is [`SessionClaims`] encoded compactly; version and key id are the
//!   associated data, so neither can be changed without breaking the tag.
//!
//! Several keys may be configured ([`SessionKeys`]): the first (newest) seals, every one opens,
//! so a key can be rotated in while sessions sealed under the previous one stay valid until
//! they expire.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

use super::policy::{Access, Grant};
use super::AuthError;

const VERSION: u8 = 1;
const KEY_ID_LEN: usize = 8;
const HEADER_LEN: usize = 1 + KEY_ID_LEN;
const TAG_LEN: usize = 16;
/// Longest token accepted, in characters: far above any real grant list, far below the head
/// limit.
pub const MAX_TOKEN_CHARS: usize = 8192;

/// What a session token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClaims {
    /// The temporary access key id (`ASIA...`).
    pub access_key_id: String,
    /// The temporary secret access key.
    pub secret_access_key: String,
    /// When the credentials stop working, in seconds since the Unix epoch.
    pub expires_at: u64,
    /// The role that was assumed.
    pub role: String,
    /// The web identity's subject (`sub`), for logs.
    pub subject: String,
    /// What the credentials may do.
    pub grants: Vec<Grant>,
}

/// Why a key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionKeyError {
    /// Not base64.
    #[error("session token key is not base64")]
    NotBase64,
    /// Not 32 bytes once decoded.
    #[error("session token key must be 32 bytes (base64 of 32 random bytes), got {0}")]
    WrongLength(usize),
}

/// One AES-256-GCM key for session tokens.
pub struct SessionKey {
    id: [u8; KEY_ID_LEN],
    key: LessSafeKey,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey")
            .field("id", &hex(&self.id))
            .finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl SessionKey {
    /// A key from its 32 raw bytes.
    pub fn from_bytes(raw: &[u8]) -> Result<Self, SessionKeyError> {
        if raw.len() != 32 {
            return Err(SessionKeyError::WrongLength(raw.len()));
        }
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"rangecache session token key id\0");
        ctx.update(raw);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&ctx.finish().as_ref()[..KEY_ID_LEN]);
        let key = UnboundKey::new(&AES_256_GCM, raw).expect("32 bytes is an AES-256 key");
        Ok(Self {
            id,
            key: LessSafeKey::new(key),
        })
    }

    /// A key from standard base64 (padding optional), surrounding whitespace ignored.
    pub fn from_base64(text: &str) -> Result<Self, SessionKeyError> {
        let text = text.trim();
        let raw = STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .map_err(|_| SessionKeyError::NotBase64)?;
        Self::from_bytes(&raw)
    }

    /// The key's id as hex: a hash of the key, safe to log and show.
    pub fn id_hex(&self) -> String {
        hex(&self.id)
    }
}

/// The configured session token keys, newest first.
#[derive(Debug, Clone, Default)]
pub struct SessionKeys {
    keys: std::sync::Arc<[SessionKey]>,
}

impl SessionKeys {
    /// The keys, newest (the one that seals) first.
    pub fn new(keys: Vec<SessionKey>) -> Self {
        Self { keys: keys.into() }
    }

    /// True when no key is configured: tokens can be neither sealed nor opened.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The ids of the keys, newest first.
    pub fn ids(&self) -> Vec<String> {
        self.keys.iter().map(SessionKey::id_hex).collect()
    }

    /// Seals `claims` under the newest key. `None` if no key is configured.
    pub fn seal(&self, claims: &SessionClaims) -> Option<String> {
        let key = self.keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the system random source works");
        let mut header = [0u8; HEADER_LEN];
        header[0] = VERSION;
        header[1..].copy_from_slice(&key.id);
        let mut body = encode(claims);
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&header[..]),
                &mut body,
            )
            .expect("sealing a bounded token cannot fail");
        let mut raw = Vec::with_capacity(HEADER_LEN + NONCE_LEN + body.len());
        raw.extend_from_slice(&header);
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&body);
        Some(URL_SAFE_NO_PAD.encode(raw))
    }

    /// Opens a token sealed under any configured key and checks it has not expired at `now`.
    ///
    /// Errors: `InvalidToken` for anything malformed, sealed under an unknown key or tampered
    /// with (the tag does not check out); `ExpiredToken` once `expires_at` is past.
    pub fn open(&self, token: &str, now: SystemTime) -> Result<SessionClaims, AuthError> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(AuthError::invalid_token());
        }
        let mut raw = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| AuthError::invalid_token())?;
        if raw.len() < HEADER_LEN + NONCE_LEN + TAG_LEN || raw[0] != VERSION {
            return Err(AuthError::invalid_token());
        }
        let key = self
            .keys
            .iter()
            .find(|k| k.id[..] == raw[1..HEADER_LEN])
            .ok_or(AuthError::invalid_token())?;
        let mut body = raw.split_off(HEADER_LEN + NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&raw[HEADER_LEN..])
            .map_err(|_| AuthError::invalid_token())?;
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(&raw[..HEADER_LEN]), &mut body)
            .map_err(|_| AuthError::invalid_token())?;
        let claims = decode(plain).ok_or(AuthError::invalid_token())?;
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if claims.expires_at <= now {
            return Err(AuthError::expired_token());
        }
        Ok(claims)
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
}

fn encode(c: &SessionClaims) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + c.grants.len() * 32);
    out.extend_from_slice(&c.expires_at.to_be_bytes());
    for s in [&c.access_key_id, &c.secret_access_key, &c.role, &c.subject] {
        put_str(&mut out, s);
    }
    let n = u16::try_from(c.grants.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    for g in c.grants.iter().take(usize::from(n)) {
        put_str(&mut out, &g.bucket);
        put_str(&mut out, &g.prefix);
        out.push(g.access.bits());
    }
    out
}

/// A reader over the plaintext; every getter is `None` past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn string(&mut self) -> Option<String> {
        let n = self.u16()?;
        String::from_utf8(self.take(usize::from(n))?.to_vec()).ok()
    }
}

fn decode(plain: &[u8]) -> Option<SessionClaims> {
    let mut r = Reader(plain);
    let expires_at = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
    let access_key_id = r.string()?;
    let secret_access_key = r.string()?;
    let role = r.string()?;
    let subject = r.string()?;
    let n = r.u16()?;
    let mut grants = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let bucket = r.string()?;
        let prefix = r.string()?;
        let access = Access::from_bits(r.take(1)?[0])?;
        grants.push(Grant {
            bucket,
            prefix,
            access,
        });
    }
    r.0.is_empty().then_some(SessionClaims {
        access_key_id,
        secret_access_key,
        expires_at,
        role,
        subject,
        grants,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::auth::AuthErrorKind;

    fn key(byte: u8) -> SessionKey {
        SessionKey::from_bytes(&[byte; 32]).unwrap()
    }

    fn claims(expires_at: u64) -> SessionClaims {
        SessionClaims {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "s3cr3t".into(),
            expires_at,
            role: "analytics".into(),
            subject: "user-1".into(),
            grants: vec![Grant {
                bucket: "data".into(),
                prefix: "tables/".into(),
                access: Access::READ.union(Access::LIST),
            }],
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn seals_and_opens() {
        let keys = SessionKeys::new(vec![key(1)]);
        let token = keys.seal(&claims(2000)).unwrap();
        assert_eq!(keys.open(&token, at(1000)).unwrap(), claims(2000));
        let other = keys.seal(&claims(2000)).unwrap();
        assert_ne!(token, other, "fresh nonce per token");
    }

    #[test]
    fn expired_tokens_are_expired() {
        let keys = SessionKeys::new(vec![key(1)]);
        let token = keys.seal(&claims(2000)).unwrap();
        let err = keys.open(&token, at(2000)).unwrap_err();
        assert_eq!(err.kind(), AuthErrorKind::ExpiredToken);
    }

    #[test]
    fn rotation_opens_old_tokens_and_seals_with_the_newest() {
        let old = SessionKeys::new(vec![key(1)]);
        let token = old.seal(&claims(2000)).unwrap();
        let rotated = SessionKeys::new(vec![key(2), key(1)]);
        assert!(rotated.open(&token, at(1000)).is_ok());
        let new_token = rotated.seal(&claims(2000)).unwrap();
        let err = old.open(&new_token, at(1000)).unwrap_err();
        assert_eq!(err.kind(), AuthErrorKind::InvalidToken);
        let dropped = SessionKeys::new(vec![key(2)]);
        assert_eq!(
            dropped.open(&token, at(1000)).unwrap_err().kind(),
            AuthErrorKind::InvalidToken
        );
    }

    #[test]
    fn tampering_is_an_invalid_token() {
        let keys = SessionKeys::new(vec![key(1)]);
        let token = keys.seal(&claims(2000)).unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in [0, 1, HEADER_LEN, HEADER_LEN + NONCE_LEN, raw.len() - 1] {
            raw[i] ^= 1;
            let bad = URL_SAFE_NO_PAD.encode(&raw);
            let err = keys.open(&bad, at(1000)).unwrap_err();
            assert_eq!(err.kind(), AuthErrorKind::InvalidToken, "byte {i}");
            raw[i] ^= 1;
        }
        for bad in ["", "!!!", "AQ", &"A".repeat(MAX_TOKEN_CHARS + 1)] {
            assert_eq!(
                keys.open(bad, at(1000)).unwrap_err().kind(),
                AuthErrorKind::InvalidToken
            );
        }
        assert!(SessionKeys::default().seal(&claims(1)).is_none());
    }

    #[test]
    fn keys_parse_from_base64() {
        let text = STANDARD.encode([7u8; 32]);
        let k = SessionKey::from_base64(&format!(" {text}\n")).unwrap();
        assert_eq!(k.id_hex().len(), 16);
        assert_eq!(
            SessionKey::from_base64("c2hvcnQ=").unwrap_err(),
            SessionKeyError::WrongLength(5)
        );
        assert_eq!(
            SessionKey::from_base64("%%%").unwrap_err(),
            SessionKeyError::NotBase64
        );
    }
}
