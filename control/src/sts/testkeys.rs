//! Test-only signing keys and a JWT signer: an RSA 2048 key vendored as PKCS#8 DER
//! (`testdata/rsa2048.pk8.der`, made with `openssl genpkey` and never used anywhere else) and
//! P-256 keys generated per test.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents, ECDSA_P256_SHA256_FIXED_SIGNING,
    RSA_PKCS1_SHA256,
};
use serde_json::{json, Value};

const RSA_PKCS8: &[u8] = include_bytes!("testdata/rsa2048.pk8.der");

/// A private key that signs test tokens.
pub enum TestKey {
    /// RS256.
    Rsa(RsaKeyPair),
    /// ES256.
    Ec(EcdsaKeyPair),
}

impl TestKey {
    /// The vendored RSA key.
    pub fn rsa() -> TestKey {
        TestKey::Rsa(RsaKeyPair::from_pkcs8(RSA_PKCS8).unwrap())
    }

    /// A fresh P-256 key.
    pub fn ec() -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        TestKey::Ec(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .unwrap(),
        )
    }

    /// The JOSE algorithm name.
    pub fn alg(&self) -> &'static str {
        match self {
            TestKey::Rsa(_) => "RS256",
            TestKey::Ec(_) => "ES256",
        }
    }

    /// The public key as a JWK with id `kid`.
    pub fn jwk(&self, kid: &str) -> Value {
        let b = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        match self {
            TestKey::Rsa(k) => {
                let c = RsaPublicKeyComponents::<Vec<u8>>::from(k.public());
                json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                       "n": b(&c.n), "e": b(&c.e)})
            }
            TestKey::Ec(k) => {
                let point = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": kid,
                       "x": b(&point[1..33]), "y": b(&point[33..65])})
            }
        }
    }

    /// A JWKS document holding this key as `kid`.
    pub fn jwks(&self, kid: &str) -> String {
        json!({"keys": [self.jwk(kid)]}).to_string()
    }

    /// A compact JWS of `claims` with header `{"alg": <own>, "kid": kid}` (no kid if `None`).
    pub fn sign(&self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = json!({"alg": self.alg(), "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        self.sign_with_header(&header, claims)
    }

    /// A compact JWS of `claims` under any `header` (to forge bad ones).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = SystemRandom::new();
        let signature = match self {
            TestKey::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
                    .unwrap();
                sig
            }
            TestKey::Ec(k) => k.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}
