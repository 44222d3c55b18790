//! Keep-alive pooling of upstream connections (the patched pingora-core pool): reuse, an
//! upstream closing idle connections, and `limits.upstream_idle_timeout_seconds`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::harness::{Gateway, Opts, eventually, route};

/// A raw HTTP/1.1 upstream that counts the connections it accepted and the ones the gateway
/// closed, and optionally closes each connection itself some time after answering (as an
/// upstream's own keep-alive timer would, without `Connection: close`).
struct CountingUpstream {
    url: String,
    accepted: Arc<AtomicUsize>,
    closed_by_gateway: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingUpstream {
    async fn start(close_idle_after: Option<Duration>) -> CountingUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed_by_gateway = Arc::new(AtomicUsize::new(0));
        let (a, c) = (accepted.clone(), closed_by_gateway.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let c = c.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        let n = match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => {
                                c.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                            Ok(n) => n,
                        };
                        head.extend_from_slice(&buf[..n]);
                        if !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            continue;
                        }
                        head.clear();
                        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if conn.write_all(ok).await.is_err() {
                            return;
                        }
                        if let Some(after) = close_idle_after {
                            tokio::time::sleep(after).await;
                            return;
                        }
                    }
                });
            }
        });
        CountingUpstream {
            url,
            accepted,
            closed_by_gateway,
            task,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn closed_by_gateway(&self) -> usize {
        self.closed_by_gateway.load(Ordering::SeqCst)
    }
}

impl Drop for CountingUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A gateway config routing every path to `up`.
fn all_to(up: &CountingUpstream) -> Opts {
    Opts::new(route("all", "/", std::slice::from_ref(&up.url), ""))
}

async fn get_ok(c: &reqwest::Client, url: &str) {
    let r = c.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    assert_eq!(r.text().await.unwrap(), "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_connections_are_kept_and_reused() {
    let up = CountingUpstream::start(None).await;
    let gw = Gateway::start(all_to(&up)).await;
    let c = gw.client();
    for i in 0..10 {
        get_ok(&c, &gw.url(&format!("/seq/{i}"))).await;
    }
    // An idle pause well under the 60 s default keeps the connection.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    get_ok(&c, &gw.url("/after-pause")).await;
    assert_eq!(
        up.accepted(),
        1,
        "sequential requests share one upstream connection"
    );

    // Concurrent requests open what they need and later rounds reuse them.
    for _ in 0..3 {
        let batch: Vec<_> = (0..8)
            .map(|i| {
                let (c, url) = (c.clone(), gw.url(&format!("/par/{i}")));
                tokio::spawn(async move { get_ok(&c, &url).await })
            })
            .collect();
        for request in batch {
            request.await.unwrap();
        }
    }
    assert!(
        up.accepted() <= 17,
        "24 concurrent requests in three rounds of 8 opened {} connections",
        up.accepted()
    );
    assert_eq!(up.closed_by_gateway(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_closing_idle_connections_costs_no_request() {
    let up = CountingUpstream::start(Some(Duration::from_millis(100))).await;
    let gw = Gateway::start(all_to(&up)).await;
    let c = gw.client();
    for i in 0..5 {
        get_ok(&c, &gw.url(&format!("/{i}"))).await;
        // Past the upstream's idle close: the pooled connection is dead by the next request.
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(up.accepted(), 5, "each request needed a fresh connection");
}

#[tokio::test(flavor = "multi_thread")]
async fn pooled_connections_idle_past_the_timeout_are_closed_not_reused() {
    let up = CountingUpstream::start(None).await;
    let gw =
        Gateway::start(all_to(&up).extra("[limits]\nupstream_idle_timeout_seconds = 1\n")).await;
    let c = gw.client();
    get_ok(&c, &gw.url("/first")).await;
    get_ok(&c, &gw.url("/soon-after")).await;
    assert_eq!(up.accepted(), 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    get_ok(&c, &gw.url("/after-timeout")).await;
    assert_eq!(up.accepted(), 2, "the expired connection was not reused");
    eventually(
        "the gateway closes the expired connection",
        Duration::from_secs(5),
        || async { up.closed_by_gateway() == 1 },
    )
    .await;
}
