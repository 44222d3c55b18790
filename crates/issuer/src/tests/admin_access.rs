//! Who may use the admin API: no token or a bad one is 401, a token without the role 403; the
//! master realm's bootstrap (created once, never overwriting a password) and its absence (deny
//! by default); a realm's service account with `realm-management` roles; no one hands out
//! admin roles they lack; roles, mappings and admin events.

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};

use super::admin::{A, AdminHarness, admin_harness, call, call_as, location_id, root, token_of};
use super::harness::*;
use crate::BootstrapAdmin;
use portcullis_store::Secret;

/// A `client_credentials` token of `client` in the dev realm (through the public router).
async fn client_token(h: &Harness, client: &str, secret: &str) -> String {
    let r = h
        .post_form(
            &format!("{P}/token"),
            &[("grant_type", "client_credentials")],
            Some((client, secret)),
        )
        .await;
    assert_eq!(r.status(), 200);
    json(r).await["access_token"].as_str().unwrap().to_string()
}

/// Maps `realm-management` roles to the user `user_id` of the dev realm, as the master admin.
async fn grant_admin_roles(h: &AdminHarness, user_id: &str, names: &[&str]) {
    let rm = json(
        call(
            h,
            "GET",
            &format!("{A}/clients?clientId=realm-management"),
            None,
        )
        .await,
    )
    .await;
    let rm = rm[0]["id"].as_str().unwrap().to_string();
    let mut roles = Vec::new();
    for n in names {
        roles.push(json(call(h, "GET", &format!("{A}/clients/{rm}/roles/{n}"), None).await).await);
    }
    let r = call(
        h,
        "POST",
        &format!("{A}/users/{user_id}/role-mappings/clients/{rm}"),
        Some(Value::Array(roles)),
    )
    .await;
    assert_eq!(r.status(), 204);
}

