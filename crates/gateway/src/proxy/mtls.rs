//! Client certificates on the request path (DESIGN §11): `auth = "mtls"` routes (the verified
//! certificate's identity is the principal, authorized by `[principals]` through the same
//! RBAC), `require_client_cert` on `jwt` routes, and `X-Forwarded-Client-Cert` to upstreams
//! (client-sent copies always removed). The certificate was identified once, at the handshake
//! (`tls::server`); a request only looks it up.

use std::borrow::Cow;
use std::sync::Arc;

use http::HeaderMap;
use pingora::proxy::Session;

use super::Ctx;
use super::guard::Refusal;
use crate::snapshot::Snapshot;
use crate::tls::ClientCert;
use portcullis_core::metrics::metrics;
use portcullis_core::route::{AuthMode, Route};

/// Envoy's header for the client certificate, set by the gateway only.
pub use portcullis_core::forwarded::X_FORWARDED_CLIENT_CERT;

/// The `reason` of a refusal for a missing certificate (audit line, metric label).
pub const MISSING: &str = "client_certificate_missing";

/// The verified client certificate of the request's connection, when it presented one.
pub fn client_cert(session: &Session) -> Option<Arc<ClientCert>> {
    let ssl = session.digest()?.ssl_digest.as_ref()?;
    ssl.extension.get::<Arc<ClientCert>>().cloned()
}

/// For a route that needs a client certificate: refuses a request without one (401) and, on an
/// `mtls` route, authorizes the certificate's principal (403 when no rule allows).
pub(super) fn admit(
    ctx: &mut Ctx,
    snap: &Snapshot,
    route: &Route,
    method: &str,
) -> Result<(), Refusal> {
    let Some(cert) = ctx.client_cert.clone() else {
        metrics().authn_failures.with_label_values(&[MISSING]).inc();
        return Err(refusal(
            401,
            "client_certificate_required",
            MISSING,
            "this route needs a verified client certificate",
        ));
    };
    if route.auth != AuthMode::Mtls {
        // `require_client_cert` on a jwt route: the token decides who it is.
        return Ok(());
    }
    let standing = cert.standing(&snap.policies);
    let decision = standing.decide(&snap.policies, &route.name, method);
    ctx.principal = Some(Arc::clone(&cert.principal));
    ctx.standing = Some(standing);
    if !decision.allowed {
        route.metrics.get(&route.name).authz_deny.inc();
        return Err(refusal(
            403,
            "insufficient_scope",
            decision.reason,
            "the client certificate does not grant access to this resource",
        ));
    }
    route.metrics.get(&route.name).authz_allow.inc();
    Ok(())
}

fn refusal(
    status: u16,
    error: &'static str,
    reason: &'static str,
    description: &'static str,
) -> Refusal {
    Refusal {
        status,
        error,
        description: Cow::Borrowed(description),
        reason,
        guard_label: None,
        // No HTTP authentication scheme names client certificates.
        www_authenticate: None,
    }
}

/// Sets the gateway's own `X-Forwarded-Client-Cert` for a connection with a verified
/// certificate. A client-sent one is gone already: `guard::strip_identity_headers` runs first.
pub fn forward(h: &mut HeaderMap, cert: Option<&ClientCert>) {
    if let Some(v) = cert.and_then(|c| c.xfcc.clone()) {
        h.insert(X_FORWARDED_CLIENT_CERT, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_copies_are_removed_even_without_a_certificate() {
        let mut h = HeaderMap::new();
        h.append(X_FORWARDED_CLIENT_CERT, "Hash=forged".parse().unwrap());
        h.append(
            "X-Forwarded-Client-Cert",
            "URI=spiffe://evil".parse().unwrap(),
        );
        h.append("x-kept", "1".parse().unwrap());
        // The order `upstream_request_filter` runs them in.
        super::super::guard::strip_identity_headers(&mut h);
        forward(&mut h, None);
        assert!(h.get(&X_FORWARDED_CLIENT_CERT).is_none());
        assert_eq!(h.len(), 1);
    }
}
