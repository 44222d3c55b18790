//! One test per attack on token validation, against the embedded key source (no network).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use super::support::*;

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test]
async fn valid_token_yields_the_principal() {
    let f = Fixture::new();
    let auth = f.default_auth();
    let p = auth
        .authenticate(Some(&bearer(&rsa().sign(&claims()))))
        .await
        .unwrap();
    assert_eq!(p.sub, "user-1");
    assert_eq!(p.username.as_deref(), Some("alice"));
    assert_eq!(p.email.as_deref(), Some("alice@example.com"));
    assert_eq!(p.groups, vec!["/staff"]);
    assert_eq!(p.roles, vec!["viewer", "editor"]);
    assert_eq!(p.azp.as_deref(), Some(AUD));
    assert_eq!(p.exp, NOW + 300);
    assert_eq!(&*p.issuer, ISS);
}

#[tokio::test]
async fn expired_token_is_refused() {
    let auth = Fixture::new().default_auth();
    let t = rsa().sign(&with(claims(), "exp", json!(NOW - 31)));
    assert_eq!(reason_of(&auth, &t).await, "expired");
}

#[tokio::test]
async fn expiry_within_leeway_is_accepted() {
    let auth = Fixture::new().default_auth();
    let t = rsa().sign(&with(claims(), "exp", json!(NOW - 20)));
    assert_eq!(reason_of(&auth, &t).await, "ok");
}

#[tokio::test]
async fn nbf_in_the_future_is_refused() {
    let auth = Fixture::new().default_auth();
    let t = rsa().sign(&with(claims(), "nbf", json!(NOW + 120)));
    assert_eq!(reason_of(&auth, &t).await, "not_yet_valid");
    let t = rsa().sign(&with(claims(), "nbf", json!(NOW + 20)));
    assert_eq!(reason_of(&auth, &t).await, "ok", "nbf within leeway");
}

#[tokio::test]
async fn iat_in_the_future_beyond_leeway_is_refused() {
    let auth = Fixture::new().default_auth();
    let t = rsa().sign(&with(claims(), "iat", json!(NOW + 120)));
    assert_eq!(reason_of(&auth, &t).await, "not_yet_valid");
}

#[tokio::test]
async fn missing_exp_is_refused() {
    let auth = Fixture::new().default_auth();
    let t = rsa().sign(&without(claims(), "exp"));
    assert_eq!(reason_of(&auth, &t).await, "missing_exp");
    let t = rsa().sign(&with(claims(), "exp", json!("tomorrow")));
    assert_eq!(reason_of(&auth, &t).await, "malformed");
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let auth = Fixture::new().default_auth();
    let t = rsa().sign(&with(claims(), "iss", json!("https://evil.test/realms/r")));
    assert_eq!(reason_of(&auth, &t).await, "wrong_issuer");
    // Exact match only: a trailing slash is another issuer.
    let t = rsa().sign(&with(claims(), "iss", json!(format!("{ISS}/"))));
    assert_eq!(reason_of(&auth, &t).await, "wrong_issuer");
}

#[tokio::test]
async fn wrong_or_missing_audience_is_refused() {
    let auth = Fixture::new().default_auth();
    let t = rsa().sign(&with(claims(), "aud", json!("account")));
    assert_eq!(reason_of(&auth, &t).await, "wrong_audience");
    let t = rsa().sign(&without(claims(), "aud"));
    assert_eq!(reason_of(&auth, &t).await, "wrong_audience");
}

#[tokio::test]
async fn audience_array_containing_ours_is_accepted() {
    let auth = Fixture::new().default_auth();
    let t = rsa().sign(&with(claims(), "aud", json!(["account", AUD])));
    assert_eq!(reason_of(&auth, &t).await, "ok");
    let t = rsa().sign(&with(claims(), "aud", json!(["account", "other"])));
    assert_eq!(reason_of(&auth, &t).await, "wrong_audience");
}

#[tokio::test]
async fn id_and_refresh_tokens_are_not_access_tokens() {
    let auth = Fixture::new().default_auth();
    for typ in ["ID", "Refresh", "Logout"] {
        let t = rsa().sign(&with(claims(), "typ", json!(typ)));
        assert_eq!(reason_of(&auth, &t).await, "wrong_token_type", "{typ}");
    }
    let t = rsa().sign(&with(claims(), "typ", json!("Bearer")));
    assert_eq!(reason_of(&auth, &t).await, "ok");
}

