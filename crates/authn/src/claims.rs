//! Claim checks of a signature-verified token, and the `Principal` built from its claims.
//!
//! Times use the injected clock and the trust block's leeway: valid while
//! `now < exp + leeway`, from `nbf - leeway`, and `iat` no later than `now + leeway`.
//!
//! What is accepted comes as `ClaimRules`, which a trust block holds: this module knows nothing
//! of trust blocks or keys.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::error::AuthnError;
use super::trace::Trace;
use portcullis_core::identity::Principal;

/// Payload `typ` values of tokens that are not access tokens (Keycloak's names).
const NOT_ACCESS_TOKENS: [&str; 5] = ["ID", "Refresh", "Offline", "Logout", "Serialized-ID"];

/// When a verified token stops (exclusive) and starts being acceptable, leeway included.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub valid_from: u64,
    pub valid_until: u64,
}

/// A number claim as Unix seconds: `Ok(None)` when absent, `Err` when not a number.
fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, AuthnError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(v) = n.as_u64() {
                Ok(Some(v))
            } else if let Some(f) = n.as_f64().filter(|f| f.is_finite()) {
                // Fractional seconds are legal (NumericDate); negative times clamp to the epoch.
                Ok(Some(if f <= 0.0 { 0 } else { f.floor() as u64 }))
            } else {
                Err(AuthnError::BAD_CLAIM)
            }
        }
        Some(_) => Err(AuthnError::BAD_CLAIM),
    }
}

fn str_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

/// What one trust block accepts of a verified token's claims, and how it reads its roles.
#[derive(Debug)]
pub(crate) struct ClaimRules {
    /// The exact `iss` of the issuer's tokens.
    pub issuer: Arc<str>,
    /// Accepted `aud` values; empty accepts any.
    pub audiences: Vec<String>,
    /// Accepted `azp` values; empty accepts any.
    pub authorized_parties: Vec<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
    pub leeway: u64,
    pub groups_claim: String,
    pub roles_claims: Vec<String>,
}

/// Runs every claim check (all of them, so `explain` can show each) and returns the first
/// failure, or the principal and its validity window.
pub(crate) fn check(
    rules: &ClaimRules,
    claims: &Map<String, Value>,
    now: u64,
    trace: &mut Trace,
) -> Result<(Principal, Window), AuthnError> {
    let mut notes = Notes { first: None, trace };
    check_issuer(rules, claims, &mut notes);
    let times = Times::read(claims);
    check_times(&times, now, rules.leeway, &mut notes);
    check_audience(rules, claims.get("aud"), &mut notes);
    check_party(rules, str_claim(claims, "azp"), &mut notes);
    check_type(str_claim(claims, "typ"), &mut notes);
    let sub = str_claim(claims, "sub").filter(|s| !s.is_empty());
    check_subject(sub, &mut notes);

    if let Some(e) = notes.first {
        return Err(e);
    }
    let (Some(sub), Ok(Some(exp))) = (sub, times.exp) else {
        return Err(AuthnError::MALFORMED);
    };
    let window = times.window(exp, rules.leeway);
    Ok((principal(rules, claims, sub, exp), window))
}

/// The claim checks' results so far: the first failure, and every check in the trace.
struct Notes<'t> {
    first: Option<AuthnError>,
    trace: &'t mut Trace,
}

impl Notes<'_> {
    /// Details are formatted only when tracing (`explain`); the request path pays nothing.
    fn note(
        &mut self,
        check: &'static str,
        result: Result<(), AuthnError>,
        detail: impl FnOnce() -> String,
    ) {
        if let Err(e) = result {
            self.first.get_or_insert(e);
        }
        self.trace.record(check, result, detail);
    }
}

fn check_issuer(rules: &ClaimRules, claims: &Map<String, Value>, notes: &mut Notes<'_>) {
    let iss = str_claim(claims, "iss");
    let result = if iss == Some(&*rules.issuer) {
        Ok(())
    } else {
        Err(AuthnError::WRONG_ISSUER)
    };
    notes.note("iss", result, || {
        format!("issuer {}", iss.unwrap_or("(none)"))
    });
}

/// The time claims, each `Ok(None)` when absent and `Err` when not a number.
struct Times {
    exp: Result<Option<u64>, AuthnError>,
    nbf: Result<Option<u64>, AuthnError>,
    iat: Result<Option<u64>, AuthnError>,
}

impl Times {
    fn read(claims: &Map<String, Value>) -> Self {
        Self {
            exp: time_claim(claims, "exp"),
            nbf: time_claim(claims, "nbf"),
            iat: time_claim(claims, "iat"),
        }
    }

    /// From the later of `nbf` and `iat` to `exp`, widened by the leeway.
    fn window(&self, exp: u64, leeway: u64) -> Window {
        let not_before = self
            .nbf
            .ok()
            .flatten()
            .unwrap_or(0)
            .max(self.iat.ok().flatten().unwrap_or(0));
        Window {
            valid_from: not_before.saturating_sub(leeway),
            valid_until: exp.saturating_add(leeway),
        }
    }
}

