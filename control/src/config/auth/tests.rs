//! Tests of `[auth]` validation: defaults, every way to give a secret, session token keys,
//! roles, warnings, the redacted view, and errors that name the field.

use crate::test_support::TempFile;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rangecache_dataplane::auth::{Access, AuthMode, SessionKey};

use super::*;
use crate::config::{self, validate, EnvVars, Settings, Sources};
use crate::error::{Phase, StartupError};
use crate::sts::testkeys::TestKey;

fn env(pairs: &[(&str, &str)]) -> EnvVars {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn with_env(text: &str, e: &EnvVars) -> Result<Settings, StartupError> {
    validate::validate(&config::parse(text)?, e, None)
}

fn from_text(text: &str) -> Settings {
    match with_env(text, &EnvVars::new()) {
        Ok(s) => s,
        Err(e) => panic!("config {text:?} was rejected: {e}"),
    }
}

fn invalid(text: &str, e: &EnvVars) -> String {
    match with_env(text, e) {
        Ok(_) => panic!("config {text:?} was accepted"),
        Err(err) => {
            assert_eq!(err.phase(), Phase::ValidateConfig, "{err}");
            err.detail().to_owned()
        }
    }
}

fn b64key(byte: u8) -> String {
    STANDARD.encode([byte; 32])
}

fn key_id(byte: u8) -> String {
    SessionKey::from_bytes(&[byte; 32]).unwrap().id_hex()
}

#[test]
fn default_is_sigv4_and_denies_everything() {
    let s = config::load(&Sources::default(), &EnvVars::new()).unwrap();
    assert_eq!(s.auth.mode, AuthMode::SigV4);
    assert!(s.auth.keys.is_empty() && s.auth.anonymous.is_empty() && s.auth.roles.is_empty());
    assert!(s.auth.session_keys.is_empty());
    let policy = s.auth.policy();
    assert_eq!(policy.mode, AuthMode::SigV4);
    assert!(policy.keys.is_empty() && policy.anonymous.is_empty());
    assert!(
        s.warnings
            .iter()
            .any(|w| w.ends_with("every request will be denied")),
        "{:?}",
        s.warnings
    );
}

#[test]
fn keys_grants_and_anonymous_parse() {
    let secret_file = TempFile::new("  FILESECRET\n");
    let text = format!(
        r#"
        [[auth.keys]]
        access_key_id = "AKIDREADER"
        secret_access_key = "INLINESECRET"
        grants = [
          {{ bucket = "data", prefix = "tables/", access = ["read", "list"] }},
          {{ bucket = "*", access = "all" }},
        ]
        [[auth.keys]]
        access_key_id = "AKIDENV"
        secret_access_key_env = "WRITER_SECRET"
        grants = [ {{ bucket = "b", access = "WRITE" }} ]
        [[auth.keys]]
        access_key_id = "AKIDFILE"
        secret_access_key_file = "{}"
        [[auth.anonymous]]
        bucket = "public"
        access = ["read"]
        "#,
        secret_file.path()
    );
    let s = with_env(&text, &env(&[("WRITER_SECRET", " ENVSECRET \n")])).unwrap();
    assert!(
        !s.warnings.iter().any(|w| w.contains("auth")),
        "{:?}",
        s.warnings
    );
    let a = &s.auth;
    assert_eq!(a.keys.len(), 3);
    assert_eq!(&*a.keys[0].secret, b"INLINESECRET");
    assert_eq!(a.keys[0].source, SecretSource::Inline);
    assert_eq!(a.keys[0].grants[0].bucket, "data");
    assert_eq!(a.keys[0].grants[0].prefix, "tables/");
    assert_eq!(a.keys[0].grants[0].access, Access::READ.union(Access::LIST));
    assert_eq!(a.keys[0].grants[1].access, Access::ALL);
    assert_eq!(a.keys[0].grants[1].prefix, "");
    assert_eq!(&*a.keys[1].secret, b"ENVSECRET");
    assert_eq!(a.keys[1].source, SecretSource::Env("WRITER_SECRET".into()));
    assert_eq!(a.keys[1].grants[0].access, Access::WRITE);
    assert_eq!(&*a.keys[2].secret, b"FILESECRET");
    assert!(a.keys[2].grants.is_empty());
    assert_eq!(a.anonymous.len(), 1);
    assert_eq!(a.anonymous[0].access, Access::READ);

    let policy = a.policy();
    assert_eq!(policy.keys.len(), 3);
    assert_eq!(&*policy.keys["AKIDENV"].secret, b"ENVSECRET");
    assert_eq!(policy.keys["AKIDREADER"].grants.len(), 2);
    assert_eq!(policy.anonymous.len(), 1);

    // Neither the typed settings' Debug nor the effective view shows a secret.
    let debug = format!("{s:?}");
    let shown = config::effective_toml(&s);
    for secret in ["INLINESECRET", "ENVSECRET", "FILESECRET"] {
        assert!(!debug.contains(secret), "{debug}");
        assert!(!shown.contains(secret), "{shown}");
    }
    let back = config::parse(&shown).unwrap();
    assert_eq!(
        back.auth.keys[0].secret_access_key.as_deref(),
        Some(REDACTED)
    );
    assert_eq!(
        back.auth.keys[1].secret_access_key_env.as_deref(),
        Some("WRITER_SECRET")
    );
    assert_eq!(
        back.auth.keys[2].secret_access_key_file.as_deref(),
        Some(secret_file.path().as_str())
    );
    assert_eq!(
        back.auth.keys[0].grants[1].access,
        Words::Many(vec!["all".into()])
    );
    assert_eq!(back.auth.anonymous[0].access.as_slice(), ["read"]);
}

#[test]
fn session_token_keys_come_from_env_then_file() {
    let text = format!(
        "[auth]\nsession_token_keys = [\"{}\", \"{}\"]\n",
        b64key(3),
        b64key(1)
    );
    let e = env(&[(
        "SESSION_TOKEN_KEY",
        &format!("{}, {},", b64key(1), b64key(2)),
    )]);
    let s = with_env(&text, &e).unwrap();
    assert_eq!(
        s.auth.session_keys.ids(),
        [key_id(1), key_id(2), key_id(3)],
        "env first, newest first, duplicates once"
    );
    assert_eq!(s.auth.policy().session_keys.ids().len(), 3);

    let shown = config::effective_toml(&s);
    assert!(!shown.contains(&b64key(1)), "{shown}");
    assert!(shown.contains(&key_id(2)), "{shown}");

    // Bad keys name their position, never the key.
    let short = STANDARD.encode(b"short-key-material");
    let err = invalid(
        "",
        &env(&[("SESSION_TOKEN_KEY", &format!("{},{short}", b64key(1)))]),
    );
    assert_eq!(
        err,
        "SESSION_TOKEN_KEY: key 2 of 2: session token key must be 32 bytes (base64 of 32 \
         random bytes), got 18"
    );
    let err = invalid(
        &format!(
            "[auth]\nsession_token_keys = [\"{}\", \"not base64!\"]",
            b64key(1)
        ),
        &EnvVars::new(),
    );
    assert_eq!(
        err,
        "auth.session_token_keys[1]: session token key is not base64"
    );
    assert!(!err.contains("not base64!"));
}

#[test]
fn roles_parse_with_defaults() {
    let jwks = TempFile::new(&TestKey::ec().jwks("k1"));
    let text = format!(
        r#"
        [[auth.roles]]
        name = "analytics"
        issuer = "https://issuer.test"
        jwks_file = "{}"
        audiences = ["rangecache"]
        subjects = ["repo:org/*"]
        grants = [ {{ bucket = "data", access = ["read", "list"] }} ]
        [[auth.roles]]
        name = "ci"
        issuer = "http://127.0.0.1:1"
        jwks_url = "http://127.0.0.1:1/jwks.json"
        jwks_refresh = "30s"
        audiences = ["a", "b"]
        max_duration = "12h"
        "#,
        jwks.path()
    );
    let s = from_text(&text);
    let r = &s.auth.roles[0];
    assert_eq!(r.name, "analytics");
    assert_eq!(r.max_duration, Duration::from_secs(3600));
    assert_eq!(r.subjects, ["repo:org/*"]);
    assert_eq!(r.grants[0].access, Access::READ.union(Access::LIST));
    match &r.jwks {
        JwksSource::File { keys, .. } => assert!(keys.has_kid("k1")),
        other => panic!("{other:?}"),
    }
    let ci = s.auth.role("ci").unwrap();
    assert_eq!(ci.max_duration, Duration::from_secs(12 * 3600));
    match &ci.jwks {
        JwksSource::Url(u) => {
            assert_eq!(u.refresh, Duration::from_secs(30));
            assert!(u.tls.is_none());
        }
        other => panic!("{other:?}"),
    }
    assert!(s.auth.role("nope").is_none());
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("no session token key")),
        "{:?}",
        s.warnings
    );
    assert!(s.warnings.iter().any(|w| w.contains("(ci) has no grants")));
    let back = config::parse(&config::effective_toml(&s)).unwrap();
    assert_eq!(
        back.auth.roles[0].jwks_file.as_deref(),
        Some(jwks.path().as_str())
    );
    assert_eq!(back.auth.roles[1].jwks_refresh, "30s");
    assert_eq!(back.auth.roles[1].max_duration, "43200s");

    let with_key = with_env(&text, &env(&[("SESSION_TOKEN_KEY", &b64key(9))])).unwrap();
    assert!(!with_key
        .warnings
        .iter()
        .any(|w| w.contains("no session token key")));
}

