//! SigV4 signing of the load generator's own requests (the `direct` target and `--endpoint`
//! stores): the data plane's [`rangecache_dataplane::origin::Signer`], the same code that
//! signs rangecache's origin requests. The simulator checks signatures with its own, separate
//! implementation, so each checks the other.

use std::time::SystemTime;

use anyhow::{anyhow, Result};
use rangecache_dataplane::origin::{Payload, Signer as S3Signer};

/// Signs requests with one set of credentials.
#[derive(Debug, Clone)]
pub struct Signer {
    inner: S3Signer,
}

impl Signer {
    /// A signer for `access_key` / `secret_key` in `region`.
    pub fn new(access_key: &str, secret_key: &str, region: &str) -> Self {
        Signer {
            inner: S3Signer::new(access_key, secret_key, None, region),
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
        let url = format!("http://{host}{path_and_query}");
        self.inner
            .sign(method, &url, headers, Payload::Bytes(body), now)
            .map_err(|e| anyhow!("{e}"))
    }
}
