//! Forwarded headers: what the upstream learns about the client, and what a client may not forge.
//!
//! From an untrusted peer every incoming `X-Forwarded-*`, `Forwarded` and `X-Real-IP` is
//! dropped and the gateway's own values are set; from a trusted proxy (`trusted_proxies`)
//! the chain is kept and the peer appended.

use std::net::IpAddr;

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue};
use ipnet::IpNet;

pub use portcullis_core::forwarded::{
    X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PORT, X_FORWARDED_PREFIX, X_FORWARDED_PROTO,
    X_REAL_IP,
};
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

/// Whether `h` holds any of `names`. Requests rarely carry the headers the gateway strips,
/// and one pass over the few names present is much cheaper than a hashed removal of each.
pub fn any_of(h: &HeaderMap, names: &[HeaderName]) -> bool {
    h.keys().any(|k| names.contains(k))
}

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
pub fn strip_hop_by_hop(h: &mut HeaderMap, is_upgrade: bool) {
    if let Some(conn) = h.remove(header::CONNECTION) {
        // Every header named in Connection is hop-by-hop too.
        for name in conn
            .to_str()
            .unwrap_or("")
            .split(',')
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        {
            if !(is_upgrade && name == header::UPGRADE) {
                h.remove(&name);
            }
        }
    }
    if any_of(h, &HOP_BY_HOP) {
        for name in &HOP_BY_HOP {
            h.remove(name);
        }
    }
    if is_upgrade {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        h.remove(header::UPGRADE);
    }
}

/// Sets (untrusted peer) or extends (trusted peer) the forwarded headers.
pub fn apply(h: &mut HeaderMap, d: &Downstream<'_>, prefix: Option<&str>) {
    let ip = d.client_ip.map(ip_value);
    if d.trusted {
        if let Some(ip) = &ip {
            let xff = match h.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
                Some(prev) if !prev.trim().is_empty() => {
                    value(&format!("{prev}, {}", ip.to_str().unwrap_or_default()))
                }
                _ => Some(ip.clone()),
            };
            if let Some(xff) = xff {
                h.insert(X_FORWARDED_FOR, xff);
            }
            if let Some(prev) = h.get(header::FORWARDED).and_then(|v| v.to_str().ok())
                && let Some(fwd) = value(&format!("{prev}, for={}", forwarded_node(d.client_ip)))
            {
                h.insert(header::FORWARDED, fwd);
            }
        }
        if !h.contains_key(&X_FORWARDED_PROTO) {
            h.insert(X_FORWARDED_PROTO, HeaderValue::from_static(d.proto));
        }
        if let Some(host) = d.host.and_then(value)
            && !h.contains_key(&X_FORWARDED_HOST)
        {
            h.insert(X_FORWARDED_HOST, host);
        }
        if !h.contains_key(&X_FORWARDED_PORT) {
            h.insert(X_FORWARDED_PORT, HeaderValue::from(d.port));
        }
    } else {
        remove_matching(h, is_client_forwarded);
        if let Some(ip) = ip {
            h.insert(X_REAL_IP, ip.clone());
            h.insert(X_FORWARDED_FOR, ip);
        }
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static(d.proto));
        if let Some(host) = d.host.and_then(value) {
            h.insert(X_FORWARDED_HOST, host);
        }
        h.insert(X_FORWARDED_PORT, HeaderValue::from(d.port));
    }
    if let Some(p) = prefix {
        let v = match h.get(&X_FORWARDED_PREFIX).and_then(|v| v.to_str().ok()) {
            // A trusted proxy that stripped a prefix of its own: ours comes after it.
            Some(prev) if d.trusted => value(&format!("{}{p}", prev.trim_end_matches('/'))),
            _ => value(p),
        };
        if let Some(v) = v {
            h.insert(X_FORWARDED_PREFIX, v);
        }
    }
}

/// Removes every header whose (lower-case) name `matches`. One pass over the few names
/// present; nothing is allocated when none matches, the common request.
pub fn remove_matching(h: &mut HeaderMap, matches: fn(&str) -> bool) {
    if !h.keys().any(|k| matches(k.as_str())) {
        return;
    }
    let names: Vec<HeaderName> = h.keys().filter(|k| matches(k.as_str())).cloned().collect();
    for n in names {
        h.remove(n);
    }
}

/// Every `Forwarded`, `X-Real-IP` and `X-Forwarded-*` header, not only those the gateway sets:
/// back ends also honour `X-Forwarded-Server`, `-Uri`, `-Ssl`, `-Scheme`, and an untrusted
/// client must not be able to set any of them.
fn is_client_forwarded(name: &str) -> bool {
    name.starts_with("x-forwarded-") || name == "forwarded" || name == "x-real-ip"
}

/// A header value from text the gateway did not write itself; `None` if it isn't one.
fn value(s: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(s).ok()
}

/// The client address as a header value.
fn ip_value(ip: IpAddr) -> HeaderValue {
    let mut s = String::with_capacity(15);
    push_ip(&mut s, ip);
    HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static("unknown"))
}

/// Appends the address' text. IPv4, the common case, skips `fmt` (it was the largest single
/// cost of the forwarded headers in the load profile).
pub fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{v6}");
        }
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

    fn req(headers: &[(&str, &str)]) -> HeaderMap {
        let mut r = HeaderMap::new();
        for (k, v) in headers {
            r.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        r
    }

    fn get<'a>(r: &'a HeaderMap, k: &str) -> Option<&'a str> {
        r.get(k).and_then(|v| v.to_str().ok())
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
        assert_eq!(r.get_all("x-forwarded-for").iter().count(), 1);
    }

    /// Found by the `forwarded_headers` fuzz target: `X-Forwarded-Server: x` from an
    /// untrusted client reached the upstream (only the headers the gateway sets were replaced).
    #[test]
    fn untrusted_peer_other_x_forwarded_headers_are_removed() {
        let mut r = req(&[
            ("X-Forwarded-Server", "x"),
            ("x-forwarded-uri", "/admin"),
            ("X-Forwarded-Ssl", "on"),
            ("X-Forwarded-Scheme", "https"),
            ("X-Custom", "kept"),
        ]);
        let d = Downstream {
            client_ip: None,
            trusted: false,
            proto: "https",
            host: None,
            port: 8443,
        };
        apply(&mut r, &d, None);
        for h in [
            "x-forwarded-server",
            "x-forwarded-uri",
            "x-forwarded-ssl",
            "x-forwarded-scheme",
            "x-forwarded-for",
            "x-real-ip",
            "x-forwarded-host",
        ] {
            assert_eq!(get(&r, h), None, "{h}");
        }
        assert_eq!(get(&r, "x-custom"), Some("kept"));
        assert_eq!(get(&r, "x-forwarded-proto"), Some("https"));
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
    fn client_addresses_are_written_exactly() {
        for ip in [
            "0.0.0.0",
            "1.2.3.4",
            "10.20.30.40",
            "100.200.255.9",
            "255.255.255.255",
            "::1",
            "2001:db8::7",
        ] {
            let v = ip_value(ip.parse().unwrap());
            assert_eq!(v.to_str().unwrap(), ip);
        }
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
