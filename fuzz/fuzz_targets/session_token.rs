//! Fuzzes `auth::SessionKeys::open`, which the data plane runs on every untrusted
//! `x-amz-security-token`.
//!
//! Run: `cargo +nightly fuzz run session_token` from the repository root.
//!
//! Beyond "never panics": arbitrary input never opens (forging needs the key), every failure is
//! `InvalidToken` or `ExpiredToken`, and a real token with any one byte changed is refused.

#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use rangecache_dataplane::auth::{
    Access, AuthErrorKind, Grant, SessionClaims, SessionKey, SessionKeys,
};

fn keys() -> SessionKeys {
    SessionKeys::new(vec![
        SessionKey::from_bytes(&[7u8; 32]).expect("32 bytes"),
        SessionKey::from_bytes(&[8u8; 32]).expect("32 bytes"),
    ])
}

fuzz_target!(|data: &[u8]| {
    let keys = keys();
    let now = UNIX_EPOCH + Duration::from_secs(1_000);
    if let Ok(text) = std::str::from_utf8(data) {
        match keys.open(text, now) {
            Ok(claims) => panic!("forged a token: {claims:?}"),
            Err(e) => assert!(matches!(
                e.kind(),
                AuthErrorKind::InvalidToken | AuthErrorKind::ExpiredToken
            )),
        }
    }
    // A genuine token with one character changed (position and value from the input).
    if data.len() >= 2 {
        let claims = SessionClaims {
            access_key_id: "ASIAFUZZ".into(),
            secret_access_key: "secret".into(),
            expires_at: 2_000,
            role: "r".into(),
            subject: "s".into(),
            grants: vec![Grant {
                bucket: "b".into(),
                prefix: String::new(),
                access: Access::READ,
            }],
        };
        let token = keys.seal(&claims).expect("a key is configured");
        let mut bytes = token.into_bytes();
        let i = usize::from(data[0]) % bytes.len();
        let replacement = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            [usize::from(data[1]) % 64];
        if bytes[i] != replacement {
            bytes[i] = replacement;
            let text = String::from_utf8(bytes).expect("base64url is ASCII");
            assert!(keys.open(&text, SystemTime::from(now)).is_err());
        }
    }
});
