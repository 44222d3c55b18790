//! Graceful upgrade: `portcullis run --upgrade` takes the listening sockets over from the
//! running gateway (SIGQUIT) under a steady load over keep-alive and new connections (HTTP/1.1
//! and HTTP/2 over TLS on the public listener, HTTP/1.1 on the issuer's internal listener),
//! with no request refused, reset or answered 5xx; the old process drains and exits, the new
//! one serves on.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{BIN, Gateway, Opts, Upstream, route};

/// What the load saw.
struct Tally {
    ok: AtomicUsize,
    after_swap: AtomicUsize,
    bad: std::sync::Mutex<Vec<String>>,
    start: Instant,
}

impl Tally {
    fn record(&self, what: &str, r: Result<reqwest::StatusCode, reqwest::Error>, swapped: bool) {
        match r {
            Ok(s) if s.is_success() => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                if swapped {
                    self.after_swap.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(s) => self
                .bad
                .lock()
                .unwrap()
                .push(format!("{what} at {:?}: status {s}", self.start.elapsed())),
            Err(e) => self
                .bad
                .lock()
                .unwrap()
                .push(format!("{what} at {:?}: {e:?}", self.start.elapsed())),
        }
    }
}

/// Sends GETs to `url` with `client` until `stop`, one at a time.
fn load(
    what: &'static str,
    client: reqwest::Client,
    url: String,
    stop: Arc<AtomicBool>,
    swapped: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let r = client.get(&url).send().await;
            let r = match r {
                Ok(resp) => {
                    let status = resp.status();
                    resp.bytes().await.map(|_| status)
                }
                Err(e) => Err(e),
            };
            tally.record(what, r, swapped.load(Ordering::Relaxed));
        }
    })
}

fn config_value(gw: &Gateway, key: &str) -> String {
    let cfg = std::fs::read_to_string(gw.path("portcullis.toml")).unwrap();
    cfg.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = \"")))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{key} in {cfg}"))
        .to_string()
}

/// The default upgrade socket: `upgrade-<public address>.sock` in `$TMPDIR/portcullis-<uid>`.
fn upgrade_sock(gw: &Gateway) -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(gw.dir.path()).unwrap().uid();
    std::env::temp_dir()
        .join(format!("portcullis-{uid}"))
        .join(format!("upgrade-127.0.0.1_{}.sock", gw.public))
}

