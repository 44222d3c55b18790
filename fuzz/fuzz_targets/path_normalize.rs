//! Path normalization, the guard's view of a request target, and routing of the result.
//!
//! Properties: normalizing is idempotent; the canonical form starts with `/`, has no `//`, no
//! `.`/`..` segment, no encoded `/`, `\`, NUL or control byte and no escape of an unreserved
//! byte; routing it never panics, a route found lies on a segment boundary of the path, and the
//! target sent upstream parses back as a URI.

#![no_main]

use std::collections::BTreeSet;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pingora::http::RequestHeader;
use portcullis_core::config::{Diagnostics, Guard};
use portcullis_gateway::proxy::guard::normalized_target;
use portcullis_core::normalize::{normalize_path, under_prefix};
use portcullis_core::route::RouteTable;

const ROUTES: &str = r#"
[[route]]
name = "root"
prefix = "/"
upstreams = ["http://127.0.0.1:18001"]

[[route]]
name = "api"
prefix = "/api"
upstreams = ["http://127.0.0.1:18001"]
strip_prefix = true

[[route]]
name = "orders"
prefix = "/api/orders/"
upstreams = ["http://127.0.0.1:18002", "http://127.0.0.1:18003"]
auth = "jwt"

[[route]]
name = "vhost"
prefix = "/api"
host = "admin.example"
upstreams = ["http://127.0.0.1:18004"]
strip_prefix = true

[[route]]
name = "unicode"
prefix = "/caf\u00e9/x"
upstreams = ["http://127.0.0.1:18005"]
"#;

const BLOCKED: &[&str] = &["/auth/admin", "/internal"];

fn table() -> &'static RouteTable {
    static T: OnceLock<RouteTable> = OnceLock::new();
    T.get_or_init(|| {
        let dir = portcullis_fuzz::scratch();
        let file = dir.path().join("routes.toml");
        std::fs::write(&file, ROUTES).unwrap_or_else(|e| panic!("write: {e}"));
        let guard = Guard {
            guarded_ports: BTreeSet::from([9000, 8081]),
            blocked_prefixes: BLOCKED.iter().map(|s| s.to_string()).collect(),
            allow_non_loopback_management: false,
        };
        let mut diags = Diagnostics::default();
        RouteTable::load(&file, &guard, &mut diags)
            .unwrap_or_else(|| panic!("fixture routes refused:\n{diags}"))
    })
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn check_canonical(input: &str, n: &str) {
    assert!(n.starts_with('/'), "{input:?} -> {n:?}: not absolute");
    assert!(!n.contains("//"), "{input:?} -> {n:?}: '//'");
    assert!(
        !n.split('/').any(|s| s == "." || s == ".."),
        "{input:?} -> {n:?}: dot segment"
    );
    assert!(!n.contains('\\'), "{input:?} -> {n:?}: backslash");
    assert!(
        !n.bytes().any(|b| b < 0x20 || b == 0x7f),
        "{input:?} -> {n:?}: control byte"
    );
    let b = n.as_bytes();
    for (i, _) in n.match_indices('%') {
        let (Some(h), Some(l)) = (
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) else {
            panic!("{input:?} -> {n:?}: malformed escape at {i}");
        };
        let v = h * 16 + l;
        assert!(
            !matches!(v, b'/' | b'\\' | 0..=0x1f | 0x7f),
            "{input:?} -> {n:?}: encoded {v:#x}"
        );
        assert!(
            !(v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~')),
            "{input:?} -> {n:?}: escaped unreserved byte {v:#x}"
        );
    }
    let again = normalize_path(n)
        .unwrap_or_else(|e| panic!("{input:?} -> {n:?}: refused on the second pass: {e:?}"));
    assert_eq!(again, n, "{input:?}: normalization is not idempotent");
}

/// `query` is `Some` when `path` came from a parsed request target: then the rebuilt
/// upstream target must parse as a URI too (the proxy answers 400 otherwise).
fn check_routing(path: &str, host: Option<&str>, query: Option<Option<&str>>) {
    let Some(route) = table().find(host, path) else {
        return;
    };
    let trimmed = path.trim_end_matches('/');
    assert!(
        route.prefix == "/"
            || under_prefix(
                if trimmed.is_empty() { "/" } else { trimmed },
                &route.prefix
            ),
        "{path:?} routed to {:?} off a segment boundary",
        route.prefix
    );
    let up = route.upstream_path(path);
    assert!(up.starts_with('/'), "{path:?} -> upstream path {up:?}");
    let Some(query) = query else {
        return;
    };
    let mut target = up.to_string();
    if let Some(q) = query {
        target.push('?');
        target.push_str(q);
    }
    assert!(
        target.parse::<http::Uri>().is_ok(),
        "{path:?}: upstream target {target:?} is not a URI"
    );
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the Host header; the rest is the request target.
    let (host, raw) = match data.split_first() {
        Some((h, rest)) => (
            match h % 4 {
                0 => None,
                1 => Some("admin.example"),
                2 => Some("ADMIN.example:8443"),
                _ => Some("other.example"),
            },
            rest,
        ),
        None => (None, data),
    };

    if let Ok(s) = std::str::from_utf8(raw) {
        if let Ok(n) = normalize_path(s) {
            check_canonical(s, &n);
            check_routing(&n, host, None);
        }
    }

    // As the guard sees it: a request line parsed by Pingora, then `normalized_target`.
    for method in ["GET", "OPTIONS"] {
        let Ok(req) = RequestHeader::build(method, raw, None) else {
            continue;
        };
        for is_h2 in [false, true] {
            if let Ok((n, changed)) = normalized_target(&req, is_h2) {
                check_canonical(req.uri.path(), &n);
                // A rewritten path must be flagged, or the client's original goes upstream.
                assert!(
                    changed || n == req.uri.path(),
                    "{raw:?}: rewrite not flagged"
                );
                check_routing(&n, host, Some(req.uri.query()));
            }
        }
    }
});
