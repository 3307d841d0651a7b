//! JSON Web Tokens (RFC 7519) signed with RS256 or ES256, checked against a role.
//!
//! [`Token::decode`] splits and parses a compact JWS without trusting it; the caller then checks
//! the issuer, finds the keys, verifies the signature and finally the claims, in that order:
//! nothing from the payload but `iss` is acted on before the signature is verified.
//!
//! The signature is verified by `jsonwebtoken` (on `ring`), restricted to the token's own
//! algorithm (RS256 or ES256) and the JWKS keys of that algorithm. The claim rules stay here
//! because they need what `jsonwebtoken`'s `Validation` cannot give: the caller's clock (STS
//! and its tests pass `now`), the audience that matched, subject patterns, and which claim is
//! missing or wrong for STS's error answers.

use std::fmt;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::Validation;
use serde::de::IgnoredAny;
use serde::Deserialize;

use super::jwks::{b64, Alg, JwkSet};

/// Clock leeway on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: f64 = 60.0;

/// Why a token was refused. [`JwtError::is_denial`] and [`JwtError::is_expiry`] tell the STS
/// answer apart; everything else is an invalid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// Not three base64url parts of JSON, or a claim of the wrong type.
    Malformed(&'static str),
    /// `alg` is not RS256 or ES256 (`none`, `HS256`, ...).
    UnsupportedAlg(String),
    /// The header names a key id the issuer's JWKS does not have.
    UnknownKid(String),
    /// The JWKS has no key for the token's algorithm.
    NoKeyForAlg(Alg),
    /// No key verifies the signature.
    BadSignature,
    /// `iss` is not the role's issuer.
    WrongIssuer(String),
    /// A required claim is missing.
    MissingClaim(&'static str),
    /// `exp` is past (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// No `aud` value is one of the role's audiences.
    AudienceNotAllowed,
    /// `sub` matches none of the role's subject patterns.
    SubjectNotAllowed(String),
}

impl JwtError {
    /// The token is genuine but the role does not allow it (`AccessDenied`).
    pub fn is_denial(&self) -> bool {
        matches!(
            self,
            JwtError::AudienceNotAllowed | JwtError::SubjectNotAllowed(_)
        )
    }

    /// The token has expired (`ExpiredTokenException`).
    pub fn is_expiry(&self) -> bool {
        matches!(self, JwtError::Expired)
    }
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtError::Malformed(what) => write!(f, "malformed token: {what}"),
            JwtError::UnsupportedAlg(alg) => {
                write!(
                    f,
                    "unsupported signing algorithm {alg:?}; use RS256 or ES256"
                )
            }
            JwtError::UnknownKid(kid) => write!(f, "no key with kid {kid:?} in the issuer's JWKS"),
            JwtError::NoKeyForAlg(alg) => {
                write!(f, "the issuer's JWKS has no {} key", alg.name())
            }
            JwtError::BadSignature => f.write_str("the token's signature does not verify"),
            JwtError::WrongIssuer(iss) => write!(f, "issuer {iss:?} is not trusted by the role"),
            JwtError::MissingClaim(claim) => write!(f, "the token has no {claim} claim"),
            JwtError::Expired => f.write_str("Token is expired"),
            JwtError::NotYetValid => f.write_str("the token is not valid yet (nbf)"),
            JwtError::AudienceNotAllowed => f.write_str("the token's audience is not allowed"),
            JwtError::SubjectNotAllowed(sub) => {
                write!(f, "subject {sub:?} may not assume this role")
            }
        }
    }
}

impl std::error::Error for JwtError {}

/// What a role requires of a token's claims.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRules<'a> {
    /// One of these must be in `aud`.
    pub audiences: &'a [String],
    /// `sub` must match one (exact, or a prefix ending in `*`); empty = any.
    pub subjects: &'a [String],
}

/// The caller's identity once every check has passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `sub`.
    pub subject: String,
    /// The `aud` value that matched.
    pub audience: String,
}

