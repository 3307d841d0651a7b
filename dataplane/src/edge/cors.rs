//! CORS for browser clients, with S3's bucket-CORS semantics: `[[cors]]` rules, preflight
//! answers and the `Access-Control-*` headers of actual responses.
//!
//! A rule applies to one bucket (or every bucket) and matches a request when its `Origin`
//! matches one of the rule's origin patterns and its method (for a preflight, the
//! `Access-Control-Request-Method`) is one of the rule's methods; a preflight's every
//! `Access-Control-Request-Headers` entry must also match one of the rule's header patterns.
//! The first matching rule, in file order, answers (as S3 evaluates `CORSRule`s). Patterns may
//! contain `*` wildcards (`https://*.example.com`, `*`, `x-amz-*`); header names compare
//! without case.
//!
//! Cost: a request without `Origin`, or any request when no rule is configured, is never
//! looked at (see [`CorsPolicy::is_empty`]); matching allocates nothing.

use crate::http::Method;

/// The value of `Vary` on every response carrying CORS headers (as S3 sends it).
const VARY: &[u8] = b"Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

/// A pattern with `*` wildcards (each matches any run of bytes, the empty one too), compared
/// without ASCII case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wildcard(Box<str>);

impl Wildcard {
    /// The pattern `p` (kept as written; matching ignores ASCII case).
    pub fn new(p: &str) -> Self {
        Wildcard(p.into())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the pattern is exactly `*`.
    pub fn is_any(&self) -> bool {
        &*self.0 == "*"
    }

    /// True when `text` matches the whole pattern.
    pub fn matches(&self, text: &[u8]) -> bool {
        glob(self.0.as_bytes(), text)
    }
}

/// Iterative glob with `*` only: linear backtracking to the last star, no recursion and no
/// allocation, whatever the input.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p].eq_ignore_ascii_case(&text[t]) {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// One `[[cors]]` rule, validated.
#[derive(Debug, Clone)]
pub struct CorsRule {
    /// The client-side bucket it applies to; `None` = every bucket (`"*"`).
    pub bucket: Option<String>,
    /// Origins allowed (`allowed_origins`).
    pub allowed_origins: Vec<Wildcard>,
    /// Methods allowed (`allowed_methods`): among GET, PUT, POST, DELETE, HEAD.
    pub allowed_methods: Vec<Method>,
    /// Request headers a preflight may ask for (`allowed_headers`).
    pub allowed_headers: Vec<Wildcard>,
    /// Response headers scripts may read (`expose_headers`).
    pub expose_headers: Vec<String>,
    /// Seconds a preflight answer may be cached (`max_age`).
    pub max_age: Option<u32>,
    /// `Access-Control-Allow-Methods`: the methods, comma-separated.
    methods_text: Box<[u8]>,
    /// `Access-Control-Expose-Headers`; `None` when `expose_headers` is empty.
    expose_text: Option<Box<[u8]>>,
    /// `Access-Control-Max-Age`; `None` when `max_age` is not set.
    max_age_text: Option<Box<[u8]>>,
}

impl CorsRule {
    /// A rule; `expose_headers` are sent as listed, `max_age` in seconds.
    pub fn new(
        bucket: Option<String>,
        allowed_origins: Vec<Wildcard>,
        allowed_methods: Vec<Method>,
        allowed_headers: Vec<Wildcard>,
        expose_headers: &[String],
        max_age: Option<u32>,
    ) -> Self {
        let methods_text = allowed_methods
            .iter()
            .map(|m| method_name(*m))
            .collect::<Vec<_>>()
            .join(", ");
        Self {
            bucket,
            allowed_origins,
            allowed_methods,
            allowed_headers,
            expose_headers: expose_headers.to_vec(),
            max_age,
            methods_text: methods_text.into_bytes().into(),
            expose_text: (!expose_headers.is_empty())
                .then(|| expose_headers.join(", ").into_bytes().into()),
            max_age_text: max_age.map(|s| s.to_string().into_bytes().into()),
        }
    }

