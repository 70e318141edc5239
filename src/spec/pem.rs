//! Checks of TLS material as written in a spec or a Secret (PEM certificates and keys), for
//! validation and for the connection that uses them. Error texts describe the material, never
//! contain it.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The rustls crypto provider of every TLS connection the agent makes.
pub fn provider() -> CryptoProvider {
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
            super::ENCRYPTED_KEY_HINT
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
