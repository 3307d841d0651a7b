//! rangecache's OIDC signing keys: RSA private keys from one PEM file, their public JWKS, and
//! RS256 token minting.
//!
//! Several keys in the file are a rotation: every key is published in the JWKS (so relying
//! parties accept tokens signed by any of them), and the **last** key in the file, the newest,
//! signs. To rotate: append a new key, reload (SIGHUP); once every relying party has fetched
//! the new JWKS and old tokens have expired, remove the oldest key and reload again.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::rsa::{KeyPair, PublicKeyComponents};
use ring::signature::RSA_PKCS1_SHA256;
use serde::Serialize;
use sha2_compat::sha256;

/// Smallest RSA modulus accepted, in bits (what AWS and the existing STS accept).
const MIN_RSA_BITS: usize = 2048;

/// Why a key file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
    /// PEM that does not parse.
    #[error("not PEM: {0}")]
    Pem(String),
    /// A private key that is not RSA, or an RSA key ring refuses.
    #[error("key {index}: {reason}")]
    BadKey {
        /// Position among the file's keys (0-based).
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// No private key at all.
    #[error("holds no RSA private key (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)")]
    Empty,
}

/// Minting a token failed (ring refused to sign; does not happen with a loaded key).
#[derive(Debug, thiserror::Error)]
#[error("RS256 signing failed")]
pub struct MintError;

/// One RSA signing key and its published form.
pub struct SigningKey {
    kid: String,
    pair: KeyPair,
    n: String,
    e: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish()
    }
}

impl SigningKey {
    fn new(index: usize, pair: KeyPair) -> Result<Self, KeyFileError> {
        let bits = pair.public().modulus_len() * 8;
        if bits < MIN_RSA_BITS {
            return Err(KeyFileError::BadKey {
                index,
                reason: format!("RSA key of {bits} bits; at least {MIN_RSA_BITS} are required"),
            });
        }
        let public = PublicKeyComponents::<Vec<u8>>::from(pair.public());
        let n = URL_SAFE_NO_PAD.encode(&public.n);
        let e = URL_SAFE_NO_PAD.encode(&public.e);
        // RFC 7638 thumbprint: SHA-256 of the required members in lexicographic order.
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(sha256(canonical.as_bytes()));
        Ok(Self { kid, pair, n, e })
    }

    /// The key id (`kid`): the key's RFC 7638 thumbprint.
    pub fn kid(&self) -> &str {
        &self.kid
    }
}

/// The keys of one `oidc.key_file`, in file order.
#[derive(Debug)]
pub struct OidcKeys {
    keys: Vec<SigningKey>,
}

/// One key of a JWKS document.
#[derive(Serialize)]
struct Jwk<'a> {
    kty: &'static str,
    #[serde(rename = "use")]
    use_: &'static str,
    alg: &'static str,
    kid: &'a str,
    n: &'a str,
    e: &'a str,
}

/// The JOSE header of a minted token.
#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

/// What a minted token says.
#[derive(Debug, Clone, Serialize)]
pub struct Claims<'a> {
    /// `iss`.
    pub iss: &'a str,
    /// `sub`.
    pub sub: &'a str,
    /// `aud`.
    pub aud: &'a str,
    /// `iat` and `nbf`, seconds since the epoch.
    pub iat: u64,
    /// `exp`, seconds since the epoch.
    pub exp: u64,
    /// `jti`: unique per token.
    pub jti: &'a str,
}

impl OidcKeys {
    /// Read and parse `path`.
    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        let text = std::fs::read(path).map_err(KeyFileError::Read)?;
        Self::parse_pem(&text)
    }

    /// Every RSA private key in `pem` (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`);
    /// certificates and other blocks are skipped, other private keys are an error.
    pub fn parse_pem(pem: &[u8]) -> Result<Self, KeyFileError> {
        use rustls_pemfile::Item;
        let mut keys = Vec::new();
        for item in rustls_pemfile::read_all(&mut &pem[..]) {
            let item = item.map_err(|e| KeyFileError::Pem(e.to_string()))?;
            let index = keys.len();
            let pair = match item {
                Item::Pkcs1Key(der) => KeyPair::from_der(der.secret_pkcs1_der()),
                Item::Pkcs8Key(der) => KeyPair::from_pkcs8(der.secret_pkcs8_der()),
                Item::Sec1Key(_) => {
                    return Err(KeyFileError::BadKey {
                        index,
                        reason: "an EC key; rangecache signs its tokens with RSA (RS256)".into(),
                    })
                }
                _ => continue,
            };
            let pair = pair.map_err(|e| KeyFileError::BadKey {
                index,
                reason: format!("not a usable RSA key: {e}"),
            })?;
            keys.push(SigningKey::new(index, pair)?);
        }
        if keys.is_empty() {
            return Err(KeyFileError::Empty);
        }
        Ok(Self { keys })
    }

    /// The key that signs: the last in the file.
    pub fn signing(&self) -> &SigningKey {
        self.keys.last().expect("a key set is never empty")
    }

    /// The key ids, in file order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(SigningKey::kid)
    }

    /// The public JWKS document: `{"keys": [...]}` with every key, in file order.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<Jwk<'_>> = self
            .keys
            .iter()
            .map(|k| Jwk {
                kty: "RSA",
                use_: "sig",
                alg: "RS256",
                kid: &k.kid,
                n: &k.n,
                e: &k.e,
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// A compact RS256 JWT with `claims`, signed by [`OidcKeys::signing`].
    pub fn mint(&self, claims: &Claims<'_>, rng: &SystemRandom) -> Result<String, MintError> {
        let key = self.signing();
        let header = Header {
            alg: "RS256",
            typ: "JWT",
            kid: &key.kid,
        };
        let mut token = String::with_capacity(1024);
        push_json(&mut token, &header);
        token.push('.');
        push_json(&mut token, claims);
        let mut signature = vec![0; key.pair.public().modulus_len()];
        key.pair
            .sign(&RSA_PKCS1_SHA256, rng, token.as_bytes(), &mut signature)
            .map_err(|_| MintError)?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }
}

/// Append `value` as base64url JSON.
fn push_json(out: &mut String, value: &impl Serialize) {
    // Plain structs of strings and integers: serialization cannot fail.
    let json = serde_json::to_vec(value).unwrap_or_default();
    URL_SAFE_NO_PAD.encode_string(json, out);
}

/// SHA-256 through ring (already a dependency), under the name the code reads.
mod sha2_compat {
    /// The SHA-256 digest of `data`.
    pub fn sha256(data: &[u8]) -> [u8; 32] {
        let d = ring::digest::digest(&ring::digest::SHA256, data);
        let mut out = [0; 32];
        out.copy_from_slice(d.as_ref());
        out
    }
}
