//! Which base URL a request sees: the configured frontend URL, else the `X-Forwarded-*` view,
//! and on the internal listener the request's own host for backchannel endpoints; and the
//! client's address. Public for the gateway (`Listener`, `ClientIp`) and the `issuer_urls`
//! fuzz target.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, header};
use portcullis_core::forwarded::{
    X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PORT, X_FORWARDED_PROTO,
};

/// The client address, when the gateway knows it (request extension). Without it the issuer
/// uses the last `X-Forwarded-For` hop, which the gateway itself appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Set by the gateway as a request extension: which listener the request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Listener {
    #[default]
    Public,
    Internal,
}

/// Base URLs (ending in `/auth`, no trailing slash) for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bases {
    /// `iss` and browser-facing endpoints.
    pub frontend: String,
    /// Token, keys, userinfo and introspection endpoints.
    pub backchannel: String,
}

impl Bases {
    /// The realm's issuer URL (`iss`): `{frontend}/realms/{realm}`.
    pub fn realm(&self, realm: &str) -> String {
        format!("{}/realms/{realm}", self.frontend)
    }

    /// The realm's base URL for backchannel endpoints.
    pub fn backchannel_realm(&self, realm: &str) -> String {
        format!("{}/realms/{realm}", self.backchannel)
    }
}

/// The listener a request came in on (the gateway's extension; public when absent).
pub(crate) fn listener(ext: Option<axum::Extension<Listener>>) -> Listener {
    ext.map(|e| e.0).unwrap_or_default()
}

/// The base URLs of a request: `frontend_url` when configured, else built from `Host` and
/// `X-Forwarded-Proto|Host|Port` (only well-formed hosts, else `localhost`); on the internal
/// listener the backchannel uses the request's own `Host`.
pub fn bases(frontend_url: Option<&str>, headers: &HeaderMap, listener: Listener) -> Bases {
    let header = |name: &HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            // A proxy chain appends; the first value is the client-facing one.
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let own_host = header(&header::HOST)
        .filter(|h| valid_host(h))
        .unwrap_or("localhost");
    let frontend = match frontend_url {
        Some(f) => f.trim_end_matches('/').to_string(),
        None => {
            let proto = match header(&X_FORWARDED_PROTO) {
                Some(p) if p.eq_ignore_ascii_case("https") => "https",
                _ => "http",
            };
            let host = header(&X_FORWARDED_HOST)
                .filter(|h| valid_host(h))
                .unwrap_or(own_host);
            let port = header(&X_FORWARDED_PORT).filter(|p| p.bytes().all(|b| b.is_ascii_digit()));
            let has_port = host.rsplit_once(':').is_some_and(|(_, p)| !p.contains(']'));
            let default_port =
                matches!((proto, port), ("https", Some("443")) | ("http", Some("80")));
            match port {
                Some(p) if !has_port && !default_port => format!("{proto}://{host}:{p}/auth"),
                _ => format!("{proto}://{host}/auth"),
            }
        }
    };
    let backchannel = match listener {
        // Keycloak's dynamic backchannel: services on the internal network reach the issuer
        // at the address they used, never through the public frontend.
        Listener::Internal => format!("http://{own_host}/auth"),
        Listener::Public => frontend.clone(),
    };
    Bases {
        frontend,
        backchannel,
    }
}

/// The client's address: the gateway's `ClientIp` extension, else the last `X-Forwarded-For`
/// hop (the one the gateway itself appended), else unknown.
pub fn client_ip(ext: Option<ClientIp>, headers: &HeaderMap) -> Option<String> {
    if let Some(ip) = ext {
        return Some(ip.0.to_string());
    }
    headers
        .get(&X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| ip.to_string())
}

/// Host header values we are willing to echo into documents: `name`, `name:port`, `[v6]:port`.
/// `host[:port]` or `[ipv6][:port]`, nothing else: the value becomes part of URLs the issuer
/// advertises (`iss`, discovery), which must parse (`a:b:c` passed a character check alone).
fn valid_host(h: &str) -> bool {
    if h.is_empty()
        || h.len() > 255
        || !h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    {
        return false;
    }
    let (name_ok, port) = match h.strip_prefix('[') {
        Some(rest) => {
            let Some((v6, after)) = rest.split_once(']') else {
                return false;
            };
            let port = match after {
                "" => None,
                a => match a.strip_prefix(':') {
                    Some(p) => Some(p),
                    None => return false,
                },
            };
            (v6.parse::<std::net::Ipv6Addr>().is_ok(), port)
        }
        None => {
            let (name, port) = match h.split_once(':') {
                Some((n, p)) => (n, Some(p)),
                None => (h, None),
            };
            (!name.is_empty() && !name.contains([':', '[', ']']), port)
        }
    };
    name_ok
        && port.is_none_or(|p| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `issuer_urls` fuzz target: `a:b:c` passed and made a base URL that does not
    /// parse.
    #[test]
    fn only_host_and_port_shapes_are_hosts() {
        for ok in [
            "localhost",
            "example.com:8443",
            "10.0.0.1",
            "[::1]",
            "[::1]:8443",
        ] {
            assert!(valid_host(ok), "{ok}");
        }
        for bad in [
            "a:b:c",
            "host:",
            ":80",
            "[::1",
            "::1",
            "[zz]",
            "[::1]x",
            "host:99999",
            "ho]st",
        ] {
            assert!(!valid_host(bad), "{bad}");
        }
        let b = bases(None, &h(&[("host", "a:b:c")]), Listener::Public);
        assert_eq!(b.frontend, "http://localhost/auth");
    }

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn frontend_wins_and_internal_uses_own_host() {
        let b = bases(
            Some("https://id.example.com/auth/"),
            &h(&[("host", "127.0.0.1:8081")]),
            Listener::Internal,
        );
        assert_eq!(b.frontend, "https://id.example.com/auth");
        assert_eq!(b.backchannel, "http://127.0.0.1:8081/auth");
        assert_eq!(b.realm("r"), "https://id.example.com/auth/realms/r");
    }

    #[test]
    fn forwarded_headers_when_no_frontend() {
        let b = bases(
            None,
            &h(&[
                ("host", "10.0.0.1:8443"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "gw.example.com"),
                ("x-forwarded-port", "8443"),
            ]),
            Listener::Public,
        );
        assert_eq!(b.frontend, "https://gw.example.com:8443/auth");
        assert_eq!(b.backchannel, b.frontend);
        let b = bases(
            None,
            &h(&[
                ("host", "a\"b"),
                ("x-forwarded-port", "443"),
                ("x-forwarded-proto", "https"),
            ]),
            Listener::Public,
        );
        assert_eq!(b.frontend, "https://localhost/auth");
        assert_eq!(
            bases(None, &h(&[("host", "x:1")]), Listener::Public).frontend,
            "http://x:1/auth"
        );
    }
}
