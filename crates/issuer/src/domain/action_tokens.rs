//! Action tokens: the keys of the links the issuer mails (Keycloak's `login-actions/
//! action-token?key=…`). A token is a compact JWS (HS256) under a realm secret derived from a
//! published signing key, as refresh tokens are, carrying the user, the action, an expiry and a
//! `jti`. The signature and expiry are checked here; single use is the store's (a `jti` is
//! marked used once, on any replica). A reset link also carries a digest of the password hash
//! it was issued against, so it dies once the password changes; a verification link carries
//! the address it verifies, so it dies once the address changes.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::secrets;

/// The `typ` of every action token (no other token of ours has it).
pub const TYP: &str = "portcullis-action";

/// What a link does.
pub const VERIFY_EMAIL: &str = "verify-email";
pub const RESET_CREDENTIALS: &str = "reset-credentials";
pub const EXECUTE_ACTIONS: &str = "execute-actions";

/// One realm secret that signs action tokens.
pub struct ActionKey {
    header: String,
    key: hmac::Key,
}

impl std::fmt::Debug for ActionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionKey").finish_non_exhaustive()
    }
}

impl ActionKey {
    /// The realm's action-token key that goes with one of its signing keys (derived from that
    /// key's private half, as `RefreshKey::derive`): retired with it after the grace, which is
    /// longer than any link lives.
    pub fn derive(realm: &str, signing_key_der: &[u8]) -> anyhow::Result<ActionKey> {
        let key = secrets::derive_key(signing_key_der, "portcullis action-token HS256", realm)?;
        let id = secrets::derive_key(signing_key_der, "portcullis action-token kid", realm)?;
        let mut kid = [0u8; 16];
        kid.copy_from_slice(&id[..16]);
        let header =
            serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": secrets::uuid_string(&kid)});
        Ok(ActionKey {
            header: URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
            key: hmac::Key::new(hmac::HMAC_SHA256, &key[..32]),
        })
    }
}

/// An action token's claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionClaims {
    pub typ: String,
    pub jti: String,
    /// The realm (checked against the realm the link is opened in).
    pub realm: String,
    /// The user's id.
    pub sub: String,
    /// `verify-email`, `reset-credentials` or `execute-actions`.
    pub act: String,
    /// For `execute-actions`: Keycloak's required-action names (`VERIFY_EMAIL`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rqac: Vec<String>,
    pub iat: i64,
    pub exp: i64,
    /// The address being verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eml: Option<String>,
    /// `password_digest` of the hash the link was issued against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pwd: Option<String>,
}

/// A short digest of a stored password hash (or of none): a new password changes it. Tells
/// nothing about the password (it is a digest of a salted argon2 hash).
pub fn password_digest(hash: Option<&str>) -> String {
    let d = secrets::token_hash(&format!("portcullis action pwd:{}", hash.unwrap_or("")));
    d.chars().take(22).collect()
}

/// The compact JWS of `claims` under `key`.
pub fn sign(key: &ActionKey, claims: &ActionClaims) -> anyhow::Result<String> {
    let mut out = key.header.clone();
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims)?, &mut out);
    let tag = hmac::sign(&key.key, out.as_bytes());
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut out);
    Ok(out)
}

/// The claims of `token` if one of `keys` signed it as an action token of `realm`. Expiry,
/// use and the user's state are the caller's to check.
pub fn verify(keys: &[ActionKey], realm: &str, token: &str) -> Option<ActionClaims> {
    if token.len() > 4096 {
        return None;
    }
    let (signed, signature) = token.rsplit_once('.')?;
    let (header, payload) = signed.split_once('.')?;
    let key = keys.iter().find(|k| k.header == header)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    hmac::verify(&key.key, signed.as_bytes(), &signature).ok()?;
    let c: ActionClaims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    (c.typ == TYP && c.realm == realm).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> ActionClaims {
        ActionClaims {
            typ: TYP.into(),
            jti: "j".into(),
            realm: "r".into(),
            sub: "u".into(),
            act: VERIFY_EMAIL.into(),
            rqac: vec![],
            iat: 1,
            exp: 301,
            eml: Some("a@b.c".into()),
            pwd: None,
        }
    }

    #[test]
    fn signed_tokens_verify_and_forgeries_do_not() {
        let key = ActionKey::derive("r", b"der").unwrap();
        let t = sign(&key, &claims()).unwrap();
        assert_eq!(verify(std::slice::from_ref(&key), "r", &t), Some(claims()));
        // Another realm, another key, a changed payload, junk.
        assert!(verify(std::slice::from_ref(&key), "s", &t).is_none());
        let other = ActionKey::derive("s", b"der").unwrap();
        assert!(verify(std::slice::from_ref(&other), "r", &t).is_none());
        let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
        let evil = ActionClaims {
            sub: "admin".into(),
            ..claims()
        };
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&evil).unwrap());
        assert!(verify(std::slice::from_ref(&key), "r", &parts.join(".")).is_none());
        for junk in ["", "a.b", "a.b.c", "..."] {
            assert!(verify(std::slice::from_ref(&key), "r", junk).is_none());
        }
        assert_ne!(
            password_digest(Some("$argon2id$a")),
            password_digest(Some("$argon2id$b"))
        );
        assert_eq!(password_digest(None).len(), 22);
    }
}
