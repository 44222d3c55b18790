//! "Why am I forbidden?": the whole decision for one request, step by step, for
//! `portcullis explain` (CLI) and `POST /admin/explain` (JSON). Nothing is sent upstream.

use std::fmt;
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
    pub authz: Option<AuthzExplanation>,
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
    let has_token = q.token.as_deref().is_some_and(|t| !t.trim().is_empty());
    let principal = match route.auth {
        AuthMode::Public => {
            out.allowed = true;
            out.status = 0;
            out.reason = format!("route \"{}\" is public: no token needed", route.name);
            return out;
        }
        AuthMode::SessionOrJwt if has_token => bearer(snap, q, &mut out),
        AuthMode::Jwt => bearer(snap, q, &mut out),
        AuthMode::Session | AuthMode::SessionOrJwt => session(snap, q, &mut out),
    };
    let Some(principal) = principal else {
        return out;
    };
    let a = snap
        .policies
        .explain(&route.name, method.as_str(), &principal);
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
        if let Some(a) = &self.authz {
            writeln!(f, "--- authorization")?;
            // The authorization block ends without a newline; the printed answer must.
            writeln!(f, "{a}")?;
        }
        Ok(())
    }
}
