//! The token endpoint: each grant, client authentication, refresh rotation and reuse, lockout.

use super::harness::*;

#[tokio::test]
async fn client_credentials_for_service_accounts_only() {
    let h = harness().await;
    let url = format!("{P}/token");
    let r = h
        .post_form(
            &url,
            &[("grant_type", "client_credentials")],
            Some(("svc-reports", "svc-secret")),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body = json(r).await;
    assert!(body.get("refresh_token").is_none());
    let c = h.verify(body["access_token"].as_str().unwrap()).await;
    assert_eq!(c["iss"], "https://id.test/auth/realms/myrealm");
    assert_eq!(c["azp"], "svc-reports");
    assert_eq!(c["aud"], "svc-reports");
    assert_eq!(c["typ"], "Bearer");
    assert_eq!(c["preferred_username"], "service-account-svc-reports");
    assert_eq!(c["realm_access"]["roles"], serde_json::json!(["viewer"]));
    assert_eq!(c["exp"].as_u64().unwrap(), T0 + 300);
    assert_eq!(c["iat"].as_u64().unwrap(), T0);

    // client_secret_post works too.
    let r = h
        .post_form(
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "svc-reports"),
                ("client_secret", "svc-secret"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), 200);

    // A client without service accounts, a wrong secret, an unknown client.
    let r = h
        .post_form(
            &url,
            &[("grant_type", "client_credentials")],
            Some(("myclient", "my-client-secret")),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"], "unauthorized_client");
    for (id, secret) in [("svc-reports", "wrong"), ("ghost", "x")] {
        let r = h
            .post_form(
                &url,
                &[("grant_type", "client_credentials")],
                Some((id, secret)),
            )
            .await;
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key("www-authenticate"));
        assert_eq!(json(r).await["error"], "invalid_client");
    }
    let r = h
        .post_form(
            &url,
            &[("grant_type", "magic")],
            Some(("svc-reports", "svc-secret")),
        )
        .await;
    assert_eq!(json(r).await["error"], "unsupported_grant_type");
    let r = h
        .post_form(&url, &[("client_id", "svc-reports")], None)
        .await;
    assert_eq!(json(r).await["error"], "invalid_request");
}

#[tokio::test]
async fn password_grant_carries_keycloak_claims() {
    let h = harness().await;
    let r = h.password_grant("alice", "password").await;
    assert_eq!(r.status(), 200);
    let body = json(r).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    let c = h.verify(body["access_token"].as_str().unwrap()).await;
    let mut roles: Vec<String> =
        serde_json::from_value(c["realm_access"]["roles"].clone()).unwrap();
    roles.sort();
    assert_eq!(roles, vec!["editor", "viewer"]);
    assert_eq!(c["groups"], serde_json::json!(["/staff"]));
    assert_eq!(c["preferred_username"], "alice");
    assert_eq!(c["email"], "alice@example.com");
    assert_eq!(c["aud"], "myclient");
    assert_eq!(c["scope"], "openid profile email");
    assert!(c["sid"].is_string() && c["jti"].is_string());
    let id = h.verify(body["id_token"].as_str().unwrap()).await;
    assert_eq!(id["typ"], "ID");
    assert_eq!(id["sid"], c["sid"]);
    assert_eq!(body["session_state"], c["sid"]);

    let admin = h
        .verify(
            json(h.password_grant("dev-admin", "admin").await).await["access_token"]
                .as_str()
                .unwrap(),
        )
        .await;
    assert_eq!(
        admin["realm_access"]["roles"].as_array().unwrap().len(),
        3,
        "admin → editor → viewer"
    );

    let r = h.password_grant("alice", "wrong").await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"], "invalid_grant");
    let r = h
        .post_form(
            &format!("{P}/token"),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "password"),
                ("client_id", "spa"),
            ],
            None,
        )
        .await;
    assert_eq!(
        json(r).await["error"],
        "unauthorized_client",
        "spa has no direct access grants"
    );
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let h = harness().await;
    let first = json(h.password_grant("bob", "password").await).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_string();
    let refresh = |rt: String| {
        let h = &h;
        async move {
            h.refresh_grant(&rt, Some(("myclient", "my-client-secret")))
                .await
        }
    };
    h.clock.advance(10);
    let r = refresh(rt1.clone()).await;
    assert_eq!(r.status(), 200);
    let second = json(r).await;
    let rt2 = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2);
    let c = h.verify(second["access_token"].as_str().unwrap()).await;
    assert_eq!(c["iat"].as_u64().unwrap(), T0 + 10);

    // Replaying the rotated token fails and takes the current one down with it.
    let r = refresh(rt1).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"], "invalid_grant");
    let r = refresh(rt2).await;
    assert_eq!(json(r).await["error"], "invalid_grant");

    // Another client cannot use a family it does not own.
    let third = json(h.password_grant("bob", "password").await).await;
    let r = h
        .refresh_grant(
            third["refresh_token"].as_str().unwrap(),
            Some(("svc-reports", "svc-secret")),
        )
        .await;
    assert_eq!(json(r).await["error"], "invalid_grant");
}