#[test]
fn mode_none_warns_and_can_come_from_the_environment() {
    let s = from_text("[auth]\nmode = \"none\"\n");
    assert_eq!(s.auth.mode, AuthMode::None);
    assert_eq!(s.auth.policy().mode, AuthMode::None);
    assert!(s.warnings.iter().any(|w| w == MODE_NONE_WARNING));
    assert!(!s.warnings.iter().any(|w| w.contains("every request")));

    let s = config::load(
        &Sources::default(),
        &env(&[("RANGECACHE_AUTH__MODE", "none")]),
    )
    .unwrap();
    assert_eq!(s.auth.mode, AuthMode::None);
    assert_eq!(
        config::parse(&config::effective_toml(&s))
            .unwrap()
            .auth
            .mode,
        "none"
    );

    let err =
        config::load(&Sources::default(), &env(&[("RANGECACHE_AUTH__KEYS", "x")])).unwrap_err();
    assert!(
        err.detail()
            .starts_with("RANGECACHE_AUTH__KEYS: unknown field"),
        "{err}"
    );
    let err = config::load(
        &Sources::default(),
        &env(&[("RANGECACHE_AUTH__SESSION_TOKEN_KEYS", "x")]),
    )
    .unwrap_err();
    assert!(err.detail().contains("cannot override an array"), "{err}");
}

