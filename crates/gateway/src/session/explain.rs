//! What a session cookie holds, for `portcullis explain --cookie` and `/admin/explain`: whether
//! it opens with the configured keys, when it was made and last seen, when it ends, and who it
//! stands for. Nothing secret is shown: no token, no session id (only the digest a database
//! row is stored under).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, header};
use serde::Serialize;

use super::state::{Body, Header, SESSION_PURPOSE};
use super::{SessionConfig, cookie, db};
use portcullis_core::identity::Principal;

/// A session cookie, explained.
#[derive(Debug, Clone, Serialize)]
pub struct SessionExplanation {
    /// `cookie` or `database`.
    pub store: &'static str,
    pub signed_in_at: Option<u64>,
    pub last_seen_at: Option<u64>,
    /// When it ends unless used again (idle timeout), and at the latest (max lifetime).
    pub idle_until: Option<u64>,
    pub expires_at: Option<u64>,
    pub revision: Option<u32>,
    /// With `store = "database"`: the row it is kept under.
    pub row_id: Option<String>,
    pub access_token_expires_at: Option<u64>,
    pub issuer: Option<String>,
    pub sub: Option<String>,
    pub user: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    /// Why it is no session; `None` when it is a live one (or can't be judged here).
    pub problem: Option<String>,
    /// What explain could not judge (a database session's row is not read).
    pub note: Option<String>,
}

/// Explains `value` (the cookie's value, `name=value`, or a whole `Cookie` header) at `now`;
/// the principal when it is a live session this process can read.
pub fn explain(
    cfg: &SessionConfig,
    value: &str,
    now: u64,
) -> (SessionExplanation, Option<Arc<Principal>>) {
    let s = &cfg.settings;
    let mut out = SessionExplanation {
        store: if cfg.database.is_some() {
            "database"
        } else {
            "cookie"
        },
        signed_in_at: None,
        last_seen_at: None,
        idle_until: None,
        expires_at: None,
        revision: None,
        row_id: None,
        access_token_expires_at: None,
        issuer: None,
        sub: None,
        user: None,
        email: None,
        groups: Vec::new(),
        roles: Vec::new(),
        problem: None,
        note: None,
    };
    let sealed = sealed_value(value, &s.cookie_name);
    let Some(plain) = sealed.and_then(|v| cfg.keys.open(SESSION_PURPOSE, &v).ok()) else {
        out.problem = Some(format!(
            "the cookie does not open with any of the {} configured keys (tampered, truncated, or sealed with a key no longer listed)",
            cfg.keys.len()
        ));
        return (out, None);
    };
    let Some((head, body)) = Header::decode(&plain) else {
        out.problem = Some("the cookie opens but is not a session of this version".into());
        return (out, None);
    };
    let (idle, max) = (s.idle_timeout.as_secs(), s.max_lifetime.as_secs());
    out.signed_in_at = Some(head.created);
    out.last_seen_at = Some(head.seen);
    out.idle_until = Some(head.seen.saturating_add(idle));
    out.expires_at = Some(head.created.saturating_add(max));
    out.revision = Some(head.rev);
    if now >= head.created.saturating_add(max) {
        out.problem = Some("the session has reached max_lifetime_seconds".into());
    } else if now >= head.seen.saturating_add(idle) {
        out.problem = Some("the session was idle longer than idle_timeout_seconds".into());
    }
    if cfg.database.is_some() {
        out.row_id = Some(db::row_id(&head.sid));
        out.note =
            Some("its tokens and user are in the database row, which explain does not read".into());
        return (out, None);
    }
    let Ok(body) = serde_json::from_slice::<Body>(body) else {
        out.problem = Some("the cookie opens but its body is not a session".into());
        return (out, None);
    };
    out.access_token_expires_at = Some(body.at_exp);
    if out.problem.is_none() && body.at_exp <= now && body.rt.is_none() {
        out.problem = Some("its access token has expired and there is no refresh token".into());
    }
    let live = super::cache::Live::new(head.rev, head.created, body, &s.client_id);
    let p = Arc::clone(&live.principal);
    out.issuer = Some(p.issuer.to_string());
    out.sub = Some(p.sub.clone());
    out.user = Some(p.user().to_string());
    out.email = p.email.clone();
    out.groups = p.groups.clone();
    out.roles = p.roles.clone();
    let live = out.problem.is_none();
    (out, live.then_some(p))
}

/// The sealed value in what was given: a bare value, `name=value`, or a `Cookie` header.
fn sealed_value(given: &str, name: &str) -> Option<String> {
    let given = given.trim();
    let given = given.strip_prefix("Cookie:").map_or(given, str::trim);
    if !given.contains('=') || !given.contains(name) {
        return Some(given.to_string());
    }
    let mut h = HeaderMap::new();
    h.insert(header::COOKIE, HeaderValue::from_str(given).ok()?);
    cookie::read(&h, name).map(|v| v.into_owned())
}

fn when(t: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t)).to_string()
}

impl fmt::Display for SessionExplanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  store: {}", self.store)?;
        if let (Some(a), Some(b)) = (self.signed_in_at, self.last_seen_at) {
            writeln!(f, "  signed in {}, last seen {}", when(a), when(b))?;
        }
        if let (Some(i), Some(e)) = (self.idle_until, self.expires_at) {
            writeln!(f, "  ends {} if idle, {} at the latest", when(i), when(e))?;
        }
        if let Some(r) = &self.row_id {
            writeln!(f, "  database row: {r}")?;
        }
        if let (Some(user), Some(sub)) = (&self.user, &self.sub) {
            writeln!(
                f,
                "  user: {user} (sub {sub}){}",
                self.email
                    .as_ref()
                    .map(|e| format!(", {e}"))
                    .unwrap_or_default()
            )?;
            writeln!(f, "  groups: {}", self.groups.join(", "))?;
            if !self.roles.is_empty() {
                writeln!(f, "  roles from the provider: {}", self.roles.join(", "))?;
            }
        }
        if let Some(t) = self.access_token_expires_at {
            writeln!(
                f,
                "  access token expires {} (refreshed at the gateway when due)",
                when(t)
            )?;
        }
        if let Some(p) = &self.problem {
            writeln!(f, "  no session: {p}")?;
        }
        if let Some(n) = &self.note {
            writeln!(f, "  note: {n}")?;
        }
        Ok(())
    }
}
