//! Owned-buffer stream I/O shared by the client-facing server and the origin client:
//! a read-buffered stream, vectored writes of `Bytes` slices, and HTTP body readers.

mod body;
mod iovec;
mod stream;

pub use body::{AwsChunkedBody, BodyError, BodyReader};
pub use iovec::BytesVec;
pub use stream::BufStream;

/// A client connection's transport as accepted by a worker's listener.
pub type ClientStream = monoio::net::TcpStream;

/// A client connection with its read buffer: what the server's request handling reads from and
/// writes to.
pub type ClientConn = BufStream<ClientStream>;