#[tokio::test]
async fn authorized_party_is_checked_when_configured() {
    let f = Fixture::new();
    let auth = f.build(&trust_toml(
        "embedded",
        r#"authorized_parties = ["frontend"]"#,
    ));
    assert_eq!(reason_of(&auth, &rsa().sign(&claims())).await, "wrong_azp");
    let t = rsa().sign(&with(claims(), "azp", json!("frontend")));
    assert_eq!(reason_of(&auth, &t).await, "ok");
}

#[tokio::test]
async fn alg_none_is_refused_with_and_without_signature() {
    let auth = Fixture::new().default_auth();
    let payload = b64(&claims());
    for alg in ["none", "None", "NONE"] {
        let header = b64(&json!({"alg": alg, "typ": "JWT", "kid": "rsa-1"}));
        assert_eq!(
            reason_of(&auth, &format!("{header}.{payload}.")).await,
            "alg_not_allowed"
        );
        let real_sig = rsa()
            .sign(&claims())
            .rsplit('.')
            .next()
            .unwrap()
            .to_string();
        let signed = format!("{header}.{payload}.{real_sig}");
        assert_eq!(reason_of(&auth, &signed).await, "alg_not_allowed");
    }
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let f = Fixture::new();
    let forge = |claims: &serde_json::Value| {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("rsa-1".into());
        let key = EncodingKey::from_secret(&rsa().public_pem);
        jsonwebtoken::encode(&h, claims, &key).unwrap()
    };
    // HS not allowed at all.
    let auth = f.default_auth();
    assert_eq!(reason_of(&auth, &forge(&claims())).await, "alg_not_allowed");
    // HS allowed with its own secret: the public key is never the HMAC key.
    let secret = "0123456789abcdef0123456789abcdef-secret";
    let auth = f.build(&trust_toml(
        "embedded",
        &format!("algorithms = [\"RS256\", \"HS256\"]\nhs_secret = \"{secret}\""),
    ));
    assert_eq!(reason_of(&auth, &forge(&claims())).await, "bad_signature");
    // Control: the configured secret itself works, so the refusal above is the key's doing.
    let good = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    assert_eq!(reason_of(&auth, &good).await, "ok");
    assert!(
        !format!("{auth:?}").contains(secret),
        "secret in Debug output"
    );
}

#[tokio::test]
async fn unknown_kid_is_refused() {
    let auth = Fixture::new().default_auth();
    let attacker = TestKey::generate(Algorithm::ES256, "nope");
    assert_eq!(
        reason_of(&auth, &attacker.sign(&claims())).await,
        "unknown_kid"
    );
}

#[tokio::test]
async fn kid_with_path_traversal_is_just_an_unknown_kid() {
    let auth = Fixture::new().default_auth();
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("../../etc/passwd".into());
    assert_eq!(
        reason_of(&auth, &rsa().sign_with(h, &claims())).await,
        "unknown_kid"
    );
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("x".repeat(300));
    assert_eq!(
        reason_of(&auth, &rsa().sign_with(h, &claims())).await,
        "malformed"
    );
}

#[tokio::test]
async fn jku_jwk_x5u_headers_naming_an_attacker_key_are_ignored() {
    let f = Fixture::new();
    let auth = f.default_auth();
    let attacker = TestKey::generate(Algorithm::ES256, "attacker");
    let cases: Vec<(Header, &str)> = vec![
        (
            {
                let mut h = Header::new(Algorithm::ES256);
                h.kid = Some("attacker".into());
                h.jku = Some("https://evil.test/jwks".into());
                h
            },
            "unknown_kid",
        ),
        (
            {
                let mut h = Header::new(Algorithm::ES256);
                h.kid = Some("attacker".into());
                h.jwk = Some(attacker.jwk());
                h
            },
            "unknown_kid",
        ),
        (
            {
                let mut h = Header::new(Algorithm::ES256);
                h.kid = Some("attacker".into());
                h.x5u = Some("https://evil.test/cert.pem".into());
                h
            },
            "unknown_kid",
        ),
        // Our own kid, the attacker's key embedded: our key is used, the signature fails.
        (
            {
                let mut h = Header::new(Algorithm::ES256);
                h.kid = Some("ec-1".into());
                h.jwk = Some(attacker.jwk());
                h
            },
            "bad_signature",
        ),
        (
            {
                let mut h = Header::new(Algorithm::ES256);
                h.jwk = Some(attacker.jwk());
                h
            },
            "bad_signature",
        ),
    ];
    for (h, want) in cases {
        let t = attacker.sign_with(h, &claims());
        assert_eq!(reason_of(&auth, &t).await, want);
    }
    let mut h = Header::new(Algorithm::ES256);
    h.jku = Some("https://evil.test/jwks".into());
    let e = auth.explain_token(&attacker.sign_with(h, &claims()));
    assert_eq!(e.ignored_header_fields, vec!["jku"]);
}

