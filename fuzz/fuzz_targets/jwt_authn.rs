//! The full `Authenticator` (trust blocks, embedded key set, signature, claims, cache) on
//! tokens built from fuzz input. No panic, and never `Ok` for a token whose `header.payload`
//! was not signed by a configured key: raw strings, tokens signed by an attacker (same `kid`,
//! HS256 keyed with the public key, `alg: none`) and mutations of a good token are checked.
//!
//! Input: a mode byte, a key byte, then the header JSON and the claims JSON separated by 0xff
//! (modes 0 and 4 use the rest as the token or `Authorization` value).

#![no_main]

use std::sync::{Arc, OnceLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use portcullis_authn::{Authenticator, AuthnEnv, EmbeddedKeys, JwksRegistry};
use portcullis_core::clock::{ManualClock, SharedClock};
use portcullis_core::config::file::TrustFile;
use portcullis_core::config::{Diagnostics, SourceFile};

const NOW: u64 = 1_800_000_000;
const HS_SECRET: &str = "fuzz-shared-secret-0123456789abcdef";

struct Keys(Arc<JwkSet>);

impl EmbeddedKeys for Keys {
    fn key_set(&self) -> Arc<JwkSet> {
        self.0.clone()
    }
    fn version(&self) -> u64 {
        1
    }
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    auth: Authenticator,
    /// (key, alg, kid): the configured signing keys.
    good: Vec<(EncodingKey, Algorithm, &'static str)>,
    /// Keys an attacker could hold: others with the same kids, and HS secrets made of public data.
    evil: Vec<(EncodingKey, Algorithm, &'static str)>,
}

fn ec_key(rng: &SystemRandom) -> EncodingKey {
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng)
        .unwrap_or_else(|e| panic!("EC key: {e}"));
    EncodingKey::from_ec_der(doc.as_ref())
}

fn ed_key() -> EncodingKey {
    let doc = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new())
        .unwrap_or_else(|e| panic!("Ed25519 key: {e}"));
    EncodingKey::from_ed_der(doc.as_ref())
}

fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Jwk {
    let mut j = Jwk::from_encoding_key(key, alg).unwrap_or_else(|e| panic!("JWK: {e}"));
    j.common.key_id = Some(kid.to_string());
    j
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rng = SystemRandom::new();
        let ec = ec_key(&rng);
        let ed = ed_key();
        let ec_jwk = jwk(&ec, Algorithm::ES256, "ec-1");
        let ed_jwk = jwk(&ed, Algorithm::EdDSA, "ed-1");
        let set = Arc::new(JwkSet {
            keys: vec![ec_jwk.clone(), ed_jwk.clone()],
        });
        let clock: SharedClock = ManualClock::new(NOW);
        let env = AuthnEnv {
            jwks: JwksRegistry::new(clock.clone()),
            clock,
            embedded: Some(Arc::new(Keys(set.clone()))),
        };
        let toml = format!(
            r#"
[[trust]]
issuer = "https://idp.test/realms/a"
jwks_uri = "embedded"
audiences = ["app"]
algorithms = ["ES256", "EdDSA", "HS256"]
hs_secret = "{HS_SECRET}"

[[trust]]
issuer = "https://idp.test/realms/b"
jwks_uri = "embedded"
roles_claims = ["realm_access.roles", "resource_access.app.roles"]
groups_claim = "groups"
"#
        );
        #[derive(serde::Deserialize)]
        struct W {
            trust: Vec<TrustFile>,
        }
        let src = SourceFile {
            path: "portcullis.toml".into(),
            text: toml.clone(),
        };
        let w: W = toml::from_str(&toml).unwrap_or_else(|e| panic!("fixture TOML: {e}"));
        let mut diags = Diagnostics::default();
        let auth = Authenticator::build(&src, &w.trust, &env, &mut diags)
            .unwrap_or_else(|| panic!("fixture trust refused:\n{diags}"));
        let public_json = serde_json::to_vec(&*set).unwrap_or_default();
        let ec_x = match &ec_jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(p) => p.x.clone(),
            _ => String::new(),
        };
        let f = Fixture {
            rt: tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap_or_else(|e| panic!("runtime: {e}")),
            auth,
            good: vec![
                (ec, Algorithm::ES256, "ec-1"),
                (ed, Algorithm::EdDSA, "ed-1"),
                (
                    EncodingKey::from_secret(HS_SECRET.as_bytes()),
                    Algorithm::HS256,
                    "hs",
                ),
            ],
            evil: vec![
                (ec_key(&rng), Algorithm::ES256, "ec-1"),
                (ed_key(), Algorithm::EdDSA, "ed-1"),
                (
                    EncodingKey::from_secret(&public_json),
                    Algorithm::HS256,
                    "ec-1",
                ),
                (
                    EncodingKey::from_secret(ec_x.as_bytes()),
                    Algorithm::HS256,
                    "ec-1",
                ),
                (
                    EncodingKey::from_secret(b"wrong-secret-0123456789abcdef0123"),
                    Algorithm::HS256,
                    "hs",
                ),
            ],
        };
        // The harness proves nothing if good tokens fail: each configured key must verify.
        for (k, alg, kid) in &f.good {
            let header = format!(r#"{{"alg":"{alg:?}","kid":"{kid}"}}"#);
            let claims = format!(
                r#"{{"iss":"https://idp.test/realms/a","sub":"s","aud":"app","exp":{}}}"#,
                NOW + 60
            );
            let message = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
            let sig = sign(&message, k, *alg).unwrap_or_default();
            let token = format!("{message}.{sig}");
            let got = f.rt.block_on(f.auth.authenticate(Some(&bearer(&token))));
            assert!(got.is_ok(), "fixture token for {kid} refused: {got:?}");
        }
        f
    })
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn sign(message: &str, key: &EncodingKey, alg: Algorithm) -> Option<String> {
    jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).ok()
}