fn check_times(times: &Times, now: u64, leeway: u64, notes: &mut Notes<'_>) {
    let exp = match times.exp {
        Ok(Some(exp)) if now < exp.saturating_add(leeway) => Ok(()),
        Ok(Some(_)) => Err(AuthnError::EXPIRED),
        Ok(None) => Err(AuthnError::MISSING_EXP),
        Err(e) => Err(e),
    };
    notes.note("exp", exp, || {
        time_detail("expires at", times.exp, now, leeway)
    });

    let nbf = match times.nbf {
        Ok(Some(nbf)) if now.saturating_add(leeway) < nbf => Err(AuthnError::NOT_YET_VALID),
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    };
    notes.note("nbf", nbf, || {
        time_detail("not before", times.nbf, now, leeway)
    });

    let iat = match times.iat {
        Ok(Some(iat)) if iat > now.saturating_add(leeway) => Err(AuthnError::ISSUED_IN_FUTURE),
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    };
    notes.note("iat", iat, || {
        time_detail("issued at", times.iat, now, leeway)
    });
}

fn check_audience(rules: &ClaimRules, aud: Option<&Value>, notes: &mut Notes<'_>) {
    let result = if rules.audiences.is_empty() || audience_matches(aud, &rules.audiences) {
        Ok(())
    } else {
        Err(AuthnError::WRONG_AUDIENCE)
    };
    notes.note("aud", result, || {
        if rules.audiences.is_empty() {
            "any audience accepted".to_string()
        } else {
            let aud = aud.map_or("(none)".to_string(), Value::to_string);
            format!("aud {aud}, accepted {:?}", rules.audiences)
        }
    });
}

fn check_party(rules: &ClaimRules, azp: Option<&str>, notes: &mut Notes<'_>) {
    let parties = &rules.authorized_parties;
    let result = if parties.is_empty() || azp.is_some_and(|a| parties.iter().any(|p| p == a)) {
        Ok(())
    } else {
        Err(AuthnError::WRONG_AZP)
    };
    notes.note("azp", result, || {
        if parties.is_empty() {
            "any authorized party accepted".to_string()
        } else {
            format!("azp {}, accepted {parties:?}", azp.unwrap_or("(none)"))
        }
    });
}

/// Keycloak signs ID, refresh and logout tokens with the same keys, and an ID token's `aud` is
/// the client: only its `typ` tells it from an access token ("Bearer").
fn check_type(typ: Option<&str>, notes: &mut Notes<'_>) {
    let result = match typ {
        Some(t) if NOT_ACCESS_TOKENS.iter().any(|n| t.eq_ignore_ascii_case(n)) => {
            Err(AuthnError::WRONG_TOKEN_TYPE)
        }
        _ => Ok(()),
    };
    notes.note("typ", result, || format!("typ {}", typ.unwrap_or("(none)")));
}

fn check_subject(sub: Option<&str>, notes: &mut Notes<'_>) {
    let result = if sub.is_some() {
        Ok(())
    } else {
        Err(AuthnError::MISSING_SUB)
    };
    notes.note("sub", result, || {
        format!("subject {}", sub.unwrap_or("(none)"))
    });
}

fn time_detail(what: &str, t: Result<Option<u64>, AuthnError>, now: u64, leeway: u64) -> String {
    match t {
        Ok(Some(t)) => format!(
            "{what} {t} ({:+} s from now, leeway {leeway} s)",
            i128::from(t) - i128::from(now)
        ),
        Ok(None) => "absent".to_string(),
        Err(_) => "not a number".to_string(),
    }
}

fn audience_matches(aud: Option<&Value>, accepted: &[String]) -> bool {
    match aud {
        Some(Value::String(a)) => accepted.iter().any(|x| x == a),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .any(|a| accepted.iter().any(|x| x == a)),
        _ => false,
    }
}

fn principal(rules: &ClaimRules, claims: &Map<String, Value>, sub: &str, exp: u64) -> Principal {
    let mut roles: Vec<String> = Vec::new();
    for path in &rules.roles_claims {
        for role in strings(lookup_path(claims, path)) {
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
    }
    Principal {
        issuer: Arc::clone(&rules.issuer),
        sub: sub.to_string(),
        username: str_claim(claims, "preferred_username").map(str::to_string),
        email: str_claim(claims, "email").map(str::to_string),
        groups: strings(claims.get(&rules.groups_claim)),
        roles,
        azp: str_claim(claims, "azp").map(str::to_string),
        exp,
        memo: Default::default(),
    }
}

/// The strings of an array claim (non-strings skipped), or a single string claim.
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Follows a dotted path (`resource_access.myclient.roles`). A key that itself holds dots
/// (a client id like `my.app`) is found too: each prefix that names a key is tried.
pub(crate) fn lookup_path<'a>(obj: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = obj.get(path) {
        return Some(v);
    }
    for (i, _) in path.match_indices('.') {
        let (head, rest) = (&path[..i], &path[i + 1..]);
        if let Some(Value::Object(inner)) = obj.get(head)
            && let Some(v) = lookup_path(inner, rest)
        {
            return Some(v);
        }
    }
    None
}
