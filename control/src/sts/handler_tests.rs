//! The STS service end to end, in process: settings with roles and session token keys, a
//! published snapshot, form and query requests in, XML out, and tokens that the data plane's
//! [`SessionKeys`] opens with the role's grants.

use crate::test_support::TempFile;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use rangecache_dataplane::auth::{Access, Grant, SessionKey, SessionKeys};
use serde_json::{json, Value};

use super::fetch::tests::TestServer;
use super::testkeys::TestKey;
use super::xml::rfc3339;
use super::{Sts, StsRequest, FORM_CONTENT_TYPE};
use crate::config::{self, EnvVars, Settings};
use crate::resolve::AddrMap;
use crate::snapshot_build::Publisher;

const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://issuer.test";
const ARN: &str = "arn:aws:iam::123456789012:role/analytics";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn session_key(byte: u8) -> String {
    STANDARD.encode([byte; 32])
}

fn opener(byte: u8) -> SessionKeys {
    SessionKeys::new(vec![SessionKey::from_bytes(&[byte; 32]).unwrap()])
}

/// `[[auth.roles]]` "analytics" trusting `jwks` (a file path or URL line), plus `extra` TOML.
fn role_config(jwks_line: &str, extra: &str) -> String {
    format!(
        "[[auth.roles]]\nname = \"analytics\"\nissuer = \"{ISSUER}\"\n{jwks_line}\n\
         audiences = [\"rangecache\"]\nsubjects = [\"repo:org/*\"]\n\
         grants = [ {{ bucket = \"data\", prefix = \"tables/\", access = [\"read\", \"list\"] }} ]\n\
         {extra}"
    )
}

fn settings(text: &str, key: Option<u8>) -> Settings {
    let env: EnvVars = key
        .map(|k| ("SESSION_TOKEN_KEY".to_owned(), session_key(k)))
        .into_iter()
        .collect();
    config::validate::validate(&config::parse(text).unwrap(), &env, None).unwrap()
}

/// A service over `settings`, and the publisher that owns them (for reloads).
fn service(settings: Settings) -> (Sts, Publisher) {
    let publisher = Publisher::new(settings, AddrMap::new());
    let sts = Sts::new(publisher.settings_handle(), publisher.shared());
    (sts, publisher)
}

fn claims() -> Value {
    json!({"iss": ISSUER, "sub": "repo:org/app", "aud": ["x", "rangecache"],
           "exp": NOW + 600, "nbf": NOW - 5, "iat": NOW - 5})
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn form(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(n, v)| format!("{n}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn assume_params<'a>(token: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", ARN),
        ("RoleSessionName", "job-1"),
        ("WebIdentityToken", token),
    ];
    p.extend_from_slice(extra);
    p
}

/// POST a form at `NOW`: (status, body).
async fn post(sts: &Sts, body: &str) -> (StatusCode, String) {
    let req = StsRequest {
        method: &Method::POST,
        query: None,
        content_type: Some(FORM_CONTENT_TYPE),
        body: body.as_bytes(),
    };
    reply(sts.handle_at(req, at(NOW)).await).await
}

async fn reply(r: super::handler::Reply) -> (StatusCode, String) {
    assert_eq!(r.headers()[http::header::CONTENT_TYPE], "text/xml");
    let status = r.status();
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

/// The text of the first `<tag>` in `xml`.
fn tag<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>")).unwrap();
    &xml[start..end]
}

/// Assert an error reply: status and code.
fn assert_error(got: &(StatusCode, String), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert!(got.1.starts_with("<ErrorResponse xmlns="), "{}", got.1);
    assert_eq!(tag(&got.1, "Code"), code, "{}", got.1);
    assert_eq!(tag(&got.1, "Type"), "Sender");
    assert_eq!(tag(&got.1, "RequestId").len(), 36);
}

