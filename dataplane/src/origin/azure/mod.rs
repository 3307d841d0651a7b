//! Azure Blob Storage as an origin: S3 requests translated to the Blob REST API and its
//! answers translated back, so clients keep speaking S3 (and SigV4 to rangecache).
//!
//! One job per file: [`sign`] (Shared Key and SAS), [`request`] (S3 operation → Blob
//! request), [`response`] (Blob response head and error → S3), [`list`] (List Blobs XML →
//! ListBucketResult), [`blocks`] (multipart uploads as blocks and block lists).

pub mod blocks;
pub mod list;
pub mod request;
pub mod response;
pub mod sign;

/// The Blob service REST version rangecache speaks (`x-ms-version`).
pub const API_VERSION: &str = "2021-12-02";

/// How requests to the account are authorized.
#[derive(Clone, PartialEq, Eq)]
pub enum AzureAuth {
    /// Shared Key: the account key (decoded from its base64 form) signs every request.
    SharedKey(Vec<u8>),
    /// A shared access signature: its query string (without a leading `?`) is appended to
    /// every request.
    Sas(String),
}

impl std::fmt::Debug for AzureAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AzureAuth::SharedKey(_) => f.write_str("SharedKey(<redacted>)"),
            AzureAuth::Sas(_) => f.write_str("Sas(<redacted>)"),
        }
    }
}

/// One Azure storage account as an origin. The container is the route's origin bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureOrigin {
    /// The storage account name (signs requests: `SharedKey account:signature`).
    pub account: String,
    /// Path before `/container` in every request URL: `""` for
    /// `https://{account}.blob.core.windows.net`, `/devstoreaccount1` for Azurite's
    /// path-style endpoint. No trailing slash.
    pub path_prefix: String,
    /// Shared Key or SAS.
    pub auth: AzureAuth,
}
