//! Data-plane behaviour over real TLS: routing, guard, forwarded headers, upstream failures.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Gateway, Opts, Upstream, route, status_of};

async fn echo_json(r: reqwest::Response) -> Value {
    r.json::<Value>().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_by_longest_prefix_on_segment_boundaries() {
    let (a, b) = (Upstream::start().await, Upstream::start().await);
    let routes =
        route("api", "/api", &[a.url()], "") + &route("orders", "/api/orders", &[b.url()], "");
    let gw = Gateway::start(Opts::new(routes)).await;
    let c = gw.client();
    for (path, to_b) in [
        ("/api/orders", true),
        ("/api/orders/7?x=1", true),
        ("/api/ordersX", false),
        ("/api/x", false),
    ] {
        let before = (a.hits(), b.hits());
        let r = c.get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers().contains_key("x-request-id"));
        let got = if to_b {
            b.hits() - before.1
        } else {
            a.hits() - before.0
        };
        assert_eq!(got, 1, "{path} went to the wrong upstream");
    }
    let r = c.get(gw.url("/nothing")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    assert!(body["request_id"].as_str().unwrap().len() >= 16);
}

#[tokio::test(flavor = "multi_thread")]
async fn attack_paths_never_reach_the_admin_upstream() {
    let up = Upstream::start().await;
    // A list of its own adds to /auth/admin, never replaces it.
    let gw = Gateway::start(
        Opts::new(
            route("auth", "/auth", &[up.url()], "")
                + &route("internal", "/internal", &[up.url()], ""),
        )
        .extra("[guard]\nblocked_prefixes = [\"/internal/\"]\n"),
    )
    .await;
    let attacks = [
        "/internal",
        "/internal/x",
        "/Internal/../internal/x",
        "/auth/./admin",
        "//auth//admin",
        "/auth/%61dmin",
        "/auth/x/../admin",
        "/auth%2fadmin",
        "/auth/admin%00",
        "/auth\\admin",
        "/auth/admin",
        "/auth/admin/realms",
        "/auth/admin;x=1",
        "/auth/%2e%2e/auth/admin",
    ];
    for a in attacks {
        let resp = gw
            .raw(
                format!("GET {a} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await;
        let st = status_of(&resp);
        assert!(st == 400 || st == 404, "{a} -> {resp}");
    }
    assert_eq!(
        up.hits(),
        0,
        "an attack path reached the upstream: {:?}",
        up.paths.lock().unwrap()
    );
    // The normal path still works, normalized before forwarding.
    let r = gw
        .client()
        .get(gw.url("/auth//realms/./x/%7euser"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(echo_json(r).await["path"], "/auth/realms/x/~user");
    let m = gw.metrics().await;
    assert!(
        m.contains("portcullis_guard_refusals_total{reason=\"blocked_prefix\"}"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn spoofed_forwarded_headers_dropped_from_untrusted_and_appended_from_trusted() {
    let up = Upstream::start().await;
    let spoof = [
        ("X-Forwarded-For", "6.6.6.6"),
        ("X-Forwarded-Host", "evil"),
        ("X-Forwarded-Proto", "http"),
        ("Forwarded", "for=6.6.6.6"),
        ("X-Auth-Request-User", "root"),
        ("x-AUTH-request-groups", "/admins"),
    ];

    let gw = Gateway::start(Opts::new(route(
        "e",
        "/e",
        &[up.url()],
        "strip_prefix = true",
    )))
    .await;
    let mut req = gw.client().get(gw.url("/e/x"));
    for (k, v) in spoof {
        req = req.header(k, v);
    }
    let h = echo_json(req.send().await.unwrap()).await["headers"].clone();
    assert_eq!(h["x-forwarded-for"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(h["x-forwarded-proto"], serde_json::json!(["https"]));
    assert_eq!(
        h["x-forwarded-host"],
        serde_json::json!([format!("localhost:{}", gw.public)])
    );
    assert_eq!(
        h["x-forwarded-port"],
        serde_json::json!([gw.public.to_string()])
    );
    assert_eq!(h["x-forwarded-prefix"], serde_json::json!(["/e"]));
    assert!(h.get("forwarded").is_none());
    assert!(h.get("x-auth-request-user").is_none());
    assert!(h.get("x-auth-request-groups").is_none());
    assert_eq!(h["x-request-id"].as_array().unwrap().len(), 1);

    let trusted = Gateway::start(
        Opts::new(route("e", "/e", &[up.url()], ""))
            .extra("[forwarded]\ntrusted_proxies = [\"127.0.0.0/8\"]"),
    )
    .await;
    let mut req = trusted
        .client()
        .get(trusted.url("/e/x"))
        .header("X-Request-Id", "trace-abc");
    for (k, v) in spoof {
        req = req.header(k, v);
    }
    let h = echo_json(req.send().await.unwrap()).await["headers"].clone();
    assert_eq!(
        h["x-forwarded-for"],
        serde_json::json!(["6.6.6.6, 127.0.0.1"])
    );
    assert_eq!(h["x-forwarded-host"], serde_json::json!(["evil"]));
    assert_eq!(
        h["forwarded"],
        serde_json::json!(["for=6.6.6.6, for=127.0.0.1"])
    );
    assert_eq!(h["x-request-id"], serde_json::json!(["trace-abc"]));
    assert!(
        h.get("x-auth-request-user").is_none(),
        "identity headers are never trusted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn framing_attacks_are_refused_and_never_forwarded() {
    let up = Upstream::start().await;
    let gw = Gateway::start(Opts::new(route("root", "/", &[up.url()], ""))).await;
    let cases: [(&str, u16); 5] = [
        (
            "GET http://localhost/x HTTP/1.1\r\nHost: localhost\r\n\r\n",
            400,
        ),
        (
            "CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n",
            400,
        ),
        (
            "POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            400,
        ),
        (
            "POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\nhello",
            400,
        ),
        (
            "POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            400,
        ),
    ];
    for (req, want) in cases {
        let resp = gw.raw(req.as_bytes()).await;
        assert_eq!(status_of(&resp), want, "{req:?} -> {resp}");
    }
    let big = "a".repeat(100 * 1024);
    let resp = gw
        .raw(format!("GET /x HTTP/1.1\r\nHost: localhost\r\nX-Big: {big}\r\n\r\n").as_bytes())
        .await;
    assert_eq!(status_of(&resp), 431, "{resp}");
    assert_eq!(up.hits(), 0, "{:?}", up.paths.lock().unwrap());
}

/// Header lines that never end are refused once they pass twice the limit, at once: Pingora
/// alone would buffer up to 1 MiB per connection and wait for the head timeout.
#[tokio::test(flavor = "multi_thread")]
async fn an_endless_head_is_cut_off_long_before_pingora_s_1_mib() {
    use tokio::io::AsyncWriteExt;
    let up = Upstream::start().await;
    let gw = Gateway::start(
        Opts::new(route("root", "/", &[up.url()], ""))
            .extra("[limits]\nmax_header_bytes = 8192\nheader_read_timeout_seconds = 30\n"),
    )
    .await;
    let mut conn = gw.raw_conn().await;
    conn.write_all(b"GET /x HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let line = format!("X-Pad: {}\r\n", "a".repeat(1000));
    let started = std::time::Instant::now();
    // Just past the bound (2 × 8192 + 4096), far from 1 MiB, and no end of head. No more than
    // that: bytes left unread when the gateway closes would reset the connection.
    let mut sent = 0;
    while sent <= 2 * 8192 + 4096 {
        conn.write_all(line.as_bytes()).await.unwrap();
        sent += line.len();
    }
    let resp = crate::harness::read_some(&mut conn, Duration::from_secs(5)).await;
    assert_eq!(status_of(&resp), 431, "after {sent} bytes: {resp}");
    assert!(resp.contains("request_header_fields_too_large"), "{resp}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(up.hits(), 0);
    let m = gw.metrics().await;
    assert!(
        m.contains("portcullis_guard_refusals_total{reason=\"header_too_large\"} 1"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_over_tls_and_streaming_bodies() {
    let up = Upstream::start().await;
    let gw = Gateway::start(Opts::new(route("root", "/", &[up.url()], ""))).await;
    let r = gw.client().get(gw.url("/h2?q=1")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let v = echo_json(r).await;
    assert_eq!(v["path"], "/h2");
    assert_eq!(v["query"], "q=1");
    // 8 MiB upload streams through, over HTTP/1.1 and HTTP/2.
    let body = vec![b'x'; 8 * 1024 * 1024];
    for c in [gw.client(), gw.client_h1()] {
        let r = c
            .post(gw.url("/upload"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(echo_json(r).await["body_bytes"], 8 * 1024 * 1024);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_headers_get_431_over_http2_too() {
    let up = Upstream::start().await;
    let gw = Gateway::start(Opts::new(route("root", "/", &[up.url()], ""))).await;
    // Just over the 64 KiB default, and well over it (the h2 layer's own limit is higher).
    for size in [66 * 1024, 200 * 1024] {
        let r = gw
            .client()
            .get(gw.url("/x"))
            .header("X-Big", "a".repeat(size))
            .send()
            .await
            .unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        assert_eq!(r.status(), 431, "{size} bytes");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "request_header_fields_too_large");
    }
    assert_eq!(up.hits(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_upstream_gives_502_and_the_next_upstream_is_used() {
    let up = Upstream::start().await;
    let dead = format!("http://127.0.0.1:{}", crate::harness::free_port());
    let routes = route("only-dead", "/dead", std::slice::from_ref(&dead), "")
        + &route("mixed", "/mixed", &[dead, up.url()], "");
    let gw = Gateway::start(Opts::new(routes)).await;
    let c = gw.client();
    let r = c.get(gw.url("/dead")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(echo_json(r).await["error"], "bad_gateway");
    for i in 0..6 {
        let r = c.get(gw.url("/mixed")).send().await.unwrap();
        assert_eq!(
            r.status(),
            200,
            "request {i} failed over to the live upstream"
        );
    }
    assert_eq!(up.hits(), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_upstream_gives_504() {
    let up = Upstream::start().await;
    let gw = Gateway::start(Opts::new(route(
        "slow",
        "/slow",
        &[up.url()],
        "timeout_seconds = 1",
    )))
    .await;
    let t = std::time::Instant::now();
    let r = gw
        .client()
        .get(gw.url("/slow?delay_ms=3000"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    assert!(t.elapsed() < Duration::from_millis(2800));
    assert_eq!(echo_json(r).await["error"], "upstream_timeout");
}

#[tokio::test(flavor = "multi_thread")]
async fn management_paths_do_not_exist_publicly_and_redirect_listener_308s() {
    let up = Upstream::start().await;
    let mut o = Opts::new(route("api", "/api", &[up.url()], ""));
    o.redirect = true;
    let gw = Gateway::start(o).await;
    for p in [
        "/metrics",
        "/health/ready",
        "/admin/config",
        "/admin/reload",
    ] {
        let r = gw.client().get(gw.url(p)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{p}");
    }
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = plain
        .get(format!(
            "http://127.0.0.1:{}/api/x?y=1",
            gw.redirect.unwrap()
        ))
        .header("Host", "example.com:80")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(
        r.headers()["location"],
        format!("https://example.com:{}/api/x?y=1", gw.public)
    );
    let live = reqwest::get(gw.mgmt_url("/health/live")).await.unwrap();
    assert_eq!(live.status(), 200);
    let m = gw.metrics().await;
    assert!(m.contains("portcullis_config_generation 1"), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_upgrade_passes_through() {
    use tokio::io::AsyncWriteExt;
    let up = Upstream::start().await;
    // A tunnel is not a request head: it outlives the head deadline.
    let gw = Gateway::start(
        Opts::new(route("ws", "/ws", &[up.url()], ""))
            .extra("[limits]\nheader_read_timeout_seconds = 1"),
    )
    .await;
    let mut s = gw.raw_conn().await;
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").await.unwrap();
    let head = crate::harness::read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    crate::harness::websocket_echoes_hi(&mut s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_request_body_times_out() {
    use tokio::io::AsyncWriteExt;
    let up = Upstream::start().await;
    let gw = Gateway::start(
        Opts::new(route("root", "/", &[up.url()], ""))
            .extra("[limits]\nbody_read_timeout_seconds = 1"),
    )
    .await;
    let mut s = gw.raw_conn().await;
    s.write_all(b"POST /slow HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let t = std::time::Instant::now();
    let resp = crate::harness::read_some(&mut s, Duration::from_secs(10)).await;
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "no timeout after {:?}",
        t.elapsed()
    );
    let st = status_of(&resp);
    assert!(st == 408 || st == 0 || st == 502, "{resp}");
}

/// Dribbles a request head a byte every 150 ms (each read is quick, the head never completes)
/// and returns what the server answered and when it closed.
async fn dribble_head<S>(s: S) -> (String, Duration)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    use tokio::io::AsyncWriteExt;
    let (mut r, mut w) = tokio::io::split(s);
    let dribble = tokio::spawn(async move {
        w.write_all(b"GET /slow HTTP/1.1\r\nHost: localhost\r\n")
            .await?;
        for _ in 0..60 {
            w.write_all(b"a").await?;
            w.flush().await?;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        Ok::<_, std::io::Error>(())
    });
    let t = std::time::Instant::now();
    let resp = crate::harness::read_some(&mut r, Duration::from_secs(9)).await;
    let took = t.elapsed();
    dribble.abort();
    (resp, took)
}

#[tokio::test(flavor = "multi_thread")]
async fn slowloris_head_is_cut_at_the_header_deadline_and_nothing_else_is() {
    use tokio::io::AsyncWriteExt;
    let up = Upstream::start().await;
    let mut o = Opts::new(route("root", "/", &[up.url()], ""))
        .extra("[limits]\nheader_read_timeout_seconds = 1");
    o.redirect = true;
    let gw = Gateway::start(o).await;

    let (resp, took) = dribble_head(gw.raw_conn().await).await;
    assert!(
        took < Duration::from_secs(4),
        "a dribbled head held the connection for {took:?}"
    );
    assert_eq!(status_of(&resp), 408, "{resp}");
    assert_eq!(
        up.hits(),
        0,
        "an incomplete head never reaches the upstream"
    );
    // The plain-HTTP redirect listener faces the internet too.
    let plain = tokio::net::TcpStream::connect(("127.0.0.1", gw.redirect.unwrap()))
        .await
        .unwrap();
    let (resp, took) = dribble_head(plain).await;
    assert!(
        took < Duration::from_secs(4),
        "the redirect listener held a dribbled head for {took:?}"
    );
    assert_eq!(status_of(&resp), 408, "{resp}");

    // Neither an idle keep-alive connection nor a head split across reads within the deadline
    // is cut, and a tunnel outlives it.
    let mut s = gw.raw_conn().await;
    let req = b"GET /a HTTP/1.1\r\nHost: localhost\r\n\r\n";
    s.write_all(req).await.unwrap();
    let first = crate::harness::read_some(&mut s, Duration::from_secs(5)).await;
    assert_eq!(status_of(&first), 200, "{first}");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    s.write_all(b"GET /b HTTP/1.1\r\nHo").await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    s.write_all(b"st: localhost\r\n\r\n").await.unwrap();
    let second = crate::harness::read_some(&mut s, Duration::from_secs(5)).await;
    assert_eq!(status_of(&second), 200, "{second}");

    let m = gw.metrics().await;
    assert!(
        m.contains("portcullis_guard_refusals_total{reason=\"header_timeout\"} 2"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_log_has_one_json_line_per_request() {
    let up = Upstream::start().await;
    let gw = Gateway::start(Opts::new(route("api", "/api", &[up.url()], ""))).await;
    gw.client()
        .get(gw.url("/api/a?secret=hunter2"))
        .send()
        .await
        .unwrap();
    gw.client().get(gw.url("/nope")).send().await.unwrap();
    crate::harness::eventually("audit lines", Duration::from_secs(5), || async {
        gw.stdout().lines().count() >= 2
    })
    .await;
    let out = gw.stdout();
    assert!(
        !out.contains("hunter2"),
        "query strings never reach the audit log"
    );
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ok = lines.iter().find(|l| l["route"] == "api").unwrap();
    for k in [
        "time",
        "request_id",
        "listener",
        "client_ip",
        "method",
        "path",
        "status",
        "decision",
        "upstream",
        "duration_ms",
    ] {
        assert!(ok.get(k).is_some(), "missing {k} in {ok}");
    }
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["path"], "/api/a");
    let miss = lines.iter().find(|l| l["route"] == "none").unwrap();
    assert_eq!(miss["status"], 404);
    assert_eq!(miss["decision"], "deny");
}

/// `limits.max_connections` caps a listener's open connections: one over the cap is closed
/// before its TLS handshake and counted; a freed slot serves again.
#[tokio::test(flavor = "multi_thread")]
async fn connections_over_the_cap_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Upstream::start().await;
    let gw = Gateway::start(
        Opts::new(route("api", "/api", &[up.url()], "")).extra("[limits]\nmax_connections = 2"),
    )
    .await;
    async fn get(s: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> String {
        s.write_all(b"GET /api/x HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).to_string()
    }
    let mut a = gw.raw_conn().await;
    let mut b = gw.raw_conn().await;
    assert!(get(&mut a).await.starts_with("HTTP/1.1 200"));
    assert!(get(&mut b).await.starts_with("HTTP/1.1 200"));
    // Both stay open (keep-alive): a third is one too many, closed before TLS.
    let third = tokio::time::timeout(Duration::from_secs(5), gw.try_raw_conn()).await;
    assert!(
        matches!(third, Ok(Err(_))),
        "the third connection completed its handshake"
    );
    let m = gw.metrics().await;
    assert!(
        m.contains("portcullis_guard_refusals_total{reason=\"connection_limit\"} 1"),
        "{m}"
    );
    drop(a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut d = gw.raw_conn().await;
    assert!(get(&mut d).await.starts_with("HTTP/1.1 200"));
    assert!(get(&mut b).await.starts_with("HTTP/1.1 200"));
}

/// Connections still in their TLS handshake hold a slot too, and the handshake is bounded by
/// `header_read_timeout_seconds` (Pingora alone: 60 s, uncounted).
#[tokio::test(flavor = "multi_thread")]
async fn connections_in_the_handshake_count_and_time_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Upstream::start().await;
    let gw = Gateway::start(
        Opts::new(route("api", "/api", &[up.url()], ""))
            .extra("[limits]\nmax_connections = 2\nheader_read_timeout_seconds = 1"),
    )
    .await;
    // Two clients that connect and never say hello fill the listener.
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(
            tokio::net::TcpStream::connect(("127.0.0.1", gw.public))
                .await
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    assert!(
        gw.try_raw_conn().await.is_err(),
        "a third connection got through while two sat in the handshake"
    );
    // Each silent one is closed once the handshake deadline passes.
    for s in &mut silent {
        let mut b = [0u8; 1];
        let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await;
        assert!(
            matches!(r, Ok(Ok(0)) | Ok(Err(_))),
            "a silent connection outlived the handshake deadline"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(4));
    // Their slots are free again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut s = gw.try_raw_conn().await.unwrap();
    s.write_all(b"GET /api/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let resp = crate::harness::read_some(&mut s, Duration::from_secs(5)).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let m = gw.metrics().await;
    assert!(
        m.contains("portcullis_guard_refusals_total{reason=\"connection_limit\"} 1"),
        "{m}"
    );
}

/// HTTP/2's slowloris: a stream's header block begun and never finished (no END_HEADERS).
/// The connection has no request to time, so the HTTP/2 idle timeout must end it.
#[tokio::test(flavor = "multi_thread")]
async fn an_unfinished_http2_header_block_does_not_hold_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Upstream::start().await;
    let gw = Gateway::start(
        Opts::new(route("root", "/", &[up.url()], ""))
            .extra("[limits]\nkeepalive_timeout_seconds = 2\n"),
    )
    .await;
    let mut s = crate::harness::h2_tls(&gw).await;
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend_from_slice(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]); // empty SETTINGS
    // HEADERS on stream 1, flags 0 (no END_HEADERS): ":method: GET" and nothing more.
    out.extend_from_slice(&[0, 0, 1, 0x1, 0, 0, 0, 0, 1, 0x82]);
    s.write_all(&out).await.unwrap();
    let started = std::time::Instant::now();
    // Read until the gateway closes (its SETTINGS, ACK and GOAWAY come first).
    let mut buf = [0u8; 4096];
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(_)) => continue,
            Err(_) => break false,
        }
    };
    assert!(closed, "connection still open after 20 s");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "closed only after {:?}",
        started.elapsed()
    );
    assert_eq!(up.hits(), 0);
}
