//! Tests of [`super::keys`]: parsing, the JWKS, and tokens the STS code verifies.

use super::keys::*;
use ring::rand::SystemRandom;

/// Two 2048-bit RSA keys (PKCS#8 and PKCS#1), generated for these tests only.
const TWO_KEYS: &str = include_str!("testdata/two_keys.pem");

#[test]
fn parses_every_key_and_the_last_signs() {
    let keys = OidcKeys::parse_pem(TWO_KEYS.as_bytes()).unwrap();
    let kids: Vec<_> = keys.kids().collect();
    assert_eq!(kids.len(), 2);
    assert_ne!(kids[0], kids[1]);
    assert_eq!(keys.signing().kid(), kids[1]);
    let jwks = keys.jwks();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert_eq!(jwks["keys"][1]["kid"], kids[1]);
    assert_eq!(jwks["keys"][0]["e"], "AQAB");
}

#[test]
fn minted_tokens_verify_against_the_published_jwks() {
    let keys = OidcKeys::parse_pem(TWO_KEYS.as_bytes()).unwrap();
    let claims = Claims {
        iss: "https://rc.test",
        sub: "rangecache:default",
        aud: "sts.test",
        iat: 1_900_000_000,
        exp: 1_900_000_300,
        jti: "j1",
    };
    let token = keys.mint(&claims, &SystemRandom::new()).unwrap();
    // Verified by the STS's own JWKS and JWT code, as rangecache A does.
    use crate::sts::jwt::{ClaimRules, Token};
    let jwks = crate::sts::jwks::JwkSet::parse(keys.jwks().to_string().as_bytes()).unwrap();
    let t = Token::decode(&token).unwrap();
    assert_eq!(t.kid(), Some(keys.signing().kid()));
    t.check_issuer("https://rc.test").unwrap();
    t.verify_signature(&jwks).unwrap();
    let rules = ClaimRules {
        audiences: &["sts.test".to_owned()],
        subjects: &["rangecache:*".to_owned()],
    };
    let id = t.check_claims(1_900_000_100, &rules).unwrap();
    assert_eq!(id.subject, "rangecache:default");
    // A key that is not in the set fails verification.
    let first_only = serde_json::json!({ "keys": [keys.jwks()["keys"][0].clone()] });
    let jwks = crate::sts::jwks::JwkSet::parse(first_only.to_string().as_bytes()).unwrap();
    assert!(t.verify_signature(&jwks).is_err());
}

#[test]
fn rejects_files_without_rsa_keys() {
    assert!(matches!(
        OidcKeys::parse_pem(b"no pem here"),
        Err(KeyFileError::Empty)
    ));
}
