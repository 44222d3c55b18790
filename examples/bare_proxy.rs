//! A bare Pingora proxy built like the gateway (same allocator, same profile): the baseline
//! `benches/README.md` compares the gateway with. Every request goes to 127.0.0.1:18000 with
//! X-Forwarded-For/-Proto set; env `BARE_TIMEOUTS=1` adds the gateway's per-request timeouts.
//! usage: bare_proxy LISTEN_ADDR

use async_trait::async_trait;
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session};
use std::time::Duration;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Bare {
    timeouts: bool,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn request_filter(&self, session: &mut Session, _ctx: &mut ()) -> Result<bool> {
        if self.timeouts {
            session.set_read_timeout(Some(Duration::from_secs(30)));
            session.set_keepalive(Some(60));
        }
        Ok(false)
    }

    async fn upstream_peer(&self, _s: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        let mut peer = HttpPeer::new(("127.0.0.1", 18000), false, String::new());
        if self.timeouts {
            peer.options.connection_timeout = Some(Duration::from_secs(3));
            peer.options.read_timeout = Some(Duration::from_secs(30));
            peer.options.write_timeout = Some(Duration::from_secs(30));
            peer.options.idle_timeout = Some(Duration::from_secs(60));
        }
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        up: &mut RequestHeader,
        _ctx: &mut (),
    ) -> Result<()> {
        if let Some(pingora::protocols::l4::socket::SocketAddr::Inet(a)) = session.client_addr() {
            up.insert_header("x-forwarded-for", a.ip().to_string())?;
        }
        up.insert_header("x-forwarded-proto", "http")?;
        Ok(())
    }
}

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18510".to_string());
    let conf = pingora::server::configuration::ServerConf {
        threads: 1,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(0),
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let timeouts = std::env::var("BARE_TIMEOUTS").is_ok_and(|v| v == "1");
    let mut svc = http_proxy_service(&server.configuration, Bare { timeouts });
    svc.add_tcp(&addr);
    server.add_service(svc);
    server.run_forever()
}
