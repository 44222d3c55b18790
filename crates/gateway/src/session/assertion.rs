//! `X-Portcullis-Assertion` (DESIGN §10): a short JWT (ES256, 60 s) the gateway signs for a
//! route with `identity_assertion = true`, so an upstream can tell traffic that went through
//! the gateway from traffic that went around it. `iss` is the request's scheme and host, `aud`
//! the route's name; `sub`, `email`, `groups` and `roles` say who. The public key is served at
//! `/.portcullis/jwks.json`. The key is made when the process starts (aws-lc-rs) and signing is
//! jsonwebtoken's; an assertion is reused for its first half-life, so a busy route signs about
//! once per 30 s per caller rather than per request.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use bytes::Bytes;
use dashmap::DashMap;
use http::HeaderValue;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde::Serialize;

use portcullis_core::identity::Principal;

pub const HEADER: &str = "x-portcullis-assertion";
/// An assertion's lifetime (DESIGN §10: at most 60 s).
pub const LIFETIME: u64 = 60;
/// A cached assertion is reused while at least this much of its life is left.
const REUSE_WHILE: u64 = 30;
const MAX_CACHED: usize = 10_000;

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    groups: &'a [String],
    roles: Vec<&'a str>,
    iat: u64,
    exp: u64,
}

/// The gateway's assertion key and the assertions it signed recently.
pub struct Signer {
    key: EncodingKey,
    kid: String,
    jwks: Bytes,
    cache: DashMap<u64, (u64, HeaderValue)>,
    hasher: std::collections::hash_map::RandomState,
}

impl Signer {
    /// A new P-256 key; `None` (assertions unavailable, logged) only without randomness.
    pub fn new() -> Option<Signer> {
        let made = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|k| k.to_pkcs8v1())
            .ok()
            .and_then(|der| {
                let key = EncodingKey::from_ec_der(der.as_ref());
                let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).ok()?;
                let kid = jwk.thumbprint(ThumbprintHash::SHA256).ok()?;
                jwk.common.key_id = Some(kid.clone());
                jwk.common.public_key_use = Some(PublicKeyUse::Signature);
                jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
                let jwks = serde_json::to_vec(&JwkSet { keys: vec![jwk] }).ok()?;
                Some((key, kid, jwks))
            });
        let Some((key, kid, jwks)) = made else {
            tracing::error!(
                "cannot make the identity assertion key; identity_assertion routes get no assertion"
            );
            return None;
        };
        Some(Signer {
            key,
            kid,
            jwks: Bytes::from(jwks),
            cache: DashMap::new(),
            hasher: Default::default(),
        })
    }

    /// `/.portcullis/jwks.json`.
    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }

    /// The assertion of `who` (with the roles the policies gave them) for `route`, made to
    /// `origin` (`https://host`).
    pub fn assertion(
        &self,
        origin: &str,
        route: &str,
        who: &Principal,
        roles: &[Arc<str>],
        now: u64,
    ) -> Option<HeaderValue> {
        let key = self.cache_key(origin, route, who, roles);
        if let Some(hit) = self.cache.get(&key)
            && hit.0 >= now + REUSE_WHILE
        {
            return Some(hit.1.clone());
        }
        let claims = Claims {
            iss: origin,
            aud: route,
            sub: &who.sub,
            preferred_username: who.username.as_deref(),
            email: who.email.as_deref(),
            groups: &who.groups,
            roles: roles.iter().map(|r| &**r).collect(),
            iat: now,
            exp: now + LIFETIME,
        };
        let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let jwt = jsonwebtoken::encode(&header, &claims, &self.key).ok()?;
        let value = HeaderValue::from_str(&jwt).ok()?;
        if self.cache.len() >= MAX_CACHED {
            self.cache.retain(|_, (exp, _)| *exp >= now + REUSE_WHILE);
            if self.cache.len() >= MAX_CACHED {
                self.cache.clear();
            }
        }
        self.cache.insert(key, (now + LIFETIME, value.clone()));
        Some(value)
    }

    /// Everything the assertion says, hashed with this process's random key.
    fn cache_key(&self, origin: &str, route: &str, who: &Principal, roles: &[Arc<str>]) -> u64 {
        let mut h = self.hasher.build_hasher();
        (
            origin,
            route,
            &*who.issuer,
            &who.sub,
            &who.username,
            &who.email,
        )
            .hash(&mut h);
        who.groups.hash(&mut h);
        roles.hash(&mut h);
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Principal {
        Principal {
            issuer: Arc::from("https://i"),
            sub: "u-1".into(),
            username: Some("alice".into()),
            email: Some("alice@example.com".into()),
            groups: vec!["/staff".into()],
            roles: vec![],
            azp: None,
            exp: 0,
            memo: Default::default(),
        }
    }

    #[test]
    fn assertions_verify_with_the_published_key_and_are_reused() {
        let s = Signer::new().unwrap();
        let now = jsonwebtoken::get_current_timestamp();
        let roles: Vec<Arc<str>> = vec![Arc::from("editor")];
        let a = s
            .assertion("https://gw.example", "app", &alice(), &roles, now)
            .unwrap();
        let set: JwkSet = serde_json::from_slice(&s.jwks()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&set.keys[0]).unwrap();
        let mut v = jsonwebtoken::Validation::new(Algorithm::ES256);
        v.set_audience(&["app"]);
        v.set_issuer(&["https://gw.example"]);
        let got = jsonwebtoken::decode::<serde_json::Value>(a.to_str().unwrap(), &key, &v)
            .unwrap()
            .claims;
        assert_eq!(got["sub"], "u-1");
        assert_eq!(got["email"], "alice@example.com");
        assert_eq!(got["groups"][0], "/staff");
        assert_eq!(got["roles"][0], "editor");
        assert_eq!(
            got["exp"].as_u64().unwrap() - got["iat"].as_u64().unwrap(),
            60
        );

        // Reused within its first half-life; another route, or later, gets a new one.
        assert_eq!(
            s.assertion("https://gw.example", "app", &alice(), &roles, now + 29),
            Some(a.clone())
        );
        assert_ne!(
            s.assertion("https://gw.example", "other", &alice(), &roles, now),
            Some(a.clone())
        );
        assert_ne!(
            s.assertion("https://gw.example", "app", &alice(), &roles, now + 31),
            Some(a)
        );
    }
}
