//! Test harness: starts real upstreams and the real gateway binary, and real TLS clients.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// `portcullis ARGS` run to its end in `dir`.
pub fn run_in<I, S>(dir: &Path, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// An ended run's exit code (-1 when killed by a signal) and everything it printed, stdout then
/// stderr.
pub fn code_and_text(out: &Output) -> (i32, String) {
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// `portcullis check --config portcullis.toml` in `dir`: the exit code (-1 when killed by a
/// signal) and everything it printed, stdout then stderr.
pub fn check_in(dir: &Path) -> (i32, String) {
    code_and_text(&run_in(dir, ["check", "--config", "portcullis.toml"]))
}

/// The cookies a response sets, as the `cookie` header that sends them back (name=value pairs,
/// attributes dropped).
pub fn set_cookies(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The interop scripts (Python and Node clients of the gateway and its issuer).
pub const INTEROP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");

/// The Python of the test venv that `make test-deps` sets up for the interop scripts.
pub fn venv_python() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME");
    let py = PathBuf::from(home).join(".cache/portcullis-venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run `make test-deps`",
        py.display()
    );
    py
}

/// Runs an interop script's `cmd` to its end and returns what it printed, stdout then stderr;
/// panics with that and `gw`'s log unless it succeeded and printed `ok`. The environment's CA
/// overrides are removed: requests lets them override the CA file a script is given.
pub async fn interop(cmd: &mut tokio::process::Command, ok: &str, gw: &Gateway) -> String {
    let what = format!("{:?}", cmd.as_std().get_args().next().unwrap_or_default());
    let out = cmd
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .output()
        .await
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains(ok),
        "{what} failed:\n{text}\n--- gateway:\n{}",
        gw.stderr()
    );
    text
}

/// A port that was free a moment ago (the gateway binds it by number).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real HTTP upstream (the gateway's own `echo` app) that counts what reached it.
pub struct Upstream {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    pub paths: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let hits = Arc::new(AtomicUsize::new(0));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (h, p) = (hits.clone(), paths.clone());
        let app = portcullis::echo::router().layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let (h, p) = (h.clone(), p.clone());
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    p.lock().unwrap().push(req.uri().to_string());
                    next.run(req).await
                }
            },
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Upstream {
            addr,
            hits,
            paths,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How to start a gateway.
pub struct Opts {
    pub routes: String,
    /// Extra TOML appended to portcullis.toml (sections after [listen]).
    pub extra: String,
    pub tls: bool,
    pub redirect: bool,
    pub policies: String,
    /// A fixed public port (when the config must name it, e.g. the issuer's frontend URL).
    pub public_port: Option<u16>,
}

impl Opts {
    pub fn new(routes: impl Into<String>) -> Opts {
        Opts {
            routes: routes.into(),
            extra: String::new(),
            tls: true,
            redirect: false,
            policies: String::new(),
            public_port: None,
        }
    }

    pub fn extra(mut self, s: &str) -> Opts {
        self.extra.push_str(s);
        self.extra.push('\n');
        self
    }
}

/// A running gateway process in its own temp directory.
pub struct Gateway {
    pub dir: tempfile::TempDir,
    pub child: Child,
    pub public: u16,
    pub mgmt: u16,
    pub redirect: Option<u16>,
    pub tls: bool,
}

pub fn route(name: &str, prefix: &str, upstreams: &[String], extra: &str) -> String {
    let ups: Vec<String> = upstreams.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        "[[route]]\nname = \"{name}\"\nprefix = \"{prefix}\"\nupstreams = [{}]\n{extra}\n",
        ups.join(", ")
    )
}

impl Gateway {
    pub fn write_config(dir: &Path, o: &Opts, public: u16, mgmt: u16, redirect: Option<u16>) {
        let mut cfg = format!(
            "[listen]\npublic = \"127.0.0.1:{public}\"\nmanagement = \"127.0.0.1:{mgmt}\"\n"
        );
        if let Some(r) = redirect {
            cfg.push_str(&format!("http_redirect = \"127.0.0.1:{r}\"\n"));
        }
        if o.extra.contains("[issuer]") {
            cfg.push_str(&format!("internal = \"127.0.0.1:{}\"\n", free_port()));
        }
        cfg.push_str("[runtime]\nworker_threads = 2\nshutdown_drain_seconds = 5\n");
        if o.tls {
            cfg.push_str("[tls]\ncert = \"certs/gateway.crt\"\nkey = \"certs/gateway.key\"\nself_signed_if_missing = true\n");
        }
        cfg.push_str("[routing]\nroutes = \"routes\"\npolicies = \"policies\"\nwatch = true\n");
        cfg.push_str(&o.extra);
        std::fs::create_dir_all(dir.join("routes")).unwrap();
        std::fs::create_dir_all(dir.join("policies")).unwrap();
        std::fs::write(dir.join("portcullis.toml"), cfg).unwrap();
        std::fs::write(dir.join("routes/routes.toml"), &o.routes).unwrap();
        if !o.policies.is_empty() {
            std::fs::write(dir.join("policies/policies.toml"), &o.policies).unwrap();
        }
    }

    pub async fn start(o: Opts) -> Gateway {
        portcullis_gateway::app::install_crypto_provider();
        let (public, mgmt) = (o.public_port.unwrap_or_else(free_port), free_port());
        let redirect = o.redirect.then(free_port);
        let mut gw = Self::launch(&o, public, mgmt, redirect, &[]);
        gw.ready_within(Duration::from_secs(30)).await;
        gw
    }