async fn user_id(h: &AdminHarness, username: &str) -> String {
    let u = json(
        call(
            h,
            "GET",
            &format!("{A}/users?username={username}&exact=true"),
            None,
        )
        .await,
    )
    .await;
    u[0]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_401_403_200_matrix() {
    let h = admin_harness().await;
    let users = format!("{A}/users");
    // No token, a malformed one, another realm's token: 401 everywhere, unknown paths too.
    for uri in [
        users.as_str(),
        "/admin/realms/nope/users",
        "/admin/realms",
        "/admin/realms/myrealm/nothing",
    ] {
        let r = call_as(&h, None, "GET", uri, None).await;
        assert_eq!(r.status(), 401, "{uri}");
        assert!(r.headers().contains_key("www-authenticate"));
        assert_eq!(json(r).await["error"], "HTTP 401 Unauthorized");
    }
    assert_eq!(
        call_as(&h, Some("not.a.jwt"), "GET", &users, None)
            .await
            .status(),
        401
    );
    assert_eq!(
        call_as(&h, None, "POST", &users, Some(json!({"username": "x"})))
            .await
            .status(),
        401
    );

    // A user of the realm without admin roles: 403.
    let bob = json(h.password_grant("bob", "password").await).await;
    let bob = bob["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        call_as(&h, Some(&bob), "GET", &users, None).await.status(),
        403
    );
    // ... and a realm's token means nothing for another realm.
    assert_eq!(
        call_as(&h, Some(&bob), "GET", "/admin/realms/master/users", None)
            .await
            .status(),
        401
    );

    // A service account with view-users: reads users, may not write them or read clients.
    let sa = user_id(&h, "service-account-svc-reports").await;
    grant_admin_roles(&h, &sa, &["view-users"]).await;
    let svc = client_token(&h, "svc-reports", "svc-secret").await;
    assert_eq!(
        call_as(&h, Some(&svc), "GET", &users, None).await.status(),
        200
    );
    assert_eq!(
        call_as(&h, Some(&svc), "GET", &format!("{A}/groups"), None)
            .await
            .status(),
        200
    );
    let r = call_as(
        &h,
        Some(&svc),
        "POST",
        &users,
        Some(json!({"username": "x"})),
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        call_as(&h, Some(&svc), "GET", &format!("{A}/clients"), None)
            .await
            .status(),
        403
    );
    assert_eq!(
        call_as(&h, Some(&svc), "GET", "/admin/realms/master/users", None)
            .await
            .status(),
        401
    );

    // With manage-users it may write users, but not hand out admin roles it lacks.
    grant_admin_roles(&h, &sa, &["manage-users"]).await;
    let svc = client_token(&h, "svc-reports", "svc-secret").await;
    let r = call_as(
        &h,
        Some(&svc),
        "POST",
        &users,
        Some(json!({"username": "x"})),
    )
    .await;
    let x = location_id(&r);
    let rm = json(
        call(
            &h,
            "GET",
            &format!("{A}/clients?clientId=realm-management"),
            None,
        )
        .await,
    )
    .await;
    let rm = rm[0]["id"].as_str().unwrap().to_string();
    let admin_role = json(
        call(
            &h,
            "GET",
            &format!("{A}/clients/{rm}/roles/realm-admin"),
            None,
        )
        .await,
    )
    .await;
    let uri = format!("{A}/users/{x}/role-mappings/clients/{rm}");
    let r = call_as(&h, Some(&svc), "POST", &uri, Some(json!([admin_role]))).await;
    assert_eq!(r.status(), 403, "no escalation to realm-admin");
    let view = json(
        call(
            &h,
            "GET",
            &format!("{A}/clients/{rm}/roles/view-users"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        call_as(&h, Some(&svc), "POST", &uri, Some(json!([view])))
            .await
            .status(),
        204
    );

    // The master admin may do anything, in any realm.
    let t = root(&h).await;
    assert_eq!(
        call_as(&h, Some(&t), "GET", &format!("{A}/clients"), None)
            .await
            .status(),
        200
    );
    let realms = json(call_as(&h, Some(&t), "GET", "/admin/realms", None).await).await;
    let names: Vec<&str> = realms
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["realm"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["master", "myrealm"]);
    let realms = json(call_as(&h, Some(&svc), "GET", "/admin/realms", None).await).await;
    assert_eq!(realms.as_array().unwrap().len(), 1, "only its own realm");

    // Every write is an admin event, failures included.
    let ev = json(
        call(
            &h,
            "GET",
            &format!("{A}/admin-events?operationTypes=CREATE&resourceTypes=USER"),
            None,
        )
        .await,
    )
    .await;
    let ev = &ev.as_array().unwrap()[0];
    assert_eq!(ev["resourcePath"], format!("users/{x}"));
    assert_eq!(ev["authDetails"]["userId"], sa.as_str());
    assert_eq!(ev["authDetails"]["realmId"], "myrealm");
    let all = json(call(&h, "GET", &format!("{A}/admin-events"), None).await).await;
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|e| e["error"] == "status 403")
    );
}

#[tokio::test]
async fn the_master_realm_is_admin_plane_only() {
    let h = admin_harness().await;
    // Not on the public (or internal) router: no discovery, no token endpoint.
    let r = h
        .get("/auth/realms/master/.well-known/openid-configuration")
        .await;
    assert_eq!(r.status(), 404);
    let r = h
        .post_form(
            "/auth/realms/master/protocol/openid-connect/token",
            &[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", "root"),
                ("password", "root-pw"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), 404);
    // Both of Keycloak's layouts on the admin plane.
    let t = root(&h).await;
    for uri in [
        format!("{A}/users"),
        format!("/auth{A}/users/"),
        format!("/auth{A}/users"),
    ] {
        assert_eq!(
            call_as(&h, Some(&t), "GET", &uri, None).await.status(),
            200,
            "{uri}"
        );
    }
    let form = "grant_type=password&client_id=admin-cli&username=root&password=wrong";
    let req = Request::post("/auth/realms/master/protocol/openid-connect/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap();
    let r = tower::ServiceExt::oneshot(h.issuer.admin_router(), req)
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["error"], "invalid_grant");
}

#[tokio::test]
async fn bootstrap_once_never_overwrites_and_deny_by_default() {
    // No bootstrap admin and no master realm: nothing can authenticate.
    let h = harness().await;
    let r = call_as(&h, None, "GET", &format!("{A}/users"), None).await;
    assert_eq!(r.status(), 401);
    let bob = json(h.password_grant("dev-admin", "admin").await).await;
    let t = bob["access_token"].as_str().unwrap();
    assert_eq!(
        call_as(&h, Some(t), "GET", &format!("{A}/users"), None)
            .await
            .status(),
        403
    );
    assert!(
        h.issuer
            .state()
            .store()
            .get_realm("master")
            .await
            .unwrap()
            .is_none()
    );

    // Bootstrapped once; a second start with another password changes nothing.
    let h = admin_harness().await;
    let again = BootstrapAdmin {
        username: "root".into(),
        password: Secret("other-pw".into()),
    };
    let issuer =
        crate::Issuer::start_with(&h.settings, h.dir.path(), h.clock.clone(), Some(&again))
            .await
            .unwrap();
    let h2 = Harness {
        issuer,
        clock: h.clock.clone(),
        settings: h.settings.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    token_of(&h2, "master", "admin-cli", "root", "root-pw").await;
    let form = "grant_type=password&client_id=admin-cli&username=root&password=other-pw";
    let req = Request::post("/realms/master/protocol/openid-connect/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap();
    let r = tower::ServiceExt::oneshot(h2.issuer.admin_router(), req)
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the stored password stays");
    // A second bootstrap name adds that admin beside the first.
    let other = BootstrapAdmin {
        username: "ops".into(),
        password: Secret("ops-pw".into()),
    };
    let issuer =
        crate::Issuer::start_with(&h.settings, h.dir.path(), h.clock.clone(), Some(&other))
            .await
            .unwrap();
    let h3 = Harness {
        issuer,
        clock: h.clock.clone(),
        settings: h.settings.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    let t = token_of(&h3, "master", "admin-cli", "ops", "ops-pw").await;
    assert_eq!(
        call_as(&h3, Some(&t), "GET", &format!("{A}/users"), None)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn roles_composites_and_client_roles() {
    let h = admin_harness().await;
    let r = call(
        &h,
        "POST",
        &format!("{A}/roles"),
        Some(json!({"name": "auditor", "description": "reads logs"})),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("/roles/auditor")
    );
    assert_eq!(
        call(
            &h,
            "POST",
            &format!("{A}/roles"),
            Some(json!({"name": "auditor"}))
        )
        .await
        .status(),
        409
    );
    let auditor = json(call(&h, "GET", &format!("{A}/roles/auditor"), None).await).await;
    assert_eq!(auditor["description"], "reads logs");
    let by_id = json(
        call(
            &h,
            "GET",
            &format!("{A}/roles-by-id/{}", auditor["id"].as_str().unwrap()),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(by_id["name"], "auditor");
    let viewer = json(call(&h, "GET", &format!("{A}/roles/viewer"), None).await).await;
    let r = call(
        &h,
        "POST",
        &format!("{A}/roles/auditor/composites"),
        Some(json!([viewer])),
    )
    .await;
    assert_eq!(r.status(), 204);
    let kids = json(call(&h, "GET", &format!("{A}/roles/auditor/composites"), None).await).await;
    assert_eq!(kids[0]["name"], "viewer");
    assert_eq!(
        json(call(&h, "GET", &format!("{A}/roles/auditor"), None).await).await["composite"],
        true
    );

    // A client role, mapped to a group; members get it in `resource_access`.
    let c = json(call(&h, "GET", &format!("{A}/clients?clientId=myclient"), None).await).await;
    let c = c[0]["id"].as_str().unwrap().to_string();
    let r = call(
        &h,
        "POST",
        &format!("{A}/clients/{c}/roles"),
        Some(json!({"name": "reader"})),
    )
    .await;
    assert_eq!(r.status(), 201);
    let reader = json(call(&h, "GET", &format!("{A}/clients/{c}/roles/reader"), None).await).await;
    assert_eq!(
        (
            reader["clientRole"].as_bool(),
            reader["containerId"].as_str()
        ),
        (Some(true), Some(c.as_str()))
    );
    let admins = json(call(&h, "GET", &format!("{A}/group-by-path/admins"), None).await).await;
    let g = admins["id"].as_str().unwrap();
    let r = call(
        &h,
        "POST",
        &format!("{A}/groups/{g}/role-mappings/clients/{c}"),
        Some(json!([reader])),
    )
    .await;
    assert_eq!(r.status(), 204);
    let maps = json(call(&h, "GET", &format!("{A}/groups/{g}/role-mappings"), None).await).await;
    assert_eq!(
        maps["clientMappings"]["myclient"]["mappings"][0]["name"],
        "reader"
    );
    assert_eq!(maps["realmMappings"][0]["name"], "admin");
    let t = json(h.password_grant("dev-admin", "admin").await).await;
    let claims = h.verify(t["access_token"].as_str().unwrap()).await;
    assert_eq!(
        claims["resource_access"]["myclient"]["roles"],
        json!(["reader"])
    );

    // Effective and available realm roles of a user; a role's holders; delete.
    let alice = json(
        call(
            &h,
            "GET",
            &format!("{A}/users?username=alice&exact=true"),
            None,
        )
        .await,
    )
    .await;
    let alice = alice[0]["id"].as_str().unwrap().to_string();
    let eff = json(
        call(
            &h,
            "GET",
            &format!("{A}/users/{alice}/role-mappings/realm/composite"),
            None,
        )
        .await,
    )
    .await;
    let eff: Vec<&str> = eff
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(eff.contains(&"editor") && eff.contains(&"viewer") && !eff.contains(&"admin"));
    let avail = json(
        call(
            &h,
            "GET",
            &format!("{A}/users/{alice}/role-mappings/realm/available"),
            None,
        )
        .await,
    )
    .await;
    assert!(avail.to_string().contains("\"admin\"") && !avail.to_string().contains("\"editor\""));
    let r = call(
        &h,
        "POST",
        &format!("{A}/users/{alice}/role-mappings/realm"),
        Some(json!([auditor])),
    )
    .await;
    assert_eq!(r.status(), 204);
    let holders = json(call(&h, "GET", &format!("{A}/roles/auditor/users"), None).await).await;
    assert_eq!(holders[0]["username"], "alice");
    let r = call(
        &h,
        "POST",
        &format!("{A}/users/{alice}/role-mappings/realm"),
        Some(json!([{"name": "auditor", "id": "wrong"}])),
    )
    .await;
    assert_eq!(r.status(), 404, "a role's id must match its name");
    assert_eq!(
        call(&h, "DELETE", &format!("{A}/roles/auditor"), None)
            .await
            .status(),
        204
    );
    let direct = json(
        call(
            &h,
            "GET",
            &format!("{A}/users/{alice}/role-mappings/realm"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(direct, json!([]));
    assert_eq!(
        call(
            &h,
            "PUT",
            &format!("{A}/roles/viewer"),
            Some(json!({"name": "seer"}))
        )
        .await
        .status(),
        400
    );
}

#[tokio::test]
async fn sessions_and_login_events() {
    let h = admin_harness().await;
    let t = json(h.password_grant("alice", "password").await).await;
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    let alice = json(
        call(
            &h,
            "GET",
            &format!("{A}/users?username=alice&exact=true"),
            None,
        )
        .await,
    )
    .await;
    let alice = alice[0]["id"].as_str().unwrap().to_string();
    let s = json(call(&h, "GET", &format!("{A}/users/{alice}/sessions"), None).await).await;
    assert_eq!(s.as_array().unwrap().len(), 1);
    assert_eq!(s[0]["userId"], alice.as_str());
    assert_eq!(s[0]["start"], T0 * 1000);
    assert!(s[0]["clients"].to_string().contains("myclient"));
    let sid = s[0]["id"].as_str().unwrap();
    assert_eq!(
        call(&h, "DELETE", &format!("{A}/sessions/{sid}"), None)
            .await
            .status(),
        204
    );
    assert_eq!(
        h.refresh_grant(&rt, Some(("myclient", "my-client-secret")))
            .await
            .status(),
        400
    );
    assert_eq!(
        call(&h, "DELETE", &format!("{A}/sessions/{sid}"), None)
            .await
            .status(),
        404
    );

    let t = json(h.password_grant("alice", "password").await).await;
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(
        call(&h, "POST", &format!("{A}/users/{alice}/logout"), None)
            .await
            .status(),
        204
    );
    assert_eq!(
        h.refresh_grant(&rt, Some(("myclient", "my-client-secret")))
            .await
            .status(),
        400
    );
    let s = json(call(&h, "GET", &format!("{A}/users/{alice}/sessions"), None).await).await;
    assert_eq!(s, json!([]));

    assert_eq!(h.password_grant("alice", "wrong").await.status(), 401);
    let ev = json(call(&h, "GET", &format!("{A}/events?type=LOGIN_ERROR"), None).await).await;
    assert_eq!(ev[0]["type"], "LOGIN_ERROR");
    assert_eq!(ev[0]["userId"], alice.as_str());
    assert_eq!(ev[0]["error"], "invalid_user_credentials");
    let ev = json(call(&h, "GET", &format!("{A}/events?type=LOGIN&max=1"), None).await).await;
    assert_eq!(ev.as_array().unwrap().len(), 1);
}
