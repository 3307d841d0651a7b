//! What the read pipeline needs from an origin: a HEAD and a ranged GET of one object.
//!
//! The origin client implements it for real origins (`origin::ObjectFetch`); tests implement
//! it with an in-process fake. The pipeline's futures run on the worker that created them
//! (thread per core), so neither trait asks for `Send`.

use bytes::Bytes;

use super::super::range::RangeSpec;
use crate::error::Error;
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

    /// The body was read to its end: let the connection carry another request. Dropping a
    /// body instead closes its connection.
    fn finish(self);
}