#[tokio::test]
async fn lockout_after_failure_factor_and_unlock_after_wait() {
    let h = harness().await;
    // The dev realm: failureFactor 5, waitIncrementSeconds 60.
    for _ in 0..5 {
        assert_eq!(h.password_grant("alice", "nope").await.status(), 400);
    }
    let r = h.password_grant("alice", "password").await;
    assert_eq!(r.status(), 400, "locked even with the right password");
    h.clock.advance(61);
    assert_eq!(h.password_grant("alice", "password").await.status(), 200);
    let events = h
        .issuer
        .state()
        .store()
        .list_events("myrealm")
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.error.as_deref() == Some("user_temporarily_disabled"))
    );
    assert_eq!(events.last().unwrap().kind, "LOGIN");
}

#[tokio::test]
async fn source_ip_lockout_spans_usernames_and_disabled_users_cannot_sign_in() {
    let h = harness().await;
    let from = |user: &'static str, pw: &'static str, ip: &'static str| {
        let h = &h;
        async move {
            let req = axum::http::Request::post(format!("{P}/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .extension(crate::ClientIp(ip.parse().unwrap()))
                .body(axum::body::Body::from(
                    serde_urlencoded::to_string([
                        ("grant_type", "password"),
                        ("username", user),
                        ("password", pw),
                        ("client_id", "myclient"),
                        ("client_secret", "my-client-secret"),
                    ])
                    .unwrap(),
                ))
                .unwrap();
            h.send(req).await.status()
        }
    };
    // Five failures from one address, spread over unknown and real usernames.
    for user in ["ghost1", "ghost2", "ghost3", "bob", "ghost4"] {
        assert_eq!(from(user, "bad", "192.0.2.7").await, 400);
    }
    assert_eq!(
        from("alice", "password", "192.0.2.7").await,
        400,
        "address locked"
    );
    assert_eq!(
        from("alice", "password", "192.0.2.8").await,
        200,
        "other address fine"
    );
    h.clock.advance(61);
    assert_eq!(from("alice", "password", "192.0.2.7").await, 200);

    let store = h.issuer.state().store();
    let mut bob = store
        .user_by_username("myrealm", "bob")
        .await
        .unwrap()
        .unwrap();
    bob.enabled = false;
    bob.password_hash = None;
    store.put_user(&bob).await.unwrap();
    let r = h.password_grant("bob", "password").await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error_description"], "Account disabled");
}

#[tokio::test]
async fn sync_keeps_existing_refresh_tokens_valid() {
    let h = harness().await;
    let first = json(h.password_grant("bob", "password").await).await;
    let rt = first["refresh_token"].as_str().unwrap();

    let mut template: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dev_realm()).unwrap()).unwrap();
    template["users"][2]["email"] = "bob@new.example.com".into();
    let file = h.dir.path().join("changed.json");
    std::fs::write(&file, template.to_string()).unwrap();
    let outcome = crate::realm_import(&h.settings, h.dir.path(), &file, true)
        .await
        .unwrap();
    assert_eq!(outcome, crate::realm_import::Outcome::Synced);

    let r = h
        .refresh_grant(rt, Some(("myclient", "my-client-secret")))
        .await;
    assert_eq!(r.status(), 200);
    let c = h
        .verify(json(r).await["access_token"].as_str().unwrap())
        .await;
    assert_eq!(c["email"], "bob@new.example.com");
}

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