fn authenticate(f: &Fixture, authorization: &[u8]) -> bool {
    f.rt.block_on(f.auth.authenticate(Some(authorization)))
        .is_ok()
}

fn bearer(token: &str) -> Vec<u8> {
    format!("Bearer {token}").into_bytes()
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let [mode, key, rest @ ..] = data else {
        return;
    };
    match mode % 5 {
        // Strings nobody signed: never valid.
        0 => {
            let token = String::from_utf8_lossy(rest);
            assert!(
                !authenticate(f, &bearer(&token)),
                "unsigned {token:?} accepted"
            );
            let _ = f.auth.explain_token(&token);
        }
        4 => assert!(!authenticate(f, rest), "Authorization {rest:?} accepted"),
        m => {
            let split = rest.iter().position(|&b| b == 0xff).unwrap_or(rest.len());
            let header = &rest[..split];
            let claims = rest.get(split + 1..).unwrap_or_default();
            let message = format!("{}.{}", b64(header), b64(claims));
            match m {
                // Signed by a configured key: any outcome, no panic.
                1 => {
                    let (k, alg, _) = &f.good[usize::from(*key) % f.good.len()];
                    if let Some(sig) = sign(&message, k, *alg) {
                        let token = format!("{message}.{sig}");
                        let _ = authenticate(f, &bearer(&token));
                        let _ = f.auth.explain_token(&token);
                    }
                }
                // Signed by an attacker, or not at all: never valid.
                2 => {
                    let i = usize::from(*key) % (f.evil.len() + 1);
                    let token = match f.evil.get(i) {
                        Some((k, alg, _)) => match sign(&message, k, *alg) {
                            Some(sig) => format!("{message}.{sig}"),
                            None => return,
                        },
                        None => format!("{message}."),
                    };
                    assert!(
                        !authenticate(f, &bearer(&token)),
                        "forged {token:?} accepted"
                    );
                }
                // A good token with one byte changed (key byte: position, mode's high bits:
                // new byte): only a change outside `header.payload` may still verify.
                _ => {
                    let (k, alg, _) = &f.good[usize::from(mode / 5) % f.good.len()];
                    let Some(sig) = sign(&message, k, *alg) else {
                        return;
                    };
                    let token = format!("{message}.{sig}");
                    let mut bytes = token.clone().into_bytes();
                    let at = usize::from(*key) * bytes.len() / 256;
                    let new = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
                        [usize::from(mode / 5) % 65];
                    if bytes[at] == new {
                        return;
                    }
                    bytes[at] = new;
                    let mutated = String::from_utf8_lossy(&bytes).into_owned();
                    if authenticate(f, &bearer(&mutated)) {
                        let signed_part = mutated.rsplit_once('.').map(|(m, _)| m);
                        assert_eq!(
                            signed_part,
                            Some(message.as_str()),
                            "mutated {mutated:?} accepted (from {token:?})"
                        );
                    }
                }
            }
        }
    }
});
