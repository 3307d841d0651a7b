//! `[proxy]` and `[[cors]]`, typed: validated into the data plane's
//! [`ProxyTrust`] and [`CorsPolicy`], and shown back in file form for `--check`.

use std::sync::Arc;

use rangecache_dataplane::edge::cors::method_name;
use rangecache_dataplane::edge::{
    Cidr, CorsPolicy, CorsRule, ForwardedHeaders, ProxyTrust, ProxyVersion, Wildcard,
};
use rangecache_dataplane::http::Method;

use super::raw_proxy::{RawCors, RawProxy};
use super::validate::invalid;
use crate::error::StartupError;

/// `[proxy]`, typed.
#[derive(Debug, Clone, Default)]
pub struct ProxySettings {
    /// What the data plane believes; `None` when `proxy.enabled = false`.
    pub trust: Option<Arc<ProxyTrust>>,
}

/// `[[cors]]`, typed.
#[derive(Debug, Clone, Default)]
pub struct CorsSettings {
    /// The rules, in file order.
    pub policy: Arc<CorsPolicy>,
}

/// Validate `[proxy]`. With `enabled`, the trusted list must not be empty when anything is
/// to be believed; with `enabled = false`, other keys set are ignored with a warning.
pub fn proxy(raw: &RawProxy, warnings: &mut Vec<String>) -> Result<ProxySettings, StartupError> {
    let forwarded_headers = match raw.forwarded_headers.trim() {
        "none" => ForwardedHeaders::None,
        "x-forwarded" => ForwardedHeaders::XForwarded,
        "forwarded" => ForwardedHeaders::Forwarded,
        other => {
            return Err(invalid(
                "proxy.forwarded_headers",
                format_args!("expected \"none\", \"x-forwarded\" or \"forwarded\", got {other:?}"),
            ))
        }
    };
    let protocol = match raw.protocol.trim() {
        "none" => None,
        "v1" => Some(ProxyVersion::V1),
        "v2" => Some(ProxyVersion::V2),
        other => {
            return Err(invalid(
                "proxy.protocol",
                format_args!("expected \"none\", \"v1\" or \"v2\", got {other:?}"),
            ))
        }
    };
    let trusted_proxies = cidrs("proxy.trusted_proxies", &raw.trusted_proxies)?;
    if !raw.enabled {
        if *raw != RawProxy::default() {
            warnings.push(
                "proxy.* keys are set but proxy.enabled = false: they are ignored".to_owned(),
            );
        }
        return Ok(ProxySettings::default());
    }
    let believes = forwarded_headers != ForwardedHeaders::None || protocol.is_some();
    if believes && trusted_proxies.is_empty() {
        return Err(invalid(
            "proxy.trusted_proxies",
            "is empty: list the load balancers' addresses (CIDRs) whose PROXY or forwarded \
             headers are to be believed",
        ));
    }
    Ok(ProxySettings {
        trust: Some(Arc::new(ProxyTrust {
            forwarded_headers,
            trusted_proxies,
            protocol,
        })),
    })
}

/// Parse a list of CIDRs; errors name the entry (`key[i]`).
pub fn cidrs(key: &str, raw: &[String]) -> Result<Vec<Cidr>, StartupError> {
    raw.iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<Cidr>()
                .map_err(|e| invalid(&format!("{key}[{i}]"), format_args!("{s:?}: {e}")))
        })
        .collect()
}

impl ProxySettings {
    /// File form for `--check`.
    pub fn view(&self) -> RawProxy {
        let Some(t) = &self.trust else {
            return RawProxy::default();
        };
        RawProxy {
            enabled: true,
            forwarded_headers: match t.forwarded_headers {
                ForwardedHeaders::None => "none",
                ForwardedHeaders::XForwarded => "x-forwarded",
                ForwardedHeaders::Forwarded => "forwarded",
            }
            .to_owned(),
            trusted_proxies: t.trusted_proxies.iter().map(Cidr::to_string).collect(),
            protocol: match t.protocol {
                None => "none",
                Some(ProxyVersion::V1) => "v1",
                Some(ProxyVersion::V2) => "v2",
            }
            .to_owned(),
        }
    }
}

