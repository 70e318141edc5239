//! TLS material checks and the `unsafeSsl` verifier. rustls only (TLS 1.2 and 1.3: rustls has
//! no older versions). Error texts describe the material, never contain it.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("a PEM certificate (it does not parse: {e})"))?;
    if certs.is_empty() {
        return Err("a PEM certificate (found no CERTIFICATE block)".into());
    }
    Ok(certs)
}

/// A CA bundle: at least one certificate that parses.
pub fn check_ca(pem: &str) -> Result<(), String> {
    let certs = certs(pem)?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err("a CA certificate that parses as X.509".into());
    }
    Ok(())
}

/// A client certificate and its private key (PKCS#8, PKCS#1 RSA or SEC1 EC, in PEM) that
/// belong together.
pub fn check_identity(cert_pem: &str, key_pem: &str) -> Result<(), String> {
    let chain = certs(cert_pem)?;
    // PKCS#8 `ENCRYPTED PRIVATE KEY`, or a legacy encrypted PEM (`Proc-Type: 4,ENCRYPTED`).
    if key_pem.contains("ENCRYPTED") {
        return Err(format!(
            "an unencrypted private key ({})",
            crate::spec::ENCRYPTED_KEY_HINT
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| {
        "a PEM private key (PKCS#8 \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\")"
            .to_string()
    })?;
    rustls::sign::CertifiedKey::from_der(chain, key, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            "a private key that matches the certificate (this key belongs to another one)"
                .to_string()
        }
        other => format!("a usable private key ({other})"),
    })?;
    Ok(())
}

/// `unsafeSsl: "true"`: any server certificate is accepted, as in KEDA; the handshake's
/// signatures are still checked, so the connection is encrypted, just not authenticated.
#[derive(Debug)]
pub struct SkipServerVerification(WebPkiSupportedAlgorithms);

impl SkipServerVerification {
    pub fn new() -> Arc<Self> {
        Arc::new(Self(provider().signature_verification_algorithms))
    }
}

impl ServerCertVerifier for SkipServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// The rustls error somewhere in a connect error's chain (certificate problems are auth
/// problems, not an unreachable server).
pub fn rustls_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(r) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(r);
        }
        cur = err.source();
    }
    None
}
