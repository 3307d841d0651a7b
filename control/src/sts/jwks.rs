//! JSON Web Key Sets (RFC 7517): the public keys an identity provider signs its tokens with.
//!
//! Only signing keys rangecache can check are kept: RSA (RS256, 2048 to 8192 bits) and EC
//! P-256 (ES256). Keys of other types, curves or algorithms, and encryption keys
//! (`"use": "enc"`), are skipped; a key of a supported type whose numbers do not decode is an
//! error, as is a set with no usable key at all. Each key becomes a `jsonwebtoken`
//! [`DecodingKey`]; signatures are verified by `jsonwebtoken` (on `ring`), see
//! [`super::jwt`].

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

/// Smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_BYTES: usize = 256;

/// Largest RSA modulus accepted, in bytes (8192 bits).
const MAX_RSA_BYTES: usize = 1024;

/// A JWS signature algorithm rangecache verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256, signature `r || s`.
    Es256,
}

impl Alg {
    /// The algorithm named `name` in a JOSE header or JWK; `None` for any other (`none`,
    /// `HS256`, `PS256`, ...).
    pub fn from_name(name: &str) -> Option<Alg> {
        match name {
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            _ => None,
        }
    }

    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }

    /// The same algorithm as `jsonwebtoken` names it.
    pub fn algorithm(self) -> Algorithm {
        match self {
            Alg::Rs256 => Algorithm::RS256,
            Alg::Es256 => Algorithm::ES256,
        }
    }
}

/// Why a JWKS document was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Not a JSON object with a `keys` array.
    #[error("not a JWKS document: {0}")]
    NotJwks(String),
    /// A supported key whose parameters do not decode.
    #[error("key {index}{kid}: {reason}")]
    BadKey {
        /// Position in `keys`.
        index: usize,
        /// `" (kid ...)"` or empty.
        kid: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// No RS256 or ES256 signing key in the set.
    #[error("no RS256 or ES256 signing key among its {0} keys")]
    NoUsableKey(usize),
}

/// One public signing key.
#[derive(Clone)]
pub struct Jwk {
    /// The key id, if the provider gave one.
    pub kid: Option<String>,
    /// The one algorithm this key verifies.
    pub alg: Alg,
    key: DecodingKey,
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Jwk {
    /// The key, for `jsonwebtoken`'s verification.
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

/// The usable keys of one JWKS document.
#[derive(Debug, Clone, Default)]
pub struct JwkSet {
    keys: Vec<Jwk>,
}

impl JwkSet {
    /// Parse a JWKS document (`{"keys": [...]}`).
    pub fn parse(json: &[u8]) -> Result<JwkSet, JwksError> {
        let doc: RawSet =
            serde_json::from_slice(json).map_err(|e| JwksError::NotJwks(e.to_string()))?;
        let total = doc.keys.len();
        let mut keys = Vec::with_capacity(total);
        for (index, raw) in doc.keys.into_iter().enumerate() {
            if let Some(key) = raw.into_jwk(index)? {
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey(total));
        }
        Ok(JwkSet { keys })
    }

    /// Every usable key.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// True when a key has id `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<RawJwk>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

impl RawJwk {
    /// The key, `None` if it is of a kind rangecache does not verify with.
    fn into_jwk(self, index: usize) -> Result<Option<Jwk>, JwksError> {
        if self.use_.as_deref().is_some_and(|u| u != "sig") {
            return Ok(None);
        }
        let by_type = match (self.kty.as_deref(), self.crv.as_deref()) {
            (Some("RSA"), _) => Alg::Rs256,
            (Some("EC"), Some("P-256")) => Alg::Es256,
            _ => return Ok(None),
        };
        let alg = match self.alg.as_deref() {
            None => by_type,
            Some(name) => match Alg::from_name(name) {
                Some(alg) if alg == by_type => alg,
                _ => return Ok(None),
            },
        };
        let bad = |reason| JwksError::BadKey {
            index,
            kid: self
                .kid
                .as_ref()
                .map(|k| format!(" (kid {k:?})"))
                .unwrap_or_default(),
            reason,
        };
        let key = match alg {
            Alg::Rs256 => {
                let n = strip_zeros(b64(self.n.as_deref()).ok_or_else(|| bad("bad or missing n"))?);
                let e = strip_zeros(b64(self.e.as_deref()).ok_or_else(|| bad("bad or missing e"))?);
                if !(MIN_RSA_BYTES..=MAX_RSA_BYTES).contains(&n.len()) {
                    return Ok(None);
                }
                if e.is_empty() {
                    return Err(bad("exponent is zero"));
                }
                DecodingKey::from_rsa_raw_components(&n, &e)
            }
            Alg::Es256 => {
                let x = b64(self.x.as_deref()).ok_or_else(|| bad("bad or missing x"))?;
                let y = b64(self.y.as_deref()).ok_or_else(|| bad("bad or missing y"))?;
                if x.len() != 32 || y.len() != 32 {
                    return Err(bad("P-256 coordinates must be 32 bytes each"));
                }
                let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
                DecodingKey::from_ec_components(&x, &y).map_err(|_| bad("bad P-256 coordinates"))?
            }
        };
        Ok(Some(Jwk {
            kid: self.kid,
            alg,
            key,
        }))
    }
}

/// Base64url without padding (a padded value is tolerated).
pub fn b64(text: Option<&str>) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text?.trim_end_matches('=')).ok()
}

fn strip_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|&&b| b == 0).count();
    v.drain(..zeros);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sts::testkeys::TestKey;

    #[test]
    fn parses_rsa_and_ec_keys_and_skips_others() {
        let doc = serde_json::json!({"keys": [
            TestKey::rsa().jwk("r1"),
            TestKey::ec().jwk("e1"),
            {"kty": "oct", "k": "AAAA"},
            {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"},
            {"kty": "RSA", "use": "enc", "n": "AA", "e": "AQAB"},
            {"kty": "RSA", "alg": "PS256", "n": "AA", "e": "AQAB"},
        ]});
        let set = JwkSet::parse(doc.to_string().as_bytes()).unwrap();
        let kinds: Vec<_> = set
            .keys()
            .iter()
            .map(|k| (k.kid.as_deref().unwrap(), k.alg))
            .collect();
        assert_eq!(kinds, [("r1", Alg::Rs256), ("e1", Alg::Es256)]);
        assert!(set.has_kid("e1") && !set.has_kid("x"));
    }

    #[test]
    fn rejects_broken_documents() {
        assert!(matches!(JwkSet::parse(b"[]"), Err(JwksError::NotJwks(_))));
        assert_eq!(
            JwkSet::parse(br#"{"keys": [{"kty": "oct"}]}"#).unwrap_err(),
            JwksError::NoUsableKey(1)
        );
        let err = JwkSet::parse(
            br#"{"keys": [{"kty": "EC", "crv": "P-256", "kid": "k", "x": "AAAA", "y": "AAAA"}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "key 0 (kid \"k\"): P-256 coordinates must be 32 bytes each"
        );
        let err =
            JwkSet::parse(br#"{"keys": [{"kty": "RSA", "n": "!!", "e": "AQAB"}]}"#).unwrap_err();
        assert_eq!(err.to_string(), "key 0: bad or missing n");
    }
}