#[tokio::test]
async fn assumes_a_role_with_an_rs256_token() {
    let key = TestKey::rsa();
    let jwks = TempFile::new(&key.jwks("k1"));
    let cfg = role_config(&format!("jwks_file = \"{}\"", jwks.0.display()), "");
    let (sts, _publisher) = service(settings(&cfg, Some(7)));
    let token = key.sign(Some("k1"), &claims());
    let (status, xml) = post(&sts, &form(&assume_params(&token, &[]))).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert!(xml.starts_with(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
    ));
    assert_eq!(tag(&xml, "SubjectFromWebIdentityToken"), "repo:org/app");
    assert_eq!(tag(&xml, "Audience"), "rangecache");
    assert_eq!(tag(&xml, "Provider"), ISSUER);
    assert_eq!(
        tag(&xml, "Arn"),
        "arn:aws:sts::000000000000:assumed-role/analytics/job-1"
    );
    let role_id = tag(&xml, "AssumedRoleId");
    assert!(
        role_id.starts_with("AROA") && role_id.ends_with(":job-1"),
        "{role_id}"
    );
    assert_eq!(role_id.len(), 20 + ":job-1".len());
    let ak = tag(&xml, "AccessKeyId");
    assert!(ak.starts_with("ASIA") && ak.len() == 20, "{ak}");
    let sk = tag(&xml, "SecretAccessKey");
    assert_eq!(sk.len(), 40);
    assert_eq!(tag(&xml, "Expiration"), rfc3339(NOW + 3600));

    let claims = opener(7)
        .open(tag(&xml, "SessionToken"), at(NOW + 10))
        .unwrap();
    assert_eq!(claims.access_key_id, ak);
    assert_eq!(claims.secret_access_key, sk);
    assert_eq!(claims.expires_at, NOW + 3600);
    assert_eq!(claims.role, "analytics");
    assert_eq!(claims.subject, "repo:org/app");
    assert_eq!(
        claims.grants,
        [Grant {
            bucket: "data".into(),
            prefix: "tables/".into(),
            access: Access::READ.union(Access::LIST),
        }]
    );
    // Another key does not open it.
    assert!(opener(8).open(tag(&xml, "SessionToken"), at(NOW)).is_err());

    let mut metrics = String::new();
    sts.render_metrics(&mut metrics);
    assert!(
        metrics.contains("rangecache_sts_requests_total{result=\"ok\"} 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn get_query_es256_and_durations() {
    let key = TestKey::ec();
    let jwks = TempFile::new(&key.jwks("e1"));
    let cfg = role_config(
        &format!("jwks_file = \"{}\"", jwks.0.display()),
        "max_duration = \"30m\"\n",
    );
    let (sts, _publisher) = service(settings(&cfg, Some(7)));
    let token = key.sign(None, &claims());

    // GET with the parameters in the query; the default duration is capped by the role's.
    let query = form(&assume_params(&token, &[]));
    let req = StsRequest {
        method: &Method::GET,
        query: Some(&query),
        content_type: None,
        body: b"",
    };
    let (status, xml) = reply(sts.handle_at(req, at(NOW)).await).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert_eq!(tag(&xml, "Expiration"), rfc3339(NOW + 1800));

    let (status, xml) = post(
        &sts,
        &form(&assume_params(&token, &[("DurationSeconds", "900")])),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    let claims = opener(7).open(tag(&xml, "SessionToken"), at(NOW)).unwrap();
    assert_eq!(claims.expires_at, NOW + 900);

    let got = post(
        &sts,
        &form(&assume_params(&token, &[("DurationSeconds", "3600")])),
    )
    .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "ValidationError");
    assert!(tag(&got.1, "Message").contains("MaxSessionDuration"));
}

#[tokio::test]
async fn refusals_have_sts_codes() {
    let key = TestKey::ec();
    let jwks = TempFile::new(&key.jwks("e1"));
    let cfg = role_config(&format!("jwks_file = \"{}\"", jwks.0.display()), "");
    let (sts, _publisher) = service(settings(&cfg, Some(7)));
    let with = |field: &str, value: Value| {
        let mut c = claims();
        c[field] = value;
        key.sign(Some("e1"), &c)
    };
    let good = key.sign(Some("e1"), &claims());
    let other_role = "arn:aws:iam::1:role/nope";
    let cases: Vec<(String, StatusCode, &str)> = vec![
        (
            form(
                &assume_params(&good, &[])
                    .into_iter()
                    .map(|(n, v)| {
                        if n == "RoleArn" {
                            (n, other_role)
                        } else {
                            (n, v)
                        }
                    })
                    .collect::<Vec<_>>(),
            ),
            StatusCode::FORBIDDEN,
            "AccessDenied",
        ),
        (
            form(&assume_params(&with("aud", json!("other")), &[])),
            StatusCode::FORBIDDEN,
            "AccessDenied",
        ),
        (
            form(&assume_params(&with("sub", json!("repo:evil/x")), &[])),
            StatusCode::FORBIDDEN,
            "AccessDenied",
        ),
        (
            form(&assume_params(
                &with("iss", json!("https://evil.test")),
                &[],
            )),
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
        ),
        (
            form(&assume_params(&with("exp", json!(NOW - 61)), &[])),
            StatusCode::BAD_REQUEST,
            "ExpiredTokenException",
        ),
        (
            form(&assume_params(&with("nbf", json!(NOW + 120)), &[])),
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
        ),
        (
            form(&assume_params(
                &TestKey::ec().sign(Some("e1"), &claims()),
                &[],
            )),
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
        ),
        (
            form(&assume_params(&key.sign(Some("unknown"), &claims()), &[])),
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
        ),
        (
            form(&assume_params(
                &key.sign_with_header(&json!({"alg": "none"}), &claims()),
                &[],
            )),
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
        ),
        (
            form(&assume_params("not.a.jwt", &[])),
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
        ),
        (
            form(&[("Action", "GetCallerIdentity")]),
            StatusCode::BAD_REQUEST,
            "InvalidAction",
        ),
        (
            form(&[("Action", "AssumeRoleWithWebIdentity"), ("RoleArn", ARN)]),
            StatusCode::BAD_REQUEST,
            "ValidationError",
        ),
        (
            form(&assume_params(&good, &[("DurationSeconds", "60")])),
            StatusCode::BAD_REQUEST,
            "ValidationError",
        ),
        (
            "Action=%zz".to_owned(),
            StatusCode::BAD_REQUEST,
            "ValidationError",
        ),
    ];
    for (body, status, code) in &cases {
        let got = post(&sts, body).await;
        assert_error(&got, *status, code);
    }

    // A body that is not a form.
    let req = StsRequest {
        method: &Method::POST,
        query: None,
        content_type: Some("application/json"),
        body: b"{}",
    };
    let got = reply(sts.handle_at(req, at(NOW)).await).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "ValidationError");

    let mut metrics = String::new();
    sts.render_metrics(&mut metrics);
    assert!(metrics.contains("{result=\"denied\"} 10\n"), "{metrics}");
    assert!(metrics.contains("{result=\"invalid\"} 5\n"), "{metrics}");
}

#[tokio::test]
async fn without_a_session_token_key_sts_is_unavailable() {
    let key = TestKey::ec();
    let jwks = TempFile::new(&key.jwks("e1"));
    let cfg = role_config(&format!("jwks_file = \"{}\"", jwks.0.display()), "");
    let (sts, _publisher) = service(settings(&cfg, None));
    let got = post(&sts, &form(&assume_params(&key.sign(None, &claims()), &[]))).await;
    assert_eq!(got.0, StatusCode::SERVICE_UNAVAILABLE, "{}", got.1);
    assert_eq!(tag(&got.1, "Code"), "ServiceUnavailable");
    assert_eq!(tag(&got.1, "Type"), "Receiver");
    assert_eq!(
        tag(&got.1, "Message"),
        "STS is not configured: SESSION_TOKEN_KEY is not set"
    );
}

#[tokio::test]
async fn reloads_rotate_keys_and_change_grants() {
    let key = TestKey::ec();
    let jwks = TempFile::new(&key.jwks("e1"));
    let jwks_line = format!("jwks_file = \"{}\"", jwks.0.display());
    let (sts, mut publisher) = service(settings(&role_config(&jwks_line, ""), Some(7)));
    let token = key.sign(None, &claims());
    let (_, xml) = post(&sts, &form(&assume_params(&token, &[]))).await;
    assert!(opener(7).open(tag(&xml, "SessionToken"), at(NOW)).is_ok());

    // A reload with a new key and wider grants: the next token is sealed with the new key.
    let wider = role_config(&jwks_line, "").replace("\"read\", \"list\"", "\"all\"");
    publisher.replace(settings(&wider, Some(9)), AddrMap::new());
    let (status, xml) = post(&sts, &form(&assume_params(&token, &[]))).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    let claims = opener(9).open(tag(&xml, "SessionToken"), at(NOW)).unwrap();
    assert_eq!(claims.grants[0].access, Access::ALL);
    assert!(opener(7).open(tag(&xml, "SessionToken"), at(NOW)).is_err());
}

#[tokio::test]
async fn jwks_urls_are_fetched() {
    let key = TestKey::rsa();
    let doc = key.jwks("k1");
    let server = TestServer::start(200, move || doc.clone()).await;
    let cfg = role_config(&format!("jwks_url = \"{}/jwks.json\"", server.base), "");
    let (sts, _publisher) = service(settings(&cfg, Some(7)));
    let token = key.sign(Some("k1"), &claims());
    let (status, xml) = post(&sts, &form(&assume_params(&token, &[]))).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    let (status, _) = post(&sts, &form(&assume_params(&token, &[]))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.hits(), 1, "the JWKS is cached");

    let down = TestServer::start(503, String::new).await;
    let cfg = role_config(&format!("jwks_url = \"{}/jwks.json\"", down.base), "");
    let (sts, _publisher) = service(settings(&cfg, Some(7)));
    let got = post(&sts, &form(&assume_params(&token, &[]))).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "IDPCommunicationError");
    let mut metrics = String::new();
    sts.render_metrics(&mut metrics);
    assert!(metrics.contains("{result=\"error\"} 1\n"), "{metrics}");
}
