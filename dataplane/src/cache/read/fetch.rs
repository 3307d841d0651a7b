//! What the read pipeline needs from an origin: a HEAD and a ranged GET of one object.
//!
//! The origin client implements it for real origins (`origin::ObjectFetch`); tests implement
//! it with an in-process fake. The pipeline's futures run on the worker that created them
//! (thread per core), so neither trait asks for `Send`.

use bytes::Bytes;
use monoio::buf::{IoBuf, IoBufMut};

use super::super::range::RangeSpec;
use crate::error::{Error, Side};
use crate::http::ResponseHead;

/// One object at one origin, fetched by the read pipeline.
///
/// Contract: an implementation sends exactly one origin request per call and counts it, and
/// any failure of it or of its body, in its own metrics (the pipeline counts fills, retries
/// and resumes, never requests or errors); it returns
/// `Err` only when no usable response head arrived (connect, TLS, write or head-read failure,
/// time-out), with the error's kind telling which, and returns every response head it got,
/// whatever its status, for the pipeline to judge.
#[allow(async_fn_in_trait)] // Futures stay on their worker by design: no `Send` bound wanted.
pub trait OriginFetch: 'static {
    /// The body of a GET response.
    type Body: FetchBody;

    /// `HEAD` the object with `x-amz-checksum-mode: ENABLED` (checksums are kept with the
    /// metadata). The response has no body; the implementation settles its connection.
    async fn head(&self) -> Result<ResponseHead, Error>;

    /// `GET` the object with `Range: range`, and `If-Match: etag` when given.
    async fn get(
        &self,
        range: RangeSpec,
        if_match: Option<&str>,
    ) -> Result<(ResponseHead, Self::Body), Error>;
}

/// A GET response body being read.
#[allow(async_fn_in_trait)] // As for `OriginFetch`.
pub trait FetchBody: 'static {
    /// The next piece, `None` at the body's end; `Err` when the body failed before its end
    /// (reset, time-out, malformed framing).
    async fn next(&mut self) -> Result<Option<Bytes>, Error>;

    /// True when [`FetchBody::read_into`] can read this body now: bytes then go from the
    /// socket straight into the caller's buffer instead of through [`FetchBody::next`]'s
    /// pieces and a copy.
    fn reads_into(&self) -> bool {
        false
    }

    /// Read the body's next bytes straight into `dst` (at most its `bytes_total`): the
    /// number read, 0 at the body's end, and `dst` back; `Err` as for [`FetchBody::next`].
    /// `dst` is `None` only when the read was abandoned (a time-out) while the kernel may
    /// still write into it. Called only when [`FetchBody::reads_into`] said so.
    async fn read_into<T: IoBuf + IoBufMut>(
        &mut self,
        dst: T,
    ) -> (Result<usize, Error>, Option<T>) {
        let e = std::io::Error::new(std::io::ErrorKind::Unsupported, "not a Content-Length body");
        (
            Err(Error::io(Side::Internal, "body read into place", e)),
            Some(dst),
        )
    }

    /// The body was read to its end: let the connection carry another request. Dropping a
    /// body instead closes its connection.
    fn finish(self);
}