    fn applies_to(&self, bucket: &str) -> bool {
        self.bucket.as_deref().is_none_or(|b| b == bucket)
    }

    /// The pattern `origin` matches, if any.
    fn origin_match(&self, origin: &[u8]) -> Option<&Wildcard> {
        self.allowed_origins.iter().find(|o| o.matches(origin))
    }

    fn allows_headers(&self, requested: &[u8]) -> bool {
        requested
            .split(|&b| b == b',')
            .map(<[u8]>::trim_ascii)
            .filter(|h| !h.is_empty())
            .all(|h| self.allowed_headers.iter().any(|p| p.matches(h)))
    }
}

/// The name S3 (and `Access-Control-Allow-Methods`) spells a method with.
pub fn method_name(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Put => "PUT",
        Method::Post => "POST",
        Method::Delete => "DELETE",
        Method::Options => "OPTIONS",
        Method::Other => "OTHER",
    }
}

/// Every `[[cors]]` rule, in file order.
#[derive(Debug, Clone, Default)]
pub struct CorsPolicy {
    rules: Vec<CorsRule>,
}

/// Why a preflight is refused, as S3 words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreflightRefusal {
    /// No `Origin` header: 400.
    NoOrigin,
    /// No or unknown `Access-Control-Request-Method`: 400.
    BadRequestMethod,
    /// No rule applies to the bucket at all: 403.
    NotEnabled,
    /// Rules apply to the bucket but none matches: 403.
    NotAllowed,
}

impl PreflightRefusal {
    /// The S3 error for this refusal.
    pub fn to_s3(self) -> crate::s3::S3Error {
        use crate::s3::S3Error;
        match self {
            PreflightRefusal::NoOrigin => {
                S3Error::bad_request("Insufficient information. Origin request header needed.")
            }
            PreflightRefusal::BadRequestMethod => {
                S3Error::bad_request("Invalid Access-Control-Request-Method")
            }
            PreflightRefusal::NotEnabled => S3Error::new(
                "AccessForbidden",
                403,
                "CORSResponse: CORS is not enabled for this bucket.",
            ),
            PreflightRefusal::NotAllowed => S3Error::new(
                "AccessForbidden",
                403,
                "CORSResponse: This CORS request is not allowed. This is usually because the \
                 evalution of Origin, request method / Access-Control-Request-Method or \
                 Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
            ),
        }
    }
}

impl CorsPolicy {
    /// The policy of `rules`, evaluated in this order.
    pub fn new(rules: Vec<CorsRule>) -> Self {
        Self { rules }
    }

    /// True when no rule is configured: no request gets CORS headers, and callers skip
    /// looking at `Origin` at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules.
    pub fn rules(&self) -> &[CorsRule] {
        &self.rules
    }

    /// The CORS headers of an actual (non-preflight) `method` request on `bucket` from
    /// `origin`; `None` when no rule matches (the response carries none).
    pub fn actual<'a>(
        &'a self,
        bucket: &str,
        origin: &'a [u8],
        method: Method,
    ) -> Option<CorsHeaders<'a>> {
        self.rules.iter().find_map(|rule| {
            if !rule.applies_to(bucket) || !rule.allowed_methods.contains(&method) {
                return None;
            }
            let pattern = rule.origin_match(origin)?;
            Some(CorsHeaders::new(rule, pattern, origin, None))
        })
    }

    /// Answer a preflight on `bucket`: `origin` and `request_method` are the request's
    /// `Origin` and `Access-Control-Request-Method`, `request_headers` its
    /// `Access-Control-Request-Headers` (empty when absent).
    pub fn preflight<'a>(
        &'a self,
        bucket: &str,
        origin: Option<&'a [u8]>,
        request_method: Option<&[u8]>,
        request_headers: &'a [u8],
    ) -> Result<CorsHeaders<'a>, PreflightRefusal> {
        let origin = origin
            .filter(|o| !o.is_empty())
            .ok_or(PreflightRefusal::NoOrigin)?;
        let method = match request_method.map(Method::parse) {
            Some(
                m @ (Method::Get | Method::Head | Method::Put | Method::Post | Method::Delete),
            ) => m,
            _ => return Err(PreflightRefusal::BadRequestMethod),
        };
        let mut applies = false;
        for rule in self.rules.iter().filter(|r| r.applies_to(bucket)) {
            applies = true;
            if !rule.allowed_methods.contains(&method) || !rule.allows_headers(request_headers) {
                continue;
            }
            if let Some(pattern) = rule.origin_match(origin) {
                let headers = request_headers.trim_ascii();
                let echo = (!headers.is_empty()).then_some(headers);
                return Ok(CorsHeaders::new(rule, pattern, origin, echo));
            }
        }
        Err(if applies {
            PreflightRefusal::NotAllowed
        } else {
            PreflightRefusal::NotEnabled
        })
    }
}

