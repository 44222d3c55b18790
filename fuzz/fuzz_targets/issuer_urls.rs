//! The issuer's base URLs and client address from request headers (`urls::bases`,
//! `urls::client_ip`). No panic; the URLs it builds from `Host` / `X-Forwarded-*` are
//! `http(s)://<host>/auth` URLs with nothing smuggled in (no path, query, userinfo, fragment).

#![no_main]

use libfuzzer_sys::fuzz_target;
use http::HeaderMap;
use portcullis_issuer::urls::{Listener, bases, client_ip};

/// The issuer's frontend and backchannel base URLs for a request.
fn issuer_bases(frontend_url: Option<&str>, headers: &HeaderMap, internal: bool) -> (String, String) {
    let listener = if internal {
        Listener::Internal
    } else {
        Listener::Public
    };
    let b = bases(frontend_url, headers, listener);
    (b.frontend, b.backchannel)
}

fuzz_target!(|data: &[u8]| {
    let headers = portcullis_fuzz::header_map(data);
    let _ = client_ip(None, &headers);
    for internal in [false, true] {
        let (frontend, backchannel) = issuer_bases(None, &headers, internal);
        for u in [&frontend, &backchannel] {
            assert!(u.ends_with("/auth"), "{u:?}");
            let parsed = url::Url::parse(u);
            if let Ok(p) = parsed {
                assert!(matches!(p.scheme(), "http" | "https"), "{u:?}");
                assert!(
                    p.username().is_empty() && p.password().is_none(),
                    "{u:?}: userinfo"
                );
                assert!(p.query().is_none() && p.fragment().is_none(), "{u:?}");
                assert_eq!(p.path(), "/auth", "{u:?}: path");
            }
        }
    }
});