/// A decoded, not yet trusted, token.
#[derive(Debug)]
pub struct Token<'a> {
    alg: Alg,
    kid: Option<String>,
    claims: Claims,
    /// The whole compact token, handed to `jsonwebtoken` for verification.
    text: &'a str,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    exp: Option<f64>,
    #[serde(default)]
    nbf: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl<'a> Token<'a> {
    /// Split and parse `text`; the algorithm must be RS256 or ES256.
    pub fn decode(text: &'a str) -> Result<Token<'a>, JwtError> {
        let text = text.trim();
        let (signing_input, signature) = text
            .rsplit_once('.')
            .ok_or(JwtError::Malformed("not a compact JWS"))?;
        let (header, payload) = signing_input
            .split_once('.')
            .ok_or(JwtError::Malformed("not a compact JWS"))?;
        if payload.contains('.') {
            return Err(JwtError::Malformed("encrypted tokens are not supported"));
        }
        let header = b64(Some(header)).ok_or(JwtError::Malformed("header is not base64url"))?;
        let header: Header = serde_json::from_slice(&header)
            .map_err(|_| JwtError::Malformed("header is not a JOSE header"))?;
        let alg = Alg::from_name(&header.alg).ok_or(JwtError::UnsupportedAlg(header.alg))?;
        let payload = b64(Some(payload)).ok_or(JwtError::Malformed("payload is not base64url"))?;
        let claims: Claims = serde_json::from_slice(&payload)
            .map_err(|_| JwtError::Malformed("payload is not a JSON object of JWT claims"))?;
        b64(Some(signature)).ok_or(JwtError::Malformed("signature is not base64url"))?;
        Ok(Token {
            alg,
            kid: header.kid,
            claims,
            text,
        })
    }

    /// The header's key id.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// `iss` must equal `issuer`.
    pub fn check_issuer(&self, issuer: &str) -> Result<(), JwtError> {
        match self.claims.iss.as_deref() {
            None => Err(JwtError::MissingClaim("iss")),
            Some(iss) if iss == issuer => Ok(()),
            Some(iss) => Err(JwtError::WrongIssuer(iss.to_owned())),
        }
    }

    /// Verify the signature with the key named by `kid`, or without a `kid` with any key of the
    /// token's algorithm.
    pub fn verify_signature(&self, keys: &JwkSet) -> Result<(), JwtError> {
        let candidates: Vec<_> = match &self.kid {
            Some(kid) => {
                let named: Vec<_> = keys
                    .keys()
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .collect();
                if named.is_empty() {
                    return Err(JwtError::UnknownKid(kid.clone()));
                }
                named
            }
            None => keys.keys().iter().collect(),
        };
        let fitting: Vec<_> = candidates
            .into_iter()
            .filter(|k| k.alg == self.alg)
            .collect();
        if fitting.is_empty() {
            return Err(JwtError::NoKeyForAlg(self.alg));
        }
        // Signature and algorithm only: the claims are checked by `check_claims`.
        let mut only_signature = Validation::new(self.alg.algorithm());
        only_signature.validate_exp = false;
        only_signature.validate_nbf = false;
        only_signature.validate_aud = false;
        only_signature.required_spec_claims.clear();
        for key in fitting {
            match jsonwebtoken::decode::<IgnoredAny>(self.text, key.decoding_key(), &only_signature)
            {
                Ok(_) => return Ok(()),
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
                Err(_) => return Err(JwtError::Malformed("token does not decode")),
            }
        }
        Err(JwtError::BadSignature)
    }

    /// Check `exp` and `nbf` at `now` (Unix seconds, with [`LEEWAY_SECS`]), then `aud` and
    /// `sub` against `rules`. Call only after [`Self::verify_signature`].
    pub fn check_claims(&self, now: u64, rules: &ClaimRules<'_>) -> Result<Identity, JwtError> {
        let now = now as f64;
        let exp = self.claims.exp.ok_or(JwtError::MissingClaim("exp"))?;
        if now > exp + LEEWAY_SECS {
            return Err(JwtError::Expired);
        }
        if self.claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
            return Err(JwtError::NotYetValid);
        }
        let auds: &[String] = match &self.claims.aud {
            None => return Err(JwtError::MissingClaim("aud")),
            Some(Audience::One(a)) => std::slice::from_ref(a),
            Some(Audience::Many(list)) => list,
        };
        let audience = auds
            .iter()
            .find(|a| rules.audiences.contains(a))
            .ok_or(JwtError::AudienceNotAllowed)?
            .clone();
        let subject = self
            .claims
            .sub
            .clone()
            .ok_or(JwtError::MissingClaim("sub"))?;
        if !subject_allowed(rules.subjects, &subject) {
            return Err(JwtError::SubjectNotAllowed(subject));
        }
        Ok(Identity { subject, audience })
    }
}

