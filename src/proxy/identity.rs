//! Identity headers for upstreams on `jwt` routes: who the token stands for, set by the gateway
//! only (client-sent copies are removed before these are set).

use http::{HeaderMap, HeaderValue};

use super::guard::IDENTITY_HEADERS;
use crate::authz::Held;

/// Sets `X-Auth-Request-User`, `-Email`, `-Groups` and `-Roles` from what the principal holds
/// (derived once per principal, see `authz::Held`); a header whose value is unknown or not a
/// valid header value is left out.
pub fn set_headers(req: &mut HeaderMap, held: &Held) {
    for (name, value) in IDENTITY_HEADERS.iter().zip(&held.identity) {
        if let Some(v) = value {
            req.insert(name.clone(), v.clone());
        }
    }
}

/// `value` as an identity header value, or `None` when it has bytes no upstream should see.
pub fn header_value(value: &str) -> Option<HeaderValue> {
    // Claim values are attacker-influenced: no CR/LF or other control bytes upstream.
    if value.bytes().all(|b| b >= 0x20 && b != 0x7f) {
        HeaderValue::from_str(value).ok()
    } else {
        None
    }
}
