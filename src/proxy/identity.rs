//! Identity headers for upstreams on `jwt` routes: who the token stands for, set by the gateway
//! only (client-sent copies are removed before these are set).

use pingora::http::RequestHeader;

use super::guard::IDENTITY_HEADERS;
use crate::authn::Principal;
use crate::authz::PolicySet;

/// Sets `X-Auth-Request-User`, `-Email`, `-Groups` and `-Roles` from the principal; a header
/// whose value is unknown (or not a valid header value) is left out.
pub fn set_headers(
    req: &mut RequestHeader,
    p: &Principal,
    policies: &PolicySet,
) -> pingora::Result<()> {
    let [user, email, groups, roles] = &IDENTITY_HEADERS;
    set(req, user, p.user())?;
    if let Some(e) = &p.email {
        set(req, email, e)?;
    }
    if !p.groups.is_empty() {
        set(req, groups, &p.groups.join(","))?;
    }
    let names = policies.role_names(p);
    if !names.is_empty() {
        set(req, roles, &names.join(","))?;
    }
    Ok(())
}

fn set(req: &mut RequestHeader, name: &http::HeaderName, value: &str) -> pingora::Result<()> {
    // Claim values are attacker-influenced: no CR/LF or other control bytes upstream.
    if value.bytes().all(|b| b >= 0x20 && b != 0x7f) {
        req.insert_header(name.clone(), value)?;
    }
    Ok(())
}
