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
