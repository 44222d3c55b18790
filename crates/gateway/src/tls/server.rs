//! The public listener's TLS (DESIGN §4, §11): its certificate and, with `[tls] client_ca`,
//! the client-certificate verifier, each behind an `ArcSwap` so a reload replaces them for new
//! handshakes without restarting the listener (established connections keep what they
//! negotiated). After each handshake with a client certificate the connection's
//! [`ClientCert`] is derived once and attached to Pingora's `SslDigest`, where the request
//! path finds it.

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::listeners::TlsAccept;
use pingora::listeners::tls::TlsSettings;
use pingora::protocols::tls::TlsRef;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use super::client_cert::ClientCert;
use super::pem;
use super::status::Expiry;
use portcullis_core::config::{ClientAuth, Tls};

/// The files of `[tls]`, read on every (re)load.
#[derive(Debug, Clone)]
struct Files {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
    client_auth: ClientAuth,
}

/// One read of the files: everything a handshake needs, or nothing.
pub struct Material {
    key: Arc<CertifiedKey>,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
    pub expiry: Vec<Expiry>,
}

/// The listener's swappable certificate and client verifier.
pub struct ServerTls {
    files: Files,
    cert: ArcSwap<CertifiedKey>,
    /// Present exactly when `client_ca` is configured (a restart changes that, not a reload).
    verifier: Option<ArcSwap<Arc<dyn ClientCertVerifier>>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads `[tls]`'s files: the listener's TLS and the expiry of what it read. `Err` lists
    /// every problem, each naming its file.
    pub fn load(tls: &Tls) -> Result<(Arc<ServerTls>, Vec<Expiry>), Vec<String>> {
        let files = Files {
            cert: tls.cert.clone(),
            key: tls.key.clone(),
            client_ca: tls.client_ca.clone(),
            client_auth: tls.client_auth,
        };
        let m = read(&files)?;
        let tls = Arc::new(ServerTls {
            files,
            cert: ArcSwap::new(m.key),
            verifier: m.verifier.map(ArcSwap::from_pointee),
        });
        Ok((tls, m.expiry))
    }

    /// Reads the files again (blocking I/O): the material a reload would install.
    pub fn read(&self) -> Result<Material, Vec<String>> {
        read(&self.files)
    }