#[tokio::test]
async fn tampered_payload_is_refused() {
    let auth = Fixture::new().default_auth();
    let t = rsa().sign(&claims());
    let parts: Vec<&str> = t.split('.').collect();
    let forged = b64(&with(claims(), "sub", json!("admin")));
    let t = format!("{}.{}.{}", parts[0], forged, parts[2]);
    assert_eq!(reason_of(&auth, &t).await, "bad_signature");
}

#[tokio::test]
async fn signature_by_another_key_under_our_kid_is_refused() {
    let auth = Fixture::new().default_auth();
    assert_eq!(rsa_other().kid, rsa().kid);
    assert_eq!(
        reason_of(&auth, &rsa_other().sign(&claims())).await,
        "bad_signature"
    );
}

#[tokio::test]
async fn malformed_tokens_are_refused_without_panic() {
    let auth = Fixture::new().default_auth();
    let t = rsa().sign(&claims());
    let (rest, _sig) = t.rsplit_once('.').unwrap();
    assert_eq!(reason_of(&auth, rest).await, "malformed", "two segments");
    assert_eq!(
        reason_of(&auth, &t[..t.len() - 10]).await,
        "bad_signature",
        "truncated signature"
    );
    assert_eq!(
        reason_of(&auth, &format!("{t}.x")).await,
        "malformed",
        "four segments"
    );
    assert_eq!(
        reason_of(&auth, "a$b.c%d.e!f").await,
        "malformed",
        "not base64url"
    );
    assert_eq!(
        reason_of(&auth, "eyJ=.eyJ=.abc").await,
        "malformed",
        "padding"
    );
    assert_eq!(
        reason_of(&auth, "YWJj.YWJj.YWJj").await,
        "malformed",
        "not JSON"
    );
    assert_eq!(reason_of(&auth, "..").await, "malformed");
    let header = b64(&json!({"alg": "RS256", "crit": ["exp"]}));
    let t2 = format!("{header}.{}.{}", b64(&claims()), "c2ln");
    assert_eq!(reason_of(&auth, &t2).await, "malformed", "crit");
    let big = format!(
        "{}.{}.{}",
        "a".repeat(10_000),
        "b".repeat(10_000),
        "c".repeat(500)
    );
    assert_eq!(reason_of(&auth, &big).await, "too_large");
}

