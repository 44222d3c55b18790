//! The browser flow: authorize, login form, code exchange with PKCE, SSO reuse, userinfo,
//! introspection, revocation and logout.

use axum::body::Body;
use axum::http::{Request, Response, header};
use base64::Engine;
use sha2::Digest;

use super::harness::*;

pub(super) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-extra-entropy";
pub(super) const CB: &str = "http://localhost:8000/oidc/callback/";

pub(super) fn challenge(v: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(v.as_bytes()))
}

pub(super) fn set_cookie(r: &Response<Body>, name: &str) -> Option<String> {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap()[name.len() + 1..].to_string())
}

pub(super) fn location(r: &Response<Body>) -> url::Url {
    url::Url::parse(r.headers()[header::LOCATION].to_str().unwrap()).unwrap()
}

pub(super) fn query(u: &url::Url, k: &str) -> Option<String> {
    u.query_pairs()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.into_owned())
}

pub(super) fn auth_url(pairs: &[(&str, &str)]) -> String {
    format!("{P}/auth?{}", serde_urlencoded::to_string(pairs).unwrap())
}

pub(super) fn std_params<'a>(
    client: &'a str,
    redirect: &'a str,
    ch: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", client),
        ("redirect_uri", redirect),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("code_challenge", ch),
        ("code_challenge_method", "S256"),
    ]
}

impl Harness {
    pub(super) async fn get_with_cookie(&self, uri: &str, cookie: &str) -> Response<Body> {
        self.send(
            Request::get(uri)
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// Drives the login form; returns the redirect response.
    pub(super) async fn login(
        &self,
        params: &[(&str, &str)],
        user: &str,
        pw: &str,
    ) -> Response<Body> {
        let page = self.get(&auth_url(params)).await;
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["x-frame-options"], "DENY");
        assert_eq!(page.headers()["cache-control"], "no-store");
        let csrf = set_cookie(&page, "PORTCULLIS_CSRF").unwrap();
        let html = String::from_utf8(body_bytes(page).await).unwrap();
        assert!(html.contains(&format!("name=\"csrf\" value=\"{csrf}\"")));
        let mut form: Vec<(&str, &str)> = params.to_vec();
        form.extend([
            ("username", user),
            ("password", pw),
            ("csrf", csrf.as_str()),
        ]);
        let req = Request::post(format!("{P}/auth"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, format!("PORTCULLIS_CSRF={csrf}"))
            .body(Body::from(serde_urlencoded::to_string(&form).unwrap()))
            .unwrap();
        self.send(req).await
    }

    pub(super) async fn exchange(
        &self,
        code: &str,
        redirect: &str,
        verifier: Option<&str>,
        basic: Option<(&str, &str)>,
        client_id: Option<&str>,
    ) -> Response<Body> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        if let Some(c) = client_id {
            form.push(("client_id", c));
        }
        self.post_form(&format!("{P}/token"), &form, basic).await
    }
}

pub(super) const MY: Option<(&str, &str)> = Some(("myclient", "my-client-secret"));

#[tokio::test]
async fn code_flow_with_pkce_then_sso_userinfo_introspect_logout() {
    let h = harness().await;
    let ch = challenge(VERIFIER);
    let params = std_params("myclient", CB, &ch);
    let r = h.login(&params, "dev-admin", "admin").await;
    assert_eq!(r.status(), 302);
    let sso = set_cookie(&r, "PORTCULLIS_SESSION").unwrap();
    let cookie_line = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("PORTCULLIS_SESSION="))
        .unwrap();
    assert!(
        cookie_line.contains("HttpOnly")
            && cookie_line.contains("Secure")
            && cookie_line.contains("SameSite=Lax")
    );
    let loc = location(&r);
    assert!(loc.as_str().starts_with(CB));
    assert_eq!(query(&loc, "state").as_deref(), Some("st-1"));
    assert_eq!(
        query(&loc, "iss").as_deref(),
        Some("https://id.test/auth/realms/myrealm")
    );
    let code = query(&loc, "code").unwrap();

    let r = h.exchange(&code, CB, Some(VERIFIER), MY, None).await;
    assert_eq!(r.status(), 200);
    let tokens = json(r).await;
    let id = h.verify(tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["aud"], "myclient");
    assert_eq!(id["groups"], serde_json::json!(["/admins"]));
    let at = tokens["access_token"].as_str().unwrap().to_string();

