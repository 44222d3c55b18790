//! Refresh tokens as Keycloak's JWTs: their claims, rotation, introspection, what is refused
//! (forged, tampered, old-format, other realms' tokens) and at what cost to the store, and the
//! logout a client makes with one.

use super::harness::*;

/// The claims of a JWT, read without checking its signature (what Keycloak tooling does).
fn payload(token: &str) -> serde_json::Value {
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

/// `token` with its claims replaced by `claims`, the header and signature kept.
fn with_payload(token: &str, claims: &serde_json::Value) -> String {
    use base64::Engine;
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(claims).unwrap());
    parts.join(".")
}

const MY: Option<(&str, &str)> = Some(("myclient", "my-client-secret"));

#[tokio::test]
async fn refresh_tokens_are_keycloak_shaped_jwts() {
    let h = harness().await;
    let body = json(h.password_grant("alice", "password").await).await;
    let rt = body["refresh_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(rt).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::HS512);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert!(header.kid.is_some());
    let access = h.verify(body["access_token"].as_str().unwrap()).await;
    let c = payload(rt);
    assert_eq!(c["typ"], "Refresh");
    assert_eq!(c["iss"], "https://id.test/auth/realms/myrealm");
    assert_eq!(
        c["aud"], c["iss"],
        "Keycloak's refresh audience is the issuer"
    );
    assert_eq!(c["azp"], "myclient");
    for same in ["sub", "sid", "scope"] {
        assert_eq!(c[same], access[same], "{same}");
    }
    assert_eq!(c["iat"].as_u64().unwrap(), T0);
    assert_eq!(c["exp"].as_u64().unwrap(), T0 + 1800);
    assert_eq!(body["refresh_expires_in"], 1800);
    let jti = c["jti"].as_str().unwrap();
    assert!(jti.len() > 36, "{jti}");

    // Rotation: a new JWT of the same family, times from the clock.
    h.clock.advance(7);
    let next = json(h.refresh_grant(rt, MY).await).await;
    let n = payload(next["refresh_token"].as_str().unwrap());
    assert_eq!(n["iat"].as_u64().unwrap(), T0 + 7);
    assert_eq!(n["exp"].as_u64().unwrap(), T0 + 7 + 1800);
    assert_ne!(n["jti"], c["jti"]);
    assert_eq!(
        n["jti"].as_str().unwrap().split(':').next(),
        jti.split(':').next(),
        "same family"
    );
    assert_eq!((&n["sub"], &n["sid"]), (&c["sub"], &c["sid"]));

    // Introspection answers with the current token's claims, and nothing for the old one.
    let intro = json(
        h.post_form(
            &format!("{P}/token/introspect"),
            &[("token", next["refresh_token"].as_str().unwrap())],
            MY,
        )
        .await,
    )
    .await;
    assert_eq!(intro["active"], true);
    assert_eq!(intro["typ"], "Refresh");
    assert_eq!(intro["client_id"], "myclient");
    assert_eq!(intro["sid"], c["sid"]);
    let intro = json(
        h.post_form(&format!("{P}/token/introspect"), &[("token", rt)], MY)
            .await,
    )
    .await;
    assert_eq!(intro["active"], false);
}

/// The issuer with the dev realm and a copy of it named `other` (same clients and users).
async fn two_realms() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut other: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dev_realm()).unwrap()).unwrap();
    other["realm"] = "other".into();
    let file = dir.path().join("other.json");
    std::fs::write(&file, other.to_string()).unwrap();
    let mut settings = settings();
    settings.import.push(file);
    let clock = portcullis_core::clock::ManualClock::new(T0);
    let issuer = crate::Issuer::start(&settings, dir.path(), clock.clone())
        .await
        .unwrap();
    Harness {
        issuer,
        clock,
        settings,
        dir,
    }
}