#[tokio::test]
async fn rs256_is_refused_where_only_es256_is_allowed() {
    let f = Fixture::new();
    let auth = f.build(&trust_toml("embedded", r#"algorithms = ["ES256"]"#));
    assert_eq!(
        reason_of(&auth, &rsa().sign(&claims())).await,
        "alg_not_allowed"
    );
    assert_eq!(reason_of(&auth, &ec().sign(&claims())).await, "ok");
}

#[tokio::test]
async fn algorithm_must_fit_the_key_type() {
    let auth = Fixture::new().default_auth();
    // ES256 header naming the RSA key (key confusion across types).
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("rsa-1".into());
    assert_eq!(
        reason_of(&auth, &ec().sign_with(h, &claims())).await,
        "alg_not_allowed"
    );
}

#[tokio::test]
async fn roles_come_from_realm_access_and_other_paths() {
    let f = Fixture::new();
    let auth = f.default_auth();
    let p = auth
        .authenticate(Some(&bearer(&rsa().sign(&claims()))))
        .await
        .unwrap();
    assert_eq!(p.roles, vec!["viewer", "editor"]);
    let auth = f.build(&trust_toml(
        "embedded",
        "roles_claims = [\"realm_access.roles\", \"resource_access.myclient.roles\"]\ngroups_claim = \"grp\"",
    ));
    let c = with(claims(), "grp", json!(["/a", 7, "/b"]));
    let p = auth
        .authenticate(Some(&bearer(&rsa().sign(&c))))
        .await
        .unwrap();
    assert_eq!(p.roles, vec!["viewer", "editor", "orders-admin"]);
    assert_eq!(p.groups, vec!["/a", "/b"]);
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive_and_required() {
    let auth = Fixture::new().default_auth();
    let t = rsa().sign(&claims());
    for scheme in ["bearer", "BEARER", "Bearer", "bEaReR"] {
        assert_eq!(
            reason(&auth, format!("{scheme} {t}").as_bytes()).await,
            "ok",
            "{scheme}"
        );
    }
    assert_eq!(
        reason(&auth, format!("Basic {t}").as_bytes()).await,
        "missing_token"
    );
    assert_eq!(reason(&auth, b"Bearer ").await, "missing_token");
    assert_eq!(reason(&auth, t.as_bytes()).await, "missing_token");
    assert_eq!(
        auth.authenticate(None).await.unwrap_err().reason,
        "missing_token"
    );
}

#[tokio::test]
async fn embedded_key_rotation_is_trusted_at_once_and_revokes_the_old_key() {
    let f = Fixture::new();
    let auth = f.default_auth();
    let old = rsa().sign(&claims());
    assert_eq!(reason_of(&auth, &old).await, "ok");
    let new_key = TestKey::generate(Algorithm::ES256, "ec-2");
    f.keys.rotate(vec![new_key.jwk()]);
    assert_eq!(reason_of(&auth, &new_key.sign(&claims())).await, "ok");
    // The old token was cached; the key set changed, so the cache must not vouch for it.
    assert_eq!(reason_of(&auth, &old).await, "unknown_kid");
}

#[tokio::test]
async fn explain_shows_each_check_and_never_the_token() {
    let auth = Fixture::new().default_auth();
    let t = rsa().sign(&with(claims(), "exp", json!(NOW - 100)));
    let e = auth.explain_token(&t);
    assert!(!e.valid);
    assert_eq!(e.error.map(|e| e.reason), Some("expired"));
    assert_eq!(e.alg.as_deref(), Some("RS256"));
    assert_eq!(e.kid.as_deref(), Some("rsa-1"));
    assert!(e.issuer_trusted);
    let exp = e.checks.iter().find(|c| c.check == "exp").unwrap();
    assert!(!exp.passed);
    assert!(
        e.checks
            .iter()
            .find(|c| c.check == "signature")
            .unwrap()
            .passed
    );
    let json = serde_json::to_string(&e).unwrap();
    let text = e.to_string();
    let sig = t.rsplit('.').next().unwrap();
    assert!(!json.contains(sig) && !text.contains(sig));
    assert!(text.contains("INVALID") && text.contains("FAIL"), "{text}");

    let good = auth.explain_token(&rsa().sign(&claims()));
    assert!(good.valid, "{good}");
    assert_eq!(good.principal.unwrap().roles, vec!["viewer", "editor"]);
}

#[test]
fn every_reason_is_a_listed_metric_label() {
    use crate::AuthnError as E;
    for e in [
        E::MISSING_TOKEN,
        E::MALFORMED,
        E::TOO_LARGE,
        E::BAD_SIGNATURE,
        E::UNKNOWN_KID,
        E::ALG_NOT_ALLOWED,
        E::KEY_MISMATCH,
        E::EXPIRED,
        E::NOT_YET_VALID,
        E::ISSUED_IN_FUTURE,
        E::WRONG_ISSUER,
        E::WRONG_AUDIENCE,
        E::WRONG_AZP,
        E::WRONG_TOKEN_TYPE,
        E::MISSING_EXP,
        E::MISSING_SUB,
        E::BAD_CLAIM,
        E::JWKS_UNAVAILABLE,
    ] {
        assert!(E::REASONS.contains(&e.reason), "{e}");
    }
}

#[tokio::test]
async fn every_single_character_change_or_truncation_is_refused() {
    let auth = Fixture::new()
        .default_auth()
        .with_cache(std::time::Duration::from_secs(300), 0);
    for t in [rsa().sign(&claims()), ec().sign(&claims())] {
        assert_eq!(reason_of(&auth, &t).await, "ok");
        let bytes = t.as_bytes();
        for i in 0..bytes.len() {
            let mut m = bytes.to_vec();
            m[i] = match m[i] {
                b'.' => b'A',
                b'A' => b'B',
                _ => b'A',
            };
            let m = String::from_utf8(m).unwrap();
            assert_ne!(reason_of(&auth, &m).await, "ok", "change at {i}");
            assert_ne!(reason_of(&auth, &t[..i]).await, "ok", "truncated at {i}");
        }
    }
}
