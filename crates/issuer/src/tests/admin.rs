//! The admin API with a master admin's token: users, groups and clients in Keycloak's dialect
//! (ids, `Location`, trailing slashes, partial updates), admin changes reaching tokens.

use axum::body::Body;
use axum::http::{Request, Response};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::harness::*;
use crate::BootstrapAdmin;
use portcullis_store::Secret;

pub const A: &str = "/admin/realms/myrealm";

/// `harness()` with a bootstrap admin `root` / `root-pw` in `master`, and that admin's token
/// (the manual clock keeps it fresh).
pub struct AdminHarness {
    pub h: Harness,
    pub token: String,
}

impl std::ops::Deref for AdminHarness {
    type Target = Harness;

    fn deref(&self) -> &Harness {
        &self.h
    }
}

/// The issuer of `harness()` with a bootstrap admin `root` / `root-pw` in `master`.
pub async fn admin_harness() -> AdminHarness {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings();
    let clock = portcullis_core::clock::ManualClock::new(T0);
    let admin = BootstrapAdmin {
        username: "root".into(),
        password: Secret("root-pw".into()),
    };
    let issuer = crate::Issuer::start_with(&settings, dir.path(), clock.clone(), Some(&admin))
        .await
        .unwrap();
    let h = Harness {
        issuer,
        clock,
        settings,
        dir,
    };
    let token = root(&h).await;
    AdminHarness { h, token }
}

/// A request to the admin router (the management listener's), with a bearer token if given.
pub async fn call_as(
    h: &Harness,
    token: Option<&str>,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> Response<Body> {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "mgmt.test:9000")
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    h.issuer
        .admin_router()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap()
}

