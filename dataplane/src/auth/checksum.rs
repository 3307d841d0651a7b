//! Body integrity checks the signature asks for: the signed `x-amz-content-sha256` of a whole
//! body, and the trailing `x-amz-checksum-*` of an aws-chunked body (`x-amz-trailer`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::digest;

use super::{AuthError, RequestParts};
use crate::http::Header;

/// Checks a body against the SHA-256 its signature covers ([`PayloadHash::Signed`]).
///
/// [`PayloadHash::Signed`]: super::PayloadHash::Signed
#[derive(Clone)]
pub struct PayloadVerifier {
    expected: [u8; 32],
    ctx: digest::Context,
}

impl std::fmt::Debug for PayloadVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadVerifier").finish_non_exhaustive()
    }
}

impl PayloadVerifier {
    /// A verifier expecting a body whose SHA-256 is `expected`.
    pub fn new(expected: [u8; 32]) -> Self {
        Self {
            expected,
            ctx: digest::Context::new(&digest::SHA256),
        }
    }

    /// Feeds the next piece of the body.
    pub fn update(&mut self, data: &[u8]) {
        self.ctx.update(data);
    }

    /// Once the whole body was fed: `XAmzContentSHA256Mismatch` unless it hashes to the
    /// expected value.
    pub fn verify(self) -> Result<(), AuthError> {
        if self.ctx.finish().as_ref() == self.expected {
            Ok(())
        } else {
            Err(AuthError::content_sha256_mismatch())
        }
    }
}

/// The checksum algorithms S3 accepts in `x-amz-checksum-*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    /// CRC-32 (ISO-HDLC, as zlib), big-endian, base64.
    Crc32,
    /// CRC-32C (Castagnoli), big-endian, base64.
    Crc32c,
    /// CRC-64/NVME, big-endian, base64.
    Crc64Nvme,
    /// SHA-1, base64.
    Sha1,
    /// SHA-256, base64.
    Sha256,
}

impl ChecksumAlgorithm {
    const ALL: [Self; 5] = [
        Self::Crc32,
        Self::Crc32c,
        Self::Crc64Nvme,
        Self::Sha1,
        Self::Sha256,
    ];

    /// The header (or trailer) that carries this checksum, e.g. `x-amz-checksum-crc32`.
    pub const fn header_name(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The algorithm a `x-amz-checksum-*` header name stands for (ASCII case-insensitive).
    pub fn from_header_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.header_name().eq_ignore_ascii_case(name))
    }

    fn bad_digest(self) -> AuthError {
        AuthError::bad_digest(match self {
            Self::Crc32 => "The CRC32 you specified did not match the calculated checksum.",
            Self::Crc32c => "The CRC32C you specified did not match the calculated checksum.",
            Self::Crc64Nvme => "The CRC64NVME you specified did not match the calculated checksum.",
            Self::Sha1 => "The SHA1 you specified did not match the calculated checksum.",
            Self::Sha256 => "The SHA256 you specified did not match the calculated checksum.",
        })
    }
}

#[derive(Clone)]
enum State {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64Nvme(u64),
    Digest(Box<digest::Context>),
}

/// The trailing checksum of an aws-chunked body, computed over the decoded data.
///
/// Made from the request's `x-amz-trailer` header ([`from_request`](Self::from_request)) or an
/// algorithm; fed every piece of decoded chunk data; checked against the trailer once the
/// body ends ([`verify_trailers`](Self::verify_trailers)).
#[derive(Clone)]
pub struct TrailerChecksum {
    algorithm: ChecksumAlgorithm,
    state: State,
}

