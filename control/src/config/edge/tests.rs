use super::super::{parse, validate::validate, EnvVars};
use super::*;

fn load(text: &str) -> Result<crate::config::Settings, StartupError> {
    validate(&parse(text)?, &EnvVars::new(), None)
}

fn detail(text: &str) -> String {
    load(text).unwrap_err().to_string()
}

#[test]
fn proxy_off_by_default_and_typed_when_on() {
    let s = load("").unwrap();
    assert!(s.proxy.trust.is_none());
    let s = load(
        "[proxy]\nenabled = true\nforwarded_headers = \"x-forwarded\"\n\
         trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\nprotocol = \"v2\"\n",
    )
    .unwrap();
    let t = s.proxy.trust.as_ref().unwrap();
    assert_eq!(t.forwarded_headers, ForwardedHeaders::XForwarded);
    assert_eq!(t.protocol, Some(ProxyVersion::V2));
    assert!(t.trusts("10.1.2.3".parse().unwrap()));
    assert!(!t.trusts("11.0.0.1".parse().unwrap()));
    let view = s.effective();
    assert_eq!(view.proxy.trusted_proxies, ["10.0.0.0/8", "::1/128"]);
    assert_eq!(view.proxy.protocol, "v2");
    // The view parses back to the same settings.
    let text = toml::to_string(&view).unwrap();
    let back = load(&text).unwrap();
    assert_eq!(back.effective().proxy, view.proxy);
}

#[test]
fn proxy_errors_name_the_key() {
    let d = detail("[proxy]\nenabled = true\nforwarded_headers = \"xff\"\n");
    assert!(
        d.contains("[validate_config] proxy.forwarded_headers"),
        "{d}"
    );
    let d = detail("[proxy]\nenabled = true\nprotocol = \"v3\"\n");
    assert!(d.contains("proxy.protocol"), "{d}");
    let d = detail("[proxy]\nenabled = true\ntrusted_proxies = [\"10.0.0.0/8\", \"nope\"]\n");
    assert!(d.contains("proxy.trusted_proxies[1]"), "{d}");
    let d = detail("[proxy]\nenabled = true\nprotocol = \"v1\"\n");
    assert!(d.contains("proxy.trusted_proxies: is empty"), "{d}");
    let s = load("[proxy]\nprotocol = \"v1\"\n").unwrap();
    assert!(s.proxy.trust.is_none());
    assert!(s
        .warnings
        .iter()
        .any(|w| w.contains("proxy.enabled = false")));
}

#[test]
fn cors_rules_validate_and_round_trip() {
    let text = "[[cors]]\nbucket = \"data\"\nallowed_origins = [\"https://*.example.com\"]\n\
                allowed_methods = [\"get\", \"HEAD\"]\nallowed_headers = [\"*\"]\n\
                expose_headers = [\"Content-Range\", \"ETag\"]\nmax_age = 600\n\
                [[cors]]\nallowed_origins = [\"*\"]\nallowed_methods = [\"GET\"]\n";
    let s = load(text).unwrap();
    let rules = s.cors.policy.rules();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].bucket.as_deref(), Some("data"));
    assert_eq!(rules[0].allowed_methods, [Method::Get, Method::Head]);
    assert_eq!(rules[1].bucket, None);
    let view = s.effective();
    assert_eq!(view.cors[0].allowed_methods, ["GET", "HEAD"]);
    assert_eq!(view.cors[1].bucket, "*");
    let back = load(&toml::to_string(&view).unwrap()).unwrap();
    assert_eq!(back.effective().cors, view.cors);
}

#[test]
fn cors_errors_name_the_key() {
    let d = detail("[[cors]]\nallowed_origins = []\nallowed_methods = [\"GET\"]\n");
    assert!(d.contains("cors[0].allowed_origins"), "{d}");
    let d = detail("[[cors]]\nallowed_origins = [\"*\"]\nallowed_methods = [\"PATCH\"]\n");
    assert!(d.contains("cors[0].allowed_methods[0]"), "{d}");
    let d =
        detail("[[cors]]\nallowed_origins = [\"https://*.*.x\"]\nallowed_methods = [\"GET\"]\n");
    assert!(d.contains("cors[0].allowed_origins[0]"), "{d}");
    let d = detail(
        "[[cors]]\nallowed_origins = [\"*\"]\nallowed_methods = [\"GET\"]\n\
         expose_headers = [\"Content Range\"]\n",
    );
    assert!(d.contains("cors[0].expose_headers[0]"), "{d}");
    let d = detail(
        "[[cors]]\nbucket = \"a/b\"\nallowed_origins = [\"*\"]\nallowed_methods = [\"GET\"]\n",
    );
    assert!(d.contains("cors[0].bucket"), "{d}");
    let d =
        detail("[[cors]]\nallowed_origins = [\"*\"]\nallowed_methods = [\"GET\"]\nmax_age = -1\n");
    assert!(d.contains("max_age") || d.contains("parse_config"), "{d}");
}

#[test]
fn anonymous_grants_take_a_source() {
    let s = load(
        "[[auth.anonymous]]\nbucket = \"pub\"\naccess = \"read\"\n\
         [[auth.anonymous]]\nbucket = \"lan\"\naccess = \"read\"\nsource = \"127.0.0.2/32\"\n\
         [[auth.anonymous]]\nbucket = \"both\"\naccess = \"read\"\nsource = [\"10.0.0.0/8\", \"::1\"]\n",
    )
    .unwrap();
    assert_eq!(s.auth.anonymous.len(), 1);
    assert_eq!(s.auth.anonymous_sourced.len(), 2);
    let policy = s.auth.policy();
    let near = policy.anonymous_for("127.0.0.2".parse().unwrap());
    let far = policy.anonymous_for("127.0.0.3".parse().unwrap());
    assert_eq!(near.len(), 2);
    assert_eq!(far.len(), 1);
    assert_eq!(policy.anonymous_for("::1".parse().unwrap()).len(), 2);
    let view = s.effective();
    assert_eq!(view.auth.anonymous.len(), 3);
    let back = load(&toml::to_string(&view).unwrap()).unwrap();
    assert_eq!(back.auth.anonymous_sourced, s.auth.anonymous_sourced);

    let d = detail("[[auth.anonymous]]\nbucket = \"a\"\naccess = \"read\"\nsource = \"x\"\n");
    assert!(d.contains("auth.anonymous[0].source[0]"), "{d}");
    let d = detail("[[auth.anonymous]]\nbucket = \"a\"\naccess = \"read\"\nsource = []\n");
    assert!(d.contains("auth.anonymous[0].source: is empty"), "{d}");
    let d = detail(
        "[[auth.keys]]\naccess_key_id = \"K\"\nsecret_access_key = \"s\"\n\
         [[auth.keys.grants]]\nbucket = \"a\"\naccess = \"read\"\nsource = \"10.0.0.0/8\"\n",
    );
    assert!(d.contains("source: only [[auth.anonymous]]"), "{d}");
}
