//! Forwarded headers: what the upstream learns about the client, and what a client may not forge.
//!
//! From an untrusted peer every incoming `X-Forwarded-*`, `Forwarded` and `X-Real-IP` is
//! dropped and the gateway's own values are set; from a trusted proxy (`trusted_proxies`)
//! the chain is kept and the peer appended.

use std::net::IpAddr;

use http::header::{self, HeaderName};
use ipnet::IpNet;
use pingora::http::RequestHeader;

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
pub const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Headers that describe one hop and must not be forwarded (RFC 9110 §7.6.1), besides those
/// named in `Connection`. `Upgrade` is kept for upgrade requests (WebSocket).
const HOP_BY_HOP: [HeaderName; 6] = [
    header::TE,
    header::TRAILER,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];

/// True when `ip` belongs to one of the trusted proxy networks.
pub fn is_trusted(trusted: &[IpNet], ip: Option<IpAddr>) -> bool {
    match ip {
        Some(ip) if !trusted.is_empty() => trusted.iter().any(|n| n.contains(&ip)),
        _ => false,
    }
}

/// What the gateway knows about the downstream connection.
pub struct Downstream<'a> {
    pub client_ip: Option<IpAddr>,
    pub trusted: bool,
    pub proto: &'static str,
    pub host: Option<&'a str>,
    pub port: u16,
}

/// Removes hop-by-hop headers; keeps `Connection: upgrade` + `Upgrade` for upgrade requests.
pub fn strip_hop_by_hop(req: &mut RequestHeader, is_upgrade: bool) {
    if let Some(conn) = req.headers.get(header::CONNECTION) {
        // Every header named in Connection is hop-by-hop too.
        let named: Vec<HeaderName> = conn
            .to_str()
            .unwrap_or("")
            .split(',')
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .filter(|h| !(is_upgrade && *h == header::UPGRADE))
            .collect();
        for h in named {
            req.remove_header(&h);
        }
        req.remove_header(&header::CONNECTION);
    }
    for h in &HOP_BY_HOP {
        req.remove_header(h);
    }
    if is_upgrade {
        let _ = req.insert_header(header::CONNECTION, "upgrade");
    } else {
        req.remove_header(&header::UPGRADE);
    }
}

/// Sets (untrusted peer) or extends (trusted peer) the forwarded headers.
pub fn apply(req: &mut RequestHeader, d: &Downstream<'_>, prefix: Option<&str>) {
    let ip = d.client_ip.map(|ip| ip.to_string());
    if d.trusted {
        if let Some(ip) = &ip {
            let xff = match req
                .headers
                .get(&X_FORWARDED_FOR)
                .and_then(|v| v.to_str().ok())
            {
                Some(prev) if !prev.trim().is_empty() => format!("{prev}, {ip}"),
                _ => ip.clone(),
            };
            let _ = req.insert_header(X_FORWARDED_FOR, xff);
            if let Some(prev) = req
                .headers
                .get(header::FORWARDED)
                .and_then(|v| v.to_str().ok())
            {
                let fwd = format!("{prev}, for={}", forwarded_node(d.client_ip));
                let _ = req.insert_header(header::FORWARDED, fwd);
            }
        }
        set_if_absent(req, X_FORWARDED_PROTO, d.proto);
        if let Some(h) = d.host {
            set_if_absent(req, X_FORWARDED_HOST, h);
        }
        set_if_absent(req, X_FORWARDED_PORT, &d.port.to_string());
    } else {
        req.remove_header(&header::FORWARDED);
        req.remove_header(&X_REAL_IP);
        req.remove_header(&X_FORWARDED_PREFIX);
        match &ip {
            Some(ip) => {
                let _ = req.insert_header(X_FORWARDED_FOR, ip.as_str());
                let _ = req.insert_header(X_REAL_IP, ip.as_str());
            }
            None => {
                req.remove_header(&X_FORWARDED_FOR);
            }
        }
        let _ = req.insert_header(X_FORWARDED_PROTO, d.proto);
        match d.host {
            Some(h) => {
                let _ = req.insert_header(X_FORWARDED_HOST, h);
            }
            None => {
                req.remove_header(&X_FORWARDED_HOST);
            }
        }
        let _ = req.insert_header(X_FORWARDED_PORT, d.port.to_string());
    }
    if let Some(p) = prefix {
        let value = match req
            .headers
            .get(&X_FORWARDED_PREFIX)
            .and_then(|v| v.to_str().ok())
        {
            // A trusted proxy that stripped a prefix of its own: ours comes after it.
            Some(prev) if d.trusted => format!("{}{p}", prev.trim_end_matches('/')),
            _ => p.to_string(),
        };
        let _ = req.insert_header(X_FORWARDED_PREFIX, value);
    }
}

