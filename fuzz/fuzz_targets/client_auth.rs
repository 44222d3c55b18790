//! Client credentials and cookies from request headers: `client_secret_basic`
//! (`Authorization: Basic`, RFC 6749 §2.3.1) and the issuer's cookie lookup. No panic; decoded
//! credentials round-trip through the encoding a client would use.

#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use portcullis_issuer::client_auth::basic_credentials;
use portcullis_issuer::login::cookie;

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fuzz_target!(|data: &[u8]| {
    let headers = portcullis_fuzz::header_map(data);
    let _ = basic_credentials(&headers);
    for name in ["PORTCULLIS_SESSION", "PORTCULLIS_CSRF", ""] {
        if let Some(v) = cookie(&headers, name) {
            assert!(!v.contains(';'), "cookie value {v:?} spans pairs");
        }
    }

    // The raw bytes as one Authorization value, and as the credentials a client encodes.
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(data) {
        h.insert(header::AUTHORIZATION, v);
        let _ = basic_credentials(&h);
    }
    let text = String::from_utf8_lossy(data);
    let (id, secret) = text.split_once('\u{0}').unwrap_or((&text, ""));
    let encoded = STANDARD.encode(format!("{}:{}", form_encode(id), form_encode(secret)));
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("Basic {encoded}")) {
        h.insert(header::AUTHORIZATION, v);
        let got = basic_credentials(&h)
            .unwrap_or_else(|e| panic!("{id:?}:{secret:?}: {}", e.description()));
        assert_eq!(got, Some((id.to_string(), secret.to_string())));
    }
});
