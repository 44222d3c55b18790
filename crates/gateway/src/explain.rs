//! "Why am I forbidden?": the whole decision for one request, step by step, for
//! `portcullis explain` (CLI) and `POST /admin/explain` (JSON). Nothing is sent upstream.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::session::explain::SessionExplanation;
use crate::snapshot::Snapshot;
use portcullis_authn::{Principal, TokenExplanation};
use portcullis_authz::AuthzExplanation;
use portcullis_core::normalize::{normalize_path, under_prefix};
use portcullis_core::route::AuthMode;

/// The route a request matched, as `explain` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RouteView {
    pub name: String,
    pub prefix: String,
    pub host: Option<String>,
    pub auth: &'static str,
    pub defined_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub allowed: bool,
    /// The status the gateway would answer with when it refuses (0 when allowed).
    pub status: u16,
    pub reason: String,
    pub method: String,
    pub path: String,
    pub normalized_path: Option<String>,
    pub host: Option<String>,
    pub route: Option<RouteView>,
    pub token: Option<TokenExplanation>,
    /// The session cookie's story, on session routes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionExplanation>,
    /// The client certificate given (`--cert`), as the gateway reads it.
    pub certificate: Option<CertView>,
    pub authz: Option<AuthzExplanation>,
}

/// A client certificate as `explain` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CertView {
    /// The principal: URI SAN, else first DNS SAN, else subject CN.
    pub identity: String,
    pub source: crate::tls::client_cert::IdentitySource,
    pub subject: String,
    pub sha256: String,
    pub not_after: i64,
    /// `X-Forwarded-Client-Cert` as the upstream would get it.
    pub xfcc: Option<String>,
    /// Whether it verifies against `[tls] client_ca` (`None`: not checked, no CA given).
    pub verified: Option<bool>,
    pub verify_error: Option<String>,
}

/// What to explain.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Query {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    /// The session cookie (its value, `name=value`, or a whole `Cookie` header).
    #[serde(default)]
    pub cookie: Option<String>,
    /// A client certificate chain in PEM (leaf first), as the connection would present it.
    #[serde(default)]
    pub cert: Option<String>,
}

impl Explanation {
    fn refuse(q: &Query, status: u16, reason: impl Into<String>) -> Self {
        Explanation {
            allowed: false,
            status,
            reason: reason.into(),
            method: q.method.clone(),
            path: q.path.clone(),
            normalized_path: None,
            host: q.host.clone(),
            route: None,
            token: None,
            session: None,
            certificate: None,
            authz: None,
        }
    }
}

fn principal_of(t: &TokenExplanation) -> Option<Principal> {
    let p = t.principal.as_ref()?;
    Some(Principal {
        issuer: Arc::from(p.issuer.as_str()),
        sub: p.sub.clone(),
        username: p.username.clone(),
        email: p.email.clone(),
        groups: p.groups.clone(),
        roles: p.roles.clone(),
        azp: p.azp.clone(),
        exp: p.exp,
        memo: Default::default(),
    })
}

/// Runs the request's checks against a snapshot, in the order the proxy runs them.
pub fn explain(snap: &Snapshot, q: &Query) -> Explanation {
    explain_with_ca(snap, q, None)
}

/// [`explain`], checking a given certificate against the listener's client CA (`[tls]
/// client_ca`) as a handshake would.
pub fn explain_with_ca(snap: &Snapshot, q: &Query, client_ca: Option<&Path>) -> Explanation {
    let Ok(method) = http::Method::from_bytes(q.method.to_ascii_uppercase().as_bytes()) else {
        return Explanation::refuse(q, 400, format!("\"{}\" is not an HTTP method", q.method));
    };
    let raw_path = q.path.split('?').next().unwrap_or("");
    let path = match normalize_path(raw_path) {
        Ok(p) => p.into_owned(),
        Err(e) => return Explanation::refuse(q, 400, format!("guard: {}", e.description())),
    };
    let mut out = Explanation::refuse(q, 404, "");
    out.normalized_path = Some(path.clone());
    if let Some(b) = snap
        .blocked_prefixes
        .iter()
        .find(|b| under_prefix(&path, b))
    {
        out.reason =
            format!("guard: {path} is under the blocked prefix {b} (never served publicly)");
        return out;
    }
    let Some(route) = snap.routes.find(q.host.as_deref(), &path) else {
        out.reason = format!("no route matches {path}");
        return out;
    };
    out.route = Some(RouteView {
        name: route.name.to_string(),
        prefix: route.prefix.clone(),
        host: route.host.clone(),
        auth: route.auth.as_str(),
        defined_at: route.defined_at.clone(),
    });
    let cert = q.cert.as_deref().map(|pem| certificate(pem, client_ca));
    let needs_cert = route.auth == AuthMode::Mtls || route.require_client_cert;
    let principal_of_cert = cert
        .as_ref()
        .and_then(|c| c.as_ref().ok())
        .map(|(_, p)| p.clone());
    let cert_error = cert.as_ref().and_then(|c| c.as_ref().err()).cloned();
    out.certificate = cert.and_then(Result::ok).map(|(v, _)| v);
    if needs_cert {
        let refused = match (&cert_error, &out.certificate) {
            (Some(e), _) => Some(format!("401: the certificate is unusable: {e}")),
            (None, None) => {
                Some("401: route needs a verified client certificate and none was given".into())
            }
            (None, Some(c)) if c.verified == Some(false) => Some(format!(
                "401: the certificate does not verify against tls.client_ca: {}",
                c.verify_error.as_deref().unwrap_or("")
            )),
            _ => None,
        };
        if let Some(reason) = refused {
            out.status = 401;
            out.reason = reason;
            return out;
        }
    }
    let has_token = q.token.as_deref().is_some_and(|t| !t.trim().is_empty());
    let principal = match route.auth {
        AuthMode::Public => {
            out.allowed = true;
            out.status = 0;
            out.reason = format!("route \"{}\" is public: no token needed", route.name);
            return out;
        }
        AuthMode::Mtls => principal_of_cert,
        AuthMode::SessionOrJwt if has_token => bearer(snap, q, &mut out),
        AuthMode::Jwt => bearer(snap, q, &mut out),
        AuthMode::Session | AuthMode::SessionOrJwt => session(snap, q, &mut out),
    };
    let Some(principal) = principal else {
        return out;
    };
    authorize(snap, &route.name, method.as_str(), &principal, out)
}

