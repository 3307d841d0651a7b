//! Blob service answers as S3 answers: the response head (status, user metadata, headers S3
//! does not send dropped) and the error, read from `x-ms-error-code`, mapped to S3's code.

use bytes::BytesMut;

use crate::http::{encode_response_head, parse_response, Limits, ResponseHead};
use crate::s3::S3Error;

/// Headers of a Blob response that S3 does not send (the blob's whole-object `Content-MD5`
/// would also be wrong on a range); `x-ms-meta-*` is renamed instead.
fn dropped(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    (lower.starts_with("x-ms-") && !lower.starts_with("x-ms-meta-"))
        || lower == "content-md5"
        || lower == "content-crc64"
}

/// `head` with S3's status `status`, `x-ms-meta-*` renamed `x-amz-meta-*`, and the Blob
/// service's own headers dropped; framing is kept as the origin sent it.
pub fn translate_head(head: &ResponseHead, status: u16, request_was_head: bool) -> ResponseHead {
    let renamed: Vec<(Vec<u8>, &[u8])> = head
        .headers()
        .iter()
        .filter(|h| !dropped(h.name_str()))
        .map(|h| {
            let name = h.name_str();
            let name = match name.get(..10) {
                Some(p) if p.eq_ignore_ascii_case("x-ms-meta-") => {
                    format!("x-amz-meta-{}", &name[10..]).into_bytes()
                }
                _ => name.as_bytes().to_vec(),
            };
            (name, &h.value[..])
        })
        .collect();
    let mut out = BytesMut::with_capacity(head.head_len() + 32);
    encode_response_head(
        &mut out,
        status,
        renamed.iter().map(|(k, v)| (k.as_slice(), *v)),
    );
    let limits = Limits {
        max_head_bytes: out.len() + 1,
        max_headers: renamed.len() + 1,
        max_uri_bytes: 0,
    };
    match parse_response(&mut out, &limits, request_was_head) {
        Ok(Some(h)) => h,
        // Re-encoding what was parsed cannot fail to parse; keep the original if it does.
        _ => head.clone(),
    }
}

/// The S3 error for a Blob error answer (`status`, `x-ms-error-code`).
pub fn s3_error(status: u16, azure_code: Option<&str>) -> S3Error {
    let code = azure_code.unwrap_or("");
    let msg = |text: &'static str| format!("{text} (Azure Blob service: {status} {code})");
    match code {
        "BlobNotFound" => S3Error::new("NoSuchKey", 404, msg("The specified key does not exist.")),
        "ContainerNotFound" => {
            S3Error::new("NoSuchBucket", 404, msg("The specified bucket does not exist."))
        }
        "AuthenticationFailed"
        | "AuthorizationFailure"
        | "AuthorizationPermissionMismatch"
        | "AuthorizationResourceTypeMismatch"
        | "AuthorizationSourceIPMismatch"
        | "AuthorizationProtocolMismatch"
        | "InsufficientAccountPermissions"
        | "AccountIsDisabled" => S3Error::new(
            "AccessDenied",
            403,
            msg("Access Denied: the origin refused rangecache's credentials."),
        ),
        "ConditionNotMet" | "BlobAlreadyExists" | "TargetConditionNotMet" => S3Error::new(
            "PreconditionFailed",
            412,
            msg("At least one of the pre-conditions you specified did not hold"),
        ),
        "InvalidRange" => S3Error::new(
            "InvalidRange",
            416,
            msg("The requested range is not satisfiable"),
        ),
        "InvalidBlockList" | "InvalidBlockId" => S3Error::new(
            "InvalidPart",
            400,
            msg("One or more of the specified parts could not be found."),
        ),
        "Md5Mismatch" => S3Error::new(
            "BadDigest",
            400,
            msg("The Content-MD5 you specified did not match what we received."),
        ),
        "RequestBodyTooLarge" => S3Error::new(
            "EntityTooLarge",
            400,
            msg("Your proposed upload exceeds the maximum allowed size"),
        ),
        "ServerBusy" | "OperationTimedOut" => {
            S3Error::new("SlowDown", 503, msg("Please reduce your request rate."))
        }
        "ContainerBeingDeleted" | "ContainerDisabled" => S3Error::new(
            "OperationAborted",
            409,
            msg("A conflicting conditional operation is currently in progress against this resource."),
        ),
        _ => match status {
            304 => S3Error::new("NotModified", 304, "Not Modified"),
            403 => S3Error::new("AccessDenied", 403, msg("Access Denied")),
            404 => S3Error::new("NoSuchKey", 404, msg("The specified key does not exist.")),
            412 => S3Error::new("PreconditionFailed", 412, msg("At least one of the pre-conditions you specified did not hold")),
            416 => S3Error::new("InvalidRange", 416, msg("The requested range is not satisfiable")),
            500..=599 => S3Error::new("InternalError", 500, msg("We encountered an internal error. Please try again.")),
            _ => S3Error::new("InvalidRequest", 400, msg("The origin refused the request.")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::ResponseFraming;

    fn head(raw: &[u8], was_head: bool) -> ResponseHead {
        parse_response(&mut BytesMut::from(raw), &Limits::default(), was_head)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn metadata_is_renamed_and_azure_headers_dropped() {
        let h = head(
            b"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nContent-Range: bytes 0-9/100\r\n\
              ETag: \"0x8DD\"\r\nContent-MD5: abc=\r\nx-ms-request-id: 1\r\nx-ms-meta-Owner: ana\r\n\
              x-ms-blob-type: BlockBlob\r\nLast-Modified: Sun, 29 Nov 2026 19:00:00 GMT\r\n\r\n",
            false,
        );
        let t = translate_head(&h, 206, false);
        assert_eq!(t.status(), 206);
        assert_eq!(t.header_str("x-amz-meta-owner"), Some("ana"));
        assert_eq!(t.header_str("etag"), Some("\"0x8DD\""));
        assert_eq!(t.header_str("content-range"), Some("bytes 0-9/100"));
        assert!(t.header("content-md5").is_none());
        assert!(t.header("x-ms-request-id").is_none() && t.header("x-ms-blob-type").is_none());
        assert_eq!(t.framing(), ResponseFraming::Length(10));
    }

    #[test]
    fn statuses_change_and_framing_follows() {
        let h = head(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", false);
        let t = translate_head(&h, 204, false);
        assert_eq!((t.status(), t.framing()), (204, ResponseFraming::None));
        let h = head(b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", true);
        assert_eq!(
            translate_head(&h, 200, true).framing(),
            ResponseFraming::None
        );
    }

    #[test]
    fn errors_map_to_s3_codes() {
        let cases = [
            (404, Some("BlobNotFound"), "NoSuchKey", 404),
            (404, Some("ContainerNotFound"), "NoSuchBucket", 404),
            (403, Some("AuthenticationFailed"), "AccessDenied", 403),
            (412, Some("ConditionNotMet"), "PreconditionFailed", 412),
            (409, Some("BlobAlreadyExists"), "PreconditionFailed", 412),
            (416, Some("InvalidRange"), "InvalidRange", 416),
            (400, Some("InvalidBlockList"), "InvalidPart", 400),
            (503, Some("ServerBusy"), "SlowDown", 503),
            (500, None, "InternalError", 500),
            (400, Some("SomethingNew"), "InvalidRequest", 400),
        ];
        for (status, code, s3, s3_status) in cases {
            let e = s3_error(status, code);
            assert_eq!((e.code(), e.status()), (s3, s3_status), "{code:?}");
        }
        assert!(s3_error(404, Some("BlobNotFound"))
            .message()
            .contains("BlobNotFound"));
    }
}
