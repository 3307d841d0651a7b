//! Owned-buffer stream I/O shared by the client-facing server and the origin client:
//! a read-buffered stream, vectored writes of `Bytes` slices, and HTTP body readers.

mod body;
mod client;
mod iovec;
mod stream;

pub use body::{AwsChunkedBody, BodyError, BodyReader};
pub use iovec::BytesVec;
pub use stream::BufStream;

pub use client::{ClientStream, TlsSettings};

/// A client connection with its read buffer: what the server's request handling reads from and
/// writes to.
pub type ClientConn = BufStream<ClientStream>;