impl std::fmt::Debug for TrailerChecksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrailerChecksum")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl TrailerChecksum {
    /// A checksum of `algorithm` over nothing yet.
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        let state = match algorithm {
            ChecksumAlgorithm::Crc32 => State::Crc32(crc32fast::Hasher::new()),
            ChecksumAlgorithm::Crc32c => State::Crc32c(0),
            ChecksumAlgorithm::Crc64Nvme => State::Crc64Nvme(!0),
            ChecksumAlgorithm::Sha1 => State::Digest(Box::new(digest::Context::new(
                &digest::SHA1_FOR_LEGACY_USE_ONLY,
            ))),
            ChecksumAlgorithm::Sha256 => {
                State::Digest(Box::new(digest::Context::new(&digest::SHA256)))
            }
        };
        Self { algorithm, state }
    }

    /// The checksum a request declares in `x-amz-trailer`, `Ok(None)` if it declares none.
    /// `InvalidArgument` for more than one header, or a value that is not one
    /// `x-amz-checksum-*` name S3 knows.
    pub fn from_request(parts: &RequestParts<'_>) -> Result<Option<Self>, AuthError> {
        const UNSUPPORTED: AuthError = AuthError::invalid_argument(
            "The value specified in the x-amz-trailer header is not supported",
        );
        let Some(value) = parts
            .single_header("x-amz-trailer")
            .map_err(|()| UNSUPPORTED)?
        else {
            return Ok(None);
        };
        ChecksumAlgorithm::from_header_name(value.trim())
            .map(|a| Some(Self::new(a)))
            .ok_or(UNSUPPORTED)
    }

    /// The algorithm being computed.
    pub fn algorithm(&self) -> ChecksumAlgorithm {
        self.algorithm
    }

    /// Feeds the next piece of decoded body data.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Crc32(h) => h.update(data),
            State::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, data),
            State::Crc64Nvme(crc) => *crc = crc64_nvme_update(*crc, data),
            State::Digest(ctx) => ctx.update(data),
        }
    }

    /// The checksum of everything fed so far, as raw big-endian bytes.
    pub fn finish(self) -> Vec<u8> {
        match self.state {
            State::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            State::Crc32c(crc) => crc.to_be_bytes().to_vec(),
            State::Crc64Nvme(crc) => (!crc).to_be_bytes().to_vec(),
            State::Digest(ctx) => ctx.finish().as_ref().to_vec(),
        }
    }

    /// Checks the checksum against `value`, the base64 text of the trailer (or header).
    /// `BadDigest` (naming the algorithm, as S3 does) if it differs or is not base64.
    pub fn verify(self, value: &[u8]) -> Result<(), AuthError> {
        let algorithm = self.algorithm;
        let sent = STANDARD
            .decode(value.trim_ascii())
            .map_err(|_| algorithm.bad_digest())?;
        if sent == self.finish() {
            Ok(())
        } else {
            Err(algorithm.bad_digest())
        }
    }

    /// Finds this checksum's field among a body's trailers and [`verify`](Self::verify)s it;
    /// `MalformedTrailerError` if the declared trailer is missing or repeated.
    pub fn verify_trailers(self, trailers: &[Header]) -> Result<(), AuthError> {
        let name = self.algorithm.header_name();
        let mut found = trailers.iter().filter(|t| t.is(name));
        match (found.next(), found.next()) {
            (Some(field), None) => self.verify(&field.value),
            _ => Err(AuthError::malformed_trailer()),
        }
    }
}

/// CRC-64/NVME: reflected polynomial 0x9a6c9329ac4bc9b5 (0xad93d23594c93659 normal),
/// initial value and final xor all ones. One table, a byte at a time.
const CRC64_NVME_TABLE: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x9a6c_9329_ac4b_c9b5
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

fn crc64_nvme_update(mut crc: u64, data: &[u8]) -> u64 {
    for &b in data {
        crc = CRC64_NVME_TABLE[((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn checksum(algorithm: ChecksumAlgorithm, pieces: &[&[u8]]) -> Vec<u8> {
        let mut c = TrailerChecksum::new(algorithm);
        for p in pieces {
            c.update(p);
        }
        c.finish()
    }

    #[test]
    fn check_values() {
        // The catalogue check values over "123456789", fed in two pieces.
        let input: &[&[u8]] = &[b"1234", b"56789"];
        assert_eq!(
            checksum(ChecksumAlgorithm::Crc32, input),
            0xcbf4_3926u32.to_be_bytes()
        );
        assert_eq!(
            checksum(ChecksumAlgorithm::Crc32c, input),
            0xe306_9283u32.to_be_bytes()
        );
        assert_eq!(
            checksum(ChecksumAlgorithm::Crc64Nvme, input),
            0xae8b_1486_0a79_9888u64.to_be_bytes()
        );
        let sha1 = checksum(ChecksumAlgorithm::Sha1, input);
        assert_eq!(STANDARD.encode(sha1), "98O8HYCOBHMq32eZZczDTKeuNEE=");
    }

    #[test]
    fn verifies_base64_trailers() {
        let data = b"Hello world";
        let mut c = TrailerChecksum::new(ChecksumAlgorithm::Crc32);
        c.update(data);
        let good = STANDARD.encode(c.clone().finish());
        assert_eq!(c.clone().verify(good.as_bytes()), Ok(()));
        assert_eq!(
            c.clone().verify(b"AAAAAA==").unwrap_err().code(),
            "BadDigest"
        );
        assert_eq!(c.clone().verify(b"!!").unwrap_err().code(), "BadDigest");
        let trailer = |name: &'static str, value: String| Header {
            name: Bytes::from_static(name.as_bytes()),
            value: Bytes::from(value),
        };
        let trailers = [
            trailer("X-Amz-Checksum-CRC32", good.clone()),
            trailer("x-amz-trailer-signature", "00".repeat(32)),
        ];
        assert_eq!(c.clone().verify_trailers(&trailers), Ok(()));
        assert_eq!(
            c.clone()
                .verify_trailers(&trailers[1..])
                .unwrap_err()
                .code(),
            "MalformedTrailerError"
        );
        let twice = [trailers[0].clone(), trailers[0].clone()];
        assert_eq!(
            c.verify_trailers(&twice).unwrap_err().code(),
            "MalformedTrailerError"
        );
    }

    #[test]
    fn payload_verifier() {
        let mut v = PayloadVerifier::new(super::super::canonical::sha256(b"abc"));
        v.update(b"a");
        v.update(b"bc");
        assert_eq!(v.verify(), Ok(()));
        let mut v = PayloadVerifier::new(super::super::canonical::sha256(b"abc"));
        v.update(b"abd");
        assert_eq!(v.verify().unwrap_err().code(), "XAmzContentSHA256Mismatch");
    }
}
