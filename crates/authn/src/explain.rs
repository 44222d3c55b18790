//! `explain`: every check of a token, step by step, as JSON (`/admin/explain`) or text (CLI).
//!
//! It runs the same checks as `authenticate` (same functions), from the keys already loaded,
//! and goes on after a failure where it can, so one answer shows everything that is wrong.
//! The token and any secret are never part of the answer.
//!
//! The top of the crate: it reads the `Authenticator` and runs the lower modules' checks with
//! a `Trace` on; nothing below imports it.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::Authenticator;
use super::claims;
use super::error::AuthnError;
use super::jwt;
use super::trace::{CheckOutcome, Trace};
use portcullis_core::identity::Principal;

/// The identity a valid token stands for, as `explain` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainedPrincipal {
    pub issuer: String,
    pub sub: String,
    pub username: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    pub azp: Option<String>,
    pub exp: u64,
}

impl From<&Principal> for ExplainedPrincipal {
    fn from(p: &Principal) -> Self {
        Self {
            issuer: p.issuer.to_string(),
            sub: p.sub.clone(),
            username: p.username.clone(),
            email: p.email.clone(),
            groups: p.groups.clone(),
            roles: p.roles.clone(),
            azp: p.azp.clone(),
            exp: p.exp,
        }
    }
}

/// Everything `explain` found out about one token.
#[derive(Debug, Clone, Serialize)]
pub struct TokenExplanation {
    pub valid: bool,
    /// The first failure, as `authenticate` would report it.
    pub error: Option<AuthnError>,
    pub alg: Option<String>,
    pub kid: Option<String>,
    /// The token's `iss` (unverified unless `valid`).
    pub issuer: Option<String>,
    pub issuer_trusted: bool,
    /// Header fields that point at keys (`jku`, `jwk`, `x5u`, `x5c`): present, never used.
    pub ignored_header_fields: Vec<&'static str>,
    pub checks: Vec<CheckOutcome>,
    pub principal: Option<ExplainedPrincipal>,
}

pub(crate) fn explain(auth: &Authenticator, token: &str) -> TokenExplanation {
    let mut out = TokenExplanation {
        valid: false,
        error: None,
        alg: None,
        kid: None,
        issuer: None,
        issuer_trusted: false,
        ignored_header_fields: Vec::new(),
        checks: Vec::new(),
        principal: None,
    };
    let mut trace = Trace::on();
    let result = run(auth, token, &mut out, &mut trace);
    out.checks = trace.into_steps();
    match result {
        Ok(p) => {
            out.valid = true;
            out.principal = Some(ExplainedPrincipal::from(&p));
        }
        Err(e) => out.error = Some(e),
    }
    out
}

fn run(
    auth: &Authenticator,
    token: &str,
    out: &mut TokenExplanation,
    trace: &mut Trace,
) -> Result<Principal, AuthnError> {
    // Accept a whole header value too ("Bearer eyJ…"), as people paste either.
    let header_value = if token.contains(' ') {
        token.to_string()
    } else {
        format!("Bearer {token}")
    };
    let token = jwt::bearer_token(Some(header_value.as_bytes()), auth.max_token_bytes)
        .and_then(|t| jwt::check_charset(t).map(|()| t));
    let size_detail = format!(
        "{} bytes, at most {}",
        header_value.len(),
        auth.max_token_bytes
    );
    trace.record("format", token.map(|_| ()), || size_detail);
    let token = token?;
    let segments = jwt::segments(token);
    trace.record("segments", segments.map(|_| ()), || {
        "header.payload.signature".into()
    });
    let (h, _, _) = segments?;

    // A lenient look at the header first, so even a refused `alg` is shown.
    if let Some(v) = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    {
        out.alg = v.get("alg").and_then(|a| a.as_str()).map(str::to_string);
        out.kid = v.get("kid").and_then(|a| a.as_str()).map(str::to_string);
    }
    let parsed = jwt::parse(token);
    trace.record(
        "decode",
        parsed.as_ref().map(|_| ()).map_err(|e| *e),
        || "header and payload are base64url JSON, alg is a signature algorithm, no crit".into(),
    );
    let parsed = parsed?;
    out.ignored_header_fields = parsed.header.ignored.clone();
    out.issuer = parsed.issuer().map(str::to_string);

    let found = auth.trust_for(&parsed);
    out.issuer_trusted = found.is_ok();
    let trusted: Vec<&str> = auth.issuers().collect();
    trace.record("issuer", found.map(|_| ()), || {
        format!("trusted issuers: {trusted:?}")
    });
    let (_, trust) = found?;

    let pre = trust.precheck(token, &parsed);
    trace.record("algorithm", pre, || {
        format!("{:?}, allowed {:?}", parsed.header.alg, trust.algorithms)
    });

    let key = trust.keys.resolve_loaded(&parsed.header, trust.hs.as_ref());
    let loaded = trust.keys.loaded();
    trace.record("key", key.as_ref().map(|_| ()).map_err(|e| *e), || {
        format!(
            "kid {:?}; loaded kids {:?}",
            parsed.header.kid,
            loaded.kids()
        )
    });
    let now = auth.clock.now_unix();
    match key {
        Ok(key) if pre.is_ok() => Ok(trust.verify(&parsed, &key, now, trace)?.principal),
        Ok(_) | Err(_) => {
            // No signature check possible: still show the claims, marked as unverified.
            let claims = claims::check(&trust.rules, &parsed.claims, now, trace);
            trace.record("signature", Err(AuthnError::BAD_SIGNATURE), || {
                "not verified: no usable key or algorithm (the claims above are unverified)".into()
            });
            pre?;
            key?;
            claims.map(|(p, _)| p)
        }
    }
}

impl fmt::Display for TokenExplanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error {
            None => writeln!(f, "token: VALID")?,
            Some(e) => writeln!(f, "token: INVALID ({e})")?,
        }
        writeln!(
            f,
            "header: alg={} kid={}",
            self.alg.as_deref().unwrap_or("-"),
            self.kid.as_deref().unwrap_or("-")
        )?;
        if !self.ignored_header_fields.is_empty() {
            writeln!(
                f,
                "ignored header fields: {}",
                self.ignored_header_fields.join(", ")
            )?;
        }
        writeln!(
            f,
            "issuer: {} ({})",
            self.issuer.as_deref().unwrap_or("-"),
            if self.issuer_trusted {
                "trusted"
            } else {
                "not trusted"
            }
        )?;
        for c in &self.checks {
            let mark = if c.passed { "ok  " } else { "FAIL" };
            write!(f, "  {mark} {:<10} {}", c.check, c.detail)?;
            match c.reason {
                Some(r) => writeln!(f, " [{r}]")?,
                None => writeln!(f)?,
            }
        }
        if let Some(p) = &self.principal {
            writeln!(
                f,
                "principal: sub={} user={} email={} azp={}",
                p.sub,
                p.username.as_deref().unwrap_or("-"),
                p.email.as_deref().unwrap_or("-"),
                p.azp.as_deref().unwrap_or("-")
            )?;
            writeln!(f, "  groups: {}", p.groups.join(", "))?;
            writeln!(f, "  roles: {}", p.roles.join(", "))?;
        }
        Ok(())
    }
}
