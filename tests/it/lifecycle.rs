//! Reload under load (SIGHUP, admin endpoint, file watch) and SIGTERM draining.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Gateway, Opts, Upstream, eventually, route};

#[tokio::test(flavor = "multi_thread")]
async fn routes_reload_under_load_without_a_failed_request() {
    let (a, b) = (Upstream::start().await, Upstream::start().await);
    let gw = Arc::new(Gateway::start(Opts::new(route("r", "/r", &[a.url()], ""))).await);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (gw, stop, ok, failed) = (gw.clone(), stop.clone(), ok.clone(), failed.clone());
        clients.push(tokio::spawn(async move {
            let c = gw.client();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                match c.get(gw.url("/r/x")).send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::SeqCst),
                    _ => failed.fetch_add(1, Ordering::SeqCst),
                };
            }
        }));
    }
    for i in 0..10 {
        let up = if i % 2 == 0 { b.url() } else { a.url() };
        std::fs::write(gw.path("routes/routes.toml"), route("r", "/r", &[up], "")).unwrap();
        if i % 2 == 0 {
            gw.signal("HUP");
        } else {
            let r = gw.reload().await;
            assert_eq!(r.status(), 200);
        }
        let target = if i % 2 == 0 { &b } else { &a };
        let before = target.hits();
        eventually(
            "the reloaded route to take traffic",
            Duration::from_secs(3),
            || async { target.hits() > before + 2 },
        )
        .await;
    }
    // An invalid reload is refused with every error, and the old routes keep serving.
    std::fs::write(
        gw.path("routes/routes.toml"),
        "[[route]]\nname = \"r\"\nprefix = \"r\"\nupstreams = []\n",
    )
    .unwrap();
    let r = gw.reload().await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{body}");
    assert!(
        errors[0].as_str().unwrap().contains("routes.toml:3:10"),
        "{body}"
    );
    let before = a.hits();
    eventually(
        "old config still serving",
        Duration::from_secs(3),
        || async { a.hits() > before + 2 },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "failed requests during reloads (ok: {})",
        ok.load(Ordering::SeqCst)
    );
    let cfg = gw.admin_config().await;
    assert_eq!(cfg["generation"], 11);
    assert!(cfg["last_error"].as_array().is_some());
    let m = gw.metrics().await;
    assert!(
        m.contains("portcullis_config_reloads_total{result=\"failure\"} 1"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn file_watch_reloads_a_configmap_style_symlink_swap() {
    let (a, b) = (Upstream::start().await, Upstream::start().await);
    let gw = Gateway::start(Opts::new(route("r", "/r", &[a.url()], ""))).await;
    // Turn routes/ into a Kubernetes-style volume: routes.toml -> ..data/routes.toml,
    // ..data -> ..v1; an update writes ..v2 and renames a new ..data symlink over the old.
    let routes = gw.path("routes");
    std::fs::remove_file(routes.join("routes.toml")).unwrap();
    std::fs::create_dir(routes.join("..v1")).unwrap();
    std::fs::write(
        routes.join("..v1/routes.toml"),
        route("r", "/r", &[a.url()], ""),
    )
    .unwrap();
    std::os::unix::fs::symlink("..v1", routes.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/routes.toml", routes.join("routes.toml")).unwrap();
    std::fs::create_dir(routes.join("..v2")).unwrap();
    std::fs::write(
        routes.join("..v2/routes.toml"),
        route("r", "/r", &[b.url()], ""),
    )
    .unwrap();
    std::os::unix::fs::symlink("..v2", routes.join("..data_tmp")).unwrap();
    std::fs::rename(routes.join("..data_tmp"), routes.join("..data")).unwrap();
    let c = gw.client();
    eventually(
        "the swapped routes to serve",
        Duration::from_secs(5),
        || async {
            let before = b.hits();
            c.get(gw.url("/r"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
                && b.hits() > before
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_a_slow_in_flight_request() {
    let up = Upstream::start().await;
    let mut gw = Gateway::start(Opts::new(route("r", "/r", &[up.url()], ""))).await;
    let c = gw.client();
    let url = gw.url("/r?delay_ms=1500");
    let slow = tokio::spawn(async move { c.get(url).send().await.map(|r| r.status().as_u16()) });
    eventually(
        "the slow request to reach the upstream",
        Duration::from_secs(5),
        || async { up.hits() == 1 },
    )
    .await;
    let t = Instant::now();
    gw.signal("TERM");
    assert_eq!(
        slow.await.unwrap().unwrap(),
        200,
        "the in-flight request finished"
    );
    // New connections are refused while draining or after exit.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", gw.public))
            .await
            .is_err()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = gw.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "gateway still running 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "drain took {:?}",
        t.elapsed()
    );
}