    /// The files it reads, for the file watcher.
    pub fn paths(&self) -> Vec<PathBuf> {
        let f = &self.files;
        [Some(&f.cert), Some(&f.key), f.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// New handshakes use `m` from now on.
    pub fn install(&self, m: Material) {
        self.cert.store(m.key);
        if let (Some(slot), Some(v)) = (&self.verifier, m.verifier) {
            slot.store(Arc::new(v));
        }
    }

    /// Pingora's TLS settings for the listener: this certificate, this verifier, ALPN h2 and
    /// http/1.1, and the handshake callback that identifies client certificates.
    pub fn settings(self: &Arc<Self>) -> pingora::Result<TlsSettings> {
        let mut s = match &self.verifier {
            Some(_) => TlsSettings::with_callbacks(Box::new(Identify))?,
            // No certificate files: the resolver below stands in for them.
            None => TlsSettings::intermediate("", "")?,
        };
        s.set_cert_resolver(Arc::new(Resolver(Arc::clone(self))));
        if self.verifier.is_some() {
            s.set_client_cert_verifier(Arc::new(Verifier(Arc::clone(self))));
        }
        s.enable_h2();
        Ok(s)
    }
}

fn read(f: &Files) -> Result<Material, Vec<String>> {
    let mut errors = Vec::new();
    let chain = pem::certificates(&f.cert).map_err(|e| errors.push(e)).ok();
    let key = pem::private_key(&f.key).map_err(|e| errors.push(e)).ok();
    let mut expiry = Vec::new();
    let certified = match (chain, key) {
        (Some(chain), Some(key)) => {
            expiry.push(Expiry::new("server", &f.cert, pem::not_after(&chain[0])));
            match CertifiedKey::from_der(chain, key, &provider()) {
                Ok(k) => Some(Arc::new(k)),
                Err(e) => {
                    errors.push(format!(
                        "{} / {}: the key does not fit the certificate: {e}",
                        f.cert.display(),
                        f.key.display()
                    ));
                    None
                }
            }
        }
        _ => None,
    };
    let verifier = match &f.client_ca {
        Some(path) => match client_verifier(path, f.client_auth) {
            Ok((v, not_after)) => {
                expiry.push(Expiry::new("client_ca", path, not_after));
                Some(v)
            }
            Err(e) => {
                errors.push(e);
                None
            }
        },
        None => None,
    };
    match certified {
        Some(key) if errors.is_empty() => Ok(Material {
            key,
            verifier,
            expiry,
        }),
        _ => Err(errors),
    }
}

/// rustls' WebPKI verifier over the CAs of `path`: a certificate, when presented, must chain
/// to one of them and be valid now; `Optional` lets a client without one complete the handshake.
fn client_verifier(
    path: &std::path::Path,
    mode: ClientAuth,
) -> Result<(Arc<dyn ClientCertVerifier>, i64), String> {
    let cas = pem::certificates(path)?;
    let not_after = pem::earliest_not_after(&cas);
    let mut roots = RootCertStore::empty();
    for (i, ca) in cas.into_iter().enumerate() {
        roots.add(ca).map_err(|e| {
            format!(
                "{}: certificate {} is not a usable CA: {e}",
                path.display(),
                i + 1
            )
        })?;
    }
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::new(provider()));
    let builder = match mode {
        ClientAuth::Optional => builder.allow_unauthenticated(),
        ClientAuth::Required => builder,
    };
    let v = builder
        .build()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((v, not_after))
}

/// Whether the certificate `chain` (leaf first) verifies against the CAs of `ca` now, as the
/// listener would verify it (for `explain --cert`).
pub fn verify_chain(ca: &std::path::Path, chain: &[CertificateDer<'_>]) -> Result<(), String> {
    let (v, _) = client_verifier(ca, ClientAuth::Required)?;
    let (leaf, intermediates) = chain.split_first().ok_or("no certificate")?;
    v.verify_client_cert(leaf, intermediates, UnixTime::now())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The process's crypto provider (installed at start), else aws-lc-rs.
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::CryptoProvider::get_default()
        .map(|p| (**p).clone())
        .unwrap_or_else(rustls::crypto::aws_lc_rs::default_provider)
}

/// Hands every handshake the certificate in use.
#[derive(Debug)]
struct Resolver(Arc<ServerTls>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.cert.load_full())
    }
}

/// Verifies client certificates with the verifier in use.
///
/// The CertificateRequest names no CAs (`root_hint_subjects` is empty): the hints would have to
/// outlive a swap, and a client with one certificate sends it either way (TLS 1.3 §4.3.2: an
/// empty list means any).
#[derive(Debug)]
struct Verifier(Arc<ServerTls>);

impl Verifier {
    fn current(&self) -> Option<Arc<Arc<dyn ClientCertVerifier>>> {
        self.0.verifier.as_ref().map(|v| v.load_full())
    }

    /// `f` on the verifier in use; without one (no client CA configured), every check fails.
    fn with_current<T>(
        &self,
        f: impl FnOnce(&dyn ClientCertVerifier) -> Result<T, rustls::Error>,
    ) -> Result<T, rustls::Error> {
        match self.current() {
            Some(v) => f(v.as_ref().as_ref()),
            None => Err(rustls::Error::General("no client CA".into())),
        }
    }
}

impl ClientCertVerifier for Verifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.0.files.client_auth == ClientAuth::Required
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.with_current(|v| v.verify_client_cert(end_entity, intermediates, now))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.with_current(|v| v.verify_tls12_signature(message, cert, dss))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.with_current(|v| v.verify_tls13_signature(message, cert, dss))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current()
            .map(|v| v.supported_verify_schemes())
            .unwrap_or_default()
    }
}

/// After a handshake that carried a (verified) client certificate: the connection's
/// [`ClientCert`], kept in Pingora's `SslDigest` extension as an `Arc<ClientCert>`.
struct Identify;

#[async_trait]
impl TlsAccept for Identify {
    async fn handshake_complete_callback(
        &self,
        ssl: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let leaf = ssl.peer_certificate_der()?;
        match ClientCert::from_der(leaf) {
            Ok(c) => Some(Arc::new(Arc::new(c))),
            Err(e) => {
                tracing::warn!("client certificate accepted by the CA but unusable: {e}");
                None
            }
        }
    }
}
