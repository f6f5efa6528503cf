//! Outgoing TLS for the processor and webhook clients.
//!
//! The build links exactly one crypto backend (ring, shared with the
//! database driver), so the clients are handed a ready `rustls` config
//! instead of letting the HTTP client pick a provider at run time. Trust
//! starts from the Mozilla roots compiled into the binary, so it behaves the
//! same on every host; operators who run a private CA (and tests that sign
//! their own receiver certificate) add roots with `SETTLE_TLS_EXTRA_ROOTS`.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Makes ring the process-wide provider, for clients that do not take a
/// preconfigured TLS config (the command-line tools and tests). Calling it
/// again is harmless.
pub fn install_default_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Trust anchors for outgoing connections: the compiled-in public roots
/// plus any the operator added.
#[derive(Clone, Debug, Default)]
pub struct OutgoingTls {
    extra_roots: Vec<CertificateDer<'static>>,
}

impl OutgoingTls {
    /// Reads extra roots from a PEM file; a file without one certificate is
    /// refused, since a typo there would otherwise pass silently.
    pub fn with_extra_roots_file(path: &std::path::Path) -> Result<Self, String> {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read TLS roots from {}: {e}", path.display()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("cannot parse TLS roots in {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{} holds no PEM certificate", path.display()));
        }
        Ok(Self { extra_roots: certs })
    }

    /// A client config on ring, with the public roots and the extra ones.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in &self.extra_roots {
            roots
                .add(cert.clone())
                .map_err(|e| format!("an extra TLS root is not a usable CA certificate: {e}"))?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set TLS versions: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_certificates_is_refused() {
        let path = std::env::temp_dir().join(format!("settle-empty-roots-{}.pem", std::process::id()));
        std::fs::write(&path, "not a certificate\n").expect("write");
        let err = OutgoingTls::with_extra_roots_file(&path).expect_err("empty file refused");
        assert!(err.contains("no PEM certificate"), "{err}");
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn the_public_roots_make_a_config() {
        let config = OutgoingTls::default().client_config().expect("config");
        assert!(config.alpn_protocols.is_empty());
    }
}