/// The `Access-Control-*` headers one response carries, borrowed from its rule and request.
#[derive(Debug, Clone, Copy)]
pub struct CorsHeaders<'a> {
    rule: &'a CorsRule,
    /// `*` when the rule allows any origin, else the request's origin.
    allow_origin: &'a [u8],
    /// A preflight's requested headers, echoed in `Access-Control-Allow-Headers`.
    allow_headers: Option<&'a [u8]>,
}

impl<'a> CorsHeaders<'a> {
    fn new(
        rule: &'a CorsRule,
        pattern: &Wildcard,
        origin: &'a [u8],
        allow_headers: Option<&'a [u8]>,
    ) -> Self {
        Self {
            rule,
            allow_origin: if pattern.is_any() { b"*" } else { origin },
            allow_headers,
        }
    }

    /// Append the headers to a response's header list. A specific origin also gets
    /// `Access-Control-Allow-Credentials: true` (as S3 answers); `*` cannot carry it.
    pub fn push_into<'b>(&self, out: &mut Vec<(&'b [u8], &'b [u8])>)
    where
        'a: 'b,
    {
        out.push((b"access-control-allow-origin", self.allow_origin));
        out.push((b"access-control-allow-methods", &self.rule.methods_text));
        if let Some(h) = self.allow_headers {
            out.push((b"access-control-allow-headers", h));
        }
        if let Some(e) = &self.rule.expose_text {
            out.push((b"access-control-expose-headers", e));
        }
        if let Some(a) = &self.rule.max_age_text {
            out.push((b"access-control-max-age", a));
        }
        if self.allow_origin != b"*" {
            out.push((b"access-control-allow-credentials", b"true"));
        }
        out.push((b"vary", VARY));
    }

    /// The headers as a list (for error answers, which take extra headers as a slice).
    pub fn to_vec(&self) -> Vec<(&'a [u8], &'a [u8])> {
        let mut v = Vec::with_capacity(7);
        self.push_into(&mut v);
        v
    }
}

