//! TLS: a rustls (ring) server config whose certificate is picked by SNI from the apps'
//! certificates in the route table (see `state`).

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use workflow_runtime::routes::CertPem;

use crate::error::Error;
use crate::state::State;

/// Parses a PEM certificate chain and key into a signing-ready key, checking they match.
pub fn certified_key(pem: &CertPem) -> Result<CertifiedKey, Error> {
    let certs = CertificateDer::pem_slice_iter(pem.cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("reading certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Tls("certificate PEM holds no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(pem.key.as_bytes())
        .map_err(|e| Error::Tls(format!("reading private key PEM: {e}")))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| Error::Tls(format!("private key: {e}")))?;
    let ck = CertifiedKey::new(certs, signer);
    ck.keys_match()
        .map_err(|e| Error::Tls(format!("certificate and key do not match: {e}")))?;
    Ok(ck)
}

/// Picks the certificate by SNI from the current route table.
#[derive(Debug)]
struct SniResolver {
    state: Arc<State>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?;
        let cert = self.state.current().cert(name);
        if cert.is_none() {
            tracing::debug!(sni = name, "no certificate for this name");
        }
        cert
    }
}

/// The HTTPS listener's server config.
pub fn server_config(state: Arc<State>) -> Result<Arc<rustls::ServerConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { state }));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