#[tokio::test]
async fn forged_tampered_old_and_foreign_refresh_tokens_are_invalid_grant() {
    let h = two_realms().await;
    let body = json(h.password_grant("bob", "password").await).await;
    let rt = body["refresh_token"].as_str().unwrap();
    let c = payload(rt);
    let refused = |token: String, why: &'static str| {
        let h = &h;
        async move {
            let r = h.refresh_grant(&token, MY).await;
            assert_eq!(r.status(), 400, "{why}");
            assert_eq!(json(r).await["error"], "invalid_grant", "{why}");
        }
    };

    // Claims changed under the old signature; a broken signature; no signature; alg none.
    let mut evil = c.clone();
    evil["sub"] = "someone-else".into();
    refused(with_payload(rt, &evil), "changed subject").await;
    let mut longer = c.clone();
    longer["exp"] = (T0 + 999_999).into();
    refused(with_payload(rt, &longer), "extended expiry").await;
    let (signed, sig) = rt.rsplit_once('.').unwrap();
    let flipped = if sig.ends_with('A') { "B" } else { "A" };
    refused(
        format!("{signed}.{}{flipped}", &sig[..sig.len() - 1]),
        "flipped signature",
    )
    .await;
    refused(format!("{signed}."), "no signature").await;
    {
        use base64::Engine;
        let none = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = signed.split_once('.').unwrap().1;
        refused(format!("{none}.{body}."), "alg none").await;
    }
    // An access token (the realm's RSA key, typ Bearer) is no refresh token.
    refused(
        body["access_token"].as_str().unwrap().to_string(),
        "access token",
    )
    .await;

    // The opaque format of earlier versions, even for a family the store still holds.
    let bob = h
        .issuer
        .state()
        .store()
        .user_by_username("myrealm", "bob")
        .await
        .unwrap()
        .unwrap();
    let old = "0b1e3c4d-0000-4000-8000-000000000000.old-format-secret";
    h.issuer
        .state()
        .store()
        .create_family(&portcullis_store::FamilyRow {
            id: "0b1e3c4d-0000-4000-8000-000000000000".into(),
            realm: "myrealm".into(),
            client_id: "myclient".into(),
            user_id: bob.id,
            session_id: None,
            scope: "openid profile email".into(),
            current_hash: crate::secrets::token_hash(old),
            code_hash: None,
            created_at: T0 as i64,
            updated_at: T0 as i64,
            revoked: false,
        })
        .await
        .unwrap();
    refused(old.to_string(), "old format").await;

    // Signed for another realm: refused here, and this realm's refused there.
    let other = h
        .post_form(
            "/auth/realms/other/protocol/openid-connect/token",
            &[
                ("grant_type", "password"),
                ("username", "bob"),
                ("password", "password"),
            ],
            MY,
        )
        .await;
    let other = json(other).await;
    let other_rt = other["refresh_token"].as_str().unwrap();
    assert_ne!(
        jsonwebtoken::decode_header(other_rt).unwrap().kid,
        jsonwebtoken::decode_header(rt).unwrap().kid
    );
    refused(other_rt.to_string(), "other realm's token").await;
    let r = h
        .post_form(
            "/auth/realms/other/protocol/openid-connect/token",
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
            MY,
        )
        .await;
    assert_eq!(json(r).await["error"], "invalid_grant");

    // None of that reached the family: the genuine token still rotates.
    let r = h.refresh_grant(rt, MY).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn refresh_grant_costs_one_store_statement() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings();
    let store = portcullis_store::open(&settings.database, dir.path())
        .await
        .unwrap();
    let calls = super::counting::Counting::new(store);
    let clock = portcullis_core::clock::ManualClock::new(T0);
    let issuer = crate::Issuer::start_on(calls.clone(), &settings, clock.clone())
        .await
        .unwrap();
    let h = Harness {
        issuer,
        clock,
        settings,
        dir,
    };
    let body = json(h.password_grant("bob", "password").await).await;
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    // Warm the user cache.
    let rt = json(h.refresh_grant(&rt, MY).await).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    calls.take();
    assert_eq!(h.refresh_grant(&rt, MY).await.status(), 200);
    assert_eq!(calls.take(), ["rotate_live_families"]);
    // A forged token costs the store nothing.
    let forged = format!("{}x", &rt[..rt.len() - 1]);
    assert_eq!(h.refresh_grant(&forged, MY).await.status(), 400);
    assert!(calls.take().is_empty());
}

