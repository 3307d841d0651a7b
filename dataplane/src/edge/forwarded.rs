//! The client address a trusted reverse proxy reports in `X-Forwarded-For` or RFC 7239
//! `Forwarded`, found by the standard trust walk.
//!
//! The rule: start at the connection's peer (which must itself be trusted for the headers to
//! be read at all) and walk the forwarded hops from the right, the hop closest to rangecache
//! first. Each hop that is a trusted proxy vouches for the one to its left; the first hop that
//! is *not* trusted is the client. If every hop is trusted, the left-most one is the client.
//! A hop that is not an IP address (`unknown`, an obfuscated `_identifier`, garbage) ends the
//! walk: the client is then the last trusted hop, the proxy that reported it. A client cannot
//! choose its address by sending the header itself: its own entries sit left of the first
//! untrusted hop and are never reached.

use std::net::{IpAddr, SocketAddr};

use super::cidr::{any_contains, canonical};

/// Walk `hops` (left to right as sent; the walk goes right to left) from `peer`, a trusted
/// proxy, and return the client. Hops without a port are reported with port 0.
pub fn walk<I>(peer: SocketAddr, hops: I, trusted: &[crate::edge::Cidr]) -> SocketAddr
where
    I: DoubleEndedIterator<Item = Option<SocketAddr>>,
{
    let mut client = peer;
    for hop in hops.rev() {
        let Some(hop) = hop else { break };
        client = hop;
        if !any_contains(trusted, hop.ip()) {
            break;
        }
    }
    client
}

/// The hops of `X-Forwarded-For` values (every field line, in order): each comma-separated
/// entry parsed as an address (`ip`, `ip:port`, `[ipv6]`, `[ipv6]:port`), `None` when it is
/// none. Empty entries are skipped.
pub fn x_forwarded_for<'a>(
    values: impl DoubleEndedIterator<Item = &'a str> + 'a,
) -> impl DoubleEndedIterator<Item = Option<SocketAddr>> + 'a {
    values
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(node)
}

/// The hops of RFC 7239 `Forwarded` values (every field line, in order): each element's
/// `for=` node; `None` for an element without one, or whose node is `unknown`, obfuscated
/// (`_hidden`) or not an address.
pub fn forwarded_for<'a>(
    values: impl DoubleEndedIterator<Item = &'a str> + 'a,
) -> impl DoubleEndedIterator<Item = Option<SocketAddr>> + 'a {
    values
        .flat_map(|v| split_unquoted(v, b','))
        .map(|element| {
            split_unquoted(element, b';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| unquote(value.trim()))
            })
        })
        .filter(|f| f.as_ref().is_none_or(|v| !v.is_empty()))
        .map(|f| f.and_then(|v| node(&v)))
}

/// One node: `ip`, `ip:port`, `[ipv6]`, `[ipv6]:port` or a bare IPv6 address. Obfuscated
/// ports (`:_abc`) count as no port.
fn node(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let ip: IpAddr = ip.parse().ok()?;
        let port = match after.strip_prefix(':') {
            None if after.is_empty() => 0,
            None => return None,
            Some(p) => port(p)?,
        };
        return Some(SocketAddr::new(canonical(ip), port));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(SocketAddr::new(canonical(ip), 0));
    }
    let (ip, p) = s.rsplit_once(':')?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    Some(SocketAddr::new(IpAddr::V4(ip), port(p)?))
}

fn port(p: &str) -> Option<u16> {
    if p.starts_with('_') {
        return Some(0);
    }
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
}