fn set_if_absent(req: &mut RequestHeader, name: HeaderName, value: &str) {
    if !req.headers.contains_key(&name) {
        let _ = req.insert_header(name, value);
    }
}

/// RFC 7239 node: IPv6 addresses are quoted and bracketed.
fn forwarded_node(ip: Option<IpAddr>) -> String {
    match ip {
        Some(IpAddr::V6(v6)) => format!("\"[{v6}]\""),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        None => "unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    fn get<'a>(r: &'a RequestHeader, k: &str) -> Option<&'a str> {
        r.headers.get(k).and_then(|v| v.to_str().ok())
    }

    const SPOOF: &[(&str, &str)] = &[
        ("X-Forwarded-For", "6.6.6.6"),
        ("x-forwarded-proto", "http"),
        ("X-FORWARDED-HOST", "evil.example"),
        ("X-Forwarded-Port", "1"),
        ("X-Forwarded-Prefix", "/evil"),
        ("Forwarded", "for=6.6.6.6"),
        ("X-Real-IP", "6.6.6.6"),
    ];

    #[test]
    fn untrusted_peer_values_are_replaced() {
        let mut r = req(SPOOF);
        let d = Downstream {
            client_ip: "203.0.113.7".parse().ok(),
            trusted: false,
            proto: "https",
            host: Some("gw.example:8443"),
            port: 8443,
        };
        apply(&mut r, &d, None);
        assert_eq!(get(&r, "x-forwarded-for"), Some("203.0.113.7"));
        assert_eq!(get(&r, "x-forwarded-proto"), Some("https"));
        assert_eq!(get(&r, "x-forwarded-host"), Some("gw.example:8443"));
        assert_eq!(get(&r, "x-forwarded-port"), Some("8443"));
        assert_eq!(get(&r, "x-forwarded-prefix"), None);
        assert_eq!(get(&r, "forwarded"), None);
        assert_eq!(get(&r, "x-real-ip"), Some("203.0.113.7"));
        assert_eq!(r.headers.get_all("x-forwarded-for").iter().count(), 1);
    }

    #[test]
    fn trusted_peer_chain_is_appended() {
        let mut r = req(SPOOF);
        let d = Downstream {
            client_ip: "10.0.0.5".parse().ok(),
            trusted: true,
            proto: "https",
            host: Some("gw"),
            port: 8443,
        };
        apply(&mut r, &d, Some("/api"));
        assert_eq!(get(&r, "x-forwarded-for"), Some("6.6.6.6, 10.0.0.5"));
        assert_eq!(get(&r, "x-forwarded-proto"), Some("http"));
        assert_eq!(get(&r, "forwarded"), Some("for=6.6.6.6, for=10.0.0.5"));
        assert_eq!(get(&r, "x-forwarded-prefix"), Some("/evil/api"));
    }

    #[test]
    fn trust_is_by_network() {
        let nets: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(is_trusted(&nets, "10.1.2.3".parse().ok()));
        assert!(!is_trusted(&nets, "11.1.2.3".parse().ok()));
        assert!(!is_trusted(&[], "10.1.2.3".parse().ok()));
    }

    #[test]
    fn hop_by_hop_removed_upgrade_kept() {
        let mut r = req(&[
            ("Connection", "keep-alive, X-Secret"),
            ("X-Secret", "1"),
            ("Keep-Alive", "5"),
            ("TE", "trailers"),
            ("Upgrade", "h2c"),
        ]);
        strip_hop_by_hop(&mut r, false);
        for h in ["connection", "x-secret", "keep-alive", "te", "upgrade"] {
            assert_eq!(get(&r, h), None, "{h}");
        }
        let mut r = req(&[("Connection", "Upgrade"), ("Upgrade", "websocket")]);
        strip_hop_by_hop(&mut r, true);
        assert_eq!(get(&r, "upgrade"), Some("websocket"));
        assert_eq!(get(&r, "connection"), Some("upgrade"));
    }
}
