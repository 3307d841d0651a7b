//! `[server.tls]`, typed: the client listener's rustls server configuration, built from PEM
//! files at (re)load.
//!
//! TLS 1.3 and 1.2 with the `ring` provider chosen explicitly, ALPN `http/1.1`, one
//! certificate chain (RSA or ECDSA) whose key must match its leaf, and with `client_ca_file`
//! a client certificate signed by one of those CAs required in the handshake. Every file is
//! read when the configuration is validated, so a reload (SIGHUP) picks up rotated files and a
//! bad file fails validation: at startup a `[validate_config]` error, on reload a rejected
//! configuration that leaves the running certificate in place.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rangecache_dataplane::net::TlsSettings;
use rustls::crypto::ring;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;

use super::raw::RawServerTls;
use super::tls::{io_text, roots_from_file};
use crate::error::{Phase, StartupError};

/// The one application protocol the client listener speaks.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// `[server.tls]`, typed: the files as configured and the configuration loaded from them.
#[derive(Debug, Clone)]
pub struct ServerTlsConfig {
    /// `cert_file`.
    pub cert_file: PathBuf,
    /// `key_file`.
    pub key_file: PathBuf,
    /// `client_ca_file`; `Some` = mTLS.
    pub client_ca_file: Option<PathBuf>,
    /// `handshake_timeout`.
    pub handshake_timeout: Duration,
    /// The rustls configuration built from the files when they were last read.
    pub config: Arc<ServerConfig>,
}

/// Equal when the same files and timeout are configured; the certificates loaded from them are
/// not compared (a reload re-reads them either way).
impl PartialEq for ServerTlsConfig {
    fn eq(&self, other: &Self) -> bool {
        self.cert_file == other.cert_file
            && self.key_file == other.key_file
            && self.client_ca_file == other.client_ca_file
            && self.handshake_timeout == other.handshake_timeout
    }
}

impl ServerTlsConfig {
    /// The data plane's view: the rustls configuration and the handshake deadline.
    pub fn to_dataplane(&self) -> TlsSettings {
        TlsSettings {
            config: self.config.clone(),
            handshake_timeout: self.handshake_timeout,
        }
    }

    /// These settings in file form.
    pub fn view(this: Option<&Self>, handshake_timeout: String) -> RawServerTls {
        let path = |p: &Path| p.display().to_string();
        match this {
            None => RawServerTls {
                handshake_timeout,
                ..RawServerTls::default()
            },
            Some(t) => RawServerTls {
                cert_file: path(&t.cert_file),
                key_file: path(&t.key_file),
                client_ca_file: t.client_ca_file.as_deref().map(path).unwrap_or_default(),
                handshake_timeout,
            },
        }
    }
}

/// Validate `[server.tls]`: `None` when no file is named (plain HTTP); otherwise both
/// `cert_file` and `key_file` are required and every named file must load.
pub fn validate(
    raw: &RawServerTls,
    handshake_timeout: Duration,
) -> Result<Option<ServerTlsConfig>, StartupError> {
    let path = |s: &str| (!s.is_empty()).then(|| PathBuf::from(s));
    let (cert_file, key_file, client_ca_file) = (
        path(&raw.cert_file),
        path(&raw.key_file),
        path(&raw.client_ca_file),
    );
    let (cert_file, key_file) = match (cert_file, key_file) {
        (None, None) if client_ca_file.is_none() => return Ok(None),
        (Some(c), Some(k)) => (c, k),
        (None, Some(_)) | (None, None) => {
            return Err(invalid(
                "server.tls.cert_file",
                "must be set when server.tls.key_file or server.tls.client_ca_file is",
            ))
        }
        (Some(_), None) => {
            return Err(invalid(
                "server.tls.key_file",
                "must be set when server.tls.cert_file is",
            ))
        }
    };
    let chain = cert_chain(&cert_file)?;
    let key = private_key(&key_file)?;
    let provider = Arc::new(ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| invalid("server.tls", format_args!("TLS setup failed: {e}")).with_cause(e))?;
    let builder = match &client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = Arc::new(roots_from_file(ca, "server.tls.client_ca_file")?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| {
                    invalid("server.tls.client_ca_file", format_args!("{e}")).with_cause(e)
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        let err = match &e {
            // The leaf could not be parsed: the certificate file is at fault.
            rustls::Error::InvalidCertificate(_) => invalid(
                "server.tls.cert_file",
                format_args!("{}: unusable certificate: {e}", cert_file.display()),
            ),
            _ => invalid(
                "server.tls.key_file",
                format_args!(
                    "{}: does not fit the certificate in {}: {e}",
                    key_file.display(),
                    cert_file.display()
                ),
            ),
        };
        err.with_cause(e)
    })?;
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(Some(ServerTlsConfig {
        cert_file,
        key_file,
        client_ca_file,
        handshake_timeout,
        config: Arc::new(config),
    }))
}

fn read(path: &Path, key: &str) -> Result<Vec<u8>, StartupError> {
    std::fs::read(path).map_err(|e| {
        invalid(key, format_args!("{}: {}", path.display(), io_text(&e))).with_cause(e)
    })
}

/// Every certificate in `path`, leaf first; at least one.
fn cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, StartupError> {
    const KEY: &str = "server.tls.cert_file";
    let pem = read(path, KEY)?;
    let chain = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            invalid(
                KEY,
                format_args!("{}: invalid PEM: {}", path.display(), io_text(&e)),
            )
            .with_cause(e)
        })?;
    if chain.is_empty() {
        return Err(invalid(
            KEY,
            format_args!("{}: contains no PEM certificates", path.display()),
        ));
    }
    Ok(chain)
}

/// The first private key in `path` (PKCS#8, PKCS#1 RSA or SEC1 EC).
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, StartupError> {
    const KEY: &str = "server.tls.key_file";
    let pem = read(path, KEY)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| {
            invalid(
                KEY,
                format_args!("{}: invalid PEM: {}", path.display(), io_text(&e)),
            )
            .with_cause(e)
        })?
        .ok_or_else(|| {
            invalid(
                KEY,
                format_args!("{}: contains no PEM private key", path.display()),
            )
        })
}

fn invalid(key: &str, detail: impl std::fmt::Display) -> StartupError {
    StartupError::new(Phase::ValidateConfig, format!("{key}: {detail}"))
}

#[cfg(test)]
mod tests;