/// A quoted-string's content with its escapes undone; other values as they are.
fn unquote(v: &str) -> String {
    let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return v.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `s` split at every `sep` outside a quoted-string.
fn split_unquoted(s: &str, sep: u8) -> impl DoubleEndedIterator<Item = &str> {
    let mut parts = Vec::new();
    let bytes = s.as_bytes();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == sep && !quoted {
            parts.push(s[start..i].trim());
            start = i + 1;
        }
    }
    parts.push(s[start..].trim());
    parts.into_iter().filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::Cidr;

    fn nets(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const PEER: &str = "10.0.0.1:5000";

    fn xff(values: &[&str], trusted: &[&str]) -> SocketAddr {
        walk(
            sa(PEER),
            x_forwarded_for(values.iter().copied()),
            &nets(trusted),
        )
    }

    fn fwd(values: &[&str], trusted: &[&str]) -> SocketAddr {
        walk(
            sa(PEER),
            forwarded_for(values.iter().copied()),
            &nets(trusted),
        )
    }

    #[test]
    fn xff_takes_the_right_most_untrusted_hop() {
        let t = ["10.0.0.0/8"];
        assert_eq!(xff(&["203.0.113.9"], &t), sa("203.0.113.9:0"));
        // A client-supplied entry left of the real client is never reached.
        assert_eq!(
            xff(&["1.1.1.1, 203.0.113.9, 10.0.0.7"], &t),
            sa("203.0.113.9:0")
        );
        // Several field lines form one list, in order.
        assert_eq!(
            xff(&["1.1.1.1", "203.0.113.9", "10.0.0.7"], &t),
            sa("203.0.113.9:0")
        );
        // All trusted: the left-most.
        assert_eq!(xff(&["10.0.0.3, 10.0.0.7"], &t), sa("10.0.0.3:0"));
        // Garbage ends the walk at the last trusted hop.
        assert_eq!(xff(&["203.0.113.9, junk, 10.0.0.7"], &t), sa("10.0.0.7:0"));
        assert_eq!(xff(&["junk"], &t), sa(PEER));
        assert_eq!(xff(&[], &t), sa(PEER));
        assert_eq!(xff(&[" , "], &t), sa(PEER));
        // Ports and brackets.
        assert_eq!(xff(&["203.0.113.9:4711"], &t), sa("203.0.113.9:4711"));
        assert_eq!(xff(&["[2001:db8::1]:80"], &t), sa("[2001:db8::1]:80"));
        assert_eq!(xff(&["2001:db8::1"], &t), sa("[2001:db8::1]:0"));
        assert_eq!(xff(&["::ffff:203.0.113.9"], &t), sa("203.0.113.9:0"));
    }

    #[test]
    fn forwarded_for_nodes() {
        let t = ["10.0.0.0/8"];
        assert_eq!(
            fwd(&["for=192.0.2.60;proto=http;by=203.0.113.43"], &t),
            sa("192.0.2.60:0")
        );
        assert_eq!(
            fwd(&["For=\"[2001:db8:cafe::17]:4711\""], &t),
            sa("[2001:db8:cafe::17]:4711")
        );
        assert_eq!(
            fwd(&["for=192.0.2.43, for=\"[2001:db8::1]\", for=10.1.1.1"], &t),
            sa("[2001:db8::1]:0")
        );
        assert_eq!(fwd(&["for=\"192.0.2.43:_port\""], &t), sa("192.0.2.43:0"));
        // Obfuscated or unknown: the walk stops at the reporting proxy.
        assert_eq!(fwd(&["for=_hidden, for=10.0.0.9"], &t), sa("10.0.0.9:0"));
        assert_eq!(fwd(&["for=unknown"], &t), sa(PEER));
        // An element without `for` stops the walk too.
        assert_eq!(fwd(&["for=192.0.2.1, proto=https"], &t), sa(PEER));
        // Separators inside quotes do not split.
        assert_eq!(
            fwd(&["for=192.0.2.1;ext=\"a,b;c\", for=10.0.0.2"], &t),
            sa("192.0.2.1:0")
        );
        // Several field lines.
        assert_eq!(
            fwd(&["for=192.0.2.1", "for=10.0.0.2"], &t),
            sa("192.0.2.1:0")
        );
    }

    #[test]
    fn nothing_trusted_means_the_first_hop_from_the_right() {
        assert_eq!(xff(&["1.1.1.1, 2.2.2.2"], &[]), sa("2.2.2.2:0"));
    }
}
