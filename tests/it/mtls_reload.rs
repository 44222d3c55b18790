//! Certificate hot reload (DESIGN §11): the listener's certificate and client CA, and a route's
//! upstream client certificate, replaced on disk while requests run: new handshakes use the new
//! files within 5 s, established connections keep working, no request fails, a bad file keeps
//! the old one and is reported, and `/admin/config` and the metric show each expiry.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Gateway, Opts, route};
use crate::mtls::{CART, Mesh, ORDERS};
use crate::mtls_pki::{Ca, Leaf, Names, TlsUpstream, client, replace, tls_connect};

/// The leaf certificate a new handshake with the gateway is shown.
async fn served_cert(port: u16, trust: &str, leaf: &Leaf) -> Vec<u8> {
    let s = tls_connect(port, trust, Some(leaf), &[b"http/1.1"])
        .await
        .unwrap();
    s.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// Polls `f` every 50 ms for up to 5 s (the contract's bound for a changed file).
async fn within_5s<F, Fut>(what: &str, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{what}: not within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

/// Requests in a loop until stopped: fresh connections (a handshake each) and keep-alive ones,
/// presenting whatever client certificate `leaf` holds at the time. Counts what failed.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(url: String, trust: String, leaf: Arc<Mutex<Leaf>>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..4)
            .map(|i| {
                let (url, trust, leaf) = (url.clone(), trust.clone(), Arc::clone(&leaf));
                let (stop, ok, failed) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
                tokio::spawn(async move {
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let l = leaf.lock().unwrap().clone();
                        // Even tasks make a new connection per request; odd ones one per 20.
                        let c = client(&trust, Some(&l), i % 2 == 0);
                        for _ in 0..if i % 2 == 0 { 1 } else { 20 } {
                            match c.get(&url).send().await {
                                Ok(r) if r.status() == 200 => {
                                    ok.fetch_add(1, Ordering::Relaxed);
                                }
                                Ok(r) => failed
                                    .lock()
                                    .unwrap()
                                    .push(format!("status {}", r.status())),
                                Err(e) => failed.lock().unwrap().push(format!("{e:?}")),
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            tasks,
        }
    }

    async fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let failed = self.failed.lock().unwrap().clone();
        (self.ok.load(Ordering::Relaxed), failed)
    }
}

fn expiry_of(cfg: &Value, name: &str) -> Option<i64> {
    cfg["certificates"]["in_use"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)?["not_after_unix"]
        .as_i64()
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_and_client_ca_rotate_under_load_with_no_failed_request() {
    let m = Mesh::start(
        "required",
        |up| route("svc", "/svc", &[up.url()], "auth = \"mtls\""),
        "",
    )
    .await;
    let dir = m.pki.path();
    let server_ca2 = Ca::new("server CA 2");
    let clients2 = Ca::new("clients CA 2");
    // Clients trust both server CAs, as they must before a server CA rotation.
    let trust = format!("{}{}", m.server_ca.pem(), server_ca2.pem());
    let old_leaf = m.clients.spiffe(ORDERS);
    let leaf = Arc::new(Mutex::new(old_leaf.clone()));
    // A keep-alive connection made before anything rotates.
    let kept = client(&trust, Some(&old_leaf), false);
    assert_eq!(
        kept.get(m.url("/svc/kept")).send().await.unwrap().status(),
        200
    );
    let before = m.gw.admin_config().await;
    assert_eq!(expiry_of(&before, "server"), Some(rcgen_year(4096)));
    assert!(expiry_of(&before, "client_ca").is_some(), "{before}");

    let load = Load::start(m.url("/svc/load"), trust.clone(), Arc::clone(&leaf));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 1. A new server certificate (another CA, another expiry): key first, then the chain.
    let new_server = server_ca2.server_until(Some(2090));
    replace(&dir.join("gateway.key"), &new_server.key);
    replace(&dir.join("gateway.crt"), &new_server.cert);
    within_5s("the new server certificate", || async {
        served_cert(m.gw.public, &trust, &old_leaf).await == new_server.der
    })
    .await;

    // 2. The client CA: both CAs, then the load moves to the new CA's certificate, then only
    //    the new CA. The old certificate stops working for new handshakes only.
    let new_leaf = clients2.spiffe(CART);
    replace(
        &dir.join("clients-ca.pem"),
        &format!("{}{}", m.clients.pem(), clients2.pem()),
    );
    within_5s("the new client CA", || async {
        client(&trust, Some(&new_leaf), true)
            .get(m.url("/svc/x"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    *leaf.lock().unwrap() = new_leaf.clone();
    tokio::time::sleep(Duration::from_millis(300)).await;
    replace(&dir.join("clients-ca.pem"), &clients2.pem());
    within_5s("the old client CA gone", || async {
        client(&trust, Some(&old_leaf), true)
            .get(m.url("/svc/x"))
            .send()
            .await
            .is_err()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, failed) = load.finish().await;
    assert!(
        failed.is_empty(),
        "{} failed of {}: {:?}",
        failed.len(),
        ok + failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(ok > 50, "only {ok} requests ran");
    // The connection made before the rotation still works: it was verified when it was made.
    assert_eq!(
        kept.get(m.url("/svc/kept")).send().await.unwrap().status(),
        200
    );

    let after = m.gw.admin_config().await;
    assert_eq!(
        expiry_of(&after, "server"),
        Some(rcgen_year(2090)),
        "{after}"
    );
    assert!(after["certificates"]["last_error"].is_null(), "{after}");
    let metrics = m.gw.metrics().await;
    assert!(
        metrics.contains(&format!(
            "portcullis_tls_certificate_expiry_timestamp_seconds{{name=\"server\"}} {}",
            rcgen_year(2090)
        )),
        "{metrics}"
    );
}

/// Unix seconds at the start of `year` (UTC).
fn rcgen_year(year: i32) -> i64 {
    // Days from 1970 to `year`, leap years included.
    let days: i64 = (1970..year)
        .map(|y| {
            if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
                366
            } else {
                365
            }
        })
        .sum();
    days * 86_400
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_certificate_file_keeps_the_old_one_and_is_reported() {
    let m = Mesh::start(
        "optional",
        |up| route("svc", "/svc", &[up.url()], "auth = \"mtls\""),
        "",
    )
    .await;
    let dir = m.pki.path();
    let trust = m.server_ca.pem();
    let leaf = m.clients.spiffe(ORDERS);
    let good_cert = std::fs::read_to_string(dir.join("gateway.crt")).unwrap();
    let served = served_cert(m.gw.public, &trust, &leaf).await;
    for (file, garbage) in [("gateway.crt", "not a certificate"), ("clients-ca.pem", "")] {
        let good = std::fs::read_to_string(dir.join(file)).unwrap();
        replace(&dir.join(file), garbage);
        // An explicit reload answers with the error, naming the file.
        let r = m.gw.reload().await;
        assert_eq!(r.status(), 422);
        let body: Value = r.json().await.unwrap();
        assert!(body["errors"].to_string().contains(file), "{body}");
        let cfg = m.gw.admin_config().await;
        assert!(
            cfg["certificates"]["last_error"].to_string().contains(file),
            "{cfg}"
        );
        assert!(cfg["last_error"].to_string().contains(file), "{cfg}");
        // Handshakes go on with what was read before.
        assert_eq!(served_cert(m.gw.public, &trust, &leaf).await, served);
        assert_eq!(
            m.get("/svc/x", Some(&leaf)).await.map(|(s, _)| s),
            Some(200),
            "{file}"
        );
        replace(&dir.join(file), &good);
        within_5s("the reload after the fix", || async {
            m.gw.admin_config().await["certificates"]["last_error"].is_null()
        })
        .await;
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("gateway.crt")).unwrap(),
        good_cert
    );
    let metrics = m.gw.metrics().await;
    assert!(
        metrics.contains("portcullis_config_reloads_total{result=\"failure\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_upstream_client_certificate_rotates_for_new_connections() {
    let pki = tempfile::tempdir().unwrap();
    let up_ca = Ca::new("upstream CA");
    let gw_clients = Ca::new("gateway clients CA");
    let up = TlsUpstream::start(&up_ca.server(), Some(&gw_clients), &[b"http/1.1"]).await;
    let ca = pki.path().join("up-ca.pem");
    std::fs::write(&ca, up_ca.pem()).unwrap();
    let first = gw_clients.leaf(Names {
        uris: &["spiffe://cluster.local/ns/edge/sa/gateway"],
        until_year: Some(2080),
        ..Default::default()
    });
    let (cert, key) = first.write(pki.path(), "client");
    let tls = format!(
        "upstream_tls = {{ ca = \"{}\", client_cert = \"{}\", client_key = \"{}\" }}",
        ca.display(),
        cert.display(),
        key.display()
    );
    let url = format!("https://127.0.0.1:{}", up.addr.port());
    let gw = Gateway::start(Opts::new(route("up", "/up", &[url], &tls))).await;
    let get = || async {
        gw.client()
            .get(gw.url("/up/x"))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(get().await, 200);
    assert_eq!(
        up.seen().last().unwrap().client.as_deref(),
        Some(&first.der[..])
    );
    let cfg = gw.admin_config().await;
    assert_eq!(
        expiry_of(&cfg, "upstream/up/client_cert"),
        Some(rcgen_year(2080)),
        "{cfg}"
    );
    assert!(expiry_of(&cfg, "upstream/up/ca").is_some(), "{cfg}");

    let second = gw_clients.leaf(Names {
        uris: &["spiffe://cluster.local/ns/edge/sa/gateway"],
        until_year: Some(2081),
        ..Default::default()
    });
    replace(&key, &second.key);
    replace(&cert, &second.cert);
    within_5s("the new upstream client certificate", || async {
        get().await == 200 && up.seen().last().unwrap().client.as_deref() == Some(&second.der[..])
    })
    .await;
    let m = gw.metrics().await;
    assert!(
        m.contains(&format!(
            "portcullis_tls_certificate_expiry_timestamp_seconds{{name=\"upstream/up/client_cert\"}} {}",
            rcgen_year(2081)
        )),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_files_of_a_route_added_later_are_watched_too() {
    let certs = tempfile::tempdir().unwrap();
    let up_ca = Ca::new("upstream CA");
    let gw_clients = Ca::new("gateway clients CA");
    let up = TlsUpstream::start(&up_ca.server(), Some(&gw_clients), &[b"http/1.1"]).await;
    let ca = certs.path().join("up-ca.pem");
    std::fs::write(&ca, up_ca.pem()).unwrap();
    let first = gw_clients.spiffe("spiffe://cluster.local/ns/edge/sa/gateway");
    let (cert, key) = first.write(certs.path(), "client");
    let plain = crate::harness::Upstream::start().await;
    let gw = Gateway::start(Opts::new(route("plain", "/plain", &[plain.url()], ""))).await;
    // A new route, in a new file, whose certificates live in a directory nothing watched yet.
    let tls = format!(
        "upstream_tls = {{ ca = \"{}\", client_cert = \"{}\", client_key = \"{}\" }}",
        ca.display(),
        cert.display(),
        key.display()
    );
    let url = format!("https://127.0.0.1:{}", up.addr.port());
    std::fs::write(gw.path("routes/up.toml"), route("up", "/up", &[url], &tls)).unwrap();
    let get = || async {
        gw.client()
            .get(gw.url("/up/x"))
            .send()
            .await
            .unwrap()
            .status()
    };
    within_5s("the new route", || async { get().await == 200 }).await;
    assert_eq!(
        up.seen().last().unwrap().client.as_deref(),
        Some(&first.der[..])
    );

    let second = gw_clients.spiffe("spiffe://cluster.local/ns/edge/sa/gateway");
    replace(&key, &second.key);
    replace(&cert, &second.cert);
    within_5s("the rotated certificate of the new route", || async {
        get().await == 200 && up.seen().last().unwrap().client.as_deref() == Some(&second.der[..])
    })
    .await;
}
