//! Identity headers for upstreams on authenticated routes, all in one place: who the token
//! stands for, set by the gateway only (client-sent copies are removed by the guard before
//! these are set), derived once per principal and kept in its memo with its RBAC standing.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use portcullis_authz::{Decision, Held, PolicySet};
use portcullis_core::identity::Principal;

/// Identity headers only the gateway may set (the guard removes the whole `x-auth-request-`
/// family from clients, in any letter case).
pub const IDENTITY_HEADERS: [HeaderName; 4] = [
    HeaderName::from_static("x-auth-request-user"),
    HeaderName::from_static("x-auth-request-email"),
    HeaderName::from_static("x-auth-request-groups"),
    HeaderName::from_static("x-auth-request-roles"),
];

/// Where `X-Auth-Request-Groups` is in [`Standing::headers`] (the order of `IDENTITY_HEADERS`).
const GROUPS: usize = 2;

/// A principal's standing under one policy set, with the identity header values it earns.
/// Derived on its first request and kept in the principal's memo for as long as the
/// verified-token cache keeps it, so a repeat token costs no role lookup, sort or allocation.
#[derive(Debug)]
pub struct Standing {
    pub held: Held,
    /// `X-Auth-Request-User`, `-Email`, `-Groups` and `-Roles`, each when known and a valid
    /// header value.
    pub headers: [Option<HeaderValue>; 4],
}

impl Standing {
    /// The principal's standing under `policies`, from its memo when `policies` derived it
    /// (another set, after a reload, derives afresh and does not overwrite the memo).
    pub fn of(policies: &PolicySet, principal: &Principal) -> Arc<Standing> {
        if let Some(s) = principal.memo.get::<Standing>()
            && s.held.derived_by(policies)
        {
            return s;
        }
        let held = policies.held(principal);
        let joined = |list: String| (!list.is_empty()).then_some(list);
        let standing = Arc::new(Standing {
            headers: [
                header_value(principal.user()),
                principal.email.as_deref().and_then(header_value),
                joined(principal.groups.join(",")).and_then(|g| header_value(&g)),
                joined(held.roles.join(",")).and_then(|r| header_value(&r)),
            ],
            held,
        });
        // Principals are cached per snapshot, so the first set to see one is the set that keeps
        // asking; another set (explain, a test) derives afresh each time.
        principal.memo.set(Arc::clone(&standing));
        standing
    }

    /// Whether this standing lets its principal send `method` to `route`.
    pub fn decide(&self, policies: &PolicySet, route: &str, method: &str) -> Decision {
        policies.decide_held(route, method, &self.held)
    }

    /// The groups as `X-Auth-Request-Groups` carries them (comma-joined), when it does.
    pub fn groups_header(&self) -> Option<&str> {
        self.headers[GROUPS].as_ref().and_then(|v| v.to_str().ok())
    }

    /// Sets `X-Auth-Request-User`, `-Email`, `-Groups` and `-Roles` on an upstream request; a
    /// header whose value is unknown or not a valid header value is left out.
    pub fn set_headers(&self, req: &mut HeaderMap) {
        for (name, value) in IDENTITY_HEADERS.iter().zip(&self.headers) {
            if let Some(v) = value {
                req.insert(name.clone(), v.clone());
            }
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

#[cfg(test)]
mod tests;
