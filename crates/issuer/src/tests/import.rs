//! Realm import: substitution, literal placeholders, idempotent re-import, sync, export.

use std::path::Path;

use super::harness::*;
use crate::realm_file;
use crate::realm_import::{self, Outcome};
use crate::secrets;
use portcullis_store::RoleRef;
use portcullis_store::testing::each_backend;

fn dev_text() -> String {
    std::fs::read_to_string(dev_realm()).unwrap()
}

fn env(name: &str) -> Option<String> {
    (name == "DEV_ADMIN_PASSWORD").then(|| "from-env".to_string())
}

#[tokio::test]
async fn import_substitutes_and_is_idempotent_then_syncs() {
    each_backend(|s| async move {
        let file = realm_file::parse(Path::new("x.json"), &dev_text(), &env).unwrap();
        assert_eq!(
            realm_import::apply(s.as_ref(), &file, false).await.unwrap(),
            Outcome::Created
        );
        let admin = s
            .user_by_username("myrealm", "dev-admin")
            .await
            .unwrap()
            .unwrap();
        assert!(secrets::verify_password(
            "from-env",
            admin.password_hash.unwrap().expose()
        ));
        let bob = s.user_by_username("myrealm", "bob").await.unwrap().unwrap();
        assert!(secrets::verify_password(
            "password",
            bob.password_hash.unwrap().expose()
        ));
        assert_eq!(
            s.user_groups(&admin.id).await.unwrap(),
            vec!["/admins".to_string()]
        );
        let clients = s.list_clients("myrealm").await.unwrap();
        let my = clients.iter().find(|c| c.client_id == "myclient").unwrap();
        let hash = my.secret_hash.clone().unwrap();
        assert!(secrets::verify_client_secret(
            "my-client-secret",
            hash.expose()
        ));
        assert!(!format!("{my:?}").contains(hash.expose().as_str()));
        let sa = s
            .user_by_username("myrealm", "service-account-svc-reports")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            s.user_roles(&sa.id).await.unwrap(),
            vec![RoleRef::realm("viewer")]
        );

        // A second start with a changed template leaves the realm untouched.
        let mut changed = file.clone();
        changed.users[2].email = Some("new@example.com".into());
        assert_eq!(
            realm_import::apply(s.as_ref(), &changed, false)
                .await
                .unwrap(),
            Outcome::Skipped
        );
        let bob2 = s.user_by_username("myrealm", "bob").await.unwrap().unwrap();
        assert_eq!(bob2.email.as_deref(), Some("bob@example.com"));

        // --sync applies it, keeping ids (so sessions and tokens keep pointing at the user).
        changed.users.push(realm_file::UserRep {
            username: "carol".into(),
            groups: vec!["/staff/support".into()],
            ..Default::default()
        });
        assert_eq!(
            realm_import::apply(s.as_ref(), &changed, true)
                .await
                .unwrap(),
            Outcome::Synced
        );
        let bob3 = s.user_by_username("myrealm", "bob").await.unwrap().unwrap();
        assert_eq!(bob3.email.as_deref(), Some("new@example.com"));
        assert_eq!(bob3.id, bob.id);
        assert!(
            s.user_by_username("myrealm", "carol")
                .await
                .unwrap()
                .is_some()
        );

        let exported =
            serde_json::to_string(&realm_import::export(s.as_ref(), "myrealm").await.unwrap())
                .unwrap();
        assert!(!exported.contains("argon2") && !exported.contains("sha256$"));
        assert!(!exported.contains("my-client-secret") && !exported.contains("\"secret\""));
        assert!(
            exported.contains("/staff/support")
                && exported.contains("oidc-group-membership-mapper")
        );
        // The export is itself an importable template.
        let back = realm_file::parse(Path::new("e.json"), &exported, &env).unwrap();
        assert_eq!(back.users.len(), 5);
    })
    .await;
}

#[tokio::test]
async fn unresolved_placeholders_stay_literal() {
    each_backend(|s| async move {
        let text = r#"{"realm": "lit", "users": [{"username": "u", "email": "${NO_SUCH_VAR_XYZ}",
            "credentials": [{"type": "password", "value": "${NO_SUCH_VAR_XYZ}"}]}]}"#;
        let file = realm_file::parse(Path::new("l.json"), text, &env).unwrap();
        realm_import::apply(s.as_ref(), &file, false).await.unwrap();
        let u = s.user_by_username("lit", "u").await.unwrap().unwrap();
        assert_eq!(u.email.as_deref(), Some("${NO_SUCH_VAR_XYZ}"));
        assert!(secrets::verify_password(
            "${NO_SUCH_VAR_XYZ}",
            u.password_hash.unwrap().expose()
        ));
    })
    .await;
}

#[tokio::test]
async fn dangling_references_are_all_reported() {
    let text = r#"{"realm": "bad", "groups": [{"name": "g", "realmRoles": ["nope"]}],
        "users": [{"username": "u", "groups": ["/missing"], "realmRoles": ["ghost"]}]}"#;
    let file = realm_file::parse(Path::new("b.json"), text, &env).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = portcullis_store::open("sqlite://b.db", dir.path())
        .await
        .unwrap();
    let err = realm_import::apply(s.as_ref(), &file, false)
        .await
        .unwrap_err()
        .to_string();
    for needle in [
        "group /g: unknown role \"nope\"",
        "unknown group \"/missing\"",
        "unknown role \"ghost\"",
    ] {
        assert!(err.contains(needle), "{err}");
    }
    assert!(s.get_realm("bad").await.unwrap().is_none());
}

#[tokio::test]
async fn start_imports_once_and_serves_discovery_and_keys() {
    let h = harness().await;
    let r = h
        .get("/auth/realms/myrealm/.well-known/openid-configuration")
        .await;
    assert_eq!(r.status(), 200);
    let d = json(r).await;
    assert_eq!(d["issuer"], "https://id.test/auth/realms/myrealm");
    assert_eq!(
        d["token_endpoint"],
        "https://id.test/auth/realms/myrealm/protocol/openid-connect/token"
    );
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    let jwks = json(
        h.get("/auth/realms/myrealm/protocol/openid-connect/certs")
            .await,
    )
    .await;
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_string();
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    assert_eq!(
        h.get("/auth/realms/nope/protocol/openid-connect/certs")
            .await
            .status(),
        404
    );

    // Restart on the same database: no re-import, same key.
    let again = crate::Issuer::start(&h.settings, h.dir.path(), h.clock.clone())
        .await
        .unwrap();
    let keys = again.embedded_keys().key_set();
    assert_eq!(keys.keys.len(), 1);
    assert_eq!(keys.keys[0].common.key_id.as_deref(), Some(kid.as_str()));
    assert!(again.ready().await);
}

#[test]
fn realm_check_validates_without_a_database() {
    let realm = crate::realm_check(&dev_realm()).unwrap();
    assert_eq!(realm.realm, "myrealm");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        "{\"realm\": \"x\",\n \"users\": [{\"username\": \"u\", \"groups\": [\"/none\"]}]}",
    )
    .unwrap();
    let err = crate::realm_check(&bad).unwrap_err();
    assert!(
        err.contains("bad.json") && err.contains("unknown group \"/none\""),
        "{err}"
    );
    std::fs::write(&bad, "{\"realm\": \"x\",\n  ]").unwrap();
    assert!(
        crate::realm_check(&bad)
            .unwrap_err()
            .contains("bad.json:2:")
    );
}