#[tokio::test]
async fn logout_with_a_refresh_token_ends_the_session() {
    let h = harness().await;
    let lo = format!("{P}/logout");
    let t = json(h.password_grant("alice", "password").await).await;
    let (at, rt) = (
        t["access_token"].as_str().unwrap(),
        t["refresh_token"].as_str().unwrap(),
    );
    // The client authenticates; the token must be its own.
    let r = h
        .post_form(
            &lo,
            &[("client_id", "myclient"), ("refresh_token", rt)],
            None,
        )
        .await;
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["error"], "invalid_client");
    let r = h
        .post_form(
            &lo,
            &[("refresh_token", rt)],
            Some(("svc-reports", "svc-secret")),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"], "invalid_grant");
    let r = h
        .post_form(&lo, &[("refresh_token", "not-a-token")], MY)
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"], "invalid_grant");
    // A second session of the same user is not touched.
    let other = json(h.password_grant("alice", "password").await).await;

    // client_secret_post, as python-keycloak sends it.
    let r = h
        .post_form(
            &lo,
            &[
                ("client_id", "myclient"),
                ("client_secret", "my-client-secret"),
                ("refresh_token", rt),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
    assert!(body_bytes(r).await.is_empty());
    assert_eq!(
        json(h.refresh_grant(rt, MY).await).await["error"],
        "invalid_grant"
    );
    let intro = |token: String| {
        let h = &h;
        async move {
            json(
                h.post_form(&format!("{P}/token/introspect"), &[("token", &token)], MY)
                    .await,
            )
            .await["active"]
                .clone()
        }
    };
    assert_eq!(intro(at.to_string()).await, false, "access token inactive");
    assert_eq!(intro(rt.to_string()).await, false);
    assert_eq!(
        intro(other["access_token"].as_str().unwrap().to_string()).await,
        true
    );
    // Again: the session is gone already, still 204.
    let r = h.post_form(&lo, &[("refresh_token", rt)], MY).await;
    assert_eq!(r.status(), 204);
    let events = h
        .issuer
        .state()
        .store()
        .list_events("myrealm")
        .await
        .unwrap();
    assert_eq!(events.iter().filter(|e| e.kind == "LOGOUT").count(), 1);
}

#[tokio::test]
async fn refresh_tokens_outlive_a_signing_key_rotation() {
    let h = harness().await;
    let body = json(h.password_grant("bob", "password").await).await;
    let rt = body["refresh_token"].as_str().unwrap();
    let before = jsonwebtoken::decode_header(rt).unwrap().kid;
    // The retired key's refresh key verifies for the grace period; new tokens use the new one.
    h.issuer.rotate_keys("myrealm").await.unwrap();
    let r = h.refresh_grant(rt, MY).await;
    assert_eq!(r.status(), 200);
    let next = json(r).await["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(jsonwebtoken::decode_header(&next).unwrap().kid, before);
    assert_eq!(h.refresh_grant(&next, MY).await.status(), 200);
}

#[tokio::test]
async fn browser_logout_by_post_still_redirects() {
    let h = harness().await;
    let t = json(h.password_grant("alice", "password").await).await;
    // keycloak-js's `logoutMethod: 'POST'`: a form with the id token, no refresh token.
    let r = h
        .post_form(
            &format!("{P}/logout"),
            &[
                ("id_token_hint", t["id_token"].as_str().unwrap()),
                ("client_id", "myclient"),
                ("post_logout_redirect_uri", "http://localhost:8000/"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "http://localhost:8000/");
    let r = h
        .refresh_grant(t["refresh_token"].as_str().unwrap(), MY)
        .await;
    assert_eq!(json(r).await["error"], "invalid_grant", "the session ended");
}
