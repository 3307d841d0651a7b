//! SigV4 signing of upstream requests with the origin's own credentials.

use std::time::SystemTime;

use aws_credential_types::Credentials as AwsCredentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use crate::snapshot::Credentials;

/// Signing failed (a header value that is not text, a URI that does not parse, ...).
#[derive(Debug)]
pub struct SignError(String);

impl std::fmt::Display for SignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigV4 signing failed: {}", self.0)
    }
}

impl std::error::Error for SignError {}

/// What the signature says about the body.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// No body: the hash of the empty string is signed.
    Empty,
    /// A body held in memory: its SHA-256 is signed.
    Bytes(&'a [u8]),
    /// A streamed body: `UNSIGNED-PAYLOAD` is signed.
    Unsigned,
}

/// Signs S3 requests (SigV4, service `s3`) with one identity in one region, configured as S3
/// wants it: the path used as sent (single percent-encoding, no normalization) and
/// `x-amz-content-sha256` sent. Used by the origin client and by the load generator.
#[derive(Debug, Clone)]
pub struct Signer {
    identity: Identity,
    region: String,
}

impl Signer {
    /// A signer for these credentials in `region`.
    pub fn new(
        access_key_id: &str,
        secret_access_key: &str,
        session_token: Option<&str>,
        region: &str,
    ) -> Self {
        let identity = AwsCredentials::new(
            access_key_id,
            secret_access_key,
            session_token.map(str::to_owned),
            None,
            "rangecache",
        )
        .into();
        Self {
            identity,
            region: region.to_owned(),
        }
    }

    /// A signer for an origin's configured credentials.
    pub fn for_credentials(credentials: &Credentials, region: &str) -> Self {
        Self::new(
            &credentials.access_key_id,
            &credentials.secret_access_key,
            credentials.session_token.as_deref(),
            region,
        )
    }

    /// Sign and append the signature headers (`authorization`, `x-amz-date`,
    /// `x-amz-content-sha256`, and `x-amz-security-token` with a session token) to `headers`.
    ///
    /// `url` is `scheme://authority/path?query`, already percent-encoded the way S3 expects
    /// (the path is used as is, not encoded again). Every header in `headers` is signed, so the
    /// caller passes only end-to-end headers.
    pub fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &mut Vec<(String, String)>,
        payload: Payload<'_>,
        now: SystemTime,
    ) -> Result<(), SignError> {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("s3")
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| SignError(e.to_string()))?
            .into();
        let body = match payload {
            Payload::Empty => SignableBody::Bytes(&[]),
            Payload::Bytes(b) => SignableBody::Bytes(b),
            Payload::Unsigned => SignableBody::UnsignedPayload,
        };
        let signable = SignableRequest::new(
            method,
            url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            body,
        )
        .map_err(|e| SignError(e.to_string()))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| SignError(e.to_string()))?
            .into_parts();
        let added: Vec<(String, String)> = instructions
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        headers.extend(added);
        Ok(())
    }
}

/// Sign a request with `credentials` in `region`: [`Signer::sign`] with `UNSIGNED-PAYLOAD`
/// when `unsigned_payload` (streamed bodies), otherwise an empty payload.
pub fn sign_request(
    method: &str,
    url: &str,
    headers: &mut Vec<(String, String)>,
    unsigned_payload: bool,
    credentials: &Credentials,
    region: &str,
    now: SystemTime,
) -> Result<(), SignError> {
    let payload = if unsigned_payload {
        Payload::Unsigned
    } else {
        Payload::Empty
    };
    Signer::for_credentials(credentials, region).sign(method, url, headers, payload, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn adds_signature_headers() {
        let creds = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let mut headers = vec![
            (
                "host".to_owned(),
                "examplebucket.s3.amazonaws.com".to_owned(),
            ),
            ("range".to_owned(), "bytes=0-9".to_owned()),
        ];
        // 20130524T000000Z, the date of AWS's published S3 GetObject example.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600);
        sign_request(
            "GET",
            "https://examplebucket.s3.amazonaws.com/test.txt",
            &mut headers,
            false,
            &creds,
            "us-east-1",
            now,
        )
        .unwrap();
        let auth = headers.iter().find(|(k, _)| k == "authorization").unwrap();
        // AWS's documented signature for this request (S3 "Example: GET Object").
        assert_eq!(
            auth.1,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }
}
