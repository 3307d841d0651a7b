//! rangecache's data plane: thread-per-core monoio workers that speak HTTP/1.1 and S3 to clients
//! and stream requests to S3 origins, re-signed with rangecache's own credentials.
//!
//! This crate has no Tokio runtime in it and never depends on the control plane. The types the
//! control plane shares with the workers ([`Snapshot`], [`Metrics`]) are plain data.

pub mod access_log;
pub mod auth;
pub mod cache;
pub mod credentials;
pub mod edge;
pub mod error;
pub mod fleet;
pub mod http;
pub mod metrics;
pub mod net;
pub mod origin;
pub mod s3;
pub mod server;
pub mod snapshot;
pub mod worker;

#[cfg(test)]
mod test_util;

pub use credentials::{CredentialCell, OriginCredentials, TimedCredentials};
pub use error::{Error, ErrorKind, Result, Side};
pub use metrics::{Metrics, WorkerMetrics};
pub use snapshot::{
    Backend, BucketRoute, Credentials, Origin, Scheme, ServerSettings, SharedSnapshot, Snapshot,
};
pub use worker::{DataPlane, DataPlaneConfig, IoDriver, StartError};
