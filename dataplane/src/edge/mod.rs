//! The client edge: what rangecache believes about who is connecting (reverse-proxy trust:
//! the PROXY protocol, `X-Forwarded-For`, RFC 7239 `Forwarded`) and what it tells browsers
//! (CORS). Pure logic and settings; the socket and response work is in `server`.

pub mod cidr;
pub mod cors;
pub mod forwarded;
pub mod proxy_protocol;

use std::net::{IpAddr, SocketAddr};

pub use cidr::{Cidr, CidrError};
pub use cors::{CorsHeaders, CorsPolicy, CorsRule, PreflightRefusal, Wildcard};
pub use proxy_protocol::ProxyVersion;

use crate::http::RequestHead;

/// Which forwarded-metadata headers a trusted proxy's requests are read for
/// (`proxy.forwarded_headers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedHeaders {
    /// Neither: the connection's (or PROXY header's) address is the client.
    None,
    /// `X-Forwarded-For`.
    XForwarded,
    /// RFC 7239 `Forwarded` (its `for=` parameters).
    Forwarded,
}

impl ForwardedHeaders {
    /// The request header this setting reads; `None` for [`ForwardedHeaders::None`].
    pub fn header_name(self) -> Option<&'static str> {
        match self {
            ForwardedHeaders::None => None,
            ForwardedHeaders::XForwarded => Some("x-forwarded-for"),
            ForwardedHeaders::Forwarded => Some("forwarded"),
        }
    }
}

/// Why forwarded client metadata was not believed: the label of
/// `rangecache_proxy_untrusted_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UntrustedKind {
    /// A PROXY protocol header from a peer outside `proxy.trusted_proxies` (connection closed).
    ProxyProtocol,
    /// An `X-Forwarded-For` header from a peer outside the list (header ignored).
    XForwarded,
    /// A `Forwarded` header from a peer outside the list (header ignored).
    Forwarded,
}

impl UntrustedKind {
    /// Every kind, in label order.
    pub const ALL: [UntrustedKind; 3] = [
        UntrustedKind::ProxyProtocol,
        UntrustedKind::XForwarded,
        UntrustedKind::Forwarded,
    ];

    /// The metric label.
    pub fn name(self) -> &'static str {
        match self {
            UntrustedKind::ProxyProtocol => "proxy_protocol",
            UntrustedKind::XForwarded => "x_forwarded",
            UntrustedKind::Forwarded => "forwarded",
        }
    }

    /// Index into per-kind counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// `[proxy]`, typed: rangecache sits behind reverse proxies at these addresses. Present in
/// the snapshot only when `proxy.enabled`; absent, every client address is the TCP peer.
#[derive(Debug, Clone)]
pub struct ProxyTrust {
    /// Which forwarded headers trusted peers' requests are read for.
    pub forwarded_headers: ForwardedHeaders,
    /// Peers whose PROXY headers and forwarded headers are believed.
    pub trusted_proxies: Vec<Cidr>,
    /// The PROXY protocol version trusted peers must open connections with; `None` = none.
    pub protocol: Option<ProxyVersion>,
}

impl ProxyTrust {
    /// True when `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        cidr::any_contains(&self.trusted_proxies, ip)
    }

    /// The client of one request that arrived from `peer` (the TCP peer, or the address a
    /// trusted PROXY header named): from a trusted peer, the forwarded header's trust walk
    /// (see [`forwarded`]); otherwise `peer`, and `Err` with the kind of header that was
    /// ignored, for counting.
    pub fn client(
        &self,
        peer: SocketAddr,
        head: &RequestHead,
    ) -> Result<SocketAddr, (SocketAddr, UntrustedKind)> {
        let Some(name) = self.forwarded_headers.header_name() else {
            return Ok(peer);
        };
        let values = || {
            head.headers()
                .iter()
                .filter(move |h| h.name_str().eq_ignore_ascii_case(name))
                .filter_map(|h| h.value_str())
        };
        if values().next().is_none() {
            return Ok(peer);
        }
        if !self.trusts(peer.ip()) {
            let kind = match self.forwarded_headers {
                ForwardedHeaders::Forwarded => UntrustedKind::Forwarded,
                _ => UntrustedKind::XForwarded,
            };
            return Err((peer, kind));
        }
        let lines: Vec<&str> = values().collect();
        let trusted = &self.trusted_proxies;
        Ok(match self.forwarded_headers {
            ForwardedHeaders::Forwarded => {
                forwarded::walk(peer, forwarded::forwarded_for(lines.into_iter()), trusted)
            }
            _ => forwarded::walk(peer, forwarded::x_forwarded_for(lines.into_iter()), trusted),
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::http::{parse_request, Limits};

    fn head(extra: &str) -> RequestHead {
        let raw = format!("GET /b/k HTTP/1.1\r\nhost: x\r\n{extra}\r\n");
        let limits = Limits {
            max_head_bytes: 8192,
            max_headers: 32,
            max_uri_bytes: 1024,
        };
        parse_request(&mut BytesMut::from(raw.as_str()), &limits)
            .unwrap()
            .unwrap()
    }

    fn trust(kind: ForwardedHeaders) -> ProxyTrust {
        ProxyTrust {
            forwarded_headers: kind,
            trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
            protocol: None,
        }
    }

    #[test]
    fn trusted_peers_are_walked_untrusted_ignored() {
        let lb: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let other: SocketAddr = "127.0.0.3:9000".parse().unwrap();
        let t = trust(ForwardedHeaders::XForwarded);
        let h = head("X-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 127.0.0.2\r\n");
        assert_eq!(t.client(lb, &h), Ok("127.0.0.2:0".parse().unwrap()));
        assert_eq!(t.client(other, &h), Err((other, UntrustedKind::XForwarded)));
        assert_eq!(t.client(other, &head("")), Ok(other));
        // Only the configured header is read.
        let f = head("Forwarded: for=127.0.0.2\r\n");
        assert_eq!(t.client(lb, &f), Ok(lb));
        let t = trust(ForwardedHeaders::Forwarded);
        assert_eq!(t.client(lb, &f), Ok("127.0.0.2:0".parse().unwrap()));
        assert_eq!(t.client(other, &f), Err((other, UntrustedKind::Forwarded)));
        assert_eq!(trust(ForwardedHeaders::None).client(lb, &h), Ok(lb));
    }
}
