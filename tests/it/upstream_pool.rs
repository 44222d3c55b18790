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
/// upstream's own keep-alive timer would, without `Connection: close`). It closes only its
/// sending side and goes on reading, so a request sent on such a connection is counted.
struct CountingUpstream {
    url: String,
    accepted: Arc<AtomicUsize>,
    closed_by_gateway: Arc<AtomicUsize>,
    sent_after_close: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingUpstream {
    async fn start(close_idle_after: Option<Duration>) -> CountingUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed_by_gateway = Arc::new(AtomicUsize::new(0));
        let sent_after_close = Arc::new(AtomicUsize::new(0));
        let (a, c, late) = (
            accepted.clone(),
            closed_by_gateway.clone(),
            sent_after_close.clone(),
        );
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let (c, late) = (c.clone(), late.clone());
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
                            let _ = conn.shutdown().await;
                            while let Ok(n) = conn.read(&mut buf).await {
                                if n == 0 {
                                    return;
                                }
                                late.fetch_add(1, Ordering::SeqCst);
                            }
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
            sent_after_close,
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
    let c = gw.client_h1();
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
    let c = gw.client_h1();
    for i in 0..5 {
        get_ok(&c, &gw.url(&format!("/{i}"))).await;
        // Past the upstream's idle close: the pooled connection is dead by the next request.
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(up.accepted(), 5, "each request needed a fresh connection");
    // Pingora would retry a GET that failed on a reused connection, so success alone does not
    // show the pool dropped the closed ones: nothing may have been sent on them at all.
    assert_eq!(
        up.sent_after_close.load(Ordering::SeqCst),
        0,
        "a request went out on a connection the upstream had closed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pooled_connections_idle_past_the_timeout_are_closed_not_reused() {
    let up = CountingUpstream::start(None).await;
    let gw =
        Gateway::start(all_to(&up).extra("[limits]\nupstream_idle_timeout_seconds = 1\n")).await;
    let c = gw.client_h1();
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

/// Timeouts too large for a deadline (`Instant + timeout` would overflow and abort) are taken
/// as a day: the gateway keeps serving and pooling.
#[tokio::test(flavor = "multi_thread")]
async fn huge_limit_timeouts_are_capped_not_fatal() {
    let up = CountingUpstream::start(None).await;
    let max = i64::MAX;
    let gw = Gateway::start(all_to(&up).extra(&format!(
        "[limits]\nupstream_idle_timeout_seconds = {max}\nheader_read_timeout_seconds = {max}\n\
         body_read_timeout_seconds = {max}\nkeepalive_timeout_seconds = {max}\n"
    )))
    .await;
    let c = gw.client_h1();
    for i in 0..3 {
        get_ok(&c, &gw.url(&format!("/{i}"))).await;
    }
    assert_eq!(up.accepted(), 1);
}

// The patched pool itself, through pingora-core's public `TransportConnector`, with real
// loopback sockets.

mod pool {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use pingora::connectors::{ConnectorOptions, TransportConnector};
    use pingora::protocols::Stream;
    use pingora::protocols::l4::socket::SocketAddr;
    use pingora::upstreams::peer::{BasicPeer, Peer};
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    /// A listener that keeps each accepted socket (so the client side stays open) until told.
    struct Server {
        peer: BasicPeer,
        conns: Arc<tokio::sync::Mutex<Vec<TcpStream>>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Server {
        async fn start() -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let peer = BasicPeer::new(&listener.local_addr().unwrap().to_string());
            let conns = Arc::new(tokio::sync::Mutex::new(Vec::new()));
            let kept = conns.clone();
            let task = tokio::spawn(async move {
                while let Ok((s, _)) = listener.accept().await {
                    kept.lock().await.push(s);
                }
            });
            Server { peer, conns, task }
        }

        /// Waits for the server to have accepted `n` connections since the last `close_all`.
        async fn accepted(&self, n: usize) {
            for _ in 0..200 {
                if self.conns.lock().await.len() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("the server did not accept {n} connections");
        }

        /// Closes every connection accepted so far from the server's side.
        async fn close_all(&self) {
            self.conns.lock().await.clear();
        }

        /// Whether the client closed the `i`th accepted connection (reads EOF).
        async fn closed_by_client(&self, i: usize) -> bool {
            let mut conns = self.conns.lock().await;
            let mut byte = [0u8; 1];
            matches!(
                tokio::time::timeout(Duration::from_secs(2), conns[i].read(&mut byte)).await,
                Ok(Ok(0))
            )
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    fn local(s: &Stream) -> SocketAddr {
        s.get_socket_digest()
            .and_then(|d| d.local_addr().cloned())
            .unwrap()
    }

    fn connector(size: usize, evicted: &Arc<AtomicUsize>) -> TransportConnector {
        let mut o = ConnectorOptions::new(size);
        let e = evicted.clone();
        o.keepalive_pool_callback = Some(Arc::new(move |_| {
            e.fetch_add(1, Ordering::SeqCst);
        }));
        TransportConnector::new(Some(o))
    }

    #[tokio::test]
    async fn most_recent_first_and_the_oldest_evicted_across_peers() {
        let (a, b) = (Server::start().await, Server::start().await);
        let evicted = Arc::new(AtomicUsize::new(0));
        let c = connector(2, &evicted);
        let b1 = c.new_stream(&b.peer).await.unwrap();
        let a1 = c.new_stream(&a.peer).await.unwrap();
        let a2 = c.new_stream(&a.peer).await.unwrap();
        let (a1_addr, a2_addr) = (local(&a1), local(&a2));
        let idle = Some(Duration::from_secs(60));
        c.release_stream(b1, b.peer.reuse_hash(), idle);
        c.release_stream(a1, a.peer.reuse_hash(), idle);
        // The pool holds two: b1, idle longest, makes room, though it is another peer's.
        c.release_stream(a2, a.peer.reuse_hash(), idle);
        assert_eq!(evicted.load(Ordering::SeqCst), 1);
        b.accepted(1).await;
        assert!(b.closed_by_client(0).await, "the evicted stream is closed");
        assert!(c.reused_stream(&b.peer).await.is_none());

        // Most recently released first.
        assert_eq!(local(&c.reused_stream(&a.peer).await.unwrap()), a2_addr);
        assert_eq!(local(&c.reused_stream(&a.peer).await.unwrap()), a1_addr);
        assert!(c.reused_stream(&a.peer).await.is_none());
    }

    #[tokio::test]
    async fn closed_expired_or_foreign_streams_are_never_handed_out() {
        let (a, b) = (Server::start().await, Server::start().await);
        let c = connector(16, &Arc::new(AtomicUsize::new(0)));
        let idle = Some(Duration::from_secs(60));

        // Closed by the server while idle.
        let s = c.new_stream(&a.peer).await.unwrap();
        c.release_stream(s, a.peer.reuse_hash(), idle);
        a.accepted(1).await;
        a.close_all().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(c.reused_stream(&a.peer).await.is_none());

        // Past its idle timeout: not reused, and closed.
        let s = c.new_stream(&a.peer).await.unwrap();
        c.release_stream(s, a.peer.reuse_hash(), Some(Duration::from_millis(50)));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(c.reused_stream(&a.peer).await.is_none());
        a.accepted(1).await;
        assert!(a.closed_by_client(0).await);

        // Filed under another peer's key (a reuse-hash collision): never given to that peer.
        let s = c.new_stream(&a.peer).await.unwrap();
        c.release_stream(s, b.peer.reuse_hash(), idle);
        assert!(c.reused_stream(&b.peer).await.is_none());

        // The control: a live stream within its timeout is reused.
        let s = c.new_stream(&b.peer).await.unwrap();
        c.release_stream(s, b.peer.reuse_hash(), idle);
        assert!(c.reused_stream(&b.peer).await.is_some());
    }
}
