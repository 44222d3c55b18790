//! TLS material: the dev self-signed certificate, and checking cert/key files before Pingora
//! loads them (Pingora panics on unreadable files; the gateway reports them instead).

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// The dev CA's file name, beside the certificate: trust it (curl --cacert, browsers, Python)
/// instead of disabling verification.
pub const DEV_CA_FILE: &str = "dev-ca.crt";

/// Writes a dev certificate for localhost, 127.0.0.1 and ::1, signed by a fresh dev CA written
/// beside it (`dev-ca.crt`). The key file is created readable by its owner only.
pub fn write_dev_cert(cert: &Path, key: &Path) -> Result<()> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).context("dev CA parameters")?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "portcullis dev CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().context("dev CA key")?)
        .context("signing the dev CA")?;
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let mut leaf_params = CertificateParams::new(names).context("dev certificate parameters")?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf_key = KeyPair::generate().context("dev certificate key")?;
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca)
        .context("signing the dev certificate")?;
    for p in [cert, key] {
        if let Some(dir) = p.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    let ca_path = cert.parent().unwrap_or(Path::new(".")).join(DEV_CA_FILE);
    fs::write(&ca_path, ca.pem()).with_context(|| format!("writing {}", ca_path.display()))?;
    fs::write(cert, leaf.pem()).with_context(|| format!("writing {}", cert.display()))?;
    write_private(key, leaf_key.serialize_pem().as_bytes())
        .with_context(|| format!("writing {}", key.display()))?;
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    fs::write(path, data)
}

/// Fails with a clear message unless the files hold a certificate chain and a private key.
pub fn check_pair(cert: &Path, key: &Path) -> Result<()> {
    let (Some(c), Some(k)) = (cert.to_str(), key.to_str()) else {
        bail!("certificate paths must be UTF-8");
    };
    match pingora::tls::load_certs_and_key_files(c, k) {
        Ok(Some((certs, _))) if !certs.is_empty() => Ok(()),
        Ok(_) => bail!(
            "{}: no certificate found, or {}: no private key found",
            cert.display(),
            key.display()
        ),
        Err(e) => bail!(
            "cannot load TLS certificate {} / key {}: {e}",
            cert.display(),
            key.display()
        ),
    }
}

/// Makes sure the configured pair exists: generated when missing and allowed, else an error.
pub fn ensure(tls: &portcullis_core::config::Tls) -> Result<()> {
    if !tls.cert.exists() || !tls.key.exists() {
        if !tls.self_signed_if_missing {
            bail!(
                "TLS certificate {} or key {} is missing (set tls.self_signed_if_missing = true for a dev certificate)",
                tls.cert.display(),
                tls.key.display()
            );
        }
        write_dev_cert(&tls.cert, &tls.key)?;
        tracing::warn!(cert = %tls.cert.display(), "generated a self-signed dev certificate; never use it in production");
    }
    check_pair(&tls.cert, &tls.key)
}