    // The code is single-use, and its reuse revokes the refresh token it issued.
    let r = h.exchange(&code, CB, Some(VERIFIER), MY, None).await;
    assert_eq!(json(r).await["error"], "invalid_grant");
    let r = h
        .refresh_grant(tokens["refresh_token"].as_str().unwrap(), MY)
        .await;
    assert_eq!(json(r).await["error"], "invalid_grant");

    // SSO: a second client signs in without a form; prompt=none works too.
    let spa = std_params("spa", "http://localhost:5173/app", &ch);
    let r = h
        .get_with_cookie(&auth_url(&spa), &format!("PORTCULLIS_SESSION={sso}"))
        .await;
    assert_eq!(r.status(), 302);
    let spa_code = query(&location(&r), "code").unwrap();
    let mut none = spa.clone();
    none.push(("prompt", "none"));
    let r = h.get(&auth_url(&none)).await;
    assert_eq!(
        query(&location(&r), "error").as_deref(),
        Some("login_required")
    );
    let r = h
        .exchange(
            &spa_code,
            "http://localhost:5173/app",
            Some(VERIFIER),
            None,
            Some("spa"),
        )
        .await;
    assert_eq!(r.status(), 200);

    // userinfo by GET and POST.
    let r = h
        .send(
            Request::get(format!("{P}/userinfo"))
                .header(header::AUTHORIZATION, format!("Bearer {at}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), 200);
    let ui = json(r).await;
    assert_eq!(ui["preferred_username"], "dev-admin");
    assert_eq!(ui["email"], "dev-admin@example.com");
    let r = h
        .post_form(&format!("{P}/userinfo"), &[("access_token", &at)], None)
        .await;
    assert_eq!(r.status(), 200);
    let r = h
        .send(
            Request::get(format!("{P}/userinfo"))
                .header(header::AUTHORIZATION, "Bearer junk")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), 401);

    // Introspection needs client authentication.
    let intro = json(
        h.post_form(&format!("{P}/token/introspect"), &[("token", &at)], MY)
            .await,
    )
    .await;
    assert_eq!(intro["active"], true);
    assert_eq!(intro["client_id"], "myclient");
    assert_eq!(
        h.post_form(&format!("{P}/token/introspect"), &[("token", &at)], None)
            .await
            .status(),
        401
    );

    // Logout with a registered post_logout_redirect_uri ends the session: tokens go inactive.
    let lo = format!(
        "{P}/logout?{}",
        serde_urlencoded::to_string([
            ("id_token_hint", tokens["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", "http://localhost:8000/"),
            ("state", "bye"),
        ])
        .unwrap()
    );
    let r = h.get(&lo).await;
    assert_eq!(r.status(), 302);
    assert_eq!(query(&location(&r), "state").as_deref(), Some("bye"));
    let intro = json(
        h.post_form(&format!("{P}/token/introspect"), &[("token", &at)], MY)
            .await,
    )
    .await;
    assert_eq!(intro["active"], false);
    let r = h
        .get_with_cookie(&auth_url(&params), &format!("PORTCULLIS_SESSION={sso}"))
        .await;
    assert_eq!(r.status(), 200, "the SSO cookie no longer signs in");

    let bad = format!(
        "{P}/logout?{}",
        serde_urlencoded::to_string([
            ("client_id", "myclient"),
            ("post_logout_redirect_uri", "http://evil.example/")
        ])
        .unwrap()
    );
    assert_eq!(h.get(&bad).await.status(), 400);
}

#[tokio::test]
async fn pkce_is_enforced() {
    let h = harness().await;
    let ch = challenge(VERIFIER);
    // Public clients must send an S256 challenge.
    let r = h
        .get(&auth_url(&[
            ("client_id", "spa"),
            ("redirect_uri", "http://localhost:5173/"),
            ("response_type", "code"),
        ]))
        .await;
    assert_eq!(
        query(&location(&r), "error").as_deref(),
        Some("invalid_request")
    );
    let mut plain = std_params("spa", "http://localhost:5173/", &ch);
    plain[7] = ("code_challenge_method", "plain");
    let r = h.get(&auth_url(&plain)).await;
    assert_eq!(
        query(&location(&r), "error").as_deref(),
        Some("invalid_request")
    );

    let params = std_params("spa", "http://localhost:5173/", &ch);
    let code = query(
        &location(&h.login(&params, "bob", "password").await),
        "code",
    )
    .unwrap();
    let wrong = "x".repeat(50);
    let r = h
        .exchange(
            &code,
            "http://localhost:5173/",
            Some(&wrong),
            None,
            Some("spa"),
        )
        .await;
    assert_eq!(json(r).await["error"], "invalid_grant");

    // Missing verifier, and a wrong redirect_uri, on fresh codes.
    let code = query(
        &location(&h.login(&params, "bob", "password").await),
        "code",
    )
    .unwrap();
    assert_eq!(
        json(
            h.exchange(&code, "http://localhost:5173/", None, None, Some("spa"))
                .await
        )
        .await["error"],
        "invalid_grant"
    );
    let code = query(
        &location(&h.login(&params, "bob", "password").await),
        "code",
    )
    .unwrap();
    assert_eq!(
        json(
            h.exchange(
                &code,
                "http://localhost:5173/other",
                Some(VERIFIER),
                None,
                Some("spa")
            )
            .await
        )
        .await["error"],
        "invalid_grant"
    );

    // A code is bound to its client, and expires after 60 s.
    let my = std_params("myclient", CB, &ch);
    let code = query(&location(&h.login(&my, "bob", "password").await), "code").unwrap();
    assert_eq!(
        json(
            h.exchange(
                &code,
                CB,
                Some(VERIFIER),
                Some(("svc-reports", "svc-secret")),
                None
            )
            .await
        )
        .await["error"],
        "invalid_grant"
    );
    let code = query(&location(&h.login(&my, "bob", "password").await), "code").unwrap();
    h.clock.advance(61);
    assert_eq!(
        json(h.exchange(&code, CB, Some(VERIFIER), MY, None).await).await["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn redirect_uri_tricks_get_an_error_page_not_a_redirect() {
    let h = harness().await;
    let ch = challenge(VERIFIER);
    for bad in [
        "http://localhost:8000/oidc/callback",
        "http://localhost:8000/oidc/callback/extra",
        "http://LOCALHOST:8000/oidc/callback/",
        "http://localhost:8001/oidc/callback/",
        "https://localhost:8000/oidc/callback/",
        "http://localhost:8000/oidc/callback/#x",
        "http://attacker@localhost:8000/oidc/callback/",
        "http://localhost:8000@attacker.example/oidc/callback/",
        "http://localhost:5173/", // another client's URI
    ] {
        let r = h.get(&auth_url(&std_params("myclient", bad, &ch))).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert!(r.headers().get(header::LOCATION).is_none(), "{bad}");
    }
    for bad in [
        "http://localhost:5173.attacker.example/",
        "http://localhost:5173/../x",
        "http://localhost:5173@attacker.example/",
    ] {
        let r = h.get(&auth_url(&std_params("spa", bad, &ch))).await;
        assert_eq!(r.status(), 400, "{bad}");
    }
    let r = h.get(&auth_url(&std_params("ghost", CB, &ch))).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn login_form_rejects_bad_csrf_and_shows_errors_escaped() {
    let h = harness().await;
    let ch = challenge(VERIFIER);
    let mut params = std_params("myclient", CB, &ch);
    params[4] = ("state", "<script>x</script>");
    let page = h.get(&auth_url(&params)).await;
    let html = String::from_utf8(body_bytes(page).await).unwrap();
    assert!(!html.contains("<script>x") && html.contains("&lt;script&gt;x"));

    let mut form = params.clone();
    form.extend([
        ("username", "alice"),
        ("password", "password"),
        ("csrf", "forged"),
    ]);
    let req = Request::post(format!("{P}/auth"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, "PORTCULLIS_CSRF=other")
        .body(Body::from(serde_urlencoded::to_string(&form).unwrap()))
        .unwrap();
    assert_eq!(h.send(req).await.status(), 400);

    let r = h.login(&params, "alice", "wrong").await;
    assert_eq!(r.status(), 200);
    let html = String::from_utf8(body_bytes(r).await).unwrap();
    assert!(html.contains("Invalid username or password."));
}

#[tokio::test]
async fn revocation_of_refresh_and_access_tokens() {
    let h = harness().await;
    let t = json(h.password_grant("alice", "password").await).await;
    let (at, rt) = (
        t["access_token"].as_str().unwrap(),
        t["refresh_token"].as_str().unwrap(),
    );
    // Another client cannot revoke it (200 per RFC 7009, but nothing happens).
    assert_eq!(
        h.post_form(
            &format!("{P}/revoke"),
            &[("token", rt)],
            Some(("svc-reports", "svc-secret"))
        )
        .await
        .status(),
        200
    );
    let intro = json(
        h.post_form(&format!("{P}/token/introspect"), &[("token", rt)], MY)
            .await,
    )
    .await;
    assert_eq!(intro["active"], true);
    assert_eq!(
        h.post_form(&format!("{P}/revoke"), &[("token", rt)], MY)
            .await
            .status(),
        200
    );
    let r = h.refresh_grant(rt, MY).await;
    assert_eq!(json(r).await["error"], "invalid_grant");
    assert_eq!(
        h.post_form(&format!("{P}/revoke"), &[("token", at)], MY)
            .await
            .status(),
        200
    );
    let intro = json(
        h.post_form(&format!("{P}/token/introspect"), &[("token", at)], MY)
            .await,
    )
    .await;
    assert_eq!(intro["active"], false);
}

#[tokio::test]
async fn internal_listener_discovery_uses_backchannel_urls() {
    let h = harness().await;
    let req = Request::get("/auth/realms/myrealm/.well-known/openid-configuration")
        .header(header::HOST, "127.0.0.1:8081")
        .extension(crate::Listener::Internal)
        .body(Body::empty())
        .unwrap();
    let d = json(h.send(req).await).await;
    assert_eq!(d["issuer"], "https://id.test/auth/realms/myrealm");
    assert_eq!(
        d["authorization_endpoint"],
        "https://id.test/auth/realms/myrealm/protocol/openid-connect/auth"
    );
    assert_eq!(
        d["token_endpoint"],
        "http://127.0.0.1:8081/auth/realms/myrealm/protocol/openid-connect/token"
    );
    assert_eq!(
        d["jwks_uri"],
        "http://127.0.0.1:8081/auth/realms/myrealm/protocol/openid-connect/certs"
    );
    assert_eq!(
        d["userinfo_endpoint"],
        "http://127.0.0.1:8081/auth/realms/myrealm/protocol/openid-connect/userinfo"
    );
}

#[tokio::test]
async fn cors_for_registered_web_origins_only() {
    let h = harness().await;
    let req = |origin: &str, method: &str| {
        Request::builder()
            .method(method)
            .uri(format!("{P}/token"))
            .header(header::ORIGIN, origin)
            .body(Body::empty())
            .unwrap()
    };
    let r = h.send(req("http://localhost:5173", "OPTIONS")).await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    assert!(
        r.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let r = h.send(req("http://evil.example", "OPTIONS")).await;
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = h.send(req("http://localhost:8000", "POST")).await;
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:8000"
    );
}

#[tokio::test]
async fn prompt_login_max_age_and_login_hint() {
    let h = harness().await;
    let ch = challenge(VERIFIER);
    let params = std_params("myclient", CB, &ch);
    let r = h.login(&params, "bob", "password").await;
    let sso = format!(
        "PORTCULLIS_SESSION={}",
        set_cookie(&r, "PORTCULLIS_SESSION").unwrap()
    );

    let mut login = params.clone();
    login.push(("prompt", "login"));
    login.push(("login_hint", "bob<x>"));
    let r = h.get_with_cookie(&auth_url(&login), &sso).await;
    assert_eq!(
        r.status(),
        200,
        "prompt=login shows the form despite the session"
    );
    let html = String::from_utf8(body_bytes(r).await).unwrap();
    assert!(html.contains("value=\"bob&lt;x&gt;\""));

    h.clock.advance(120);
    let mut aged = params.clone();
    aged.push(("max_age", "60"));
    assert_eq!(
        h.get_with_cookie(&auth_url(&aged), &sso).await.status(),
        200,
        "session older than max_age"
    );
    aged.pop();
    aged.push(("max_age", "600"));
    assert_eq!(
        h.get_with_cookie(&auth_url(&aged), &sso).await.status(),
        302
    );

    // Past the realm's idle timeout the session is gone.
    h.clock.advance(1801);
    assert_eq!(
        h.get_with_cookie(&auth_url(&params), &sso).await.status(),
        200
    );
}
