//! `[admin]` and `[fleet]`, typed: the admin bearer token (read from its file at every load,
//! so SIGHUP rotates it) and the fleet's peers.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use super::raw_fleet::{RawAdmin, RawFleet};
use super::tls::io_text;
use super::units::format_duration;
use super::validate::{invalid, timeout};
use crate::error::StartupError;

/// The longest `fleet.invalidation_timeout`: every write waits up to this for its peers.
pub const MAX_INVALIDATION_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest admin token file read (a token, not a document).
const MAX_TOKEN_BYTES: u64 = 4096;

/// `[admin]`, typed.
#[derive(Debug, Clone, Default)]
pub struct AdminSettings {
    /// Where the token was read from; `None` = no token, the admin endpoint is open.
    pub token_file: Option<PathBuf>,
    /// The token itself, read when this configuration was loaded.
    pub token: Option<Arc<AdminToken>>,
    /// Whether `/metrics` needs the token too.
    pub protect_metrics: bool,
}

impl AdminSettings {
    /// These settings in file form (the token file's path is not a secret; its content is
    /// never shown).
    pub fn view(&self) -> RawAdmin {
        RawAdmin {
            token_file: self
                .token_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            protect_metrics: self.protect_metrics,
        }
    }
}

/// The admin bearer token. Compared by HMAC under a key drawn per process, so the comparison
/// takes the same time whatever the presented value and its length.
pub struct AdminToken {
    secret: String,
    key: hmac::Key,
    tag: hmac::Tag,
}

impl AdminToken {
    /// A token with value `secret`.
    pub fn new(secret: String) -> Self {
        let mut key_bytes = [0u8; 32];
        // The system RNG failing leaves the key all zeros: still a correct comparison, only
        // without the per-process key.
        let _ = SystemRandom::new().fill(&mut key_bytes);
        let key = hmac::Key::new(hmac::HMAC_SHA256, &key_bytes);
        let tag = hmac::sign(&key, secret.as_bytes());
        Self { secret, key, tag }
    }

    /// Whether `presented` is this token, in constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        hmac::verify(&self.key, presented, self.tag.as_ref()).is_ok()
    }

    /// The token, for calls this node makes to its peers.
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// `[fleet]`, typed.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    /// This node's name.
    pub node_id: String,
    /// Admin base URLs of the fleet's nodes (this one possibly included), in file order.
    pub peers: Vec<PeerUrl>,
    /// Longest a write waits for its peers.
    pub invalidation_timeout: Duration,
}

impl FleetSettings {
    /// These settings in file form.
    pub fn view(&self) -> RawFleet {
        RawFleet {
            node_id: self.node_id.clone(),
            peers: self.peers.iter().map(|p| p.base.clone()).collect(),
            invalidation_timeout: format_duration(self.invalidation_timeout),
        }
    }
}

/// One peer's admin endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerUrl {
    /// `http://host:port`, without a trailing slash.
    pub base: String,
    /// Host name or address literal (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Validate `[admin]`, reading the token file.
pub fn admin(raw: &RawAdmin) -> Result<AdminSettings, StartupError> {
    if raw.token_file.is_empty() {
        if raw.protect_metrics {
            return Err(invalid(
                "admin.protect_metrics",
                "needs admin.token_file (there is no token to protect /metrics with)",
            ));
        }
        return Ok(AdminSettings::default());
    }
    let path = PathBuf::from(&raw.token_file);
    let key = "admin.token_file";
    let text = read_small(&path, MAX_TOKEN_BYTES)
        .map_err(|e| invalid(key, format_args!("{}: {}", path.display(), io_text(&e))))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(invalid(key, format_args!("{} is empty", path.display())));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            key,
            format_args!(
                "{}: the token must be one line of visible ASCII (no spaces)",
                path.display()
            ),
        ));
    }
    Ok(AdminSettings {
        token_file: Some(path),
        token: Some(Arc::new(AdminToken::new(token.to_owned()))),
        protect_metrics: raw.protect_metrics,
    })
}

fn read_small(path: &std::path::Path, limit: u64) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("longer than {limit} bytes"),
        ));
    }
    Ok(text)
}

/// Validate `[fleet]`; `admin_listen` names the node when `node_id` is empty and the host
/// name is unknown.
pub fn fleet(raw: &RawFleet, admin_listen: &str) -> Result<FleetSettings, StartupError> {
    let invalidation_timeout = timeout("fleet.invalidation_timeout", &raw.invalidation_timeout)?;
    if invalidation_timeout > MAX_INVALIDATION_TIMEOUT {
        return Err(invalid(
            "fleet.invalidation_timeout",
            format_args!(
                "at most {} (every write waits up to this long)",
                format_duration(MAX_INVALIDATION_TIMEOUT)
            ),
        ));
    }
    let mut peers: Vec<PeerUrl> = Vec::with_capacity(raw.peers.len());
    for (i, text) in raw.peers.iter().enumerate() {
        let key = format!("fleet.peers[{i}]");
        let peer = peer_url(text).map_err(|detail| invalid(&key, detail))?;
        if peers.contains(&peer) {
            return Err(invalid(&key, format_args!("{} is listed twice", peer.base)));
        }
        peers.push(peer);
    }
    let node_id = match raw.node_id.trim() {
        "" => host_name().unwrap_or_else(|| admin_listen.to_owned()),
        id => id.to_owned(),
    };
    Ok(FleetSettings {
        node_id,
        peers,
        invalidation_timeout,
    })
}

