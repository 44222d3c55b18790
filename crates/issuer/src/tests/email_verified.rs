//! `emailVerified` is stored and honoured: realm import and `--sync`, export, the admin API,
//! ID and access tokens and userinfo.

use std::path::Path;

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};

use super::admin::{AdminHarness, call, root};
use super::harness::*;
use crate::BootstrapAdmin;
use crate::{realm_file, realm_import};
use portcullis_store::Secret;

const R: &str = "/auth/realms/mail/protocol/openid-connect";

fn realm_text(unverified_flag: &str) -> String {
    format!(
        r#"{{"realm": "mail",
        "users": [
          {{"username": "ver", "email": "ver@example.com", "emailVerified": true,
            "credentials": [{{"type": "password", "value": "pw"}}]}},
          {{"username": "unver", "email": "unver@example.com", {unverified_flag}
            "credentials": [{{"type": "password", "value": "pw"}}]}},
          {{"username": "nomail", "credentials": [{{"type": "password", "value": "pw"}}]}}
        ],
        "clients": [{{"clientId": "app", "secret": "app-secret", "directAccessGrantsEnabled": true}}]}}"#
    )
}

async fn start(dir: &tempfile::TempDir, text: &str) -> AdminHarness {
    let file = dir.path().join("mail.json");
    std::fs::write(&file, text).unwrap();
    let mut settings = settings();
    settings.import = vec![file];
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
        dir: tempfile::tempdir().unwrap(),
    };
    let token = root(&h).await;
    AdminHarness { h, token }
}

/// The ID token's, the access token's and userinfo's `email_verified` for `user`.
async fn verified(h: &Harness, user: &str) -> (Value, Value, Value) {
    let r = h
        .post_form(
            &format!("{R}/token"),
            &[
                ("grant_type", "password"),
                ("username", user),
                ("password", "pw"),
                ("scope", "openid"),
            ],
            Some(("app", "app-secret")),
        )
        .await;
    assert_eq!(r.status(), 200);
    let t = json(r).await;
    let at = t["access_token"].as_str().unwrap();
    let jwks = json(h.get(&format!("{R}/certs")).await).await;
    let claims = |token: &str| {
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
        let header = jsonwebtoken::decode_header(token).unwrap();
        let key =
            jsonwebtoken::DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap())
                .unwrap();
        let mut v = jsonwebtoken::Validation::new(header.alg);
        v.validate_exp = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        jsonwebtoken::decode::<Value>(token, &key, &v)
            .unwrap()
            .claims
    };
    let id = claims(t["id_token"].as_str().unwrap());
    let access = claims(at);
    let req = Request::get(format!("{R}/userinfo"))
        .header("authorization", format!("Bearer {at}"))
        .body(Body::empty())
        .unwrap();
    let info = json(h.send(req).await).await;
    (
        id["email_verified"].clone(),
        access["email_verified"].clone(),
        info["email_verified"].clone(),
    )
}

#[tokio::test]
async fn imported_flags_reach_tokens_and_userinfo() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(&dir, &realm_text(r#""emailVerified": false,"#)).await;
    let yes = (json!(true), json!(true), json!(true));
    let no = (json!(false), json!(false), json!(false));
    assert_eq!(verified(&h, "ver").await, yes);
    assert_eq!(verified(&h, "unver").await, no);
    // Keycloak's mapper puts it in without an address too.
    assert_eq!(verified(&h, "nomail").await, no);

    // The admin API reads and writes it; the next token and userinfo follow.
    let u = json(
        call(
            &h,
            "GET",
            "/admin/realms/mail/users?username=ver&exact=true",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(u[0]["emailVerified"], true);
    let id = u[0]["id"].as_str().unwrap();
    let r = call(
        &h,
        "PUT",
        &format!("/admin/realms/mail/users/{id}"),
        Some(json!({"emailVerified": false})),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(verified(&h, "ver").await, no);
    let n = json(
        call(
            &h,
            "GET",
            "/admin/realms/mail/users/count?emailVerified=false",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(n, 3);

    // Export carries it; `--sync` with a changed file sets it.
    let store = h.issuer.state().store();
    let exported = realm_import::export(store.as_ref(), "mail").await.unwrap();
    let unver = exported
        .users
        .iter()
        .find(|u| u.username == "unver")
        .unwrap();
    assert_eq!(unver.email_verified, Some(false));
    let file = realm_file::parse(
        Path::new("mail.json"),
        &realm_text(r#""emailVerified": true,"#),
        &|_| None,
    )
    .unwrap();
    realm_import::apply(store.as_ref(), &file, true)
        .await
        .unwrap();
    assert_eq!(verified(&h, "unver").await, yes, "a sync is seen at once");
    assert_eq!(verified(&h, "ver").await, yes, "the file's value again");
}
