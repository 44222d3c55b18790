//! Test PKI for the mutual-TLS tests: CAs and leaf certificates made with rcgen, written as
//! PEM files, and TLS clients that present them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};

/// A certificate authority.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate and its key, in PEM.
#[derive(Clone)]
pub struct Leaf {
    pub cert: String,
    pub key: String,
    pub der: Vec<u8>,
}

/// What a leaf certificate names.
#[derive(Default, Clone)]
pub struct Names<'a> {
    pub uris: &'a [&'a str],
    pub dns: &'a [&'a str],
    pub ips: &'a [std::net::IpAddr],
    pub cn: Option<&'a str>,
    pub expired: bool,
    /// Valid until the start of this year (rcgen's default is 4096).
    pub until_year: Option<i32>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ca {
            issuer: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    pub fn leaf(&self, n: Names<'_>) -> Leaf {
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = n.cn {
            p.distinguished_name.push(DnType::CommonName, cn);
        }
        for u in n.uris {
            p.subject_alt_names
                .push(SanType::URI((*u).try_into().unwrap()));
        }
        for d in n.dns {
            p.subject_alt_names
                .push(SanType::DnsName((*d).try_into().unwrap()));
        }
        for ip in n.ips {
            p.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        if n.expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        if let Some(y) = n.until_year {
            p.not_after = rcgen::date_time_ymd(y, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A client certificate whose identity is the SPIFFE ID `uri`.
    pub fn spiffe(&self, uri: &str) -> Leaf {
        self.leaf(Names {
            uris: &[uri],
            cn: Some("workload"),
            ..Default::default()
        })
    }

    /// A server certificate for localhost and 127.0.0.1.
    pub fn server(&self) -> Leaf {
        self.server_until(None)
    }

    /// A server certificate for localhost and 127.0.0.1, valid until the start of `year`.
    pub fn server_until(&self, year: Option<i32>) -> Leaf {
        self.leaf(Names {
            dns: &["localhost"],
            ips: &["127.0.0.1".parse().unwrap()],
            cn: Some("localhost"),
            until_year: year,
            ..Default::default()
        })
    }
}

impl Leaf {
    /// Writes `<name>.crt` and `<name>.key` into `dir`.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, &self.cert).unwrap();
        std::fs::write(&k, &self.key).unwrap();
        (c, k)
    }

    /// Certificate and key in one PEM, as `reqwest::Identity` takes them.
    pub fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.cert, self.key).as_bytes()).unwrap()
    }

    /// SHA-256 of the DER, lower-case hex (XFCC's `Hash`).
    pub fn sha256_hex(&self) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(&self.der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Writes `text` to `path` atomically (a rename, as Kubernetes and cert managers do).
pub fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp-new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A client trusting `server_ca` (PEM, may hold several), presenting `leaf` if given, speaking
/// HTTP/1.1 only when `h1`, with no connection reuse (each request a new handshake) when `fresh`.
pub fn client(server_ca: &str, leaf: Option<&Leaf>, fresh: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(server_ca.as_bytes()).unwrap());
    if let Some(l) = leaf {
        b = b.identity(l.identity());
    }
    if fresh {
        b = b.pool_max_idle_per_host(0);
    }
    b.build().unwrap()
}

/// A raw TLS connection to `port` (name `localhost`) presenting `leaf`, with the ALPN given;
/// `Err` when the handshake or the first exchange fails.
pub async fn tls_connect(
    port: u16,
    server_ca: &str,
    leaf: Option<&Leaf>,
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    portcullis_gateway::app::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for c in crate::harness::rustls_pemfile_certs(server_ca.as_bytes()) {
        roots.add(c).unwrap();
    }
    let b = rustls::ClientConfig::builder().with_root_certificates(roots);
    let mut cfg = match leaf {
        Some(l) => {
            let chain = vec![CertificateDer::from_pem_slice(l.cert.as_bytes()).unwrap()];
            let key = PrivateKeyDer::from_pem_slice(l.key.as_bytes()).unwrap();
            b.with_client_auth_cert(chain, key).unwrap()
        }
        None => b.with_no_client_auth(),
    };
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
}

/// What an HTTPS upstream saw of one connection: the SNI sent and the client certificate
/// presented (DER), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub sni: Option<String>,
    pub client: Option<Vec<u8>>,
}

/// A real HTTPS upstream: the echo app over rustls with `leaf` as its certificate, asking for
/// client certificates of `clients` when given (required), offering `alpn`.
pub struct TlsUpstream {
    pub addr: std::net::SocketAddr,
    pub seen: Arc<std::sync::Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    seen: Arc<std::sync::Mutex<Vec<Seen>>>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            let hs = tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(tcp));
            if let Ok(Ok(tls)) = hs.await {
                let c = tls.get_ref().1;
                self.seen.lock().unwrap().push(Seen {
                    sni: c.server_name().map(str::to_string),
                    client: c
                        .peer_certificates()
                        .and_then(|p| p.first())
                        .map(|d| d.to_vec()),
                });
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

impl TlsUpstream {
    pub async fn start(leaf: &Leaf, clients: Option<&Ca>, alpn: &[&[u8]]) -> TlsUpstream {
        Self::serve(leaf, clients, alpn, portcullis::echo::router()).await
    }

    pub async fn serve(
        leaf: &Leaf,
        clients: Option<&Ca>,
        alpn: &[&[u8]],
        app: axum::Router,
    ) -> TlsUpstream {
        let cfg = server_config(leaf, clients, alpn);
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let listener = TlsListener {
            tcp,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
            seen: Arc::clone(&seen),
        };
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        TlsUpstream { addr, seen, task }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A rustls server config with `leaf`, requiring certificates of `clients` when given.
pub fn server_config(leaf: &Leaf, clients: Option<&Ca>, alpn: &[&[u8]]) -> rustls::ServerConfig {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    portcullis_gateway::app::install_crypto_provider();
    let chain = vec![CertificateDer::from_pem_slice(leaf.cert.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).unwrap();
    let b = rustls::ServerConfig::builder();
    let b = match clients {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in crate::harness::rustls_pemfile_certs(ca.pem().as_bytes()) {
                roots.add(c).unwrap();
            }
            b.with_client_cert_verifier(
                rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                    .build()
                    .unwrap(),
            )
        }
        None => b.with_no_client_auth(),
    };
    let mut cfg = b.with_single_cert(chain, key).unwrap();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    cfg
}
