//! The issuer's admin API through the real binary: Keycloak's own admin clients
//! (python-keycloak's `KeycloakAdmin`, `@keycloak/keycloak-admin-client`) against the
//! management listener with the bootstrap admin of the `master` realm; the 401/403/200 matrix;
//! the admin plane never public; closed without a bootstrap admin; admin events on the audit
//! log.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Gateway, INTEROP, Upstream, eventually, free_port, interop, venv_python};
use crate::issuer::issuer_opts;

const ROOT: &str = "root";
const ROOT_PW: &str = "root-pw";

/// The gateway of `issuer::issuer_gateway`, started with `env` (the bootstrap admin).
async fn gateway(up: &Upstream, env: &[(&str, &str)]) -> Gateway {
    portcullis_gateway::app::install_crypto_provider();
    let o = issuer_opts(up, &["myclient"]);
    // Only `env` names the bootstrap admin, whatever the test process inherited.
    let mut vars = vec![
        ("PORTCULLIS_BOOTSTRAP_ADMIN_USERNAME", None),
        ("PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD", None),
    ];
    vars.extend(env.iter().map(|&(k, v)| (k, Some(v))));
    let public = o.public_port.unwrap();
    let mut gw = Gateway::launch(&o, public, free_port(), None, &vars);
    gw.ready_within(Duration::from_secs(60)).await;
    gw
}

async fn bootstrapped(up: &Upstream) -> Gateway {
    gateway(
        up,
        &[
            ("PORTCULLIS_BOOTSTRAP_ADMIN_USERNAME", ROOT),
            ("PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD", ROOT_PW),
        ],
    )
    .await
}

