//! ID token validation at the callback (OpenID Connect Core §3.1.3.7): the signature with the
//! provider's published key (jsonwebtoken on aws-lc-rs), then `iss`, `aud`, `azp`, `exp`,
//! `iat` and `nonce` against the injected clock. Also reads the claims a session is built
//! from, out of the ID token and the access token the same token response carried.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::state::{Who, ct_eq};

/// Clock skew allowed on `exp` and `iat`.
pub const LEEWAY: u64 = 30;
/// Asymmetric algorithms only: an HS-signed ID token would be keyed by the client secret.
const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Why an ID token was refused (a fixed phrase for the 400 page and the log; no token text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused(pub &'static str);

/// What the ID token must say.
pub struct Expect<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// The nonce sent with the authorization request; `None` on a refresh.
    pub nonce: Option<&'a str>,
    pub now: u64,
}

/// The `kid` and algorithm of a token's header, before its key is looked up.
pub fn header(token: &str) -> Result<(Option<String>, Algorithm), Refused> {
    let h = jsonwebtoken::decode_header(token).map_err(|_| Refused("the ID token is malformed"))?;
    if !ALGORITHMS.contains(&h.alg) {
        return Err(Refused("the ID token's algorithm is not accepted"));
    }
    Ok((h.kid, h.alg))
}

/// Whether `keys` has a key for this `kid` (a miss makes the caller refetch the keys once).
pub fn has_key(keys: &JwkSet, kid: Option<&str>, alg: Algorithm) -> bool {
    find_key(keys, kid, alg).is_some()
}

/// Verifies `token` with `keys` and checks its claims; the claims when all hold.
pub fn verify(token: &str, keys: &JwkSet, e: &Expect<'_>) -> Result<Map<String, Value>, Refused> {
    let (kid, alg) = header(token)?;
    let jwk = find_key(keys, kid.as_deref(), alg).ok_or(Refused(
        "no published key of the provider signed the ID token",
    ))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| Refused("the provider's key is unusable"))?;
    let mut v = Validation::new(alg);
    // Times and audiences are checked below, against the injected clock.
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v)
        .map_err(|_| Refused("the ID token's signature does not verify"))?;
    check_claims(&data.claims, e)?;
    Ok(data.claims)
}

fn check_claims(c: &Map<String, Value>, e: &Expect<'_>) -> Result<(), Refused> {
    let s = |k: &str| c.get(k).and_then(Value::as_str);
    if s("iss") != Some(e.issuer) {
        return Err(Refused("the ID token is from another issuer"));
    }
    let aud: Vec<&str> = match c.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !aud.contains(&e.client_id) {
        return Err(Refused("the ID token is for another client"));
    }
    match s("azp") {
        Some(azp) if azp != e.client_id => {
            return Err(Refused("the ID token was issued to another party"));
        }
        None if aud.len() > 1 => {
            return Err(Refused("the ID token has several audiences and no azp"));
        }
        _ => {}
    }
    let time = |k: &str| c.get(k).and_then(Value::as_f64).map(|t| t.max(0.0) as u64);
    match time("exp") {
        Some(exp) if e.now < exp.saturating_add(LEEWAY) => {}
        Some(_) => return Err(Refused("the ID token has expired")),
        None => return Err(Refused("the ID token has no exp")),
    }
    if time("iat").is_some_and(|iat| iat > e.now.saturating_add(LEEWAY)) {
        return Err(Refused("the ID token was issued in the future"));
    }
    if s("sub").is_none_or(str::is_empty) {
        return Err(Refused("the ID token has no sub"));
    }
    if let Some(want) = e.nonce
        && !s("nonce").is_some_and(|got| ct_eq(got, want))
    {
        return Err(Refused("the ID token's nonce is not this sign-in's"));
    }
    Ok(())
}

/// The key for `kid` (or the only fitting one when the header names none) whose type fits `alg`.
fn find_key<'k>(keys: &'k JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<&'k Jwk> {
    let fits = |k: &&Jwk| {
        let usable = !matches!(&k.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature);
        let alg_ok = k
            .common
            .key_algorithm
            .is_none_or(|a| Algorithm::try_from(a).is_ok_and(|ka| ka == alg));
        let family_ok = match (&k.algorithm, alg) {
            (
                AlgorithmParameters::RSA(_),
                Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512,
            ) => true,
            (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => {
                p.curve == EllipticCurve::P256
            }
            (AlgorithmParameters::EllipticCurve(p), Algorithm::ES384) => {
                p.curve == EllipticCurve::P384
            }
            (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
                p.curve == EllipticCurve::Ed25519
            }
            _ => false,
        };
        usable && alg_ok && family_ok
    };
    match kid {
        Some(kid) => keys
            .keys
            .iter()
            .filter(fits)
            .find(|k| k.common.key_id.as_deref() == Some(kid)),
        None => {
            let mut it = keys.keys.iter().filter(fits);
            match (it.next(), it.next()) {
                (Some(k), None) => Some(k),
                _ => None,
            }
        }
    }
}

/// Who a session stands for: `sub`, names and email from the verified ID token; groups and
/// roles from it too, else from the access token's payload. The access token came in the same
/// TLS-protected answer of the token endpoint as the ID token (OpenID Connect Core §3.1.3.8
/// lets a client trust that channel), so its claims are read without a second verification.
pub fn who(id: &Map<String, Value>, access_token: &str) -> Who {
    let at = access_claims(access_token);
    let s = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(String::from);
    let list = |v: Option<&Value>| -> Option<Vec<String>> {
        v.and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
    };
    let groups = list(id.get("groups"))
        .or_else(|| at.as_ref().and_then(|a| list(a.get("groups"))))
        .unwrap_or_default();
    let roles_of =
        |m: &Map<String, Value>| list(m.get("realm_access").and_then(|r| r.get("roles")));
    let roles = roles_of(id)
        .or_else(|| at.as_ref().and_then(roles_of))
        .unwrap_or_default();
    Who {
        iss: s(id, "iss").unwrap_or_default(),
        sub: s(id, "sub").unwrap_or_default(),
        name: s(id, "preferred_username")
            .or_else(|| at.as_ref().and_then(|a| s(a, "preferred_username"))),
        email: s(id, "email").or_else(|| at.as_ref().and_then(|a| s(a, "email"))),
        groups,
        roles,
    }
}

/// The payload of a JWT access token; `None` for opaque ones.
fn access_claims(token: &str) -> Option<Map<String, Value>> {
    jsonwebtoken::dangerous::insecure_decode_claims::<Map<String, Value>>(token).ok()
}

#[cfg(test)]
mod tests;
