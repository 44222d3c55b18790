//! Reading TLS files: certificate chains, CA bundles and private keys from PEM (with
//! rustls-pki-types' PEM reader), checked to parse as X.509 (x509-parser) so nothing later can
//! fail on them, each error naming its file.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::prelude::{FromDer, X509Certificate};

/// Why a TLS file was refused, as one line that names the file.
pub type FileError = String;

/// The certificates of a PEM file (a chain, leaf first, or a CA bundle), each parsed once to
/// make sure it is X.509; at least one.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, FileError> {
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, c) in iter.enumerate() {
        let c = c.map_err(|e| format!("{}: certificate {}: {e}", path.display(), i + 1))?;
        if let Err(e) = X509Certificate::from_der(&c) {
            return Err(format!(
                "{}: certificate {} is not X.509: {e}",
                path.display(),
                i + 1
            ));
        }
        out.push(c);
    }
    if out.is_empty() {
        return Err(format!(
            "{}: no certificate (expected PEM \"BEGIN CERTIFICATE\" blocks)",
            path.display()
        ));
    }
    Ok(out)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, FileError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => format!(
            "{}: no private key (expected a PEM \"PRIVATE KEY\" block)",
            path.display()
        ),
        e => format!("{}: cannot read the private key: {e}", path.display()),
    })
}

/// When `cert` stops being valid, in Unix seconds (0 when it does not parse, which
/// [`certificates`] has already excluded).
pub fn not_after(cert: &CertificateDer<'_>) -> i64 {
    X509Certificate::from_der(cert).map_or(0, |(_, c)| c.validity().not_after.timestamp())
}

/// The earliest expiry of `certs` (the one a rotation must beat).
pub fn earliest_not_after(certs: &[CertificateDer<'_>]) -> i64 {
    certs.iter().map(not_after).min().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_are_not_pem_certificates_are_refused_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "hello").unwrap();
        let e = certificates(&garbage).unwrap_err();
        assert!(e.contains("garbage.pem: no certificate"), "{e}");
        let e = private_key(&garbage).unwrap_err();
        assert!(e.contains("garbage.pem: no private key"), "{e}");
        let missing = dir.path().join("missing.pem");
        assert!(
            certificates(&missing)
                .unwrap_err()
                .contains("missing.pem: cannot read")
        );
        // A PEM block whose content is not a certificate.
        let bad = dir.path().join("bad.pem");
        std::fs::write(
            &bad,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = certificates(&bad).unwrap_err();
        assert!(e.contains("bad.pem: certificate 1 is not X.509"), "{e}");
    }

    #[test]
    fn a_generated_pair_reads_back_with_its_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        crate::certs::write_dev_cert(&cert, &key).unwrap();
        let chain = certificates(&cert).unwrap();
        assert_eq!(chain.len(), 1);
        private_key(&key).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(not_after(&chain[0]) > now);
    }
}