fn spawn_successor(gw: &Gateway) -> Child {
    Command::new(BIN)
        .args(["run", "--config", "portcullis.toml", "--upgrade"])
        .current_dir(gw.dir.path())
        .env("RUST_LOG", portcullis_gateway::audit::DEFAULT_FILTER)
        .stdout(std::fs::File::create(gw.path("new-stdout.log")).unwrap())
        .stderr(std::fs::File::create(gw.path("new-stderr.log")).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

/// Kills the successor when the test ends, however it ends.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_binary_swap_under_load_refuses_resets_and_fails_nothing() {
    let up = Upstream::start().await;
    let routes = route("echo", "/echo", &[up.url()], "strip_prefix = true")
        + &route("auth", "/auth", &["embedded:issuer".into()], "");
    let o = Opts::new(routes).extra(&format!(
        "[issuer]\ndatabase = \"sqlite://data/portcullis.db\"\nimport = [\"{}\"]\n",
        crate::issuer::REALM_FILE
    ));
    let mut gw = Gateway::start(o).await;
    let internal = config_value(&gw, "internal");
    let backchannel =
        format!("http://{internal}/auth/realms/myrealm/.well-known/openid-configuration");

    // The load: keep-alive and new-connection clients on the public listener (HTTP/1.1 over
    // TLS), and on the internal one.
    let stop = Arc::new(AtomicBool::new(false));
    let swapped = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally {
        ok: AtomicUsize::new(0),
        after_swap: AtomicUsize::new(0),
        bad: std::sync::Mutex::new(Vec::new()),
        start: Instant::now(),
    });
    let cert = reqwest::Certificate::from_pem(&gw.cert_pem()).unwrap();
    let fresh = |b: reqwest::ClientBuilder| {
        b.pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    };
    let tls = || {
        reqwest::Client::builder()
            .tls_certs_only([cert.clone()])
            .http1_only()
    };
    let h2 = gw.client().get(gw.url("/echo/v")).send().await.unwrap();
    assert_eq!(h2.version(), reqwest::Version::HTTP_2);
    let mut tasks = Vec::new();
    for i in 0..4 {
        tasks.push(load(
            "public keep-alive",
            gw.client_h1(),
            gw.url(&format!("/echo/ka{i}")),
            stop.clone(),
            swapped.clone(),
            tally.clone(),
        ));
    }
    for i in 0..2 {
        tasks.push(load(
            "public HTTP/2",
            gw.client(),
            gw.url(&format!("/echo/h2-{i}")),
            stop.clone(),
            swapped.clone(),
            tally.clone(),
        ));
    }
    for i in 0..2 {
        tasks.push(load(
            "public new connection",
            fresh(tls()),
            gw.url(&format!("/echo/new{i}")),
            stop.clone(),
            swapped.clone(),
            tally.clone(),
        ));
    }
    tasks.push(load(
        "internal keep-alive",
        reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        backchannel.clone(),
        stop.clone(),
        swapped.clone(),
        tally.clone(),
    ));
    tasks.push(load(
        "internal new connection",
        fresh(reqwest::Client::builder()),
        backchannel.clone(),
        stop.clone(),
        swapped.clone(),
        tally.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = tally.ok.load(Ordering::Relaxed);
    assert!(before > 20, "the load runs: {before} answers");

    // The swap: the successor waits on the upgrade socket; then the old one gets SIGQUIT.
    let sock = upgrade_sock(&gw);
    let new = Reaper(spawn_successor(&gw));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "no upgrade socket at {}: {}",
            sock.display(),
            std::fs::read_to_string(gw.path("new-stderr.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let quit_at = tally.start.elapsed();
    gw.signal("QUIT");
    let old_pid = gw.child.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = gw.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the old gateway ({old_pid}) still runs 20 s after SIGQUIT: {}",
            gw.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    swapped.store(true, Ordering::Relaxed);
    let exit_at = tally.start.elapsed();
    assert!(status.success(), "old gateway: {status}\n{}", gw.stderr());
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }

    let bad = tally.bad.lock().unwrap().clone();
    let new_stderr = std::fs::read_to_string(gw.path("new-stderr.log")).unwrap_or_default();
    assert!(
        bad.is_empty(),
        "{} of {} requests failed (SIGQUIT at {quit_at:?}, the old one gone at {exit_at:?}): \
         {:?}\n--- old\n{}\n--- new\n{new_stderr}",
        bad.len(),
        bad.len() + tally.ok.load(Ordering::Relaxed),
        &bad[..bad.len().min(20)],
        gw.stderr()
    );
    assert!(
        tally.after_swap.load(Ordering::Relaxed) > 20,
        "the successor answered {} requests",
        tally.after_swap.load(Ordering::Relaxed)
    );
    // Both served: the old one before the swap, the new one after (each writes its own
    // audit log), on the same ports.
    let new_audit = std::fs::read_to_string(gw.path("new-stdout.log")).unwrap_or_default();
    assert!(new_audit.contains("\"listener\":\"public\""), "{new_audit}");
    assert!(
        new_audit.contains("\"listener\":\"internal\""),
        "{new_audit}"
    );
    assert!(gw.stdout().contains("\"listener\":\"public\""));
    assert!(new_stderr.contains("upgrade: waiting"), "{new_stderr}");
    // The new process serves on every listener: public, management, internal.
    let c = gw.client_h1();
    assert_eq!(c.get(gw.url("/echo/x")).send().await.unwrap().status(), 200);
    let ready = reqwest::get(gw.mgmt_url("/health/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(reqwest::get(&backchannel).await.unwrap().status(), 200);
    drop(new);
}

/// Without a running gateway to hand its sockets over, `--upgrade` waits on the upgrade socket
/// (here `runtime.upgrade_sock`, relative to the config file), gives up after about 5 s and
/// exits with an error, binding nothing.
#[tokio::test]
async fn an_upgrade_with_no_running_gateway_fails() {
    let up = Upstream::start().await;
    let gw = Gateway::start(Opts::new(route("echo", "/echo", &[up.url()], ""))).await;
    // Another config dir, with a public port no gateway holds.
    let dir = tempfile::tempdir().unwrap();
    let public = crate::harness::free_port();
    let mgmt = crate::harness::free_port();
    let o = Opts::new(route("echo", "/echo", &[up.url()], ""));
    Gateway::write_config(dir.path(), &o, public, mgmt, None);
    let cfg = dir.path().join("portcullis.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replace(
        "[runtime]\n",
        "[runtime]\nupgrade_sock = \"run/upgrade.sock\"\n",
    );
    std::fs::write(&cfg, text).unwrap();
    std::fs::create_dir(dir.path().join("run")).unwrap();
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(["run", "--config", "portcullis.toml", "--upgrade"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let sock = dir.path().join("run/upgrade.sock");
    let mut seen = false;
    let status = loop {
        seen |= sock.exists();
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "still waiting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let stderr = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(seen, "it waited on runtime.upgrade_sock: {stderr}");
    assert!(stderr.contains("upgrade: waiting"), "{stderr}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", public)).is_err(),
        "nothing listens"
    );
    // The running gateway (another upgrade socket) is untouched.
    assert_eq!(
        gw.client()
            .get(gw.url("/echo/x"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
