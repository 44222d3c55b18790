//! Identity headers for upstreams on `jwt` routes: who the token stands for, set by the gateway
//! only (client-sent copies are removed before these are set).

use http::{HeaderMap, HeaderValue};

use super::guard::IDENTITY_HEADERS;
use crate::authn::Principal;
use crate::authz::PolicySet;

/// Sets `X-Auth-Request-User`, `-Email`, `-Groups` and `-Roles` from the principal; a header
/// whose value is unknown (or not a valid header value) is left out.
pub fn set_headers(req: &mut HeaderMap, p: &Principal, policies: &PolicySet) {
    let [user, email, groups, roles] = &IDENTITY_HEADERS;
    set(req, user, p.user());
    if let Some(e) = &p.email {
        set(req, email, e);
    }
    if !p.groups.is_empty() {
        set(req, groups, &p.groups.join(","));
    }
    let names = policies.role_names(p);
    if !names.is_empty() {
        set(req, roles, &names.join(","));
    }
}

fn set(req: &mut HeaderMap, name: &http::HeaderName, value: &str) {
    // Claim values are attacker-influenced: no CR/LF or other control bytes upstream.
    if value.bytes().all(|b| b >= 0x20 && b != 0x7f)
        && let Ok(v) = HeaderValue::from_str(value)
    {
        req.insert(name.clone(), v);
    }
}