#[test]
fn errors_name_the_field() {
    let jwks = TempFile::new(&TestKey::rsa().jwks("k"));
    let not_jwks = TempFile::new("{\"keys\": 1}");
    let empty = TempFile::new(" \n");
    let role = |extra: &str| {
        format!(
            "[[auth.roles]]\nname = \"r\"\nissuer = \"https://i\"\naudiences = [\"a\"]\n\
             jwks_file = \"{}\"\n{extra}",
            jwks.path()
        )
    };
    let key = "[[auth.keys]]\naccess_key_id = \"AK\"\nsecret_access_key = \"S\"\n";
    let cases: Vec<(String, &str)> = vec![
        ("[auth]\nmode = \"open\"".into(), "auth.mode: expected \"sigv4\" or \"none\", got \"open\""),
        (
            format!("{key}[[auth.keys]]\naccess_key_id = \"AK2\"\nsecret_access_key = \"S\"\ngrants = [{{ bucket = \"b\", access = \"admin\" }}]"),
            "auth.keys[1].grants[0].access: unknown access \"admin\"; use read, write, list or all",
        ),
        (
            format!("{key}grants = [{{ bucket = \"b\", access = [] }}]"),
            "auth.keys[0].grants[0].access: is empty",
        ),
        (
            format!("{key}grants = [{{ bucket = \"a/b\", access = \"read\" }}]"),
            "auth.keys[0].grants[0].bucket: \"a/b\" is not a bucket name",
        ),
        (
            format!("{key}grants = [{{ bucket = \"\", access = \"read\" }}]"),
            "auth.keys[0].grants[0].bucket: ",
        ),
        (
            format!("{key}{key}"),
            "auth.keys[1].access_key_id: duplicate access key id \"AK\" (also auth.keys[0])",
        ),
        (
            "[[auth.keys]]\naccess_key_id = \"AK\"".into(),
            "auth.keys[0]: set exactly one of secret_access_key, secret_access_key_env and",
        ),
        (
            "[[auth.keys]]\naccess_key_id = \"AK\"\nsecret_access_key = \"S\"\nsecret_access_key_env = \"E\"".into(),
            "auth.keys[0]: set exactly one of",
        ),
        (
            "[[auth.keys]]\naccess_key_id = \"\"\nsecret_access_key = \"S\"".into(),
            "auth.keys[0].access_key_id: \"\" is not an access key id",
        ),
        (
            "[[auth.keys]]\naccess_key_id = \"A/K\"\nsecret_access_key = \"S\"".into(),
            "auth.keys[0].access_key_id: \"A/K\" is not an access key id",
        ),
        (
            "[[auth.keys]]\naccess_key_id = \"AK\"\nsecret_access_key = \"\"".into(),
            "auth.keys[0].secret_access_key: the secret is empty",
        ),
        (
            "[[auth.keys]]\naccess_key_id = \"AK\"\nsecret_access_key_env = \"NOPE_UNSET\"".into(),
            "auth.keys[0].secret_access_key_env: environment variable NOPE_UNSET is not set",
        ),
        (
            "[[auth.keys]]\naccess_key_id = \"AK\"\nsecret_access_key_file = \"/nonexistent/s\"".into(),
            "auth.keys[0].secret_access_key_file: /nonexistent/s: No such file or directory",
        ),
        (
            format!("[[auth.keys]]\naccess_key_id = \"AK\"\nsecret_access_key_file = \"{}\"", empty.path()),
            "auth.keys[0].secret_access_key_file: the secret is empty",
        ),
        (
            "[[auth.anonymous]]\nbucket = \"p\"\naccess = \"rw\"".into(),
            "auth.anonymous[0].access: unknown access \"rw\"",
        ),
        (role("max_duration = \"14m\""), "auth.roles[0].max_duration: must be between 15m and 12h"),
        (role("max_duration = \"13h\""), "auth.roles[0].max_duration: must be between 15m and 12h"),
        (role("max_duration = \"1d\""), "auth.roles[0].max_duration: invalid duration '1d'"),
        (role("subjects = [\"a*b\"]"), "auth.roles[0].subjects[0]: \"a*b\" must be a subject"),
        (role("subjects = [\"\"]"), "auth.roles[0].subjects[0]: "),
        (role("jwks_url = \"http://x/jwks\""), "auth.roles[0]: set exactly one of jwks_file and jwks_url"),
        (
            format!("{}{}", role(""), role("")),
            "auth.roles[1].name: duplicate role name \"r\"",
        ),
        (
            role("grants = [{ bucket = \"b\", access = \"admin\" }]"),
            "auth.roles[0].grants[0].access: unknown access \"admin\"",
        ),
        (
            "[[auth.roles]]\nname = \"r\"\nissuer = \"i\"\naudiences = [\"a\"]".into(),
            "auth.roles[0]: set exactly one of jwks_file and jwks_url",
        ),
        (
            "[[auth.roles]]\nname = \"bad name\"\nissuer = \"i\"\naudiences = [\"a\"]\njwks_url = \"http://x\"".into(),
            "auth.roles[0].name: \"bad name\" is not a role name",
        ),
        (
            "[[auth.roles]]\nname = \"r\"\nissuer = \" \"\naudiences = [\"a\"]\njwks_url = \"http://x\"".into(),
            "auth.roles[0].issuer: must not be empty",
        ),
        (
            "[[auth.roles]]\nname = \"r\"\nissuer = \"i\"\njwks_url = \"http://x\"".into(),
            "auth.roles[0].audiences: must name at least one audience",
        ),
        (
            "[[auth.roles]]\nname = \"r\"\nissuer = \"i\"\naudiences = [\"\"]\njwks_url = \"http://x\"".into(),
            "auth.roles[0].audiences[0]: must not be empty",
        ),
        (
            "[[auth.roles]]\nname = \"r\"\nissuer = \"i\"\naudiences = [\"a\"]\njwks_url = \"ftp://x/k\"".into(),
            "auth.roles[0].jwks_url: scheme must be http or https",
        ),
        (
            "[[auth.roles]]\nname = \"r\"\nissuer = \"i\"\naudiences = [\"a\"]\njwks_url = \"http://x\"\njwks_refresh = \"0s\"".into(),
            "auth.roles[0].jwks_refresh: must be greater than zero",
        ),
        (
            "[[auth.roles]]\nname = \"r\"\nissuer = \"i\"\naudiences = [\"a\"]\njwks_file = \"/nonexistent/j.json\"".into(),
            "auth.roles[0].jwks_file: /nonexistent/j.json: No such file or directory",
        ),
        (
            format!("[[auth.roles]]\nname = \"r\"\nissuer = \"i\"\naudiences = [\"a\"]\njwks_file = \"{}\"", not_jwks.path()),
            "auth.roles[0].jwks_file: ",
        ),
    ];
    for (text, want) in &cases {
        let got = invalid(text, &EnvVars::new());
        assert!(
            got.starts_with(want),
            "config {text:?}\n  got:  {got}\n  want: {want}..."
        );
    }
}

#[test]
fn reload_rebuilds_the_policy() {
    let a = from_text("[[auth.keys]]\naccess_key_id = \"AK\"\nsecret_access_key = \"S1\"\n");
    let b = from_text(
        "[[auth.keys]]\naccess_key_id = \"AK\"\nsecret_access_key = \"S2\"\n\
         grants = [{ bucket = \"*\", access = \"read\" }]\n",
    );
    let mut next = b.clone();
    assert!(next.keep_restart_only(&a).is_empty());
    let policy = next.auth.policy();
    assert_eq!(&*policy.keys["AK"].secret, b"S2");
    assert_eq!(policy.keys["AK"].grants.len(), 1);
}