    /// `portcullis run` on `o`'s config (written to a fresh directory) with the audit log's
    /// filter and `env` (a `None` value removes the variable, later entries win); returns at
    /// once, before the gateway is ready.
    pub fn launch(
        o: &Opts,
        public: u16,
        mgmt: u16,
        redirect: Option<u16>,
        env: &[(&str, Option<&str>)],
    ) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        Self::write_config(dir.path(), o, public, mgmt, redirect);
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--config", "portcullis.toml"])
            .current_dir(dir.path())
            .env("RUST_LOG", portcullis_gateway::audit::DEFAULT_FILTER);
        for (k, v) in env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let child = cmd
            .stdout(std::fs::File::create(dir.path().join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Gateway {
            dir,
            child,
            public,
            mgmt,
            redirect,
            tls: o.tls,
        }
    }

    /// Polls `/health/ready` until it answers 200; panics if the gateway exits first or is not
    /// ready `within`.
    pub async fn ready_within(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        let url = format!("http://127.0.0.1:{}/health/ready", self.mgmt);
        let c = reqwest::Client::new();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("gateway exited with {status}: {}", self.stderr());
            }
            if let Ok(r) = c.get(&url).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "gateway not ready in {within:?}: {}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.path("stderr.log")).unwrap_or_default()
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.path("stdout.log")).unwrap_or_default()
    }

    pub fn cert_pem(&self) -> Vec<u8> {
        std::fs::read(self.path("certs/dev-ca.crt")).unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        if self.tls {
            format!("https://localhost:{}{path}", self.public)
        } else {
            format!("http://127.0.0.1:{}{path}", self.public)
        }
    }

    pub fn mgmt_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.mgmt)
    }

    /// The running configuration as `/admin/config` shows it (generation, last error, routes).
    pub async fn admin_config(&self) -> serde_json::Value {
        self.mgmt_get("/admin/config").await.json().await.unwrap()
    }

    /// The management listener's Prometheus text.
    pub async fn metrics(&self) -> String {
        self.mgmt_get("/metrics").await.text().await.unwrap()
    }

    async fn mgmt_get(&self, path: &str) -> reqwest::Response {
        reqwest::get(self.mgmt_url(path)).await.unwrap()
    }

    /// A reqwest client trusting only this gateway's certificate (ALPN offers h2 and h1).
    pub fn client(&self) -> reqwest::Client {
        let mut b = reqwest::Client::builder().timeout(Duration::from_secs(20));
        if self.tls {
            let cert = reqwest::Certificate::from_pem(&self.cert_pem()).unwrap();
            b = b.tls_certs_only([cert]);
        }
        b.build().unwrap()
    }

    pub fn client_h1(&self) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .http1_only();
        if self.tls {
            let cert = reqwest::Certificate::from_pem(&self.cert_pem()).unwrap();
            b = b.tls_certs_only([cert]);
        }
        b.build().unwrap()
    }

    /// Sends raw bytes over TLS and returns everything read until the server closes or 5 s pass.
    pub async fn raw(&self, request: &[u8]) -> String {
        let mut s = self.raw_conn().await;
        s.write_all(request).await.unwrap();
        read_some(&mut s, Duration::from_secs(5)).await
    }

    pub async fn raw_conn(&self) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        self.try_raw_conn().await.unwrap()
    }

    /// A TLS connection to the public listener, or the error its handshake ended with.
    pub async fn try_raw_conn(
        &self,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile_certs(&self.cert_pem()) {
            roots.add(c).unwrap();
        }
        let cfg = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let conn = tokio_rustls::TlsConnector::from(Arc::new(cfg));
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.public)).await?;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        conn.connect(name, tcp).await
    }

    /// `POST /admin/reload` on the management listener: 200 when the new configuration was
    /// applied, 422 with `{"errors": [...]}` when it was refused.
    pub async fn reload(&self) -> reqwest::Response {
        reqwest::Client::new()
            .post(self.mgmt_url("/admin/reload"))
            .send()
            .await
            .unwrap()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .map(|c| c.unwrap())
        .collect()
}

/// A TLS connection to `gw`'s public listener, trusting its certificate, that agreed on h2 by
/// ALPN (asserted): for tests that write HTTP/2 frames themselves.
pub async fn h2_tls(gw: &Gateway) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile_certs(&gw.cert_pem()) {
        roots.add(c).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", gw.public))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let s = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    s
}

/// A response's head, read a byte at a time up to its blank line, so that what follows (an
/// upgraded protocol's first bytes) stays unread.
pub async fn read_head<S: AsyncReadExt + Unpin>(s: &mut S) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// On an open WebSocket to the echo upstream: a masked text frame "hi" comes back as the same
/// text unmasked, within 5 s.
pub async fn websocket_echoes_hi<S: AsyncReadExt + AsyncWriteExt + Unpin>(s: &mut S) {
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | 2];
    frame.extend_from_slice(&mask);
    frame.extend(b"hi".iter().enumerate().map(|(i, c)| c ^ mask[i % 4]));
    s.write_all(&frame).await.unwrap();
    let mut resp = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut resp))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp, [0x81, 2, b'h', b'i']);
}

pub async fn read_some<S: AsyncReadExt + Unpin>(s: &mut S, max: Duration) -> String {
    let mut out = Vec::new();
    let deadline = Instant::now() + max;
    let mut buf = [0u8; 16384];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                // A complete response with Content-Length: stop early.
                if let Some(text) = complete_response(&out) {
                    return text;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn complete_response(buf: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let len: usize = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })?;
    (body.len() >= len).then(|| text.into_owned())
}

/// The status code of a raw HTTP/1 response.
pub fn status_of(resp: &str) -> u16 {
    resp.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Polls `f` until it returns true or the deadline passes.
pub async fn eventually<F, Fut>(what: &str, max: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + max;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
