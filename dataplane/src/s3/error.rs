//! The S3 errors rangecache produces itself, rendered in S3's XML error format, and S3-style
//! request ids.
//!
//! Errors that come from the origin are streamed through unchanged; this type is only for
//! answers rangecache makes on its own (bad request framing, routing, auth, origin failures).

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use bytes::Bytes;

/// `Content-Type` of the body [`S3Error::to_xml`] renders.
pub const XML_CONTENT_TYPE: &str = "application/xml";

/// An S3 error answer: the S3 error code, the HTTP status S3 sends with it and a message.
///
/// Codes are `&'static str` so callers compare against the constructors' codes, never parse
/// messages. Messages are usually static; a dynamic one costs one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error {
    code: &'static str,
    status: u16,
    message: Cow<'static, str>,
}

impl S3Error {
    /// An error with any code, status and message. Prefer the named constructors, which carry
    /// S3's real status and wording for each code.
    pub fn new(code: &'static str, status: u16, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            status,
            message: message.into(),
        }
    }

    /// The S3 error code (`NoSuchKey`, `InvalidURI`, ...), as sent in `<Code>`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The HTTP status code to answer with.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The human-readable message, as sent in `<Message>`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// 400 `InvalidRequest`: the request is well-formed HTTP but not a valid S3 request.
    pub fn invalid_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new("InvalidRequest", 400, message)
    }

    /// 400 `InvalidArgument`: a header or parameter has an invalid value.
    pub fn invalid_argument(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new("InvalidArgument", 400, message)
    }

    /// 400 `InvalidURI`: the path is not valid percent-encoded UTF-8.
    pub fn invalid_uri() -> Self {
        Self::new("InvalidURI", 400, "Couldn't parse the specified URI.")
    }

    /// 400 `InvalidBucketName`: the bucket name breaks S3's naming rules.
    pub fn invalid_bucket_name() -> Self {
        Self::new(
            "InvalidBucketName",
            400,
            "The specified bucket is not valid.",
        )
    }

    /// 400 `KeyTooLongError`: the decoded key is longer than 1024 bytes.
    pub fn key_too_long() -> Self {
        Self::new("KeyTooLongError", 400, "Your key is too long.")
    }

    /// 405 `MethodNotAllowed`: the method makes no sense for this resource.
    pub fn method_not_allowed() -> Self {
        Self::new(
            "MethodNotAllowed",
            405,
            "The specified method is not allowed against this resource.",
        )
    }

    /// 400 `BadRequest`: HTTP framing is broken (duplicate `Content-Length`, bad chunking,
    /// ...). S3 answers these with a bare 400; the code names the class for the client.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new("BadRequest", 400, message)
    }

    /// 400 `RequestHeaderSectionTooLarge`: the request head exceeds the configured limit.
    pub fn request_header_section_too_large() -> Self {
        Self::new(
            "RequestHeaderSectionTooLarge",
            400,
            "Your request header section exceeds the maximum allowed size.",
        )
    }

    /// 411 `MissingContentLength`: a body-carrying request has neither `Content-Length` nor
    /// chunked framing.
    pub fn missing_content_length() -> Self {
        Self::new(
            "MissingContentLength",
            411,
            "You must provide the Content-Length HTTP header.",
        )
    }

    /// 400 `IncompleteBody`: the client closed before sending the body it announced.
    pub fn incomplete_body() -> Self {
        Self::new(
            "IncompleteBody",
            400,
            "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        )
    }

    /// 400 `RequestTimeout`: the client stalled while sending its request.
    pub fn request_timeout() -> Self {
        Self::new(
            "RequestTimeout",
            400,
            "Your socket connection to the server was not read from or written to within the \
             timeout period.",
        )
    }

    /// 403 `AccessDenied`: authorization refused the request.
    pub fn access_denied() -> Self {
        Self::new("AccessDenied", 403, "Access Denied")
    }

    /// 416 `InvalidRange`: the `Range` header cannot be satisfied for this object.
    pub fn invalid_range() -> Self {
        Self::new(
            "InvalidRange",
            416,
            "The requested range is not satisfiable",
        )
    }

    /// 500 `InternalError`: a bug or resource failure inside rangecache.
    pub fn internal_error() -> Self {
        Self::new(
            "InternalError",
            500,
            "We encountered an internal error. Please try again.",
        )
    }

    /// 501 `NotImplemented`: the request uses functionality rangecache does not implement.
    pub fn not_implemented() -> Self {
        Self::new(
            "NotImplemented",
            501,
            "A header you provided implies functionality that is not implemented.",
        )
    }

    /// 503 `ServiceUnavailable`: rangecache cannot take the request now (draining, overload).
    pub fn service_unavailable() -> Self {
        Self::new("ServiceUnavailable", 503, "Reduce your request rate.")
    }

    /// 503 `SlowDown`: the client exceeds a rate limit; SDKs back off and retry on this code.
    pub fn slow_down() -> Self {
        Self::new("SlowDown", 503, "Please reduce your request rate.")
    }

    /// 502 `BadGateway`: the origin could not be reached or answered something that is not
    /// HTTP; the message says which. S3 has no such code (it is never a proxy), so this one is
    /// rangecache's own; SDKs retry 5xx answers.
    pub fn bad_gateway(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new("BadGateway", 502, message)
    }

    /// 504 `GatewayTimeout`: the origin did not connect or answer within its deadline.
    /// rangecache's own code, like [`S3Error::bad_gateway`].
    pub fn gateway_timeout() -> Self {
        Self::new(
            "GatewayTimeout",
            504,
            "The origin did not respond within the timeout period.",
        )
    }

    /// The S3 error a client sees for a data-plane failure that happened before any byte of
    /// the answer was written: the one mapping from [`crate::Error`]'s kinds to S3 codes.
    pub fn from_error(e: &crate::Error) -> Self {
        use crate::ErrorKind as K;
        match e.kind() {
            K::Timeout => Self::gateway_timeout(),
            K::Signing => Self::internal_error(),
            K::NoCredentials => Self::new(
                "ServiceUnavailable",
                503,
                "rangecache holds no valid credentials for this bucket's origin (the last \
                 credential refresh failed); try again later.",
            ),
            K::Config => Self::bad_gateway("no usable address for the origin"),
            // The origin kept changing the object, is shedding load, or rangecache's in-flight
            // budget stayed spent: all three are worth a retry by the client's SDK.
            K::Changed | K::Abandoned | K::Busy => Self::slow_down(),
            K::Status if e.status() == Some(503) => Self::slow_down(),
            K::Status => Self::bad_gateway(format!(
                "the origin answered {}",
                e.status().unwrap_or_default()
            )),
            K::Io | K::Protocol | K::Connect | K::Tls | K::Closed | K::Truncated => {
                Self::bad_gateway("the origin could not be reached or failed to respond")
            }
        }
    }

    /// Render S3's XML error body:
    /// `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>…</Code><Message>…</Message>
    /// <Resource>…</Resource><RequestId>…</RequestId></Error>` (no whitespace between the
    /// elements). All text is XML-escaped, and characters XML 1.0 cannot carry at all (most
    /// C0 controls, which S3 keys may contain) become U+FFFD so the body always parses.
    pub fn to_xml(&self, resource: &str, request_id: &str) -> Bytes {
        const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>";
        let mut out = String::with_capacity(
            HEAD.len() + 100 + self.code.len() + self.message.len() + resource.len(),
        );
        out.push_str(HEAD);
        escape_xml(self.code, &mut out);
        out.push_str("</Code><Message>");
        escape_xml(&self.message, &mut out);
        out.push_str("</Message><Resource>");
        escape_xml(resource, &mut out);
        out.push_str("</Resource><RequestId>");
        escape_xml(request_id, &mut out);
        out.push_str("</RequestId></Error>");
        Bytes::from(out)
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for S3Error {}

/// Append `text` to `out` escaped for XML character data and attribute values; characters
/// XML 1.0 cannot carry become U+FFFD.
pub fn escape_xml(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            // Not allowed in XML 1.0 even as character references.
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            _ => out.push(c),
        }
    }
}

