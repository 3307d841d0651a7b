//! The PROXY protocol (HAProxy's, versions 1 and 2): the header a load balancer in TCP mode
//! sends first on a connection to say whom it accepted it from.
//!
//! Pure parsing over bytes already received; reading them off a socket (bounded, under a
//! deadline, never past the header) is `server::proxy_header`'s job. Bounds: a version 1
//! header is at most [`V1_MAX`] bytes; a version 2 header at most [`V2_MAX`] bytes (its
//! 16-byte fixed part plus addresses and TLVs, which are skipped).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Longest version 1 header, CRLF included (the spec's bound).
pub const V1_MAX: usize = 107;

/// The version 2 signature, the first 12 bytes of its header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The fixed part of a version 2 header: signature, version/command, family, length.
pub const V2_FIXED: usize = 16;

/// Longest version 2 header accepted: the fixed part and up to 1 KiB of addresses and TLVs
/// (an IPv6 address block is 36 bytes; balancers add a few TLVs at most).
pub const V2_MAX: usize = V2_FIXED + 1024;

/// The start of every version 1 header.
const V1_PREFIX: &[u8] = b"PROXY ";

/// Which PROXY protocol version a listener expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyVersion {
    /// The text form, `PROXY TCP4 ...\r\n`.
    V1,
    /// The binary form.
    V2,
}

/// A complete PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// Where the balancer's client connected from; `None` for `LOCAL` (the balancer's own
    /// connection, e.g. a health check), `UNKNOWN` and non-IP families: the connection's own
    /// peer address stands.
    pub source: Option<SocketAddr>,
    /// The header's length in bytes: what to consume before the client's own bytes.
    pub len: usize,
}

/// Why bytes are not a valid PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyError {
    /// The bytes do not start with the expected signature: no PROXY header at all.
    NotProxy,
    /// A header longer than the bound ([`V1_MAX`], [`V2_MAX`]).
    TooLong,
    /// The signature matched but the rest is not a valid header; says which part.
    Malformed(&'static str),
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyError::NotProxy => f.write_str("no PROXY protocol header"),
            ProxyError::TooLong => f.write_str("PROXY protocol header too long"),
            ProxyError::Malformed(what) => write!(f, "malformed PROXY protocol header: {what}"),
        }
    }
}

impl std::error::Error for ProxyError {}

/// How far a header parse got with the bytes at hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The whole header is here.
    Complete(ProxyHeader),
    /// More bytes are needed; the next `at_least` bytes still belong to the header (so a
    /// reader may consume that many without reading past it).
    Partial {
        /// Bytes that surely belong to the header beyond those given.
        at_least: usize,
    },
}

/// Parse a header of `version` at the start of `buf`.
pub fn parse(version: ProxyVersion, buf: &[u8]) -> Result<Progress, ProxyError> {
    match version {
        ProxyVersion::V1 => parse_v1(buf),
        ProxyVersion::V2 => parse_v2(buf),
    }
}

/// True when `buf` starts like a PROXY header of either version (a prefix of a signature
/// counts: `None` means more bytes are needed to tell).
pub fn looks_like_proxy(buf: &[u8]) -> Option<bool> {
    let starts = |sig: &[u8]| {
        let n = buf.len().min(sig.len());
        buf[..n] == sig[..n]
    };
    let v1 = starts(V1_PREFIX);
    let v2 = starts(&V2_SIGNATURE);
    if (v1 && buf.len() >= V1_PREFIX.len()) || (v2 && buf.len() >= V2_SIGNATURE.len()) {
        Some(true)
    } else if v1 || v2 {
        None
    } else {
        Some(false)
    }
}

/// Version 1: `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n` or `PROXY UNKNOWN[ ...]\r\n`.
fn parse_v1(buf: &[u8]) -> Result<Progress, ProxyError> {
    let n = buf.len().min(V1_PREFIX.len());
    if buf[..n] != V1_PREFIX[..n] {
        return Err(ProxyError::NotProxy);
    }
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(lf) = memchr::memchr(b'\n', window) else {
        if buf.len() >= V1_MAX {
            return Err(ProxyError::TooLong);
        }
        // Everything up to the line's end is header; at least the LF is still to come.
        return Ok(Progress::Partial { at_least: 1 });
    };
    if lf == 0 || window[lf - 1] != b'\r' {
        return Err(ProxyError::Malformed("line does not end in CRLF"));
    }
    let line = std::str::from_utf8(&window[V1_PREFIX.len().min(lf - 1)..lf - 1])
        .map_err(|_| ProxyError::Malformed("not ASCII"))?;
    let len = lf + 1;
    let mut fields = line.split(' ');
    let family = fields.next().unwrap_or("");
    let source = match family {
        "UNKNOWN" => None,
        "TCP4" | "TCP6" => {
            let parts: Vec<&str> = fields.collect();
            let [src, dst, sport, dport] = parts[..] else {
                return Err(ProxyError::Malformed("expected SRC DST SPORT DPORT"));
            };
            let src = v1_addr(src, family)?;
            v1_addr(dst, family)?;
            let sport = v1_port(sport)?;
            v1_port(dport)?;
            Some(SocketAddr::new(src, sport))
        }
        _ => {
            return Err(ProxyError::Malformed(
                "protocol is not TCP4, TCP6 or UNKNOWN",
            ))
        }
    };
    Ok(Progress::Complete(ProxyHeader { source, len }))
}

