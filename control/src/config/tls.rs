//! rustls client configurations for https origins: roots from a PEM bundle (`ca_file`) or the
//! system store, crypto from the `ring` provider chosen explicitly.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring;
use rustls::{ClientConfig, RootCertStore};

use crate::error::{Phase, StartupError};

/// Builds client configurations, loading the system store at most once per validation.
#[derive(Default)]
pub struct TlsBuilder {
    system_roots: Option<Arc<RootCertStore>>,
}

impl TlsBuilder {
    /// A client configuration trusting the certificates in `ca_file`, or the system store when
    /// `None`. `key` names the configuration key in error messages.
    pub fn client_config(
        &mut self,
        ca_file: Option<&Path>,
        key: &str,
    ) -> Result<Arc<ClientConfig>, StartupError> {
        let roots = match ca_file {
            Some(path) => Arc::new(roots_from_file(path, key)?),
            None => self.system_roots(key)?,
        };
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(key, format!("TLS setup failed: {e}")).with_cause(e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    fn system_roots(&mut self, key: &str) -> Result<Arc<RootCertStore>, StartupError> {
        if let Some(roots) = &self.system_roots {
            return Ok(roots.clone());
        }
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let why = found
                .errors
                .first()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            return Err(invalid(
                key,
                format!(
                    "is empty and the system certificate store has no usable certificates{why}; \
                     set it to a PEM bundle of trusted roots"
                ),
            ));
        }
        let roots = Arc::new(roots);
        self.system_roots = Some(roots.clone());
        Ok(roots)
    }
}

/// Every certificate in the PEM file at `path`; at least one. `key` names the configuration
/// key in error messages.
pub fn roots_from_file(path: &Path, key: &str) -> Result<RootCertStore, StartupError> {
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|e| invalid(key, format!("{shown}: {}", io_text(&e))).with_cause(e))?;
    let mut roots = RootCertStore::empty();
    for (i, cert) in rustls_pemfile::certs(&mut pem.as_slice()).enumerate() {
        let cert = cert.map_err(|e| {
            invalid(key, format!("{shown}: invalid PEM: {}", io_text(&e))).with_cause(e)
        })?;
        roots.add(cert).map_err(|e| {
            invalid(key, format!("{shown}: certificate {} rejected: {e}", i + 1)).with_cause(e)
        })?;
    }
    if roots.is_empty() {
        return Err(invalid(
            key,
            format!("{shown}: contains no PEM certificates"),
        ));
    }
    Ok(roots)
}

fn invalid(key: &str, detail: String) -> StartupError {
    StartupError::new(Phase::ValidateConfig, format!("{key}: {detail}"))
}

/// An I/O error's text without the `(os error N)` suffix.
pub fn io_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name)
    }

    #[test]
    fn builds_from_a_ca_file() {
        let cfg = TlsBuilder::default()
            .client_config(Some(&data("test-ca.pem")), "origin.ca_file")
            .unwrap();
        assert!(cfg.alpn_protocols.is_empty());
    }

    #[test]
    fn rejects_missing_and_empty_bundles() {
        let mut b = TlsBuilder::default();
        let err = b
            .client_config(Some(Path::new("/nonexistent/ca.pem")), "origin.ca_file")
            .unwrap_err();
        assert_eq!(err.phase(), Phase::ValidateConfig);
        assert_eq!(
            err.detail(),
            "origin.ca_file: /nonexistent/ca.pem: No such file or directory"
        );
        let err = b
            .client_config(Some(&data("not-a-cert.pem")), "bucket[a].ca_file")
            .unwrap_err();
        assert!(err.detail().starts_with("bucket[a].ca_file: "), "{err}");
        assert!(
            err.detail().ends_with("contains no PEM certificates"),
            "{err}"
        );
    }
}