/// True for the response headers rangecache owns when CORS is answered here
/// (`Access-Control-*`): an origin's own are dropped from relayed responses, so only
/// `[[cors]]` rules speak.
pub fn is_cors_header(name: &[u8]) -> bool {
    name.len() > 15 && name[..15].eq_ignore_ascii_case(b"access-control-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(list: &[&str]) -> Vec<Wildcard> {
        list.iter().map(|s| Wildcard::new(s)).collect()
    }

    fn policy() -> CorsPolicy {
        CorsPolicy::new(vec![
            CorsRule::new(
                Some("data".into()),
                w(&["https://*.example.com", "http://127.0.0.1:8000"]),
                vec![Method::Get, Method::Head],
                w(&["range", "x-amz-*", "authorization"]),
                &["Content-Range".into(), "ETag".into()],
                Some(600),
            ),
            CorsRule::new(None, w(&["*"]), vec![Method::Get], Vec::new(), &[], None),
        ])
    }

    fn names(h: &CorsHeaders<'_>) -> Vec<(String, String)> {
        h.to_vec()
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    fn get<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
        h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn wildcards() {
        let p = Wildcard::new("https://*.example.com");
        assert!(p.matches(b"https://app.example.com"));
        assert!(p.matches(b"https://a.b.example.com"));
        assert!(p.matches(b"HTTPS://App.Example.com"));
        assert!(!p.matches(b"https://example.com"));
        assert!(!p.matches(b"https://app.example.com.evil.net"));
        assert!(!p.matches(b"http://app.example.com"));
        assert!(Wildcard::new("*").matches(b""));
        assert!(Wildcard::new("a*b*c").matches(b"aXXbYYbZc"));
        assert!(!Wildcard::new("a*b*c").matches(b"aXXbYY"));
        assert!(Wildcard::new("x-amz-*").matches(b"X-Amz-Date"));
        // Adversarial input stays linear-ish and terminates.
        let text = vec![b'a'; 4096];
        assert!(!Wildcard::new("*a*a*a*a*a*b").matches(&text));
    }

    #[test]
    fn actual_requests_take_the_first_matching_rule() {
        let p = policy();
        let h = p
            .actual("data", b"https://app.example.com", Method::Get)
            .unwrap();
        let h = names(&h);
        assert_eq!(
            get(&h, "access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(
            get(&h, "access-control-expose-headers"),
            Some("Content-Range, ETag")
        );
        assert_eq!(get(&h, "access-control-allow-methods"), Some("GET, HEAD"));
        assert_eq!(get(&h, "access-control-max-age"), Some("600"));
        assert_eq!(get(&h, "access-control-allow-credentials"), Some("true"));
        assert!(get(&h, "vary").unwrap().starts_with("Origin"));
        // Another bucket: only the catch-all rule, which answers `*` and no credentials.
        let h = names(&p.actual("other", b"https://evil.net", Method::Get).unwrap());
        assert_eq!(get(&h, "access-control-allow-origin"), Some("*"));
        assert_eq!(get(&h, "access-control-allow-credentials"), None);
        assert_eq!(get(&h, "access-control-expose-headers"), None);
        // A method no rule allows.
        assert!(p.actual("other", b"https://x", Method::Put).is_none());
        assert!(CorsPolicy::default()
            .actual("data", b"https://app.example.com", Method::Get)
            .is_none());
    }

    #[test]
    fn preflights() {
        let p = policy();
        let ok = p
            .preflight(
                "data",
                Some(b"http://127.0.0.1:8000"),
                Some(b"GET"),
                b"range, X-Amz-Date ,authorization",
            )
            .unwrap();
        let h = names(&ok);
        assert_eq!(
            get(&h, "access-control-allow-headers"),
            Some("range, X-Amz-Date ,authorization")
        );
        assert_eq!(
            p.preflight(
                "data",
                Some(b"http://127.0.0.1:8000"),
                Some(b"GET"),
                b"x-custom"
            )
            .map(|_| ())
            // Falls through to the catch-all, which allows no headers.
            .unwrap_err(),
            PreflightRefusal::NotAllowed
        );
        assert_eq!(
            p.preflight("data", Some(b"https://evil.net"), Some(b"PUT"), b"")
                .unwrap_err(),
            PreflightRefusal::NotAllowed
        );
        assert_eq!(
            p.preflight("data", None, Some(b"GET"), b"").unwrap_err(),
            PreflightRefusal::NoOrigin
        );
        assert_eq!(
            p.preflight("data", Some(b"https://a"), Some(b"PATCH"), b"")
                .unwrap_err(),
            PreflightRefusal::BadRequestMethod
        );
        assert_eq!(
            CorsPolicy::default()
                .preflight("data", Some(b"https://a"), Some(b"GET"), b"")
                .unwrap_err(),
            PreflightRefusal::NotEnabled
        );
        assert_eq!(PreflightRefusal::NotAllowed.to_s3().status(), 403);
    }

    #[test]
    fn cors_header_names() {
        assert!(is_cors_header(b"Access-Control-Allow-Origin"));
        assert!(!is_cors_header(b"access-control"));
        assert!(!is_cors_header(b"vary"));
    }
}