/// Validate `[[cors]]` rules (S3's CORSRule constraints: at least one origin and method,
/// methods among GET, PUT, POST, DELETE, HEAD, at most one `*` per origin and header
/// pattern).
pub fn cors(raw: &[RawCors]) -> Result<CorsSettings, StartupError> {
    let mut rules = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let at = format!("cors[{i}]");
        let bucket = match r.bucket.trim() {
            "*" => None,
            b if !b.is_empty() && !b.contains(['/', '*']) && !b.contains(char::is_whitespace) => {
                Some(b.to_owned())
            }
            b => {
                return Err(invalid(
                    &format!("{at}.bucket"),
                    format_args!("{b:?} is not a bucket name or \"*\""),
                ))
            }
        };
        if r.allowed_origins.is_empty() {
            return Err(invalid(
                &format!("{at}.allowed_origins"),
                "is empty: list at least one origin (or \"*\")",
            ));
        }
        let origins = patterns(&format!("{at}.allowed_origins"), &r.allowed_origins)?;
        if r.allowed_methods.is_empty() {
            return Err(invalid(
                &format!("{at}.allowed_methods"),
                "is empty: list at least one of GET, PUT, POST, DELETE, HEAD",
            ));
        }
        let mut methods = Vec::with_capacity(r.allowed_methods.len());
        for (j, m) in r.allowed_methods.iter().enumerate() {
            let method = match Method::parse(m.trim().to_ascii_uppercase().as_bytes()) {
                m @ (Method::Get | Method::Put | Method::Post | Method::Delete | Method::Head) => m,
                _ => {
                    return Err(invalid(
                        &format!("{at}.allowed_methods[{j}]"),
                        format_args!("{m:?} is not one of GET, PUT, POST, DELETE, HEAD"),
                    ))
                }
            };
            if !methods.contains(&method) {
                methods.push(method);
            }
        }
        let headers = patterns(&format!("{at}.allowed_headers"), &r.allowed_headers)?;
        for (j, h) in r.expose_headers.iter().enumerate() {
            if h.is_empty() || !h.bytes().all(is_token_byte) {
                return Err(invalid(
                    &format!("{at}.expose_headers[{j}]"),
                    format_args!("{h:?} is not a header name"),
                ));
            }
        }
        rules.push(CorsRule::new(
            bucket,
            origins,
            methods,
            headers,
            &r.expose_headers,
            r.max_age,
        ));
    }
    Ok(CorsSettings {
        policy: Arc::new(CorsPolicy::new(rules)),
    })
}

fn patterns(key: &str, raw: &[String]) -> Result<Vec<Wildcard>, StartupError> {
    raw.iter()
        .enumerate()
        .map(|(i, p)| {
            let p = p.trim();
            let printable = !p.is_empty() && p.bytes().all(|b| b.is_ascii_graphic());
            if !printable || p.matches('*').count() > 1 {
                return Err(invalid(
                    &format!("{key}[{i}]"),
                    format_args!("{p:?}: expected a non-empty value with at most one '*'"),
                ));
            }
            Ok(Wildcard::new(p))
        })
        .collect()
}

/// An RFC 9110 token byte (header names).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl CorsSettings {
    /// File form for `--check`.
    pub fn view(&self) -> Vec<RawCors> {
        self.policy
            .rules()
            .iter()
            .map(|r| RawCors {
                bucket: r.bucket.clone().unwrap_or_else(|| "*".into()),
                allowed_origins: r
                    .allowed_origins
                    .iter()
                    .map(|w| w.as_str().to_owned())
                    .collect(),
                allowed_methods: r
                    .allowed_methods
                    .iter()
                    .map(|m| method_name(*m).to_owned())
                    .collect(),
                allowed_headers: r
                    .allowed_headers
                    .iter()
                    .map(|w| w.as_str().to_owned())
                    .collect(),
                expose_headers: r.expose_headers.clone(),
                max_age: r.max_age,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
