//! A WebSocket upgrade on a session route: with the session cookie the tunnel opens to the
//! upstream (which echoes a frame back); without one it is refused like any API call.
use tokio::io::AsyncWriteExt;

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
    crate::harness::websocket_echoes_hi(&mut s).await;
}
