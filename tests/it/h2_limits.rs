//! HTTP/2 abuse on the public listener, with raw frames: a header block that never finishes is
//! cut off after `limits.header_read_timeout_seconds` like an HTTP/1 slowloris (not held until
//! the HTTP/2 idle timeout), and rapid-reset and CONTINUATION floods end the connection
//! without the gateway's memory growing with the flood.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Gateway, Opts, Upstream, route};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.extend([kind, flags]);
    f.extend(stream.to_be_bytes());
    f.extend(payload);
    f
}

/// HPACK for `GET https://localhost/`: indexed :method GET, :scheme https, :path /, and
/// :authority as a literal with an indexed name.
fn get_block() -> Vec<u8> {
    let mut b = vec![0x82, 0x87, 0x84, 0x41, 9];
    b.extend(b"localhost");
    b
}

type Conn = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn h2(gw: &Gateway) -> Conn {
    let mut s = crate::harness::h2_tls(gw).await;
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(SETTINGS, 0, 0, &[]));
    s.write_all(&hello).await.unwrap();
    s
}

/// Reads frames until the server closes or `max` passes: (kind, flags, stream, payload)
/// each, and whether it closed.
async fn frames(s: &mut Conn, max: Duration) -> (Vec<(u8, u8, u32, Vec<u8>)>, bool) {
    let deadline = Instant::now() + max;
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        while buf.len() >= 9 {
            let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
            if buf.len() < 9 + len {
                break;
            }
            let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            out.push((buf[3], buf[4], stream, buf[9..9 + len].to_vec()));
            buf.drain(..9 + len);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (out, false);
        }
        match tokio::time::timeout(left, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return (out, false),
        }
    }
}

/// The gateway process's resident memory, in KiB.
fn rss_kib(gw: &Gateway) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", gw.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

async fn gateway(up: &Upstream) -> Gateway {
    Gateway::start(Opts::new(route("root", "/", &[up.url()], "")).extra(
        // The idle timeout is long: only the head deadline can end a slow header block.
        "[limits]\nheader_read_timeout_seconds = 2\nkeepalive_timeout_seconds = 60\n",
    ))
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_headers_that_never_finish_are_cut_off_at_the_head_deadline() {
    let up = Upstream::start().await;
    let gw = gateway(&up).await;
    let mut s = h2(&gw).await;
    // HEADERS without END_HEADERS, then a CONTINUATION every 400 ms, never the last one.
    s.write_all(&frame(HEADERS, 0, 1, &[0x82])).await.unwrap();
    let started = Instant::now();
    let (mut rd, mut wr) = tokio::io::split(s);
    let trickle = tokio::spawn(async move {
        for _ in 0..15 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            // One more `x-a: b` field (literal, not indexed) each time.
            let field = [0x00, 3, b'x', b'-', b'a', 1, b'b'];
            if wr
                .write_all(&frame(CONTINUATION, 0, 1, &field))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), rd.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    // No GOAWAY: the connection ends under the deadline, not by an h2 protocol error.
    assert_eq!(find_goaway(&got), None, "{got:?}");
    let took = started.elapsed();
    trickle.abort();
    assert!(
        closed,
        "a trickled header block held the connection past 10 s"
    );
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(5),
        "closed after {took:?}, the head deadline is 2 s"
    );
    let m = gw.metrics().await;
    assert!(
        m.contains("portcullis_guard_refusals_total{reason=\"header_timeout\"} 1"),
        "{m}"
    );

    // An idle HTTP/2 connection is not a slow head: past the deadline it still serves.
    let mut s = h2(&gw).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.write_all(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &get_block()))
        .await
        .unwrap();
    let (got, _) = frames(&mut s, Duration::from_secs(5)).await;
    let response = got
        .iter()
        .find(|(k, _, id, _)| *k == HEADERS && *id == 1)
        .expect("a response on stream 1");
    // HPACK index 8 is `:status: 200`.
    assert_eq!(response.3.first(), Some(&0x88), "{got:?}");
    assert_eq!(up.hits(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn rapid_reset_and_continuation_floods_end_the_connection_not_the_memory() {
    let up = Upstream::start().await;
    let gw = gateway(&up).await;
    let before = rss_kib(&gw);

    // Rapid reset: streams opened and cancelled at once, thousands of them.
    let s = h2(&gw).await;
    let mut flood = Vec::new();
    let block = get_block();
    for i in 0..5_000u32 {
        let id = 2 * i + 1;
        flood.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &block));
        flood.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
    }
    let (mut rd, mut wr) = tokio::io::split(s);
    let writer = tokio::spawn(async move {
        for chunk in flood.chunks(64 * 1024) {
            if wr.write_all(chunk).await.is_err() {
                break;
            }
        }
    });
    let mut s2 = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut closed = false;
    let mut chunk = [0u8; 16384];
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), rd.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => s2.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
    }
    let _ = writer.await;
    let goaway = find_goaway(&s2);
    // ENHANCE_YOUR_CALM: h2's answer to a reset flood.
    assert_eq!(goaway, Some(0xb), "GOAWAY code");
    eprintln!(
        "rapid reset: closed {closed}, GOAWAY {goaway:?}, {} of 5000 streams reached the upstream",
        up.hits()
    );
    assert!(
        up.hits() < 5_000,
        "every flooded stream reached the upstream"
    );

    // CONTINUATION flood: one header block, endless 16 KiB CONTINUATION frames.
    let mut s = h2(&gw).await;
    s.write_all(&frame(HEADERS, 0, 1, &[0x82])).await.unwrap();
    // Valid fields (`x-a: b`, 7 bytes each), so only the flood itself can be refused.
    let fields: Vec<u8> = [0x00, 3, b'x', b'-', b'a', 1, b'b'].repeat(2_340);
    let junk = frame(CONTINUATION, 0, 1, &fields);
    let started = Instant::now();
    let mut sent = 0usize;
    for _ in 0..2_000 {
        // A gateway that stopped reading without closing would block this write: bounded.
        match tokio::time::timeout(Duration::from_secs(5), s.write_all(&junk)).await {
            Ok(Ok(())) => sent += 1,
            _ => break,
        }
    }
    let (got, _) = frames(&mut s, Duration::from_secs(5)).await;
    let goaway = got.iter().find(|f| f.0 == GOAWAY).expect("a GOAWAY");
    // ENHANCE_YOUR_CALM: too many CONTINUATION frames, or a header list far over the limit.
    assert_eq!(goaway.3[4..8], 0xbu32.to_be_bytes(), "{goaway:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    eprintln!(
        "CONTINUATION flood: {sent} frames of 16 KiB taken, then {:?}",
        got.last()
    );
    assert!(sent < 2_000, "the gateway read 32 MiB of one header block");

    let after = rss_kib(&gw);
    eprintln!("RSS {before} KiB before the floods, {after} KiB after");
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    // The gateway still serves.
    let r = gw.client().get(gw.url("/after")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// The error code of the first GOAWAY in raw server bytes, if any.
fn find_goaway(bytes: &[u8]) -> Option<u32> {
    let mut at = 0;
    while at + 9 <= bytes.len() {
        let len = u32::from_be_bytes([0, bytes[at], bytes[at + 1], bytes[at + 2]]) as usize;
        if bytes[at + 3] == GOAWAY && at + 9 + 8 <= bytes.len() {
            let p = &bytes[at + 9..];
            return Some(u32::from_be_bytes([p[4], p[5], p[6], p[7]]));
        }
        at += 9 + len;
    }
    None
}