fn authorize(
    snap: &Snapshot,
    route: &str,
    method: &str,
    principal: &Principal,
    mut out: Explanation,
) -> Explanation {
    let a = snap.policies.explain(route, method, principal);
    out.allowed = a.allowed;
    out.status = if a.allowed { 0 } else { 403 };
    out.reason = a.summary.clone();
    out.authz = Some(a);
    out
}

/// The bearer token's checks; its principal, or `None` with the 401 in `out`.
fn bearer(snap: &Snapshot, q: &Query, out: &mut Explanation) -> Option<Principal> {
    let Some(token) = q.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
        out.status = 401;
        out.reason = "401: route needs a bearer token and none was given".to_string();
        return None;
    };
    let token = token.strip_prefix("Bearer ").unwrap_or(token);
    let t = snap.authn.explain_token(token);
    let principal = principal_of(&t);
    out.token = Some(t);
    if principal.is_none() {
        out.status = 401;
        let why = out
            .token
            .as_ref()
            .and_then(|t| t.error)
            .map_or("token refused".to_string(), |e| {
                format!("{} ({})", e.description, e.reason)
            });
        out.reason = format!("401: {why}");
    }
    principal
}

/// The session cookie's story; its principal, or `None` with the 401 (or what can't be
/// judged here) in `out`.
fn session(snap: &Snapshot, q: &Query, out: &mut Explanation) -> Option<Principal> {
    out.status = 401;
    let Some(cfg) = snap.session.as_deref() else {
        out.reason = "401: the route needs a session and there is no [session]".to_string();
        return None;
    };
    let Some(cookie) = q.cookie.as_deref().map(str::trim).filter(|c| !c.is_empty()) else {
        out.reason =
            "401: route needs a session: give its cookie (--cookie), or a token on session_or_jwt routes"
                .to_string();
        return None;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (e, principal) = crate::session::explain::explain(cfg, cookie, now);
    out.reason = match (&e.problem, &e.note) {
        (Some(p), _) => format!("401: no session: {p}"),
        (None, Some(n)) => {
            out.status = 0;
            format!("a live session; {n}, so the policy is not checked here")
        }
        (None, None) => String::new(),
    };
    out.session = Some(e);
    principal.map(|p| (*p).clone())
}

/// The certificate of a PEM chain as the gateway reads it, with its principal, verified against
/// `client_ca` when one is given.
fn certificate(pem: &str, client_ca: Option<&Path>) -> Result<(CertView, Principal), String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not a PEM certificate chain: {e}"))?;
    let leaf = chain.first().ok_or("no certificate in the PEM text")?;
    let c = crate::tls::ClientCert::from_der(leaf)?;
    let verify = client_ca.map(|ca| crate::tls::server::verify_chain(ca, &chain));
    let view = CertView {
        identity: c.identity().to_string(),
        source: c.source,
        subject: c.subject.clone(),
        sha256: c.sha256.clone(),
        not_after: c.not_after,
        xfcc: c
            .xfcc
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        verified: verify.as_ref().map(Result::is_ok),
        verify_error: verify.and_then(Result::err),
    };
    Ok((view, (*c.principal).clone()))
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.allowed { "ALLOW" } else { "DENY" };
        writeln!(f, "{verdict} {} {}", self.method, self.path)?;
        writeln!(f, "  reason: {}", self.reason)?;
        if let Some(n) = &self.normalized_path
            && n != &self.path
        {
            writeln!(f, "  normalized path: {n}")?;
        }
        match &self.route {
            Some(r) => writeln!(
                f,
                "  route: \"{}\" (prefix {}{}, auth={}) defined at {}",
                r.name,
                r.prefix,
                r.host
                    .as_ref()
                    .map(|h| format!(", host {h}"))
                    .unwrap_or_default(),
                r.auth,
                r.defined_at
            )?,
            None => writeln!(f, "  route: none")?,
        }
        if let Some(t) = &self.token {
            writeln!(f, "--- token")?;
            write!(f, "{t}")?;
        }
        if let Some(s) = &self.session {
            writeln!(f, "--- session")?;
            write!(f, "{s}")?;
        }
        if let Some(c) = &self.certificate {
            writeln!(f, "--- client certificate")?;
            writeln!(f, "  identity: {} (from its {:?})", c.identity, c.source)?;
            writeln!(f, "  subject: {}", c.subject)?;
            writeln!(f, "  sha256: {}", c.sha256)?;
            let verified = match (c.verified, &c.verify_error) {
                (Some(true), _) => "yes, against tls.client_ca".to_string(),
                (Some(false), e) => format!("NO: {}", e.as_deref().unwrap_or("")),
                (None, _) => "not checked (no tls.client_ca)".to_string(),
            };
            writeln!(f, "  verified: {verified}")?;
            if let Some(x) = &c.xfcc {
                writeln!(f, "  X-Forwarded-Client-Cert: {x}")?;
            }
        }
        if let Some(a) = &self.authz {
            writeln!(f, "--- authorization")?;
            // The authorization block ends without a newline; the printed answer must.
            writeln!(f, "{a}")?;
        }
        Ok(())
    }
}
