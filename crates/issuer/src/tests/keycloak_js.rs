//! What keycloak-js and other Keycloak clients need of the browser side: the fragment response
//! mode, the session-state cookie, the third-party-cookie and session status frames with their
//! `init` check, the realm information at `B`, and the discovery fields that name them.

use axum::body::Body;
use axum::http::{Request, Response, header};
use base64::Engine;
use sha2::Digest;

use super::flow::{CB, MY, VERIFIER, auth_url, challenge, location, query, set_cookie, std_params};
use super::harness::*;

fn set_cookie_line(r: &Response<Body>, name: &str) -> Option<String> {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

fn fragment(u: &url::Url, k: &str) -> Option<String> {
    url::form_urlencoded::parse(u.fragment().unwrap_or("").as_bytes())
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn fragment_response_mode_and_the_session_state_cookie() {
    let h = harness().await;
    let ch = challenge(VERIFIER);
    let mut params = std_params("myclient", CB, &ch);
    params.push(("response_mode", "fragment"));
    // The login page itself may redirect anywhere its form leads (no form-action).
    let page = h.get(&auth_url(&params)).await;
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(!csp.contains("form-action") && csp.contains("frame-ancestors 'none'"));

    let r = h.login(&params, "alice", "password").await;
    assert_eq!(r.status(), 302);
    let loc = location(&r);
    assert_eq!(query(&loc, "code"), None, "nothing in the query");
    assert!(loc.as_str().starts_with(CB));
    let code = fragment(&loc, "code").unwrap();
    assert_eq!(fragment(&loc, "state").as_deref(), Some("st-1"));
    assert_eq!(
        fragment(&loc, "iss").as_deref(),
        Some("https://id.test/auth/realms/myrealm")
    );
    let sid = fragment(&loc, "session_state").unwrap();

    // Keycloak's session-state cookie: the hash of the session id, readable by the iframe.
    let line = set_cookie_line(&r, "KEYCLOAK_SESSION").unwrap();
    assert_eq!(
        set_cookie(&r, "KEYCLOAK_SESSION").unwrap(),
        crate::secrets::token_hash(&sid)
    );
    assert!(
        line.contains("Secure") && line.contains("SameSite=None"),
        "{line}"
    );
    assert!(!line.contains("HttpOnly"), "{line}");
    assert!(line.contains("Path=/auth/realms/myrealm/"), "{line}");

    let tokens = json(h.exchange(&code, CB, Some(VERIFIER), MY, None).await).await;
    let id = h.verify(tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(id["sid"], sid.as_str());

    // Errors go to the fragment too; an unknown mode is refused.
    let mut none = std_params("spa", "http://localhost:5173/app", &ch);
    none.push(("prompt", "none"));
    none.push(("response_mode", "fragment"));
    let loc = location(&h.get(&auth_url(&none)).await);
    assert_eq!(fragment(&loc, "error").as_deref(), Some("login_required"));
    assert_eq!(query(&loc, "error"), None);
    let mut post = std_params("myclient", CB, &ch);
    post.push(("response_mode", "form_post"));
    let loc = location(&h.get(&auth_url(&post)).await);
    assert_eq!(query(&loc, "error").as_deref(), Some("invalid_request"));

    // Browser logout clears it.
    let lo = format!(
        "{P}/logout?{}",
        serde_urlencoded::to_string([("id_token_hint", tokens["id_token"].as_str().unwrap())])
            .unwrap()
    );
    let r = h.get(&lo).await;
    let line = set_cookie_line(&r, "KEYCLOAK_SESSION").unwrap();
    assert!(
        line.starts_with("KEYCLOAK_SESSION=;") && line.contains("Max-Age=0"),
        "{line}"
    );
}

#[tokio::test]
async fn keycloak_js_frames_and_the_status_check() {
    let h = harness().await;
    for page in [
        "3p-cookies/step1.html",
        "3p-cookies/step2.html",
        "login-status-iframe.html",
    ] {
        let r = h.get(&format!("{P}/{page}")).await;
        assert_eq!(r.status(), 200, "{page}");
        assert!(
            r.headers().get("x-frame-options").is_none(),
            "{page} is framed"
        );
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        let html = String::from_utf8(body_bytes(r).await).unwrap();
        let script = html
            .split("<script type=\"module\">")
            .nth(1)
            .and_then(|s| s.split("</script>").next())
            .unwrap();
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script));
        assert!(csp.contains(&format!("'sha256-{hash}'")), "{page}: {csp}");
    }
    assert_eq!(
        h.get("/auth/realms/ghost/protocol/openid-connect/login-status-iframe.html")
            .await
            .status(),
        404
    );

    let init = |client: &str, origin: &str| {
        let q = serde_urlencoded::to_string([("client_id", client), ("origin", origin)]).unwrap();
        let h = &h;
        async move {
            h.get(&format!("{P}/login-status-iframe.html/init?{q}"))
                .await
                .status()
        }
    };
    assert_eq!(init("spa", "http://localhost:5173").await, 204);
    assert_eq!(
        init("spa", "https://id.test").await,
        204,
        "the issuer's own origin"
    );
    assert_eq!(init("spa", "http://evil.example").await, 403);
    assert_eq!(
        init("spa", "http://localhost:8000").await,
        403,
        "another client's"
    );
    assert_eq!(init("ghost", "http://localhost:5173").await, 403);
    assert_eq!(
        h.get(&format!("{P}/login-status-iframe.html/init"))
            .await
            .status(),
        403
    );

    // `+`: the origins of the client's redirect URIs.
    let st = h.issuer.state();
    let mut client = st
        .store()
        .list_clients("myrealm")
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.client_id == "myclient")
        .unwrap();
    client.config.web_origins = vec!["+".into()];
    client.secret_hash = None;
    st.store().put_client(&client).await.unwrap();
    st.realm_changed("myrealm").await.unwrap();
    assert_eq!(init("myclient", "http://localhost:8000").await, 204);
    assert_eq!(init("myclient", "http://localhost:8001").await, 403);
    let r = h
        .send(
            Request::post(format!("{P}/token"))
                .header(header::ORIGIN, "http://localhost:8000")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:8000"
    );
}

#[tokio::test]
async fn realm_info_and_discovery_as_keycloak_publishes_them() {
    let h = harness().await;
    let r = h.get("/auth/realms/myrealm").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let info = json(r).await;
    assert_eq!(info["realm"], "myrealm");
    assert_eq!(
        info["token-service"],
        "https://id.test/auth/realms/myrealm/protocol/openid-connect"
    );
    assert_eq!(
        info["account-service"],
        "https://id.test/auth/realms/myrealm/account"
    );
    assert_eq!(info["tokens-not-before"], 0);
    // The public key verifies the realm's tokens.
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        info["public_key"].as_str().unwrap()
    );
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let t = json(h.password_grant("bob", "password").await).await;
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.validate_exp = false;
    v.validate_aud = false;
    let c =
        jsonwebtoken::decode::<serde_json::Value>(t["access_token"].as_str().unwrap(), &key, &v)
            .unwrap()
            .claims;
    assert_eq!(c["preferred_username"], "bob");
    assert_eq!(h.get("/auth/realms/ghost").await.status(), 404);

    let d = json(
        h.get("/auth/realms/myrealm/.well-known/openid-configuration")
            .await,
    )
    .await;
    assert_eq!(
        d["check_session_iframe"],
        format!("https://id.test{P}/login-status-iframe.html")
    );
    assert_eq!(
        d["response_modes_supported"],
        serde_json::json!(["query", "fragment"])
    );
}
