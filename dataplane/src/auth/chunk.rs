//! The signature chain of an `aws-chunked` body signed with
//! `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`.
//!
//! Each chunk's signature is the HMAC, under the request's signing key, of
//!
//! ```text
//! AWS4-HMAC-SHA256-PAYLOAD \n <timestamp> \n <scope> \n <previous signature>
//!   \n <hex sha256("")> \n <hex sha256(chunk data)>
//! ```
//!
//! where the first chunk's "previous signature" is the request's own (the seed). The last
//! chunk is empty. With trailers, one more signature follows in the trailer
//! `x-amz-trailer-signature`: the HMAC of `AWS4-HMAC-SHA256-TRAILER \n <timestamp> \n <scope>
//! \n <last chunk's signature> \n <hex sha256(canonical trailers)>`, the canonical trailers
//! being `name:value\n` per trailer, names lowercased, sorted by name.

use ring::{digest, hmac};

use super::canonical::{hex32, sha256, unhex32, EMPTY_SHA256_HEX};
use super::verify::{PayloadHash, StreamingKind, Verified};
use super::AuthError;
use crate::http::Header;

const EMPTY_SHA256: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The trailer that carries the trailer signature; not part of the canonical trailers.
const TRAILER_SIGNATURE: &str = "x-amz-trailer-signature";

/// Where a chain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting more chunks.
    Chunks,
    /// The empty last chunk was verified; trailers (their signature) are still due.
    AwaitTrailer,
    /// Complete: nothing more may come.
    Done,
    /// A check failed: the chain is broken and every later call fails.
    Failed,
}

/// Verifies the chunk signatures of one aws-chunked body, in order.
///
/// Made from a [`Verified`] request whose payload is signed streaming; owns what it needs, so
/// it does not borrow the request. Feed it chunks as the chunked decoder produces them:
/// either [`update`](Self::update) with each piece of a chunk's data and
/// [`finish_chunk`](Self::finish_chunk) with that chunk's extension once its data is complete,
/// or [`verify_chunk`](Self::verify_chunk) with a SHA-256 computed elsewhere. After the empty
/// last chunk, a trailer chain needs [`verify_trailer`](Self::verify_trailer); the body may be
/// acted on only once [`is_complete`](Self::is_complete).
pub struct ChunkVerifier {
    key: hmac::Key,
    /// `<timestamp>\n<scope>\n`, the middle of every string to sign.
    date_scope: Box<[u8]>,
    previous: [u8; 32],
    state: State,
    with_trailer: bool,
    hasher: digest::Context,
    buf: Vec<u8>,
}

impl std::fmt::Debug for ChunkVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkVerifier")
            .field("state", &self.state)
            .field("with_trailer", &self.with_trailer)
            .finish_non_exhaustive()
    }
}

