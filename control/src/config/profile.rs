//! Built-in profiles: named sets of defaults layered just above the built-in defaults, and the
//! requirements each one checks once the whole configuration is merged and validated.
//!
//! `--profile NAME` (or `RANGECACHE_PROFILE`) picks one; every later layer (the config
//! directory's files, `--config`, the environment, flags) overrides what it sets. A profile's
//! requirements are checked on the final configuration, so a file may satisfy them (`prod-tls`
//! with `server.tls.*` in `config/prod-tls.toml`) but cannot switch them off.

use std::fmt;
use std::net::SocketAddr;

use rangecache_dataplane::auth::AuthMode;

use super::settings::Settings;
use super::validate::invalid;
use crate::error::StartupError;

/// The variable naming the profile when `--profile` is not given.
pub const PROFILE_ENV: &str = "RANGECACHE_PROFILE";

/// A built-in profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// The built-in defaults alone.
    #[default]
    Default,
    /// A laptop: authentication off, every request logged, no core pinning, a small cache;
    /// loopback listeners only.
    Dev,
    /// Production: default-deny authentication pinned on, access log on; an admin endpoint
    /// reachable from other hosts needs a token.
    Prod,
    /// `prod` with TLS on the client listener required.
    ProdTls,
    /// `prod-tls` with client certificates (mTLS) required.
    ProdMtls,
}

impl Profile {
    /// Every profile, in the order the documentation lists them.
    pub const ALL: [Self; 5] = [
        Self::Default,
        Self::Dev,
        Self::Prod,
        Self::ProdTls,
        Self::ProdMtls,
    ];

    /// The profile's name, as given to `--profile` and used for `config/<name>.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Dev => "dev",
            Self::Prod => "prod",
            Self::ProdTls => "prod-tls",
            Self::ProdMtls => "prod-mtls",
        }
    }

    /// The profile called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The names of every profile, for error messages: `default, dev, ... or prod-mtls`.
    pub fn names() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|p| p.name()).collect();
        let (last, rest) = names.split_last().expect("there are profiles");
        format!("{} or {last}", rest.join(", "))
    }

    /// The defaults this profile layers over the built-in ones, as TOML (every key must be a
    /// real configuration key: a unit test parses each one).
    pub fn defaults_toml(self) -> &'static str {
        match self {
            Self::Default => "",
            Self::Dev => DEV,
            Self::Prod | Self::ProdTls | Self::ProdMtls => PROD,
        }
    }

    /// Check the profile's requirements on the final, validated configuration. The error is
    /// a `[validate_config]` error naming the key that does not meet them.
    pub fn check(self, s: &Settings) -> Result<(), StartupError> {
        match self {
            Self::Default => Ok(()),
            Self::Dev => {
                loopback(self, "server.listen", s.server.listen)?;
                loopback(self, "server.admin_listen", s.server.admin_listen)
            }
            Self::Prod => prod(self, s),
            Self::ProdTls => {
                prod(self, s)?;
                tls(self, s)
            }
            Self::ProdMtls => {
                prod(self, s)?;
                tls(self, s)?;
                let mtls = s
                    .server
                    .tls
                    .as_ref()
                    .and_then(|t| t.client_ca_file.as_ref());
                if mtls.is_none() {
                    return Err(invalid(
                        "server.tls.client_ca_file",
                        format_args!(
                            "profile {self} requires client certificates: set it to the PEM \
                             bundle of CAs that sign them"
                        ),
                    ));
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `dev`: what a developer running rangecache on a laptop wants.
const DEV: &str = r#"
[server]
pin_cores = false      # share the laptop's cores with everything else
[cache]
memory = "256MiB"
[log]
access = "stdout"      # every request, as it happens
[auth]
mode = "none"          # any client may do anything (loopback listeners only)
"#;

/// `prod`, `prod-tls` and `prod-mtls`: the production defaults.
const PROD: &str = r#"
[log]
access = "stdout"      # one JSON line per request, to the journal or the container log
[auth]
mode = "sigv4"         # default-deny: what no grant allows is refused
"#;

/// `prod` and above: default-deny on, and no anonymous admin endpoint on the network.
fn prod(profile: Profile, s: &Settings) -> Result<(), StartupError> {
    if s.auth.mode != AuthMode::SigV4 {
        return Err(invalid(
            "auth.mode",
            format_args!(
                "profile {profile} requires \"sigv4\" (default-deny); \"none\" is for \
                 benchmarks and the dev profile"
            ),
        ));
    }
    if s.admin.token.is_none() && !s.server.admin_listen.ip().is_loopback() {
        return Err(invalid(
            "admin.token_file",
            format_args!(
                "profile {profile} requires an admin token when server.admin_listen ({}) is \
                 not a loopback address",
                s.server.admin_listen
            ),
        ));
    }
    Ok(())
}

/// `prod-tls` and above: TLS on the client listener.
fn tls(profile: Profile, s: &Settings) -> Result<(), StartupError> {
    if s.server.tls.is_none() {
        return Err(invalid(
            "server.tls.cert_file",
            format_args!(
                "profile {profile} requires TLS on the client listener: set \
                 server.tls.cert_file and server.tls.key_file"
            ),
        ));
    }
    Ok(())
}

/// `dev` turns authentication off, so its listeners must not be reachable from other hosts.
fn loopback(profile: Profile, key: &str, addr: SocketAddr) -> Result<(), StartupError> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    Err(invalid(
        key,
        format_args!(
            "profile {profile} listens on loopback addresses only (it turns authentication \
             off), got {addr}; use another profile to serve other hosts"
        ),
    ))
}