/// A password-grant token of `realm` from the admin plane's token endpoint.
pub async fn token_of(h: &Harness, realm: &str, client: &str, user: &str, pw: &str) -> String {
    let form = serde_urlencoded::to_string([
        ("grant_type", "password"),
        ("client_id", client),
        ("username", user),
        ("password", pw),
    ])
    .unwrap();
    let req = Request::post(format!("/realms/{realm}/protocol/openid-connect/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap();
    let r = h.issuer.admin_router().oneshot(req).await.unwrap();
    let status = r.status();
    let body = json(r).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

/// The master admin's token.
pub async fn root(h: &Harness) -> String {
    token_of(h, "master", "admin-cli", "root", "root-pw").await
}

/// `call_as` with the master admin's token.
pub async fn call(
    h: &AdminHarness,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> Response<Body> {
    call_as(h, Some(&h.token), method, uri, body).await
}

/// The last path segment of a 201's `Location`.
pub fn location_id(r: &Response<Body>) -> String {
    assert_eq!(r.status(), 201);
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(loc.starts_with("http://mgmt.test:9000/"), "{loc}");
    loc.rsplit('/').next().unwrap().to_string()
}

#[tokio::test]
async fn users_create_update_disable_delete() {
    let h = admin_harness().await;
    let r = call(
        &h,
        "POST",
        &format!("{A}/users/"),
        Some(json!({
            "username": "dave", "email": "dave@example.com", "groups": ["/staff"],
            "emailVerified": true,
            "credentials": [{"type": "password", "value": "dave-pw"}]
        })),
    )
    .await;
    let id = location_id(&r);
    let again = call(
        &h,
        "POST",
        &format!("{A}/users"),
        Some(json!({"username": "DAVE"})),
    )
    .await;
    assert_eq!(again.status(), 409);
    assert_eq!(
        json(again).await["errorMessage"],
        "User exists with same username"
    );
    assert_eq!(h.password_grant("dave", "dave-pw").await.status(), 200);

    let u = json(call(&h, "GET", &format!("{A}/users/{id}"), None).await).await;
    assert_eq!(
        (u["id"].as_str(), u["username"].as_str()),
        (Some(id.as_str()), Some("dave"))
    );
    assert_eq!(u["emailVerified"], true);
    assert_eq!(u["createdTimestamp"], T0 * 1000);
    assert!(!u.to_string().contains("argon2"));
    let groups = json(call(&h, "GET", &format!("{A}/users/{id}/groups"), None).await).await;
    assert_eq!(groups[0]["path"], "/staff");

    // Search, exact username, count, paging.
    let found = json(
        call(
            &h,
            "GET",
            &format!("{A}/users?username=DAVE&exact=true"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    let found = json(call(&h, "GET", &format!("{A}/users?search=da"), None).await).await;
    assert_eq!(found[0]["id"], id.as_str());
    let n = json(call(&h, "GET", &format!("{A}/users/count"), None).await).await;
    assert_eq!(
        n, 4,
        "dev-admin, alice, bob, dave: service accounts are not counted"
    );
    let page = json(call(&h, "GET", &format!("{A}/users?first=1&max=2"), None).await).await;
    assert_eq!(page.as_array().unwrap().len(), 2);

    let r = call(
        &h,
        "PUT",
        &format!("{A}/users/{id}"),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        h.password_grant("dave", "dave-pw").await.status(),
        400,
        "Account disabled"
    );
    let r = call(
        &h,
        "PUT",
        &format!("{A}/users/{id}/reset-password"),
        Some(json!({"type": "password", "value": "new-pw", "temporary": false})),
    )
    .await;
    assert_eq!(r.status(), 204);
    call(
        &h,
        "PUT",
        &format!("{A}/users/{id}"),
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(h.password_grant("dave", "new-pw").await.status(), 200);
    assert_eq!(h.password_grant("dave", "dave-pw").await.status(), 401);

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
    let r = call(&h, "DELETE", &format!("{A}/users/{id}"), None).await;
    assert_eq!(r.status(), 204);
    assert_eq!(h.password_grant("dave", "new-pw").await.status(), 401);
    assert_eq!(
        call(&h, "DELETE", &format!("{A}/users/{id}"), None)
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn groups_by_id_path_children_members() {
    let h = admin_harness().await;
    let groups = json(call(&h, "GET", &format!("{A}/groups"), None).await).await;
    let staff = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "staff")
        .unwrap();
    let staff_id = staff["id"].as_str().unwrap().to_string();
    assert_eq!(staff["subGroupCount"], 1);
    // A child through `children`, and one through the older `path` form.
    let r = call(
        &h,
        "POST",
        &format!("{A}/groups/{staff_id}/children"),
        Some(json!({"name": "oncall"})),
    )
    .await;
    let oncall = location_id(&r);
    let r = call(
        &h,
        "POST",
        &format!("{A}/groups"),
        Some(json!({"name": "x", "path": "/staff/x"})),
    )
    .await;
    assert_eq!(r.status(), 201);
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
        &format!("{A}/groups"),
        Some(json!({"name": "staff"})),
    )
    .await;
    assert_eq!(r.status(), 409);

    let g = json(call(&h, "GET", &format!("{A}/group-by-path//staff/oncall"), None).await).await;
    assert_eq!(
        (g["id"].as_str(), g["parentId"].as_str()),
        (Some(oncall.as_str()), Some(staff_id.as_str()))
    );
    let kids = json(call(&h, "GET", &format!("{A}/groups/{staff_id}/children/"), None).await).await;
    assert_eq!(kids.as_array().unwrap().len(), 3, "support, oncall, x");

    // Membership by id; the member's token shows the group.
    let bob = json(
        call(
            &h,
            "GET",
            &format!("{A}/users?username=bob&exact=true"),
            None,
        )
        .await,
    )
    .await;
    let bob = bob[0]["id"].as_str().unwrap().to_string();
    let r = call(&h, "PUT", &format!("{A}/users/{bob}/groups/{oncall}"), None).await;
    assert_eq!(r.status(), 204);
    let members = json(call(&h, "GET", &format!("{A}/groups/{oncall}/members"), None).await).await;
    assert_eq!(members[0]["username"], "bob");
    let t = json(h.password_grant("bob", "password").await).await;
    let claims = h.verify(t["access_token"].as_str().unwrap()).await;
    assert!(
        claims["realm_access"]["roles"]
            .to_string()
            .contains("editor"),
        "inherited from /staff"
    );

    // A rename keeps the id and moves the member along; delete takes the subtree.
    let r = call(
        &h,
        "PUT",
        &format!("{A}/groups/{oncall}"),
        Some(json!({"name": "pager"})),
    )
    .await;
    assert_eq!(r.status(), 204);
    let mine = json(call(&h, "GET", &format!("{A}/users/{bob}/groups"), None).await).await;
    assert_eq!(
        (mine[0]["id"].as_str(), mine[0]["path"].as_str()),
        (Some(oncall.as_str()), Some("/staff/pager"))
    );
    let r = call(
        &h,
        "DELETE",
        &format!("{A}/users/{bob}/groups/{oncall}"),
        None,
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        call(&h, "DELETE", &format!("{A}/groups/{staff_id}"), None)
            .await
            .status(),
        204
    );
    assert_eq!(
        call(&h, "GET", &format!("{A}/groups/{oncall}"), None)
            .await
            .status(),
        404
    );
    let count = json(call(&h, "GET", &format!("{A}/groups/count"), None).await).await;
    assert_eq!(count["count"], 1, "only /admins is left");
}

#[tokio::test]
async fn clients_by_id_secrets_and_partial_updates() {
    let h = admin_harness().await;
    let r = call(
        &h,
        "POST",
        &format!("{A}/clients"),
        Some(
            json!({"clientId": "batch", "secret": "batch-secret", "serviceAccountsEnabled": true,
                    "redirectUris": ["https://batch.example/cb"]}),
        ),
    )
    .await;
    let id = location_id(&r);
    let found = json(call(&h, "GET", &format!("{A}/clients?clientId=batch"), None).await).await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["id"], id.as_str());
    let all = json(call(&h, "GET", &format!("{A}/clients"), None).await)
        .await
        .to_string();
    assert!(
        !all.contains("batch-secret") && !all.contains("sha256$") && !all.contains("\"secret\"")
    );
    let token = |secret: &'static str| {
        let h = &h;
        async move {
            h.post_form(
                &format!("{P}/token"),
                &[("grant_type", "client_credentials")],
                Some(("batch", secret)),
            )
            .await
            .status()
        }
    };
    assert_eq!(
        token("batch-secret").await,
        200,
        "the service-account user comes with it"
    );
    let sa = json(
        call(
            &h,
            "GET",
            &format!("{A}/clients/{id}/service-account-user"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(sa["username"], "service-account-batch");

    // A partial update changes only what it names.
    let r = call(
        &h,
        "PUT",
        &format!("{A}/clients/{id}"),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(token("batch-secret").await, 401);
    let c = json(call(&h, "GET", &format!("{A}/clients/{id}"), None).await).await;
    assert_eq!(c["redirectUris"], json!(["https://batch.example/cb"]));
    assert_eq!(
        (
            c["enabled"].as_bool(),
            c["serviceAccountsEnabled"].as_bool()
        ),
        (Some(false), Some(true))
    );
    let r = call(
        &h,
        "PUT",
        &format!("{A}/clients/{id}"),
        Some(json!({"enabled": true, "clientId": "other"})),
    )
    .await;
    assert_eq!(r.status(), 400, "the client id stays");
    call(
        &h,
        "PUT",
        &format!("{A}/clients/{id}"),
        Some(json!({"enabled": true})),
    )
    .await;

    // The secret: never shown, except a new one once.
    let s = json(call(&h, "GET", &format!("{A}/clients/{id}/client-secret"), None).await).await;
    assert_eq!(s, json!({"type": "secret"}));
    let s = json(call(&h, "POST", &format!("{A}/clients/{id}/client-secret"), None).await).await;
    let new = s["value"].as_str().unwrap().to_string();
    let r = h
        .post_form(
            &format!("{P}/token"),
            &[("grant_type", "client_credentials")],
            Some(("batch", &new)),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(token("batch-secret").await, 401);

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
    assert_eq!(
        call(&h, "DELETE", &format!("{A}/clients/{rm}"), None)
            .await
            .status(),
        400
    );
    assert_eq!(
        call(&h, "DELETE", &format!("{A}/clients/{id}"), None)
            .await
            .status(),
        204
    );
    assert_eq!(token("batch-secret").await, 401);
    assert_eq!(
        call(&h, "GET", &format!("{A}/clients/{id}"), None)
            .await
            .status(),
        404
    );
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
    let h = admin_harness().await;
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

    // A role mapping removed through role-mappings is gone from the next token.
    let admin_role = json(call(&h, "GET", &format!("{A}/roles/admin"), None).await).await;
    let r = call(
        &h,
        "DELETE",
        &format!("{A}/users/{id}/role-mappings/realm"),
        Some(json!([admin_role])),
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = call(
        &h,
        "DELETE",
        &format!("{A}/users/{id}/groups/{}", staff_id(&h).await),
        None,
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

async fn staff_id(h: &AdminHarness) -> String {
    let g = json(call(h, "GET", &format!("{A}/group-by-path/staff"), None).await).await;
    g["id"].as_str().unwrap().to_string()
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
