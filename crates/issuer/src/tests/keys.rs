//! Key rotation: the new key signs at once, the old one stays published for the grace period.

use super::harness::*;
use crate::keys::RETIRED_KEY_GRACE_SECONDS;

#[tokio::test]
async fn rotation_keeps_the_old_key_for_the_grace_period() {
    let h = harness().await;
    let embedded = h.issuer.embedded_keys();
    let v0 = embedded.version();
    let before = json(h.password_grant("bob", "password").await).await;
    let old_token = before["access_token"].as_str().unwrap().to_string();
    let old_kid = jsonwebtoken::decode_header(&old_token)
        .unwrap()
        .kid
        .unwrap();

    // A refresh with nothing changed does not bump the version.
    h.issuer.refresh().await.unwrap();
    assert_eq!(embedded.version(), v0);

    // The CLI rotates in the store; the running issuer picks it up on refresh.
    let new_kid =
        crate::domain::offline::keys_rotate_at(&h.settings, h.dir.path(), "myrealm", T0 as i64)
            .await
            .unwrap();
    h.issuer.refresh().await.unwrap();
    assert!(embedded.version() > v0);
    let kids: Vec<String> = embedded
        .key_set()
        .keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect();
    assert_eq!(kids, vec![new_kid.clone(), old_kid.clone()]);

    let after = json(h.password_grant("bob", "password").await).await;
    let kid = jsonwebtoken::decode_header(after["access_token"].as_str().unwrap())
        .unwrap()
        .kid
        .unwrap();
    assert_eq!(kid, new_kid);
    h.verify(&old_token).await; // still verifiable against the published JWKS

    // In-process rotation, then past the grace period only the active key remains.
    let third = h.issuer.rotate_keys("myrealm").await.unwrap();
    assert_eq!(embedded.key_set().keys.len(), 3);
    h.clock.advance(RETIRED_KEY_GRACE_SECONDS as u64 + 1);
    h.issuer.refresh().await.unwrap();
    let jwks = json(h.get(&format!("{P}/certs")).await).await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks["keys"][0]["kid"], third.as_str());
    assert!(h.issuer.rotate_keys("nope").await.is_err());
}

#[tokio::test]
async fn realm_algorithm_change_rotates_to_an_es256_key() {
    let h = harness().await;
    let old = json(h.password_grant("bob", "password").await).await;
    let mut template: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dev_realm()).unwrap()).unwrap();
    template["defaultSignatureAlgorithm"] = "ES256".into();
    let file = h.dir.path().join("es.json");
    std::fs::write(&file, template.to_string()).unwrap();
    crate::realm_import(&h.settings, h.dir.path(), &file, true)
        .await
        .unwrap();
    h.issuer.refresh().await.unwrap();

    let r = h
        .post_form(
            &format!("{P}/token"),
            &[("grant_type", "client_credentials")],
            Some(("svc-reports", "svc-secret")),
        )
        .await;
    let at = json(r).await["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        jsonwebtoken::decode_header(&at).unwrap().alg,
        jsonwebtoken::Algorithm::ES256
    );
    assert_eq!(h.verify(&at).await["azp"], "svc-reports");
    // The RS256 key that signed earlier tokens is still published, and userinfo accepts both.
    h.verify(old["access_token"].as_str().unwrap()).await;
    let jwks = json(h.get(&format!("{P}/certs")).await).await;
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert_eq!(jwks["keys"][1]["kty"], "RSA");

    template["defaultSignatureAlgorithm"] = "HS256".into();
    std::fs::write(&file, template.to_string()).unwrap();
    let e = crate::realm_import(&h.settings, h.dir.path(), &file, true)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("defaultSignatureAlgorithm"), "{e}");
}
