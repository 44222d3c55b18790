//! Claim checks of a signature-verified token, and the `Principal` built from its claims.
//!
//! Times use the injected clock and the trust block's leeway: valid while
//! `now < exp + leeway`, from `nbf - leeway`, and `iat` no later than `now + leeway`.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::error::AuthnError;
use super::jwt::Trace;
use super::trust::Trust;
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

/// Runs every claim check (all of them, so `explain` can show each) and returns the first
/// failure, or the principal and its validity window.
pub(crate) fn check(
    trust: &Trust,
    claims: &Map<String, Value>,
    now: u64,
    trace: &mut Trace,
) -> Result<(Principal, Window), AuthnError> {
    let leeway = trust.leeway;
    let mut first: Option<AuthnError> = None;
    // Details are formatted only when tracing (`explain`); the request path pays nothing.
    macro_rules! note {
        ($check:expr, $result:expr, $detail:expr) => {{
            let r: Result<(), AuthnError> = $result;
            if let Err(e) = r {
                first.get_or_insert(e);
            }
            trace.record($check, r, || $detail);
        }};
    }

    let iss = str_claim(claims, "iss");
    note!(
        "iss",
        if iss == Some(&*trust.issuer) {
            Ok(())
        } else {
            Err(AuthnError::WRONG_ISSUER)
        },
        format!("issuer {}", iss.unwrap_or("(none)"))
    );

    let exp = time_claim(claims, "exp");
    note!(
        "exp",
        match exp {
            Ok(Some(exp)) if now < exp.saturating_add(leeway) => Ok(()),
            Ok(Some(_)) => Err(AuthnError::EXPIRED),
            Ok(None) => Err(AuthnError::MISSING_EXP),
            Err(e) => Err(e),
        },
        time_detail("expires at", exp, now, leeway)
    );

    let nbf = time_claim(claims, "nbf");
    note!(
        "nbf",
        match nbf {
            Ok(Some(nbf)) if now.saturating_add(leeway) < nbf => Err(AuthnError::NOT_YET_VALID),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        },
        time_detail("not before", nbf, now, leeway)
    );

    let iat = time_claim(claims, "iat");
    note!(
        "iat",
        match iat {
            Ok(Some(iat)) if iat > now.saturating_add(leeway) => Err(AuthnError::ISSUED_IN_FUTURE),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        },
        time_detail("issued at", iat, now, leeway)
    );

    let aud = claims.get("aud");
    note!(
        "aud",
        if trust.audiences.is_empty() || audience_matches(aud, &trust.audiences) {
            Ok(())
        } else {
            Err(AuthnError::WRONG_AUDIENCE)
        },
        if trust.audiences.is_empty() {
            "any audience accepted".to_string()
        } else {
            let aud = aud.map_or("(none)".to_string(), Value::to_string);
            format!("aud {aud}, accepted {:?}", trust.audiences)
        }
    );

    let azp = str_claim(claims, "azp");
    let parties = &trust.authorized_parties;
    note!(
        "azp",
        if parties.is_empty() || azp.is_some_and(|a| parties.iter().any(|p| p == a)) {
            Ok(())
        } else {
            Err(AuthnError::WRONG_AZP)
        },
        if parties.is_empty() {
            "any authorized party accepted".to_string()
        } else {
            format!("azp {}, accepted {parties:?}", azp.unwrap_or("(none)"))
        }
    );

    // Keycloak signs ID, refresh and logout tokens with the same keys, and an ID token's
    // `aud` is the client: only its `typ` tells it from an access token ("Bearer").
    let typ = str_claim(claims, "typ");
    note!(
        "typ",
        match typ {
            Some(t) if NOT_ACCESS_TOKENS.iter().any(|n| t.eq_ignore_ascii_case(n)) => {
                Err(AuthnError::WRONG_TOKEN_TYPE)
            }
            _ => Ok(()),
        },
        format!("typ {}", typ.unwrap_or("(none)"))
    );

    let sub = str_claim(claims, "sub").filter(|s| !s.is_empty());
    note!(
        "sub",
        if sub.is_some() {
            Ok(())
        } else {
            Err(AuthnError::MISSING_SUB)
        },
        format!("subject {}", sub.unwrap_or("(none)"))
    );

    if let Some(e) = first {
        return Err(e);
    }
    let (Some(sub), Ok(Some(exp))) = (sub, exp) else {
        return Err(AuthnError::MALFORMED);
    };
    let not_before = nbf
        .ok()
        .flatten()
        .unwrap_or(0)
        .max(iat.ok().flatten().unwrap_or(0));
    let window = Window {
        valid_from: not_before.saturating_sub(leeway),
        valid_until: exp.saturating_add(leeway),
    };
    Ok((principal(trust, claims, sub, exp), window))
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

fn principal(trust: &Trust, claims: &Map<String, Value>, sub: &str, exp: u64) -> Principal {
    let mut roles: Vec<String> = Vec::new();
    for path in &trust.roles_claims {
        for role in strings(lookup_path(claims, path)) {
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
    }
    Principal {
        issuer: Arc::clone(&trust.issuer),
        sub: sub.to_string(),
        username: str_claim(claims, "preferred_username").map(str::to_string),
        email: str_claim(claims, "email").map(str::to_string),
        groups: strings(claims.get(&trust.groups_claim)),
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