/// A password-grant token from `url` (a token endpoint); the status and body.
async fn password_grant(url: &str, form: &[(&str, &str)], c: &reqwest::Client) -> (u16, Value) {
    let mut f = vec![("grant_type", "password")];
    f.extend_from_slice(form);
    let r = c.post(url).form(&f).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn root_token(gw: &Gateway) -> String {
    let url = gw.mgmt_url("/realms/master/protocol/openid-connect/token");
    let form = [
        ("client_id", "admin-cli"),
        ("username", ROOT),
        ("password", ROOT_PW),
    ];
    let (status, body) = password_grant(&url, &form, &reqwest::Client::new()).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn python_keycloak_admin_end_to_end() {
    let up = Upstream::start().await;
    let gw = bootstrapped(&up).await;
    // Keycloak's older `/auth` layout on the management listener; the public listener (with
    // its own `/auth`) for the member's token.
    interop(
        tokio::process::Command::new(venv_python())
            .arg(format!("{INTEROP}/kc_admin.py"))
            .arg(gw.mgmt_url("/auth/"))
            .arg(gw.url("/auth/"))
            .arg(gw.path("certs/dev-ca.crt"))
            .args([ROOT, ROOT_PW]),
        "python-keycloak admin OK",
        &gw,
    )
    .await;
    // Every write was an admin event on the audit log: one JSON line each.
    eventually(
        "admin events on the audit log",
        Duration::from_secs(5),
        || async { gw.stdout().contains("\"type\":\"admin_event\"") },
    )
    .await;
    let events: Vec<Value> = gw
        .stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["type"] == "admin_event")
        .collect();
    let created_user = events
        .iter()
        .find(|e| e["operation"] == "CREATE" && e["resource_type"] == "USER")
        .unwrap();
    assert_eq!(created_user["realm"], "myrealm");
    assert_eq!(created_user["result"], "success");
    assert_eq!(created_user["admin"]["username"], ROOT);
    assert_eq!(created_user["admin"]["realm"], "master");
    assert!(
        created_user["resource_path"]
            .as_str()
            .unwrap()
            .starts_with("users/")
    );
    for op in ["UPDATE", "DELETE", "ACTION"] {
        assert!(events.iter().any(|e| e["operation"] == op), "{op}");
    }
    assert!(!gw.stdout().contains("carol-pw") && !gw.stderr().contains("carol-pw"));
}

#[tokio::test(flavor = "multi_thread")]
async fn keycloak_admin_client_end_to_end() {
    let up = Upstream::start().await;
    let gw = bootstrapped(&up).await;
    interop(
        tokio::process::Command::new("node")
            .arg(format!("{INTEROP}/kc_admin.mjs"))
            .arg(gw.mgmt_url(""))
            .args([ROOT, ROOT_PW])
            .current_dir(INTEROP),
        "keycloak-admin-client OK",
        &gw,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_401_403_200_matrix_and_the_admin_plane_is_management_only() {
    let up = Upstream::start().await;
    let gw = bootstrapped(&up).await;
    let c = gw.client();
    let m = reqwest::Client::new();
    let users = gw.mgmt_url("/admin/realms/myrealm/users");
    let get = |url: String, token: Option<String>| {
        let m = m.clone();
        async move {
            let mut r = m.get(url);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            r.send().await.unwrap().status().as_u16()
        }
    };
    // No token: 401, in both layouts, with a trailing slash, for unknown paths too.
    for path in [
        "/admin/realms/myrealm/users",
        "/auth/admin/realms/myrealm/users/",
        "/admin/realms/nope/anything",
    ] {
        assert_eq!(get(gw.mgmt_url(path), None).await, 401, "{path}");
    }
    // Never on the public listener: neither the admin API nor the master realm.
    for path in [
        "/auth/admin/realms/myrealm/users",
        "/auth/realms/master/.well-known/openid-configuration",
    ] {
        let r = c.get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    let public_token = gw.url("/auth/realms/myrealm/protocol/openid-connect/token");
    let my = [
        ("client_id", "myclient"),
        ("client_secret", "my-client-secret"),
    ];
    let (status, body) = password_grant(
        &gw.url("/auth/realms/master/protocol/openid-connect/token"),
        &[
            ("client_id", "admin-cli"),
            ("username", ROOT),
            ("password", ROOT_PW),
        ],
        &c,
    )
    .await;
    assert_eq!((status, body["access_token"].is_null()), (404, true));

    // A realm user without admin roles: 403; a wrong password: 401 invalid_grant.
    let bob_form = [my[0], my[1], ("username", "bob"), ("password", "password")];
    let (_, bob) = password_grant(&public_token, &bob_form, &c).await;
    let bob = bob["access_token"].as_str().unwrap().to_string();
    assert_eq!(get(users.clone(), Some(bob)).await, 403);
    let wrong = [my[0], my[1], ("username", "bob"), ("password", "nope")];
    let (status, body) = password_grant(&public_token, &wrong, &c).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_grant"))
    );

    // The master admin gives the service account of svc-reports `view-users` only.
    let root = root_token(&gw).await;
    let admin_get = |path: &str| {
        let (m, root, url) = (m.clone(), root.clone(), gw.mgmt_url(path));
        async move {
            let r = m.get(url).bearer_auth(root).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let sa =
        admin_get("/admin/realms/myrealm/users?username=service-account-svc-reports&exact=true")
            .await;
    let sa = sa[0]["id"].as_str().unwrap().to_string();
    let rm = admin_get("/admin/realms/myrealm/clients?clientId=realm-management").await;
    let rm = rm[0]["id"].as_str().unwrap().to_string();
    let view = admin_get(&format!(
        "/admin/realms/myrealm/clients/{rm}/roles/view-users"
    ))
    .await;
    let r = m
        .post(gw.mgmt_url(&format!(
            "/admin/realms/myrealm/users/{sa}/role-mappings/clients/{rm}"
        )))
        .bearer_auth(&root)
        .json(&json!([view]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = c
        .post(&public_token)
        .basic_auth("svc-reports", Some("svc-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let svc = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        get(users.clone(), Some(svc.clone())).await,
        200,
        "view-users reads"
    );
    let r = m
        .post(&users)
        .bearer_auth(&svc)
        .json(&json!({"username": "eve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "view-users does not write");
    let clients = gw.mgmt_url("/admin/realms/myrealm/clients");
    assert_eq!(get(clients.clone(), Some(svc)).await, 403);
    assert_eq!(get(clients, Some(root.clone())).await, 200);
    let r = m
        .post(&users)
        .bearer_auth(&root)
        .json(&json!({"username": "eve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(loc.starts_with(&users), "{loc}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_bootstrap_admin_the_admin_api_is_closed() {
    let up = Upstream::start().await;
    let gw = gateway(&up, &[]).await;
    let m = reqwest::Client::new();
    let r = m
        .get(gw.mgmt_url("/admin/realms/myrealm/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "HTTP 401 Unauthorized"
    );
    let (status, _) = password_grant(
        &gw.mgmt_url("/realms/master/protocol/openid-connect/token"),
        &[
            ("client_id", "admin-cli"),
            ("username", ROOT),
            ("password", ROOT_PW),
        ],
        &m,
    )
    .await;
    assert_eq!(status, 404, "there is no master realm");
    assert!(
        gw.stderr().contains("PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD"),
        "the log says how to open it: {}",
        gw.stderr()
    );
}
