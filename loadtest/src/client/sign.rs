//! SigV4 signing of the load generator's own requests (the `direct` target and `--endpoint`
//! stores), with `aws-sigv4` configured as S3 wants it: single percent-encoding, no path
//! normalization, `x-amz-content-sha256` sent. This is a different implementation from the
//! simulator's checker, so each checks the other.

use std::time::SystemTime;

use anyhow::{anyhow, Result};
use aws_credential_types::Credentials as AwsCredentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// Signs requests with one set of credentials.
#[derive(Debug, Clone)]
pub struct Signer {
    identity: Identity,
    region: String,
}

impl Signer {
    /// A signer for `access_key` / `secret_key` in `region`.
    pub fn new(access_key: &str, secret_key: &str, region: &str) -> Self {
        let identity =
            AwsCredentials::new(access_key, secret_key, None, None, "rangecache-loadtest").into();
        Signer {
            identity,
            region: region.to_owned(),
        }
    }

    /// Sign a bodiless request and append `authorization`, `x-amz-date` and
    /// `x-amz-content-sha256` to `headers` (which must already hold `host` and every other
    /// header to sign). `path_and_query` is percent-encoded as it will be sent.
    pub fn sign(
        &self,
        method: &str,
        host: &str,
        path_and_query: &str,
        headers: &mut Vec<(String, String)>,
        now: SystemTime,
    ) -> Result<()> {
        self.sign_with_body(method, host, path_and_query, headers, &[], now)
    }

    /// As [`Signer::sign`], for a request carrying `body` (its SHA-256 is signed).
    pub fn sign_with_body(
        &self,
        method: &str,
        host: &str,
        path_and_query: &str,
        headers: &mut Vec<(String, String)>,
        body: &[u8],
        now: SystemTime,
    ) -> Result<()> {
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
            .map_err(|e| anyhow!("signing parameters: {e}"))?
            .into();
        let url = format!("http://{host}{path_and_query}");
        let signable = SignableRequest::new(
            method,
            &url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .map_err(|e| anyhow!("signable request: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| anyhow!("sign: {e}"))?
            .into_parts();
        let added: Vec<(String, String)> = instructions
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        headers.extend(added);
        Ok(())
    }
}
