//! Google Cloud Storage through its S3-interoperable XML API: what rangecache sends to an S3
//! origin, minus what GCS does not take.
//!
//! GCS accepts SigV4 with HMAC keys (region `auto`), `x-amz-*` headers that have an
//! `x-goog-*` equivalent, ListObjectsV2 and multipart uploads. It has no S3 flexible
//! checksums: `x-amz-checksum-mode` (rangecache's metadata HEAD) and the `x-amz-checksum-*`
//! and `x-amz-sdk-checksum-algorithm` headers clients send with uploads are dropped (rangecache
//! has already verified a client's checksum before the last byte goes upstream), except a
//! CRC32C, which GCS verifies itself when sent as `x-goog-hash: crc32c=<base64>`. Uploads
//! never reach GCS aws-chunked: rangecache decodes that framing and sends the plain payload.

/// Rewrite the headers of a request to a GCS origin before it is signed.
pub fn adapt_headers(headers: &mut Vec<(String, String)>) {
    headers.retain_mut(|(name, value)| {
        let lower = name.to_ascii_lowercase();
        if lower == "x-amz-checksum-crc32c" {
            *name = "x-goog-hash".to_owned();
            *value = format!("crc32c={}", value.trim());
            return true;
        }
        !(lower.starts_with("x-amz-checksum-") || lower == "x-amz-sdk-checksum-algorithm")
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_headers_are_dropped_and_crc32c_mapped() {
        let mut h: Vec<(String, String)> = [
            ("x-amz-checksum-mode", "ENABLED"),
            ("x-amz-checksum-crc32", "AAAAAA=="),
            ("x-amz-checksum-crc32c", "yZRlqg=="),
            ("x-amz-sdk-checksum-algorithm", "CRC32"),
            ("x-amz-meta-a", "b"),
            ("content-type", "text/csv"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        adapt_headers(&mut h);
        let kept: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            kept,
            [
                ("x-goog-hash", "crc32c=yZRlqg=="),
                ("x-amz-meta-a", "b"),
                ("content-type", "text/csv")
            ]
        );
    }
}
