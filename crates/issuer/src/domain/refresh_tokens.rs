//! Refresh tokens shaped as Keycloak's: compact JWS, HS512 (Keycloak's internal algorithm)
//! under a realm secret, with `typ: "Refresh"` and the claims Keycloak tooling decodes. The
//! `jti` names the server-side family (`{family}:{uuid}`), and the family's current hash still
//! decides which token is live, so rotation and reuse detection are the store's as before; the
//! signature turns away forged, tampered and other realms' tokens without asking the store.
//!
//! The refresh grant signs one token and verifies one per call, so both stay small: the header
//! is fixed per key (encoded once, and a token's header must be exactly it, so no header
//! parsing and no algorithm choice by the token), the HMAC key is set up once, and the claims
//! are parsed once.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::secrets;

/// Keycloak's `typ` for refresh tokens.
pub const TYP: &str = "Refresh";

/// One realm secret that signs refresh tokens.
pub struct RefreshKey {
    pub kid: String,
    /// The base64url JWS header of every token this key signs.
    header: String,
    key: hmac::Key,
}

impl std::fmt::Debug for RefreshKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl RefreshKey {
    /// The realm's refresh-token key that goes with one of its signing keys, derived from that
    /// key's stored private half: every replica has it without a new secret in the store, and
    /// it is retired and dropped with the signing key (tokens rotate on every use, so a live
    /// one is never older than the realm's idle timeout).
    pub fn derive(realm: &str, signing_key_der: &[u8]) -> anyhow::Result<RefreshKey> {
        let key = secrets::derive_key(signing_key_der, "portcullis refresh-token HS512", realm)?;
        let id = secrets::derive_key(signing_key_der, "portcullis refresh-token kid", realm)?;
        let mut kid = [0u8; 16];
        kid.copy_from_slice(&id[..16]);
        let kid = secrets::uuid_string(&kid);
        let header = serde_json::json!({"alg": "HS512", "typ": "JWT", "kid": kid});
        Ok(RefreshKey {
            header: URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
            kid,
            key: hmac::Key::new(hmac::HMAC_SHA512, &key),
        })
    }
}

/// A refresh token's claims, Keycloak's names (`aud` is the issuer, as Keycloak sets it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshClaims {
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub typ: String,
    pub azp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub scope: String,
    /// The sign-in's factors, so refreshed tokens say what the first ones said (`acr`, `amr`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

/// What a new refresh token says, beyond its family and times.
pub struct Subject<'a> {
    pub issuer: &'a str,
    pub user_id: &'a str,
    pub client_id: &'a str,
    pub session_id: Option<&'a str>,
    pub scope: &'a str,
    pub amr: &'a [String],
}

impl RefreshClaims {
    /// The claims of a new token of `family_id`, valid for `lifetime` seconds from `now`.
    pub fn new(
        family_id: &str,
        s: &Subject<'_>,
        now: i64,
        lifetime: i64,
    ) -> anyhow::Result<RefreshClaims> {
        Ok(RefreshClaims {
            exp: now.saturating_add(lifetime),
            iat: now,
            jti: format!("{family_id}:{}", secrets::uuid()?),
            iss: s.issuer.to_string(),
            aud: s.issuer.to_string(),
            sub: s.user_id.to_string(),
            typ: TYP.to_string(),
            azp: s.client_id.to_string(),
            sid: s.session_id.map(str::to_string),
            scope: s.scope.to_string(),
            amr: s.amr.to_vec(),
        })
    }

    /// The next token of the same family: same subject, client, session and scope; new times
    /// and `jti`; the issuer as this request sees it.
    pub fn renewed(&self, issuer: &str, now: i64, lifetime: i64) -> anyhow::Result<Self> {
        let family = self
            .family()
            .ok_or_else(|| anyhow::anyhow!("refresh token without a family"))?;
        RefreshClaims::new(
            family,
            &Subject {
                issuer,
                user_id: &self.sub,
                client_id: &self.azp,
                session_id: self.sid.as_deref(),
                scope: &self.scope,
                amr: &self.amr,
            },
            now,
            lifetime,
        )
    }

    /// The family the token belongs to (the `jti` before its `:`).
    pub fn family(&self) -> Option<&str> {
        self.jti
            .split_once(':')
            .map(|(f, _)| f)
            .filter(|f| !f.is_empty())
    }
}

/// The compact JWS of `claims` under `key`.
pub fn sign(key: &RefreshKey, claims: &RefreshClaims) -> anyhow::Result<String> {
    let payload = serde_json::to_vec(claims)?;
    let mut out = String::with_capacity(key.header.len() + payload.len() * 4 / 3 + 92);
    out.push_str(&key.header);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
    let tag = hmac::sign(&key.key, out.as_bytes());
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut out);
    Ok(out)
}

