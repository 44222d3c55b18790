//! The upstream connection of a request (DESIGN §11): the peer Pingora connects to, with the
//! route's timeouts, its protocol (HTTP/1.1, HTTP/2 over TLS, cleartext HTTP/2) and its TLS
//! settings. `https://` upstreams are always verified, against the route's `upstream_tls.ca`
//! or else the system roots, and for the route's `server_name` or else the URL's host: nothing
//! here turns verification off.

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use pingora::prelude::HttpPeer;
use pingora::protocols::ALPN;

use portcullis_core::route::{self, Route, Upstream, UpstreamProtocol};

/// Concurrent streams the gateway opens on one HTTP/2 upstream connection.
const H2_STREAMS_PER_CONNECTION: usize = 100;

/// The peer for one attempt at `up`, a server of `route`.
pub fn peer(route: &Route, up: &Upstream, has_body: bool, idle: Duration) -> HttpPeer {
    let material = crate::tls::upstream::material(route);
    let sni = match material.as_ref().and_then(|m| m.server_name.as_ref()) {
        Some(name) if up.tls => name.clone(),
        _ => up.sni.clone(),
    };
    let mut peer = HttpPeer::new(up.addr, up.tls, sni);
    let o = &mut peer.options;
    o.connection_timeout = Some(route.timeout.min(route::CONNECT_TIMEOUT));
    o.read_timeout = Some(route.timeout);
    // Without a body the only write is the request head, which the socket buffer takes
    // at once: a write timer per request would cost more than it could ever catch.
    if has_body {
        o.write_timeout = Some(route.timeout);
    }
    o.idle_timeout = Some(idle);
    // `headers::edit_response` rebuilds the response's headers without the names' case:
    // a map of it built per response would be thrown away (patched pingora-core).
    o.discard_h1_header_case = true;
    // Pingora's defaults, stated: a certificate that does not verify fails the connection.
    o.verify_cert = true;
    o.verify_hostname = true;
    if route.upstream_protocol != UpstreamProtocol::Http1 {
        // Over TLS ALPN offers only h2; over cleartext Pingora speaks h2 with prior knowledge.
        o.alpn = ALPN::H2;
        o.max_h2_streams = H2_STREAMS_PER_CONNECTION;
    }
    if let Some(m) = material {
        o.ca = m.ca.clone();
        peer.client_cert_key = m.client.clone();
        peer.group_key = m.group_key;
    }
    peer
}

/// Whether the request's `TE: trailers` must reach an HTTP/2 upstream: gRPC servers may
/// refuse a request without it, and it is the one `TE` value HTTP/2 allows. (`TE` is
/// hop-by-hop, so the gateway drops it otherwise.)
pub fn wants_te_trailers(route: &Route, request: &HeaderMap) -> bool {
    route.upstream_protocol != UpstreamProtocol::Http1
        && request
            .get_all(http::header::TE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
}

/// Puts `TE: trailers` back after the hop-by-hop headers were removed.
pub fn restore_te_trailers(h: &mut HeaderMap) {
    h.insert(http::header::TE, HeaderValue::from_static("trailers"));
}
