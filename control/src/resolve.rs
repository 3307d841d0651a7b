//! Origin host name resolution, done here so that workers never block on DNS: the addresses
//! go into the snapshot and are refreshed on a timer.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::config::{tls::io_text, Settings};
use crate::error::{Phase, StartupError};

/// Resolved addresses per `(host, port)`.
pub type AddrMap = HashMap<(String, u16), Vec<SocketAddr>>;

/// Longest time one lookup may take before it counts as failed.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The addresses of `host:port` in resolver order, duplicates removed; an address literal
/// needs no lookup. Never returns an empty list.
pub async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "lookup timed out"))??;
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for a in found {
        if !addrs.contains(&a) {
            addrs.push(a);
        }
    }
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no addresses found",
        ));
    }
    Ok(addrs)
}

/// Resolve every origin of `settings`; the first failure is a `[resolve_origin]` error.
pub async fn resolve_all(settings: &Settings) -> Result<AddrMap, StartupError> {
    let mut map = AddrMap::new();
    for o in settings.origins() {
        let key = (o.host.clone(), o.port);
        if map.contains_key(&key) {
            continue;
        }
        let addrs = resolve(&o.host, o.port).await.map_err(|e| {
            let detail = format!(
                "origin '{}' ({}:{}): {}",
                o.name,
                o.host,
                o.port,
                io_text(&e)
            );
            StartupError::new(Phase::ResolveOrigin, detail).with_cause(e)
        })?;
        map.insert(key, addrs);
    }
    Ok(map)
}

/// Re-resolve every origin of `settings`. An origin whose lookup fails keeps its addresses
/// from `current`; each failure is returned as a message for the caller to log.
pub async fn refresh(settings: &Settings, current: &AddrMap) -> (AddrMap, Vec<String>) {
    let mut map = AddrMap::new();
    let mut failures = Vec::new();
    for o in settings.origins() {
        let key = (o.host.clone(), o.port);
        if map.contains_key(&key) {
            continue;
        }
        match resolve(&o.host, o.port).await {
            Ok(addrs) => {
                map.insert(key, addrs);
            }
            Err(e) => {
                failures.push(format!(
                    "re-resolving origin '{}' ({}:{}) failed, keeping its addresses: {}",
                    o.name,
                    o.host,
                    o.port,
                    io_text(&e)
                ));
                if let Some(old) = current.get(&key) {
                    map.insert(key, old.clone());
                }
            }
        }
    }
    (map, failures)
}

/// Whether two maps hold the same address sets (order ignored: resolvers rotate answers,
/// and a rotation alone is not worth a new snapshot).
pub fn same_addresses(a: &AddrMap, b: &AddrMap) -> bool {
    let sorted = |v: &Vec<SocketAddr>| {
        let mut v = v.clone();
        v.sort();
        v
    };
    a.len() == b.len()
        && a.iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| sorted(v) == sorted(w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literals_need_no_lookup() {
        let v4 = resolve("10.1.2.3", 9000).await.unwrap();
        assert_eq!(v4, vec!["10.1.2.3:9000".parse().unwrap()]);
        let v6 = resolve("fd00::1", 443).await.unwrap();
        assert_eq!(v6, vec!["[fd00::1]:443".parse().unwrap()]);
    }

    #[tokio::test]
    async fn resolves_every_distinct_origin() {
        let raw = crate::config::parse(
            "[origin]\nendpoint = \"http://10.0.0.1:9000\"\n\
             [[bucket]]\nname = \"a\"\nendpoint = \"http://10.0.0.2\"\n\
             [[bucket]]\nname = \"b\"\nregion = \"eu-west-1\"\n",
        )
        .unwrap();
        let s = crate::config::validate::validate(&raw, &Default::default(), None).unwrap();
        let map = resolve_all(&s).await.unwrap();
        assert_eq!(map.len(), 2, "bucket b shares the default endpoint");
        assert_eq!(
            map[&("10.0.0.2".to_owned(), 80)],
            vec!["10.0.0.2:80".parse().unwrap()]
        );
        let (again, failures) = refresh(&s, &map).await;
        assert!(failures.is_empty());
        assert!(same_addresses(&map, &again));
    }

    #[test]
    fn address_order_does_not_matter() {
        let key = ("h".to_owned(), 1);
        let (x, y): (SocketAddr, SocketAddr) =
            ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:1".parse().unwrap());
        let a = AddrMap::from([(key.clone(), vec![x, y])]);
        let b = AddrMap::from([(key.clone(), vec![y, x])]);
        let c = AddrMap::from([(key, vec![x])]);
        assert!(same_addresses(&a, &b));
        assert!(!same_addresses(&a, &c));
    }
}