/// The claims of `token` if one of `keys` signed it as a refresh token of `realm`. Expiry is
/// the caller's to check, against the issuer's clock.
pub fn verify(keys: &[RefreshKey], realm: &str, token: &str) -> Option<RefreshClaims> {
    let (signed, signature) = token.rsplit_once('.')?;
    let (header, payload) = signed.split_once('.')?;
    // Our own header, byte for byte: it names the key and fixes the algorithm to HS512.
    let key = keys.iter().find(|k| k.header == header)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    // Constant-time comparison of the tag.
    hmac::verify(&key.key, signed.as_bytes(), &signature).ok()?;
    let c: RefreshClaims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let iss_ok = c
        .iss
        .strip_suffix(realm)
        .is_some_and(|rest| rest.ends_with("/realms/"));
    (c.typ == TYP && iss_ok && c.family().is_some()).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(iss: &str) -> RefreshClaims {
        RefreshClaims::new(
            "fam",
            &Subject {
                issuer: iss,
                user_id: "u",
                client_id: "c",
                session_id: Some("s"),
                scope: "openid",
                amr: &[],
            },
            100,
            1800,
        )
        .unwrap()
    }

    #[test]
    fn signed_tokens_verify_and_forgeries_do_not() {
        let key = RefreshKey::derive("r", b"signing key").unwrap();
        let c = claims("https://id/auth/realms/r");
        let t = sign(&key, &c).unwrap();
        let got = verify(std::slice::from_ref(&key), "r", &t).unwrap();
        assert_eq!(got, c);
        assert_eq!(got.family(), Some("fam"));
        assert_eq!(got.exp, 1900);
        // A standard JWS: a JWT library verifies it with the same secret.
        let header = jsonwebtoken::decode_header(&t).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::HS512);
        assert_eq!(header.kid.as_deref(), Some(key.kid.as_str()));
        let secret = secrets::derive_key(b"signing key", "portcullis refresh-token HS512", "r");
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS512);
        v.validate_exp = false;
        v.set_audience(&["https://id/auth/realms/r"]);
        v.required_spec_claims.clear();
        let checked = jsonwebtoken::decode::<RefreshClaims>(
            &t,
            &jsonwebtoken::DecodingKey::from_secret(&secret.unwrap()),
            &v,
        )
        .unwrap();
        assert_eq!(checked.claims, c);
        assert!(!format!("{key:?}").contains("header"));

        // Another realm's key, or its name in `iss`.
        let other = RefreshKey::derive("s", b"signing key").unwrap();
        assert_ne!(other.kid, key.kid);
        assert!(verify(std::slice::from_ref(&other), "s", &t).is_none());
        let foreign = sign(&key, &claims("https://id/auth/realms/s")).unwrap();
        assert!(verify(std::slice::from_ref(&key), "r", &foreign).is_none());
        let suffix = sign(&key, &claims("https://id/auth/realms/xr")).unwrap();
        assert!(verify(std::slice::from_ref(&key), "r", &suffix).is_none());

        // A changed payload under the old signature.
        let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
        let mut evil = c.clone();
        evil.sub = "admin".into();
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&evil).unwrap());
        assert!(verify(std::slice::from_ref(&key), "r", &parts.join(".")).is_none());

        // Not a refresh token, no family, or not a JWT at all.
        let mut access = c.clone();
        access.typ = "Bearer".into();
        assert!(
            verify(
                std::slice::from_ref(&key),
                "r",
                &sign(&key, &access).unwrap()
            )
            .is_none()
        );
        let mut orphan = c.clone();
        orphan.jti = ":x".into();
        assert!(
            verify(
                std::slice::from_ref(&key),
                "r",
                &sign(&key, &orphan).unwrap()
            )
            .is_none()
        );
        for junk in ["", "fam.secret", "a.b.c", "..."] {
            assert!(
                verify(std::slice::from_ref(&key), "r", junk).is_none(),
                "{junk}"
            );
        }
    }

    #[test]
    fn renewal_keeps_the_family_and_subject() {
        let c = claims("https://id/auth/realms/r");
        let n = c.renewed("https://other/auth/realms/r", 500, 60).unwrap();
        assert_eq!(n.family(), Some("fam"));
        assert_ne!(n.jti, c.jti);
        assert_eq!((n.iat, n.exp), (500, 560));
        assert_eq!(
            (n.sub, n.azp, n.sid, n.scope),
            (c.sub, c.azp, c.sid, c.scope)
        );
        assert_eq!(n.aud, "https://other/auth/realms/r");
    }
}
