//! A WebSocket upgrade on a session route: with the session cookie the tunnel opens to the
//! upstream (which echoes a frame back); without one it is refused like any API call.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{alice, embedded};

const UPGRADE: &str = "GET /app/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_websocket_opens_on_a_session_route_with_the_session_only() {
    let e = embedded(300, &[], "").await;
    let (jar, _) = alice(&e).await;

    let refused = e.gw.raw(format!("{UPGRADE}\r\n").as_bytes()).await;
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");

    let mut s = e.gw.raw_conn().await;
    s.write_all(format!("{UPGRADE}Cookie: {}\r\n\r\n", jar.header()).as_bytes())
        .await
        .unwrap();
    let head = crate::harness::read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // A masked text frame "hi"; the echo answers with the same text unmasked.
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