/// True when `sub` matches one of `patterns` (exact, or a prefix ending in `*`), or there are
/// no patterns.
pub fn subject_allowed(patterns: &[String], sub: &str) -> bool {
    patterns.is_empty()
        || patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => sub.starts_with(prefix),
            None => p == sub,
        })
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::{json, Value};

    use super::*;
    use crate::sts::testkeys::TestKey;

    const NOW: u64 = 1_800_000_000;
    const ISSUER: &str = "https://issuer.test";

    fn claims() -> Value {
        json!({"iss": ISSUER, "sub": "repo:org/app", "aud": "rangecache",
               "exp": NOW + 300, "nbf": NOW - 10, "iat": NOW - 10})
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Decode, check issuer, signature and claims as the handler does.
    fn check(token: &str, keys: &JwkSet, subjects: &[&str]) -> Result<Identity, JwtError> {
        let t = Token::decode(token)?;
        t.check_issuer(ISSUER)?;
        t.verify_signature(keys)?;
        let audiences = strings(&["rangecache", "other"]);
        let subjects = strings(subjects);
        t.check_claims(
            NOW,
            &ClaimRules {
                audiences: &audiences,
                subjects: &subjects,
            },
        )
    }

    fn set(keys: &[(&TestKey, &str)]) -> JwkSet {
        let doc = json!({"keys": keys.iter().map(|(k, kid)| k.jwk(kid)).collect::<Vec<_>>()});
        JwkSet::parse(doc.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn rs256_and_es256_tokens_verify() {
        let (rsa, ec) = (TestKey::rsa(), TestKey::ec());
        let keys = set(&[(&rsa, "r"), (&ec, "e")]);
        let want = Identity {
            subject: "repo:org/app".into(),
            audience: "rangecache".into(),
        };
        assert_eq!(
            check(&rsa.sign(Some("r"), &claims()), &keys, &[]),
            Ok(want.clone())
        );
        assert_eq!(
            check(&ec.sign(Some("e"), &claims()), &keys, &[]),
            Ok(want.clone())
        );
        // Without a kid, every key of the algorithm is tried.
        assert_eq!(
            check(&ec.sign(None, &claims()), &keys, &[]),
            Ok(want.clone())
        );
        assert_eq!(check(&rsa.sign(None, &claims()), &keys, &[]), Ok(want));
        // An audience list matches on any member; the matching one is reported.
        let mut c = claims();
        c["aud"] = json!(["x", "other"]);
        let id = check(&ec.sign(Some("e"), &c), &keys, &[]).unwrap();
        assert_eq!(id.audience, "other");
    }

    #[test]
    fn signatures_must_match_the_named_key() {
        let (rsa, ec, ec2) = (TestKey::rsa(), TestKey::ec(), TestKey::ec());
        let keys = set(&[(&rsa, "r"), (&ec, "e")]);
        // Signed by a key not in the set, under an id that is.
        assert_eq!(
            check(&ec2.sign(Some("e"), &claims()), &keys, &[]),
            Err(JwtError::BadSignature)
        );
        assert_eq!(
            check(&ec2.sign(None, &claims()), &keys, &[]),
            Err(JwtError::BadSignature)
        );
        assert_eq!(
            check(&ec.sign(Some("zz"), &claims()), &keys, &[]),
            Err(JwtError::UnknownKid("zz".into()))
        );
        // An ES256 token naming the RSA key.
        assert_eq!(
            check(&ec.sign(Some("r"), &claims()), &keys, &[]),
            Err(JwtError::NoKeyForAlg(Alg::Es256))
        );
        // A changed payload breaks the signature.
        let token = rsa.sign(Some("r"), &claims());
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut c = claims();
        c["sub"] = json!("repo:evil/app");
        let forged = URL_SAFE_NO_PAD.encode(c.to_string());
        parts[1] = &forged;
        assert_eq!(
            check(&parts.join("."), &keys, &[]),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn none_and_hmac_are_refused() {
        let ec = TestKey::ec();
        let keys = set(&[(&ec, "e")]);
        for alg in ["none", "HS256", "PS256"] {
            let t = ec.sign_with_header(&json!({"alg": alg}), &claims());
            assert_eq!(
                check(&t, &keys, &[]),
                Err(JwtError::UnsupportedAlg(alg.into()))
            );
        }
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims().to_string())
        );
        assert_eq!(
            check(&unsigned, &keys, &[]),
            Err(JwtError::UnsupportedAlg("none".into()))
        );
    }

    #[test]
    fn claims_are_checked() {
        let ec = TestKey::ec();
        let keys = set(&[(&ec, "e")]);
        let with = |field: &str, value: Value| {
            let mut c = claims();
            c[field] = value;
            ec.sign(Some("e"), &c)
        };
        assert_eq!(
            check(&with("iss", json!("https://evil.test")), &keys, &[]),
            Err(JwtError::WrongIssuer("https://evil.test".into()))
        );
        assert_eq!(
            check(&with("aud", json!("someone-else")), &keys, &[]),
            Err(JwtError::AudienceNotAllowed)
        );
        assert_eq!(
            check(&with("aud", json!([])), &keys, &[]),
            Err(JwtError::AudienceNotAllowed)
        );
        // exp and nbf with 60 s of leeway.
        assert!(check(&with("exp", json!(NOW - 59)), &keys, &[]).is_ok());
        assert_eq!(
            check(&with("exp", json!(NOW - 61)), &keys, &[]),
            Err(JwtError::Expired)
        );
        assert!(check(&with("nbf", json!(NOW + 59)), &keys, &[]).is_ok());
        assert_eq!(
            check(&with("nbf", json!(NOW + 61)), &keys, &[]),
            Err(JwtError::NotYetValid)
        );
        assert_eq!(
            check(&with("exp", json!("tomorrow")), &keys, &[]),
            Err(JwtError::Malformed(
                "payload is not a JSON object of JWT claims"
            ))
        );
        let mut c = claims();
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            check(&ec.sign(Some("e"), &c), &keys, &[]),
            Err(JwtError::MissingClaim("exp"))
        );
        // Subjects: exact or prefix patterns.
        let token = ec.sign(Some("e"), &claims());
        assert!(check(&token, &keys, &["repo:org/*"]).is_ok());
        assert!(check(&token, &keys, &["x", "repo:org/app"]).is_ok());
        assert_eq!(
            check(&token, &keys, &["repo:org/ap"]),
            Err(JwtError::SubjectNotAllowed("repo:org/app".into()))
        );
        assert!(JwtError::SubjectNotAllowed(String::new()).is_denial());
        assert!(JwtError::Expired.is_expiry());
    }

    #[test]
    fn garbage_is_malformed() {
        let keys = set(&[(&TestKey::ec(), "e")]);
        for bad in ["", "abc", "a.b", "a.b.c", "a.b.c.d.e", "!!.!!.!!"] {
            let err = check(bad, &keys, &[]).unwrap_err();
            assert!(matches!(err, JwtError::Malformed(_)), "{bad:?}: {err:?}");
        }
    }
}