impl ChunkVerifier {
    /// A verifier for `verified`'s body; `None` unless its payload is
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` or `...-PAYLOAD-TRAILER` (other bodies have no
    /// chunk signatures).
    pub fn new<P>(verified: &Verified<'_, P>) -> Option<Self> {
        let with_trailer = match verified.payload {
            PayloadHash::Streaming(StreamingKind::Signed) => false,
            PayloadHash::Streaming(StreamingKind::SignedWithTrailer) => true,
            _ => return None,
        };
        let mut date_scope = Vec::with_capacity(18 + verified.scope.scope.len());
        date_scope.extend_from_slice(verified.date.as_str().as_bytes());
        date_scope.push(b'\n');
        date_scope.extend_from_slice(verified.scope.scope.as_bytes());
        date_scope.push(b'\n');
        Some(Self {
            key: verified.signing_key.clone(),
            date_scope: date_scope.into(),
            previous: verified.signature,
            state: State::Chunks,
            with_trailer,
            hasher: digest::Context::new(&digest::SHA256),
            buf: Vec::with_capacity(256),
        })
    }

    /// Feeds a piece of the current chunk's data to the verifier's own hasher.
    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
    }

    /// Verifies the chunk whose data was fed with [`update`](Self::update) since the last
    /// chunk, against `extension` (the chunk line's text after `;`), and starts the next one.
    pub fn finish_chunk(&mut self, extension: &[u8]) -> Result<(), AuthError> {
        let hasher = std::mem::replace(&mut self.hasher, digest::Context::new(&digest::SHA256));
        let digest = hasher.finish();
        let data_sha256: &[u8; 32] = digest.as_ref().try_into().expect("SHA-256 is 32 bytes");
        self.verify_chunk(extension, data_sha256)
    }

    /// Verifies one chunk given its data's SHA-256 and its extension (the chunk line's text
    /// after `;`, which must hold `chunk-signature=<64 hex digits>`).
    ///
    /// An empty chunk (SHA-256 of nothing) is the last one. `SignatureDoesNotMatch` for a
    /// missing or wrong signature or a chunk after the last; the chain is then broken and
    /// every later call fails too.
    pub fn verify_chunk(
        &mut self,
        extension: &[u8],
        data_sha256: &[u8; 32],
    ) -> Result<(), AuthError> {
        let fail = AuthError::signature_does_not_match();
        if self.state != State::Chunks {
            self.state = State::Failed;
            return Err(fail);
        }
        let Some(signature) = chunk_signature(extension) else {
            self.state = State::Failed;
            return Err(fail);
        };
        self.buf.clear();
        self.buf.extend_from_slice(b"AWS4-HMAC-SHA256-PAYLOAD\n");
        self.buf.extend_from_slice(&self.date_scope);
        self.buf.extend_from_slice(&hex32(&self.previous));
        self.buf.push(b'\n');
        self.buf.extend_from_slice(EMPTY_SHA256_HEX.as_bytes());
        self.buf.push(b'\n');
        self.buf.extend_from_slice(&hex32(data_sha256));
        if hmac::verify(&self.key, &self.buf, &signature).is_err() {
            self.state = State::Failed;
            return Err(fail);
        }
        self.previous = signature;
        if *data_sha256 == EMPTY_SHA256 {
            self.state = if self.with_trailer {
                State::AwaitTrailer
            } else {
                State::Done
            };
        }
        Ok(())
    }

    /// Verifies the trailer signature of a `...-PAYLOAD-TRAILER` body, given all trailer fields
    /// (the checksum and `x-amz-trailer-signature`). Check the checksum's value itself with
    /// [`TrailerChecksum`](super::TrailerChecksum).
    ///
    /// `MalformedTrailerError` when called out of turn (before the last chunk, or for a body
    /// without trailers) or without `x-amz-trailer-signature`; `SignatureDoesNotMatch` when
    /// that signature is wrong.
    pub fn verify_trailer(&mut self, trailers: &[Header]) -> Result<(), AuthError> {
        if self.state != State::AwaitTrailer {
            self.state = State::Failed;
            return Err(AuthError::malformed_trailer());
        }
        self.state = State::Failed;
        let mut signature = None;
        let mut fields: Vec<&Header> = Vec::with_capacity(trailers.len());
        for trailer in trailers {
            if trailer.is(TRAILER_SIGNATURE) {
                if signature.is_some() {
                    return Err(AuthError::malformed_trailer());
                }
                signature = Some(&trailer.value);
            } else {
                fields.push(trailer);
            }
        }
        let signature = signature.ok_or(AuthError::malformed_trailer())?;
        let signature = unhex32(signature).ok_or(AuthError::signature_does_not_match())?;
        fields.sort_by(|a, b| {
            let lower = |h: &Header| h.name.to_ascii_lowercase();
            lower(a).cmp(&lower(b))
        });
        self.buf.clear();
        for field in fields {
            self.buf
                .extend(field.name.iter().map(u8::to_ascii_lowercase));
            self.buf.push(b':');
            self.buf.extend_from_slice(&field.value);
            self.buf.push(b'\n');
        }
        let trailers_sha256 = sha256(&self.buf);
        self.buf.clear();
        self.buf.extend_from_slice(b"AWS4-HMAC-SHA256-TRAILER\n");
        self.buf.extend_from_slice(&self.date_scope);
        self.buf.extend_from_slice(&hex32(&self.previous));
        self.buf.push(b'\n');
        self.buf.extend_from_slice(&hex32(&trailers_sha256));
        hmac::verify(&self.key, &self.buf, &signature)
            .map_err(|_| AuthError::signature_does_not_match())?;
        self.previous = signature;
        self.state = State::Done;
        Ok(())
    }

    /// Whether the whole chain checked out: the last chunk (and the trailer signature, when
    /// one is due) verified. A body that ends before this is incomplete and must be rejected.
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }
}

/// The signature in a chunk extension: the `chunk-signature=` item among `;`-separated ones.
fn chunk_signature(extension: &[u8]) -> Option<[u8; 32]> {
    extension
        .split(|&b| b == b';')
        .map(|item| item.trim_ascii())
        .find_map(|item| item.strip_prefix(b"chunk-signature="))
        .and_then(|hex| unhex32(hex.trim_ascii()))
}