thread_local! {
    /// Per-thread generator state; seeded once per thread from the OS-seeded thread RNG, so
    /// later ids cost a few arithmetic instructions and no syscall.
    static REQUEST_ID_STATE: Cell<u64> = Cell::new(rand::random::<u64>());
}

/// A new request id in S3's style: 16 uppercase hex characters, random-looking and distinct
/// across threads and processes with overwhelming probability. Not a secret: ids are only for
/// correlating logs, so a fast non-cryptographic generator (SplitMix64) is enough.
pub fn new_request_id() -> String {
    let value = REQUEST_ID_STATE.with(|state| {
        let next = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(next);
        splitmix64_mix(next)
    });
    let mut id = String::with_capacity(16);
    for shift in (0..16).rev() {
        let nibble = (value >> (shift * 4)) & 0xf;
        id.push(char::from(b"0123456789ABCDEF"[nibble as usize]));
    }
    id
}

/// SplitMix64's output function: a bijection on `u64` that spreads consecutive states.
fn splitmix64_mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn xml(e: &S3Error, resource: &str, id: &str) -> String {
        String::from_utf8(e.to_xml(resource, id).to_vec()).unwrap()
    }

    #[test]
    fn constructors_carry_s3_statuses() {
        let cases = [
            (S3Error::invalid_request("x"), "InvalidRequest", 400),
            (S3Error::invalid_argument("x"), "InvalidArgument", 400),
            (S3Error::invalid_uri(), "InvalidURI", 400),
            (S3Error::invalid_bucket_name(), "InvalidBucketName", 400),
            (S3Error::key_too_long(), "KeyTooLongError", 400),
            (S3Error::method_not_allowed(), "MethodNotAllowed", 405),
            (S3Error::bad_request("x"), "BadRequest", 400),
            (
                S3Error::request_header_section_too_large(),
                "RequestHeaderSectionTooLarge",
                400,
            ),
            (
                S3Error::missing_content_length(),
                "MissingContentLength",
                411,
            ),
            (S3Error::incomplete_body(), "IncompleteBody", 400),
            (S3Error::request_timeout(), "RequestTimeout", 400),
            (S3Error::access_denied(), "AccessDenied", 403),
            (S3Error::invalid_range(), "InvalidRange", 416),
            (S3Error::internal_error(), "InternalError", 500),
            (S3Error::not_implemented(), "NotImplemented", 501),
            (S3Error::service_unavailable(), "ServiceUnavailable", 503),
            (S3Error::slow_down(), "SlowDown", 503),
            (S3Error::bad_gateway("x"), "BadGateway", 502),
            (S3Error::gateway_timeout(), "GatewayTimeout", 504),
        ];
        for (e, code, status) in cases {
            assert_eq!((e.code(), e.status()), (code, status));
            assert!(!e.message().is_empty(), "{code}");
        }
    }

    #[test]
    fn standard_messages() {
        assert_eq!(
            S3Error::invalid_uri().message(),
            "Couldn't parse the specified URI."
        );
        assert_eq!(
            S3Error::method_not_allowed().message(),
            "The specified method is not allowed against this resource."
        );
        assert_eq!(
            S3Error::request_timeout().message(),
            "Your socket connection to the server was not read from or written to within the \
             timeout period."
        );
    }

    #[test]
    fn dynamic_messages() {
        let e = S3Error::invalid_argument(format!("bad value {}", 7));
        assert_eq!(e.message(), "bad value 7");
        assert_eq!(e.to_string(), "InvalidArgument (400): bad value 7");
        let e = S3Error::new("NoSuchThing", 404, "gone");
        assert_eq!(
            (e.code(), e.status(), e.message()),
            ("NoSuchThing", 404, "gone")
        );
    }

    #[test]
    fn xml_layout() {
        let body = xml(&S3Error::invalid_uri(), "/bucket/key", "0123456789ABCDEF");
        assert_eq!(
            body,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidURI</Code>\
             <Message>Couldn&apos;t parse the specified URI.</Message>\
             <Resource>/bucket/key</Resource><RequestId>0123456789ABCDEF</RequestId></Error>"
        );
    }

    #[test]
    fn xml_escapes_all_text() {
        let e = S3Error::invalid_argument("a<b>&\"c'");
        let body = xml(&e, "/b/<k>&\"'", "id&");
        assert!(body.contains("<Message>a&lt;b&gt;&amp;&quot;c&apos;</Message>"));
        assert!(body.contains("<Resource>/b/&lt;k&gt;&amp;&quot;&apos;</Resource>"));
        assert!(body.contains("<RequestId>id&amp;</RequestId>"));
    }

    #[test]
    fn xml_replaces_characters_xml_cannot_carry() {
        let body = xml(&S3Error::internal_error(), "/b/a\u{1}b\tc\u{ffff}é", "x");
        assert!(body.contains("<Resource>/b/a\u{fffd}b\tc\u{fffd}é</Resource>"));
    }

    #[test]
    fn request_ids_are_16_uppercase_hex_and_distinct() {
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let id = new_request_id();
            assert_eq!(id.len(), 16);
            assert!(id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn request_ids_differ_across_threads() {
        let a = std::thread::spawn(new_request_id).join().unwrap();
        let b = std::thread::spawn(new_request_id).join().unwrap();
        assert_ne!(a, b);
    }
}
