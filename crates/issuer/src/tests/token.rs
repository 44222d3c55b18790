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
    assert_eq!(r.status(), 401, "Keycloak's status for a wrong password");
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
        assert_eq!(h.password_grant("alice", "nope").await.status(), 401);
    }
    let r = h.password_grant("alice", "password").await;
    assert_eq!(
        r.status(),
        401,
        "locked even with the right password, answered alike"
    );
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
        assert_eq!(from(user, "bad", "192.0.2.7").await, 401);
    }
    assert_eq!(
        from("alice", "password", "192.0.2.7").await,
        401,
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