/// Parse `http://host[:port][/]`: an admin endpoint's base, nothing else.
fn peer_url(text: &str) -> Result<PeerUrl, String> {
    let uri: http::Uri = text
        .parse()
        .map_err(|e| format!("'{text}' is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => {
            return Err(format!(
                "'{text}': scheme {other} is not supported (the admin endpoint speaks plain \
                 http)"
            ))
        }
        None => return Err(format!("'{text}': expected http://host:port")),
    }
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("'{text}': no host"))?;
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "'{text}': give the admin endpoint's base URL only (no path or query)"
        ));
    }
    let port = uri.port_u16().unwrap_or(80);
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let base = if host.contains(':') {
        format!("http://[{host}]:{port}")
    } else {
        format!("http://{host}:{port}")
    };
    Ok(PeerUrl { base, host, port })
}

/// This machine's host name, if it has one.
fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is valid for writes of its length; gethostname writes at most that many
    // bytes and we read only up to the first NUL within the buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..len]).trim().to_owned();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_fleet(peers: &[&str]) -> RawFleet {
        RawFleet {
            peers: peers.iter().map(|p| (*p).to_owned()).collect(),
            ..RawFleet::default()
        }
    }

    #[test]
    fn peers_are_normalized_base_urls() {
        let f = fleet(
            &raw_fleet(&["http://10.0.0.2:9090", "http://node3/", "http://[::1]:9091"]),
            "127.0.0.1:9090",
        )
        .unwrap();
        let bases: Vec<&str> = f.peers.iter().map(|p| p.base.as_str()).collect();
        assert_eq!(
            bases,
            [
                "http://10.0.0.2:9090",
                "http://node3:80",
                "http://[::1]:9091"
            ]
        );
        assert_eq!(f.peers[2].host, "::1");
        assert_eq!(f.invalidation_timeout, Duration::from_millis(250));
        assert!(!f.node_id.is_empty());
    }

    #[test]
    fn bad_peers_name_their_index() {
        for (peer, want) in [
            ("https://a:1", "not supported"),
            ("a:1", "expected http://host:port"),
            ("http://a:1/cache", "base URL only"),
            ("http://a:1/?x=1", "base URL only"),
            ("http://a b", "not a URL"),
        ] {
            let err = fleet(&raw_fleet(&["http://ok:1", peer]), "x").unwrap_err();
            assert!(err.detail().starts_with("fleet.peers[1]"), "{peer}: {err}");
            assert!(err.detail().contains(want), "{peer}: {err}");
        }
        let err = fleet(&raw_fleet(&["http://a:1", "http://a:1/"]), "x").unwrap_err();
        assert!(err.detail().contains("listed twice"), "{err}");
    }

    #[test]
    fn timeout_is_bounded_and_node_id_kept() {
        let mut raw = raw_fleet(&[]);
        raw.invalidation_timeout = "0s".into();
        assert!(fleet(&raw, "x").is_err());
        raw.invalidation_timeout = "11s".into();
        let err = fleet(&raw, "x").unwrap_err();
        assert!(err.detail().contains("at most 10s"), "{err}");
        raw.invalidation_timeout = "1s".into();
        raw.node_id = "edge-1".into();
        assert_eq!(fleet(&raw, "x").unwrap().node_id, "edge-1");
    }

    #[test]
    fn token_is_read_trimmed_and_compared() {
        let file = crate::test_support::TempFile::new("s3cret-token\n");
        let raw = RawAdmin {
            token_file: file.path(),
            protect_metrics: true,
        };
        let admin = admin(&raw).unwrap();
        let token = admin.token.unwrap();
        assert!(token.matches(b"s3cret-token"));
        assert!(!token.matches(b"s3cret-token\n"));
        assert!(!token.matches(b"s3cret-tokem"));
        assert!(!token.matches(b""));
        assert_eq!(token.secret(), "s3cret-token");
        assert_eq!(format!("{token:?}"), "AdminToken(<redacted>)");
        assert!(admin.protect_metrics);
    }

    #[test]
    fn peers_without_a_token_are_warned_about() {
        let load = |text: &str| {
            let raw = crate::config::parse(text).unwrap();
            crate::config::validate::validate(&raw, &Default::default(), None).unwrap()
        };
        let s = load("[fleet]\npeers = [\"http://10.0.0.2:9090\"]\n");
        assert!(
            s.warnings
                .iter()
                .any(|w| w.contains("without admin.token_file")),
            "{:?}",
            s.warnings
        );
        let token = crate::test_support::TempFile::new("t0k\n");
        let s = load(&format!(
            "[admin]\ntoken_file = \"{}\"\n[fleet]\npeers = [\"http://10.0.0.2:9090\"]\n",
            token.path()
        ));
        assert!(!s.warnings.iter().any(|w| w.contains("admin.token_file")));
    }

    #[test]
    fn bad_token_files_are_errors() {
        let empty = crate::test_support::TempFile::new(" \n");
        let spaced = crate::test_support::TempFile::new("a b\n");
        for (file, want) in [
            (empty.path(), "is empty"),
            (spaced.path(), "visible ASCII"),
            ("/nonexistent/token".to_owned(), "/nonexistent/token"),
        ] {
            let raw = RawAdmin {
                token_file: file.clone(),
                protect_metrics: false,
            };
            let err = admin(&raw).unwrap_err();
            assert!(err.detail().starts_with("admin.token_file"), "{err}");
            assert!(err.detail().contains(want), "{file}: {err}");
        }
        let raw = RawAdmin {
            token_file: String::new(),
            protect_metrics: true,
        };
        assert!(admin(&raw)
            .unwrap_err()
            .detail()
            .contains("needs admin.token_file"));
    }
}
