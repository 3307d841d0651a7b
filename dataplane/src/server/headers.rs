//! Which headers cross the proxy, in each direction.

/// Hop-by-hop headers (RFC 9110 §7.6.1) plus framing headers the proxy sets itself: never
/// forwarded in either direction.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// Client headers that belong to the client's signature or to the client's connection with
/// rangecache, not to the upstream request: the proxy signs upstream with its own credentials.
const CLIENT_ONLY: &[&str] = &[
    "host",
    "expect",
    "authorization",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-security-token",
    // CORS is answered by rangecache (`[[cors]]`): the origin must not add its own.
    "origin",
    "access-control-request-method",
    "access-control-request-headers",
];

/// Headers that describe the aws-chunked encoding of an upload; dropped once it is decoded.
const AWS_CHUNKED_ONLY: &[&str] = &["x-amz-decoded-content-length", "x-amz-trailer"];

/// True when a client request header `name` (any case) is forwarded upstream.
pub(crate) fn forward_request_header(name: &str, aws_chunked: bool) -> bool {
    let is = |list: &[&str]| list.iter().any(|h| name.eq_ignore_ascii_case(h));
    !(is(HOP_BY_HOP) || is(CLIENT_ONLY) || (aws_chunked && is(AWS_CHUNKED_ONLY)))
}

/// True when an origin response header `name` (any case) is forwarded to the client as is.
/// `content-length` is handled by the caller, which knows the response framing.
pub(crate) fn forward_response_header(name: &str) -> bool {
    !HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// `Content-Encoding` without its `aws-chunked` coding; `None` when nothing remains.
pub(crate) fn strip_aws_chunked(content_encoding: &str) -> Option<String> {
    let rest: Vec<&str> = content_encoding
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    (!rest.is_empty()).then(|| rest.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_auth_never_forwarded() {
        for h in [
            "Authorization",
            "X-Amz-Date",
            "x-amz-content-sha256",
            "X-Amz-Security-Token",
            "Host",
        ] {
            assert!(!forward_request_header(h, false), "{h}");
        }
        assert!(forward_request_header("Range", false));
        assert!(forward_request_header("x-amz-meta-a", true));
        assert!(!forward_request_header(
            "X-Amz-Decoded-Content-Length",
            true
        ));
        assert!(forward_request_header(
            "X-Amz-Decoded-Content-Length",
            false
        ));
    }

    #[test]
    fn strips_only_aws_chunked() {
        assert_eq!(strip_aws_chunked("aws-chunked"), None);
        assert_eq!(strip_aws_chunked("aws-chunked, gzip"), Some("gzip".into()));
        assert_eq!(strip_aws_chunked("gzip,aws-chunked"), Some("gzip".into()));
    }

    #[test]
    fn response_framing_headers_dropped() {
        assert!(!forward_response_header("Transfer-Encoding"));
        assert!(!forward_response_header("Connection"));
        assert!(forward_response_header("ETag"));
    }
}
