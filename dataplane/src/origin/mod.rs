//! The origin client: connections (TCP or TLS) from a per-worker keep-alive pool, requests
//! re-signed with SigV4 using the origin's credentials, responses parsed on our own framing.

pub mod azure;
mod client;
mod conn;
mod fetch;
pub mod gcs;
mod pool;
mod sign;

pub use client::{OriginClient, OriginExchange, OriginRequest, RequestBody};
pub use conn::OriginStream;
pub use fetch::{ExchangeBody, ObjectFetch};
pub use pool::Pool;
pub use sign::{sign_request, Payload, SignError, Signer};
