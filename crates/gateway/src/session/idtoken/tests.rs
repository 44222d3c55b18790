//! ID token checks with real ES256 keys (aws-lc-rs) and tokens signed by jsonwebtoken.

use super::*;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

struct Op {
    key: EncodingKey,
    jwk: Jwk,
}

fn op(kid: &str) -> Op {
    let der = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
        .unwrap()
        .to_pkcs8v1()
        .unwrap();
    let key = EncodingKey::from_ec_der(der.as_ref());
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some(kid.into());
    Op { key, jwk }
}

fn sign(op: &Op, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = op.jwk.common.key_id.clone();
    jsonwebtoken::encode(&h, claims, &op.key).unwrap()
}

const NOW: u64 = 1_800_000_000;

fn good() -> Value {
    json!({"iss": "https://op", "aud": "gw", "sub": "u1", "exp": NOW + 300, "iat": NOW,
           "nonce": "n-1", "preferred_username": "alice", "groups": ["/staff"]})
}

fn expect() -> Expect<'static> {
    Expect {
        issuer: "https://op",
        client_id: "gw",
        nonce: Some("n-1"),
        now: NOW,
    }
}

#[test]
fn a_good_token_passes_and_says_who() {
    let op = op("k1");
    let keys = JwkSet {
        keys: vec![op.jwk.clone()],
    };
    let claims = verify(&sign(&op, &good()), &keys, &expect()).unwrap();
    let w = who(&claims, "opaque-access-token");
    assert_eq!((w.sub.as_str(), w.name.as_deref()), ("u1", Some("alice")));
    assert_eq!(w.groups, ["/staff"]);
}

#[test]
fn every_bad_claim_is_refused() {
    let op = op("k1");
    let keys = JwkSet {
        keys: vec![op.jwk.clone()],
    };
    let with = |k: &str, v: Value| {
        let mut c = good();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = good();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    for (claims, why) in [
        (
            with("iss", json!("https://other")),
            "the ID token is from another issuer",
        ),
        (
            with("aud", json!("other")),
            "the ID token is for another client",
        ),
        (
            with("aud", json!(["gw", "other"])),
            "the ID token has several audiences and no azp",
        ),
        (
            with("azp", json!("other")),
            "the ID token was issued to another party",
        ),
        (with("exp", json!(NOW - 31)), "the ID token has expired"),
        (without("exp"), "the ID token has no exp"),
        (
            with("iat", json!(NOW + 100)),
            "the ID token was issued in the future",
        ),
        (without("sub"), "the ID token has no sub"),
        (
            with("nonce", json!("n-2")),
            "the ID token's nonce is not this sign-in's",
        ),
        (
            without("nonce"),
            "the ID token's nonce is not this sign-in's",
        ),
    ] {
        assert_eq!(
            verify(&sign(&op, &claims), &keys, &expect()),
            Err(Refused(why))
        );
    }
    // Several audiences with azp = this client are fine; a refresh checks no nonce.
    let mut c = with("aud", json!(["gw", "other"]));
    c["azp"] = json!("gw");
    assert!(verify(&sign(&op, &c), &keys, &expect()).is_ok());
    let refresh = Expect {
        nonce: None,
        ..expect()
    };
    assert!(verify(&sign(&op, &without("nonce")), &keys, &refresh).is_ok());
}

#[test]
fn signatures_and_keys_are_checked() {
    let op1 = op("k1");
    let op2 = op("k1");
    let keys = JwkSet {
        keys: vec![op1.jwk.clone()],
    };
    // Same kid, another key: the signature does not verify.
    assert_eq!(
        verify(&sign(&op2, &good()), &keys, &expect()),
        Err(Refused("the ID token's signature does not verify"))
    );
    // Unknown kid.
    let op3 = op("k3");
    assert!(!has_key(&keys, Some("k3"), Algorithm::ES256));
    assert_eq!(
        verify(&sign(&op3, &good()), &keys, &expect()),
        Err(Refused(
            "no published key of the provider signed the ID token"
        ))
    );
    // A tampered payload.
    let t = sign(&op1, &good());
    let mut parts: Vec<String> = t.split('.').map(String::from).collect();
    parts[1] = parts[1].chars().rev().collect();
    assert!(verify(&parts.join("."), &keys, &expect()).is_err());
    // HS256 (keyed by anything a client knows) and `none` are never accepted.
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &good(),
        &EncodingKey::from_secret(b"secret"),
    )
    .unwrap();
    assert_eq!(
        verify(&hs, &keys, &expect()),
        Err(Refused("the ID token's algorithm is not accepted"))
    );
    assert!(verify("eyJhbGciOiJub25lIn0.e30.", &keys, &expect()).is_err());
    assert!(verify("not a token", &keys, &expect()).is_err());
}

#[test]
fn roles_come_from_the_access_token_when_the_id_token_has_none() {
    let op = op("k1");
    let at = sign(
        &op,
        &json!({"realm_access": {"roles": ["editor"]}, "groups": ["/x"], "email": "a@x"}),
    );
    let mut id = good().as_object().unwrap().clone();
    id.remove("groups");
    let w = who(&id, &at);
    assert_eq!(w.roles, ["editor"]);
    assert_eq!(w.groups, ["/x"]);
    assert_eq!(w.email.as_deref(), Some("a@x"));
}
