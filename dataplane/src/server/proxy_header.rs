//! Reading the PROXY protocol header off a just-accepted socket, before TLS and HTTP see it.
//!
//! Bytes are taken from the socket with `recv(2)` only as far as they surely belong to the
//! header (peeked first with `MSG_PEEK` where the end is not known yet), so the client's own
//! first bytes stay in the socket for the TLS handshake or the HTTP parser. Bounded: at most
//! [`V1_MAX`] or [`V2_MAX`] bytes are held, and the whole header must arrive within
//! `server.header_read_timeout`, so a silent peer cannot hold a connection slot longer.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use monoio::net::TcpStream;

use crate::edge::proxy_protocol::{self, Progress, ProxyError, V1_MAX, V2_MAX, V2_SIGNATURE};
use crate::edge::{ProxyTrust, ProxyVersion};

/// Pause before peeking again when an untrusted peer's first bytes are too few to tell a
/// PROXY header from its own protocol (a client sending a byte at a time).
const UNDECIDED_PAUSE: Duration = Duration::from_millis(5);

/// Why a connection is closed before it is served.
#[derive(Debug)]
pub(crate) enum PrefaceError {
    /// A PROXY header from a peer outside `proxy.trusted_proxies`.
    Untrusted,
    /// A trusted peer's header is missing or malformed.
    Header(ProxyError),
    /// The header (or, from an untrusted peer, any first byte) did not arrive in time.
    Timeout,
    /// The peer closed the connection, or the socket failed.
    Closed(Option<io::Error>),
}

impl std::fmt::Display for PrefaceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrefaceError::Untrusted => f.write_str("PROXY header from an untrusted peer"),
            PrefaceError::Header(e) => e.fmt(f),
            PrefaceError::Timeout => f.write_str("PROXY header or first bytes not in time"),
            PrefaceError::Closed(None) => f.write_str("peer closed the connection"),
            PrefaceError::Closed(Some(e)) => write!(f, "socket error: {e}"),
        }
    }
}

/// The client address of a connection accepted from `peer` on a listener with
/// `proxy.protocol = version`: a trusted peer must open with a PROXY header and the address
/// it names is returned (`peer` itself for `LOCAL`/`UNKNOWN`); an untrusted peer is served as
/// itself unless it opens with a PROXY header, which is [`PrefaceError::Untrusted`].
///
/// `header_timeout` bounds a trusted peer's header; `idle_timeout` an untrusted peer's first
/// bytes (what a plain connection would wait for its first request anyway).
pub(crate) async fn read_preface(
    tcp: &TcpStream,
    peer: SocketAddr,
    trust: &ProxyTrust,
    version: ProxyVersion,
    header_timeout: Duration,
    idle_timeout: Duration,
) -> Result<SocketAddr, PrefaceError> {
    if trust.trusts(peer.ip()) {
        match monoio::time::timeout(header_timeout, read_header(tcp, version)).await {
            Ok(Ok(source)) => Ok(source.unwrap_or(peer)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(PrefaceError::Timeout),
        }
    } else {
        match monoio::time::timeout(idle_timeout, refuse_header(tcp)).await {
            Ok(Ok(())) => Ok(peer),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(PrefaceError::Timeout),
        }
    }
}

/// Take one header of `version` off the socket.
async fn read_header(
    tcp: &TcpStream,
    version: ProxyVersion,
) -> Result<Option<SocketAddr>, PrefaceError> {
    let fd = tcp.as_raw_fd();
    let mut held = [0u8; V2_MAX];
    let mut len = 0;
    loop {
        let want = match proxy_protocol::parse(version, &held[..len]) {
            Ok(Progress::Complete(h)) => return Ok(h.source),
            Ok(Progress::Partial { at_least }) => match version {
                // Only a line feed ends a v1 header: peek as far as it may reach.
                ProxyVersion::V1 => V1_MAX - len,
                ProxyVersion::V2 => at_least,
            },
            Err(e) => return Err(PrefaceError::Header(e)),
        };
        if want == 0 || len + want > held.len() {
            return Err(PrefaceError::Header(ProxyError::TooLong));
        }
        tcp.readable(false)
            .await
            .map_err(|e| PrefaceError::Closed(Some(e)))?;
        let window = &mut held[len..len + want];
        let seen = match recv(fd, window, libc::MSG_PEEK) {
            Ok(0) => return Err(PrefaceError::Closed(None)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(PrefaceError::Closed(Some(e))),
        };
        let take = match version {
            ProxyVersion::V1 => memchr::memchr(b'\n', &window[..seen]).map_or(seen, |i| i + 1),
            ProxyVersion::V2 => seen,
        };
        // The peeked bytes are still queued, so this takes exactly `take` of them.
        let mut got = 0;
        while got < take {
            match recv(fd, &mut held[len + got..len + take], 0) {
                Ok(0) => return Err(PrefaceError::Closed(None)),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(PrefaceError::Closed(Some(e))),
            }
        }
        len += take;
    }
}

/// Look at an untrusted peer's first bytes without taking them: `Err(Untrusted)` if they
/// begin a PROXY header of either version.
async fn refuse_header(tcp: &TcpStream) -> Result<(), PrefaceError> {
    let fd = tcp.as_raw_fd();
    let mut first = [0u8; V2_SIGNATURE.len()];
    loop {
        tcp.readable(false)
            .await
            .map_err(|e| PrefaceError::Closed(Some(e)))?;
        let seen = match recv(fd, &mut first, libc::MSG_PEEK) {
            // Closed before a byte: let the connection handling see the end itself.
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(PrefaceError::Closed(Some(e))),
        };
        match proxy_protocol::looks_like_proxy(&first[..seen]) {
            Some(true) => return Err(PrefaceError::Untrusted),
            Some(false) => return Ok(()),
            None => monoio::time::sleep(UNDECIDED_PAUSE).await,
        }
    }
}

/// One non-blocking `recv(2)` into `buf` with `flags` (plus `MSG_DONTWAIT`).
fn recv(fd: RawFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the duration of the call;
    // `fd` is the open socket the caller borrows (no monoio operation is in flight on it:
    // the caller awaits nothing else on this socket meanwhile).
    let n = unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            flags | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