fn v1_addr(s: &str, family: &str) -> Result<IpAddr, ProxyError> {
    let ip = if family == "TCP4" {
        s.parse::<Ipv4Addr>().map(IpAddr::V4)
    } else {
        s.parse::<Ipv6Addr>().map(IpAddr::V6)
    };
    ip.map_err(|_| ProxyError::Malformed("address does not match its family"))
}

fn v1_port(s: &str) -> Result<u16, ProxyError> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProxyError::Malformed("port is not a decimal number"));
    }
    s.parse()
        .map_err(|_| ProxyError::Malformed("port out of range"))
}

/// Version 2: signature, version/command, family/transport, length, then addresses and TLVs.
fn parse_v2(buf: &[u8]) -> Result<Progress, ProxyError> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] != V2_SIGNATURE[..n] {
        return Err(ProxyError::NotProxy);
    }
    if buf.len() < V2_FIXED {
        return Ok(Progress::Partial {
            at_least: V2_FIXED - buf.len(),
        });
    }
    let ver_cmd = buf[12];
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::Malformed("version is not 2"));
    }
    let command = ver_cmd & 0x0f;
    if command > 1 {
        return Err(ProxyError::Malformed("command is not LOCAL or PROXY"));
    }
    let family = buf[13];
    let body = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let len = V2_FIXED + body;
    if len > V2_MAX {
        return Err(ProxyError::TooLong);
    }
    if buf.len() < len {
        return Ok(Progress::Partial {
            at_least: len - buf.len(),
        });
    }
    let addrs = &buf[V2_FIXED..len];
    if command == 0 {
        // LOCAL: the balancer speaking for itself; addresses, if any, are to be ignored.
        return Ok(Progress::Complete(ProxyHeader { source: None, len }));
    }
    let source = match family >> 4 {
        0x1 => {
            if addrs.len() < 12 {
                return Err(ProxyError::Malformed("IPv4 address block too short"));
            }
            let ip = Ipv4Addr::new(addrs[0], addrs[1], addrs[2], addrs[3]);
            let port = u16::from_be_bytes([addrs[8], addrs[9]]);
            Some(SocketAddr::new(IpAddr::V4(ip), port))
        }
        0x2 => {
            if addrs.len() < 36 {
                return Err(ProxyError::Malformed("IPv6 address block too short"));
            }
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&addrs[..16]);
            let port = u16::from_be_bytes([addrs[32], addrs[33]]);
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port))
        }
        // UNSPEC and UNIX: no IP to report; the connection's own address stands.
        0x0 | 0x3 => None,
        _ => return Err(ProxyError::Malformed("unknown address family")),
    };
    Ok(Progress::Complete(ProxyHeader { source, len }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(v: ProxyVersion, buf: &[u8]) -> ProxyHeader {
        match parse(v, buf) {
            Ok(Progress::Complete(h)) => h,
            other => panic!("{other:?}"),
        }
    }

    /// A version 2 PROXY header for `src` -> `dst` (same family), with `tlv` appended.
    pub(crate) fn v2(src: SocketAddr, dst: SocketAddr, tlv: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x21);
        let mut body = Vec::new();
        match (src, dst) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => {
                out.push(0x11);
                body.extend_from_slice(&s.ip().octets());
                body.extend_from_slice(&d.ip().octets());
            }
            (SocketAddr::V6(s), SocketAddr::V6(d)) => {
                out.push(0x21);
                body.extend_from_slice(&s.ip().octets());
                body.extend_from_slice(&d.ip().octets());
            }
            _ => panic!("mixed families"),
        }
        body.extend_from_slice(&src.port().to_be_bytes());
        body.extend_from_slice(&dst.port().to_be_bytes());
        body.extend_from_slice(tlv);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn v1_tcp4_tcp6_unknown() {
        let h = complete(
            ProxyVersion::V1,
            b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\nGET / HTTP/1.1\r\n",
        );
        assert_eq!(h.source, Some("192.0.2.7:56324".parse().unwrap()));
        assert_eq!(h.len, 41);
        let h = complete(ProxyVersion::V1, b"PROXY TCP6 2001:db8::1 ::1 4711 80\r\n");
        assert_eq!(h.source, Some("[2001:db8::1]:4711".parse().unwrap()));
        let h = complete(ProxyVersion::V1, b"PROXY UNKNOWN\r\n");
        assert_eq!((h.source, h.len), (None, 15));
        let h = complete(ProxyVersion::V1, b"PROXY UNKNOWN ffff::1 ::1 1 2\r\n");
        assert_eq!(h.source, None);
    }

    #[test]
    fn v1_partial_and_bounds() {
        assert_eq!(
            parse(ProxyVersion::V1, b"PROX"),
            Ok(Progress::Partial { at_least: 1 })
        );
        assert_eq!(
            parse(ProxyVersion::V1, b"PROXY TCP4 1.2.3.4"),
            Ok(Progress::Partial { at_least: 1 })
        );
        let long = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 120]].concat();
        assert_eq!(parse(ProxyVersion::V1, &long), Err(ProxyError::TooLong));
        // The longest legal header (107 bytes) still parses.
        let mut max = b"PROXY UNKNOWN ".to_vec();
        max.resize(V1_MAX - 2, b'x');
        max.extend_from_slice(b"\r\n");
        assert_eq!(complete(ProxyVersion::V1, &max).len, V1_MAX);
    }

    #[test]
    fn v1_rejects_malformed() {
        for bad in [
            b"GET / HTTP/1.1\r\n".as_slice(),
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
            b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
            b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY\r\n",
        ] {
            assert!(
                parse(ProxyVersion::V1, bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse(ProxyVersion::V1, b"GET /"), Err(ProxyError::NotProxy));
    }

    #[test]
    fn v2_inet_inet6_local_and_tlvs() {
        let src: SocketAddr = "127.0.0.2:40000".parse().unwrap();
        let dst: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let mut buf = v2(src, dst, &[0x04, 0x00, 0x01, 0x00]);
        let len = buf.len();
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let h = complete(ProxyVersion::V2, &buf);
        assert_eq!((h.source, h.len), (Some(src), len));
        let src6: SocketAddr = "[2001:db8::7]:1234".parse().unwrap();
        let dst6: SocketAddr = "[::1]:80".parse().unwrap();
        let h = complete(ProxyVersion::V2, &v2(src6, dst6, &[]));
        assert_eq!(h.source, Some(src6));
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
        assert_eq!(complete(ProxyVersion::V2, &local).source, None);
        let mut unspec = V2_SIGNATURE.to_vec();
        unspec.extend_from_slice(&[0x21, 0x00, 0x00, 0x00]);
        assert_eq!(complete(ProxyVersion::V2, &unspec).source, None);
    }

    #[test]
    fn v2_partial_says_what_is_surely_header() {
        let full = v2(
            "10.0.0.1:1".parse().unwrap(),
            "10.0.0.2:2".parse().unwrap(),
            &[],
        );
        assert_eq!(
            parse(ProxyVersion::V2, &full[..5]),
            Ok(Progress::Partial { at_least: 11 })
        );
        assert_eq!(
            parse(ProxyVersion::V2, &full[..20]),
            Ok(Progress::Partial {
                at_least: full.len() - 20
            })
        );
    }

    #[test]
    fn v2_rejects_malformed_and_oversized() {
        let mut bad_version = V2_SIGNATURE.to_vec();
        bad_version.extend_from_slice(&[0x11, 0x11, 0x00, 0x0c]);
        assert!(matches!(
            parse(ProxyVersion::V2, &bad_version),
            Err(ProxyError::Malformed(_))
        ));
        let mut bad_cmd = V2_SIGNATURE.to_vec();
        bad_cmd.extend_from_slice(&[0x22, 0x11, 0x00, 0x0c]);
        assert!(parse(ProxyVersion::V2, &bad_cmd).is_err());
        let mut short = V2_SIGNATURE.to_vec();
        short.extend_from_slice(&[0x21, 0x11, 0x00, 0x04, 1, 2, 3, 4]);
        assert!(matches!(
            parse(ProxyVersion::V2, &short),
            Err(ProxyError::Malformed(_))
        ));
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert_eq!(parse(ProxyVersion::V2, &huge), Err(ProxyError::TooLong));
        assert_eq!(
            parse(ProxyVersion::V2, b"PROXY TCP4 "),
            Err(ProxyError::NotProxy)
        );
    }

    #[test]
    fn detection() {
        assert_eq!(looks_like_proxy(b"PROXY TCP4"), Some(true));
        assert_eq!(looks_like_proxy(&V2_SIGNATURE), Some(true));
        assert_eq!(looks_like_proxy(b"PRO"), None);
        assert_eq!(looks_like_proxy(b"\r\n\r\n"), None);
        assert_eq!(looks_like_proxy(b"PUT /a"), Some(false));
        assert_eq!(looks_like_proxy(b"\r\nGET"), Some(false));
        assert_eq!(looks_like_proxy(&[0x16, 0x03, 0x01]), Some(false));
        assert_eq!(looks_like_proxy(b""), None);
    }
}
