//! The admin API: create, read, update and disable users; groups; clients without secrets.

use axum::body::Body;
use axum::http::{Request, Response};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::harness::*;

const A: &str = "/admin/realms/myrealm";

async fn call(h: &Harness, method: &str, uri: &str, body: Option<Value>) -> Response<Body> {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    h.issuer
        .admin_router()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn users_create_update_disable() {
    let h = harness().await;
    let r = call(
        &h,
        "POST",
        &format!("{A}/users"),
        Some(json!({
            "username": "dave", "email": "dave@example.com", "groups": ["/staff"],
            "credentials": [{"type": "password", "value": "dave-pw"}]
        })),
    )
    .await;
    assert_eq!(r.status(), 201);
    let id = json(r).await["id"].as_str().unwrap().to_string();
    let again = call(
        &h,
        "POST",
        &format!("{A}/users"),
        Some(json!({"username": "DAVE"})),
    )
    .await;
    assert_eq!(again.status(), 409);
    assert_eq!(h.password_grant("dave", "dave-pw").await.status(), 200);

    let u = json(call(&h, "GET", &format!("{A}/users/{id}"), None).await).await;
    assert_eq!(u["groups"], json!(["/staff"]));
    assert!(u.get("password_hash").is_none() && !u.to_string().contains("argon2"));

    let r = call(
        &h,
        "PUT",
        &format!("{A}/users/{id}"),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(h.password_grant("dave", "dave-pw").await.status(), 400);
    let list = json(call(&h, "GET", &format!("{A}/users"), None).await).await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|u| u["username"] == "dave" && u["enabled"] == false)
    );
    assert_eq!(
        call(&h, "GET", "/admin/realms/nope/users", None)
            .await
            .status(),
        404
    );
    assert_eq!(
        call(&h, "GET", &format!("{A}/users/nope"), None)
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn groups_and_clients() {
    let h = harness().await;
    let r = call(
        &h,
        "POST",
        &format!("{A}/groups"),
        Some(json!({"name": "oncall", "path": "/staff/oncall", "realmRoles": ["viewer"]})),
    )
    .await;
    assert_eq!(r.status(), 201);
    let groups = json(call(&h, "GET", &format!("{A}/groups"), None).await).await;
    let staff = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "staff")
        .unwrap();
    assert!(
        staff["subGroups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["path"] == "/staff/oncall")
    );
    let r = call(
        &h,
        "POST",
        &format!("{A}/groups"),
        Some(json!({"name": "x", "path": "/missing/x"})),
    )
    .await;
    assert_eq!(r.status(), 400);

    let r = call(
        &h,
        "POST",
        &format!("{A}/clients"),
        Some(json!({
            "clientId": "batch", "secret": "batch-secret", "serviceAccountsEnabled": true
        })),
    )
    .await;
    assert_eq!(r.status(), 201);
    let clients = json(call(&h, "GET", &format!("{A}/clients"), None).await).await;
    assert!(
        !clients.to_string().contains("batch-secret") && !clients.to_string().contains("sha256$")
    );
    let r = h
        .post_form(
            &format!("{P}/token"),
            &[("grant_type", "client_credentials")],
            Some(("batch", "batch-secret")),
        )
        .await;
    assert_eq!(
        r.status(),
        200,
        "the service-account user is created with the client"
    );

    // Disabling a client through PUT takes effect at once.
    let r = call(
        &h,
        "PUT",
        &format!("{A}/clients/svc-reports"),
        Some(json!({"enabled": false, "serviceAccountsEnabled": true})),
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = h
        .post_form(
            &format!("{P}/token"),
            &[("grant_type", "client_credentials")],
            Some(("svc-reports", "svc-secret")),
        )
        .await;
    assert_eq!(r.status(), 401);
}

/// Refreshes with `rt` as `myclient`; returns the response JSON and the access token's claims.
async fn refresh(h: &Harness, rt: &str) -> (Value, Value) {
    let r = h
        .refresh_grant(rt, Some(("myclient", "my-client-secret")))
        .await;
    let status = r.status();
    let body = json(r).await;
    assert_eq!(status, 200, "{body}");
    let claims = h.verify(body["access_token"].as_str().unwrap()).await;
    (body, claims)
}

fn realm_roles(claims: &Value) -> Vec<String> {
    claims["realm_access"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn admin_changes_reach_the_next_refreshed_token() {
    let h = harness().await;
    let login = json(h.password_grant("bob", "password").await).await;
    let rt = login["refresh_token"].as_str().unwrap().to_string();
    // The first refresh caches bob and his (empty) grants.
    let (body, claims) = refresh(&h, &rt).await;
    assert!(!realm_roles(&claims).contains(&"admin".to_string()));
    let id = claims["sub"].as_str().unwrap().to_string();

    let r = call(
        &h,
        "PUT",
        &format!("{A}/users/{id}"),
        Some(json!({"realmRoles": ["admin"], "groups": ["/staff"], "email": "bob@new.example"})),
    )
    .await;
    assert_eq!(r.status(), 204);
    let (body, claims) = refresh(&h, body["refresh_token"].as_str().unwrap()).await;
    let roles = realm_roles(&claims);
    for r in ["admin", "editor", "viewer"] {
        assert!(roles.contains(&r.to_string()), "{r} in {roles:?}");
    }
    assert_eq!(claims["email"], "bob@new.example");

    // A new group role reaches members at once too (the directory reloads).
    let r = call(
        &h,
        "POST",
        &format!("{A}/groups"),
        Some(json!({"name": "oncall", "path": "/oncall", "realmRoles": ["viewer"]})),
    )
    .await;
    assert_eq!(r.status(), 201);
    let r = call(
        &h,
        "PUT",
        &format!("{A}/users/{id}"),
        Some(json!({"groups": ["/oncall"], "realmRoles": ["viewer"]})),
    )
    .await;
    assert_eq!(r.status(), 204);
    let (body, claims) = refresh(&h, body["refresh_token"].as_str().unwrap()).await;
    assert!(!realm_roles(&claims).contains(&"admin".to_string()));

    // Disabling the user ends refreshes with the next request.
    let r = call(
        &h,
        "PUT",
        &format!("{A}/users/{id}"),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = h
        .refresh_grant(
            body["refresh_token"].as_str().unwrap(),
            Some(("myclient", "my-client-secret")),
        )
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn writes_from_elsewhere_reach_the_next_refreshed_token() {
    // Another replica or `realm import --sync` writes the store and bumps the realm's
    // revision; the rotation reports it and this issuer reloads before minting.
    let h = harness().await;
    let login = json(h.password_grant("bob", "password").await).await;
    let (body, claims) = refresh(&h, login["refresh_token"].as_str().unwrap()).await;
    let id = claims["sub"].as_str().unwrap().to_string();
    let store = h.issuer.state().store();
    store
        .set_user_roles(&id, &[portcullis_store::RoleRef::realm("admin")])
        .await
        .unwrap();
    let (body, claims) = refresh(&h, body["refresh_token"].as_str().unwrap()).await;
    assert!(
        !realm_roles(&claims).contains(&"admin".to_string()),
        "not announced yet: still the cached grants"
    );
    store.bump_realm_revision("myrealm").await.unwrap();
    let (_, claims) = refresh(&h, body["refresh_token"].as_str().unwrap()).await;
    assert!(realm_roles(&claims).contains(&"admin".to_string()));
}

#[tokio::test]
async fn userinfo_follows_writes_from_elsewhere() {
    let h = harness().await;
    let login = json(h.password_grant("bob", "password").await).await;
    let at = login["access_token"].as_str().unwrap().to_string();
    let userinfo = |at: String| {
        let req = Request::get(format!("{P}/userinfo"))
            .header("authorization", format!("Bearer {at}"))
            .body(Body::empty())
            .unwrap();
        h.send(req)
    };
    assert_eq!(
        json(userinfo(at.clone()).await).await["email"],
        "bob@example.com"
    );
    let store = h.issuer.state().store();
    let mut bob = store
        .user_by_username("myrealm", "bob")
        .await
        .unwrap()
        .unwrap();
    bob.email = Some("bob@elsewhere.example".into());
    bob.password_hash = None;
    store.put_user(&bob).await.unwrap();
    store.bump_realm_revision("myrealm").await.unwrap();
    assert_eq!(
        json(userinfo(at).await).await["email"],
        "bob@elsewhere.example"
    );
}
