//! A bare Pingora proxy built like the gateway (same allocator, same profile, same dependency
//! features; `--features bench-baseline`): the baseline
//! `benches/README.md` compares the gateway with. Every request goes to 127.0.0.1:18000 with
//! X-Forwarded-For/-Proto set; env `BARE_TIMEOUTS=1` adds the gateway's per-request timeouts.
//! usage: bare-proxy LISTEN_ADDR [CERT KEY]   (with CERT and KEY: rustls TLS, like the gateway)

use async_trait::async_trait;
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session};
use std::time::Duration;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Bare {
    timeouts: bool,
    proto: &'static str,
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
        up.insert_header("x-forwarded-proto", self.proto)?;
        Ok(())
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = args.get(1).map_or("127.0.0.1:18510", String::as_str);
    let tls = match (args.get(2), args.get(3)) {
        (Some(c), Some(k)) => Some((c.as_str(), k.as_str())),
        _ => None,
    };
    portcullis_gateway::app::install_crypto_provider();
    let conf = pingora::server::configuration::ServerConf {
        threads: 1,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(0),
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let timeouts = std::env::var("BARE_TIMEOUTS").is_ok_and(|v| v == "1");
    let proto = if tls.is_some() { "https" } else { "http" };
    let mut svc = http_proxy_service(&server.configuration, Bare { timeouts, proto });
    match tls {
        Some((cert, key)) => {
            let mut settings = match pingora::listeners::tls::TlsSettings::intermediate(cert, key) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("bare-proxy: TLS settings: {e}");
                    std::process::exit(2);
                }
            };
            settings.enable_h2();
            svc.add_tls_with_settings(addr, None, settings);
        }
        None => svc.add_tcp(addr),
    }
    server.add_service(svc);
    server.run_forever()
}
