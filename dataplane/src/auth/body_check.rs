//! Everything a request body must satisfy once its head was verified, checked as the body
//! streams: a signed SHA-256, a chain of chunk signatures, a trailer signature, a trailing
//! checksum.
//!
//! The caller feeds events as it decodes the body ([`chunk_start`](BodyCheck::chunk_start) for
//! each aws-chunked chunk line, [`data`](BodyCheck::data) for each decoded payload piece,
//! [`end`](BodyCheck::end) with the trailers) and must not let the body take effect (send its
//! last byte on) before `end` returned `Ok`.

use super::{
    AuthError, ChunkVerifier, PayloadHash, PayloadVerifier, RequestParts, TrailerChecksum, Verified,
};
use crate::http::Header;

/// The pending checks of one request body; [`BodyCheck::none`] checks nothing.
#[derive(Debug, Default)]
pub struct BodyCheck {
    sha256: Option<PayloadVerifier>,
    chunks: Option<ChunkVerifier>,
    trailer: Option<TrailerChecksum>,
    /// The current chunk's extension, verified once its data is complete.
    pending_extension: Option<Vec<u8>>,
}

impl BodyCheck {
    /// Nothing to check: unsigned payloads, or verification turned off.
    pub fn none() -> Self {
        Self::default()
    }

    /// The checks `verified`'s payload hash calls for. `parts` gives the `x-amz-trailer`
    /// header; its errors are [`TrailerChecksum::from_request`]'s.
    pub fn for_request<P>(
        verified: &Verified<'_, P>,
        parts: &RequestParts<'_>,
    ) -> Result<Self, AuthError> {
        let mut check = Self::none();
        match verified.payload {
            PayloadHash::Signed(hash) => check.sha256 = Some(PayloadVerifier::new(hash)),
            PayloadHash::Unsigned => {}
            PayloadHash::Streaming(_) => {
                check.chunks = ChunkVerifier::new(verified);
                check.trailer = TrailerChecksum::from_request(parts)?;
            }
        }
        Ok(check)
    }

    /// A check of anonymous or unsigned uploads that still declare a trailing checksum.
    pub fn trailer_only(parts: &RequestParts<'_>) -> Result<Self, AuthError> {
        Ok(Self {
            trailer: TrailerChecksum::from_request(parts)?,
            ..Self::none()
        })
    }

    /// True when nothing is checked.
    pub fn is_none(&self) -> bool {
        self.sha256.is_none() && self.chunks.is_none() && self.trailer.is_none()
    }

    /// A new aws-chunked chunk of `size` bytes begins, with `extension` (the chunk line's text
    /// after `;`). Verifies the previous chunk's signature; an empty (last) chunk is verified
    /// at once. `SignatureDoesNotMatch` when a signature is wrong or missing.
    pub fn chunk_start(&mut self, size: u64, extension: &[u8]) -> Result<(), AuthError> {
        let Some(chunks) = &mut self.chunks else {
            return Ok(());
        };
        if let Some(previous) = self.pending_extension.take() {
            chunks.finish_chunk(&previous)?;
        }
        if size == 0 {
            chunks.finish_chunk(extension)
        } else {
            self.pending_extension = Some(extension.to_vec());
            Ok(())
        }
    }

    /// A piece of decoded payload.
    pub fn data(&mut self, piece: &[u8]) {
        if let Some(v) = &mut self.sha256 {
            v.update(piece);
        }
        if let Some(c) = &mut self.chunks {
            c.update(piece);
        }
        if let Some(t) = &mut self.trailer {
            t.update(piece);
        }
    }

    /// The body ended, with `trailers` (empty for a plain body). Every remaining check runs:
    /// the payload SHA-256 (`XAmzContentSHA256Mismatch`), the end of the chunk chain and its
    /// trailer signature (`SignatureDoesNotMatch`), the trailing checksum (`BadDigest`,
    /// `MalformedTrailerError`). Consumes the checks: call once.
    pub fn end(&mut self, trailers: &[Header]) -> Result<(), AuthError> {
        if let Some(v) = self.sha256.take() {
            v.verify()?;
        }
        if let Some(mut chunks) = self.chunks.take() {
            if self.pending_extension.is_some() {
                return Err(AuthError::signature_does_not_match());
            }
            if !chunks.is_complete() {
                chunks.verify_trailer(trailers)?;
            }
            if !chunks.is_complete() {
                return Err(AuthError::signature_does_not_match());
            }
        }
        if let Some(t) = self.trailer.take() {
            t.verify_trailers(trailers)?;
        }
        Ok(())
    }
}
