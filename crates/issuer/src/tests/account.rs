//! The account console (`B/account/`): sign-in through the realm's login, CSRF, a user's
//! reach limited to their own sessions and passkeys, changing the password, sessions, and the
//! passkey ceremony's server side (options, single use, refusals).

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};

use super::flow::{location, query, set_cookie};
use super::harness::*;
use portcullis_store::WebauthnCredentialRow;

const A: &str = "/auth/realms/myrealm/account";

/// A signed-in browser: its session cookie and the console's CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

async fn text(r: Response<Body>) -> String {
    String::from_utf8(body_bytes(r).await).unwrap()
}

/// The value of the first `name="csrf"` field of a page.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    html[at..].split('"').next().unwrap().to_string()
}

impl Harness {
    async fn get_as(&self, uri: &str, b: &Browser) -> Response<Body> {
        self.send(
            Request::get(uri)
                .header(header::COOKIE, format!("PORTCULLIS_SESSION={}", b.cookie))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    async fn post_as(&self, uri: &str, b: &Browser, form: &[(&str, &str)]) -> Response<Body> {
        self.send(
            Request::post(uri)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::COOKIE, format!("PORTCULLIS_SESSION={}", b.cookie))
                .body(Body::from(serde_urlencoded::to_string(form).unwrap()))
                .unwrap(),
        )
        .await
    }

    /// Opens the console signed out, follows it to the realm's login, signs in as `user` and
    /// comes back: the route a browser takes.
    async fn console_sign_in(&self, user: &str, pw: &str) -> Browser {
        let r = self.get(&format!("{A}/")).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let to = location(&r);
        assert_eq!(
            to.path(),
            "/auth/realms/myrealm/protocol/openid-connect/auth"
        );
        assert_eq!(query(&to, "client_id").as_deref(), Some("account-console"));
        assert_eq!(
            query(&to, "redirect_uri").as_deref(),
            Some("https://id.test/auth/realms/myrealm/account/")
        );
        let params: Vec<(String, String)> = to.query_pairs().into_owned().collect();
        let params: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let back = self.login(&params, user, pw).await;
        assert_eq!(back.status(), StatusCode::FOUND, "{}", text(back).await);
        let cookie = set_cookie(&back, "PORTCULLIS_SESSION").unwrap();
        let landed = location(&back);
        assert_eq!(landed.path(), "/auth/realms/myrealm/account/");
        assert!(query(&landed, "code").is_some());
        let b = Browser {
            cookie,
            csrf: String::new(),
        };
        // The code leaves the address bar.
        let r = self.get_as(landed.as_str(), &b).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[header::LOCATION], format!("{A}/"));
        let r = self.get_as(&format!("{A}/"), &b).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        let html = text(r).await;
        assert!(html.contains(&format!("<td>{user}</td>")), "{html}");
        assert!(html.contains("<html lang=\"en\">"));
        Browser {
            csrf: csrf_of(&html),
            ..b
        }
    }

    async fn alive(&self, b: &Browser) -> bool {
        self.get_as(&format!("{A}/"), b).await.status() == StatusCode::OK
    }

    async fn session_id(&self, b: &Browser) -> String {
        let hash = crate::secrets::token_hash(&b.cookie);
        let s = self.issuer.state().store().session_by_cookie(&hash).await;
        s.unwrap().unwrap().id
    }
}

#[tokio::test]
async fn signed_out_the_console_sends_to_the_realm_login_and_back() {
    let h = harness().await;
    let alice = h.console_sign_in("alice", "password").await;
    for section in ["password", "passkeys", "sessions"] {
        let r = h.get_as(&format!("{A}/{section}"), &alice).await;
        assert_eq!(r.status(), StatusCode::OK, "{section}");
    }
    // Only the console's own address may receive the built-in client's codes.
    let evil = super::flow::auth_url(&[
        ("client_id", "account-console"),
        ("redirect_uri", "https://evil.example/account/"),
        ("response_type", "code"),
        ("code_challenge", &"a".repeat(43)),
        ("code_challenge_method", "S256"),
    ]);
    assert_eq!(h.get(&evil).await.status(), StatusCode::BAD_REQUEST);
    // Nor can it redeem them: the token endpoint does not know the built-in client.
    let r = h
        .post_form(
            &format!("{P}/token"),
            &[
                ("grant_type", "password"),
                ("client_id", "account-console"),
                ("username", "alice"),
                ("password", "password"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_post_needs_the_sessions_csrf_token() {
    let h = harness().await;
    let alice = h.console_sign_in("alice", "password").await;
    let bob = h.console_sign_in("bob", "password").await;
    let change = |csrf: &'static str| {
        vec![
            ("current", "password"),
            ("new", "n3w-passw0rd"),
            ("confirm", "n3w-passw0rd"),
            ("csrf", csrf),
        ]
    };
    let r = h
        .post_as(&format!("{A}/password"), &alice, &change(""))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(text(r).await.contains("Invalid or expired form"));
    // Bob's token is no good in Alice's session.
    let mut form = change("");
    form[3].1 = &bob.csrf;
    let r = h.post_as(&format!("{A}/password"), &alice, &form).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    for path in ["sessions/end-others", "sign-out", "passkeys/remove"] {
        let r = h
            .post_as(&format!("{A}/{path}"), &alice, &[("csrf", "x")])
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    let r = h
        .post_as(&format!("{A}/passkeys/options"), &alice, &[("csrf", "x")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(h.alive(&alice).await, "nothing changed");
    assert_eq!(h.password_grant("alice", "password").await.status(), 200);
    // A POST without a session goes to sign in, changing nothing.
    let r = h
        .post_form(&format!("{A}/sign-out"), &[("csrf", &alice.csrf)], None)
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(h.alive(&alice).await);
}

#[tokio::test]
async fn change_password_needs_the_current_one() {
    let h = harness().await;
    let alice = h.console_sign_in("alice", "password").await;
    let post = |current: &'static str, new: &'static str, confirm: &'static str| {
        let csrf = alice.csrf.clone();
        let h = &h;
        let alice = &alice;
        async move {
            let form = [
                ("current", current),
                ("new", new),
                ("confirm", confirm),
                ("csrf", csrf.as_str()),
            ];
            h.post_as(&format!("{A}/password"), alice, &form).await
        }
    };
    let r = post("wrong", "n3w-passw0rd", "n3w-passw0rd").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        text(r)
            .await
            .contains("The current password is not correct.")
    );
    let events = h
        .issuer
        .state()
        .store()
        .list_events("myrealm")
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == "LOGIN_ERROR" && e.client_id.as_deref() == Some("account-console")),
        "a wrong current password is a failed login: {events:?}"
    );
    let r = post("password", "n3w-passw0rd", "other").await;
    assert!(text(r).await.contains("do not match"));
    assert_eq!(h.password_grant("alice", "password").await.status(), 200);

    let r = post("password", "n3w-passw0rd", "n3w-passw0rd").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[header::LOCATION],
        format!("{A}/password?done=password")
    );
    let r = h
        .get_as(&format!("{A}/password?done=password"), &alice)
        .await;
    assert!(text(r).await.contains("Your password was changed."));
    assert_eq!(h.password_grant("alice", "password").await.status(), 401);
    assert_eq!(
        h.password_grant("alice", "n3w-passw0rd").await.status(),
        200
    );
}

#[tokio::test]
async fn sessions_are_listed_and_ended_own_only() {
    let h = harness().await;
    let a1 = h.console_sign_in("alice", "password").await;
    let a2 = h.console_sign_in("alice", "password").await;
    let a3 = h.console_sign_in("alice", "password").await;
    let bob = h.console_sign_in("bob", "password").await;
    let (a2_id, bob_id) = (h.session_id(&a2).await, h.session_id(&bob).await);

    let html = text(h.get_as(&format!("{A}/sessions"), &a1).await).await;
    assert_eq!(html.matches("<tr><td>").count(), 3, "{html}");
    assert!(html.contains("This session"));
    assert!(html.contains(&a2_id) && !html.contains(&bob_id));

    // Alice cannot end Bob's session by its id.
    let form = [("id", bob_id.as_str()), ("csrf", a1.csrf.as_str())];
    let r = h.post_as(&format!("{A}/sessions/end"), &a1, &form).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(text(r).await.contains("does not exist"));
    assert!(h.alive(&bob).await);

    let form = [("id", a2_id.as_str()), ("csrf", a1.csrf.as_str())];
    let r = h.post_as(&format!("{A}/sessions/end"), &a1, &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(!h.alive(&a2).await, "ended");
    assert!(h.alive(&a1).await && h.alive(&a3).await);

    let form = [("csrf", a1.csrf.as_str())];
    let r = h
        .post_as(&format!("{A}/sessions/end-others"), &a1, &form)
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(!h.alive(&a3).await && h.alive(&a1).await && h.alive(&bob).await);

    let r = h.post_as(&format!("{A}/sign-out"), &a1, &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(!h.alive(&a1).await);
    assert_eq!(
        h.get_as(&format!("{A}/"), &a1).await.status(),
        StatusCode::SEE_OTHER,
        "signed out: back to the login"
    );
}

fn passkey_row(id: &str, user_id: &str) -> WebauthnCredentialRow {
    WebauthnCredentialRow {
        id: id.into(),
        realm: "myrealm".into(),
        user_id: user_id.into(),
        credential_id: format!("cred-{id}"),
        passkey: "{}".into(),
        label: format!("Key <{id}>"),
        created_at: 1,
        last_used_at: None,
    }
}

#[tokio::test]
async fn passkeys_are_listed_and_removed_own_only() {
    let h = harness().await;
    let alice = h.console_sign_in("alice", "password").await;
    let bob = h.console_sign_in("bob", "password").await;
    let store = h.issuer.state().store();
    let (alice_id, bob_id) = (
        store
            .user_by_username("myrealm", "alice")
            .await
            .unwrap()
            .unwrap()
            .id,
        store
            .user_by_username("myrealm", "bob")
            .await
            .unwrap()
            .unwrap()
            .id,
    );
    store
        .add_webauthn_credential(&passkey_row("a1", &alice_id))
        .await
        .unwrap();
    store
        .add_webauthn_credential(&passkey_row("b1", &bob_id))
        .await
        .unwrap();

    let r = h.get_as(&format!("{A}/passkeys"), &alice).await;
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    let html = text(r).await;
    assert!(
        html.contains("Key &lt;a1&gt;") && !html.contains("b1"),
        "{html}"
    );
    assert!(html.contains("data-webauthn=\"register\""));
    assert!(html.contains("<label for=\"label\">"));

    let form = [("id", "b1"), ("csrf", alice.csrf.as_str())];
    let r = h
        .post_as(&format!("{A}/passkeys/remove"), &alice, &form)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(text(r).await.contains("does not exist"));
    assert_eq!(
        store
            .webauthn_credentials_of("myrealm", &bob_id)
            .await
            .unwrap()
            .len(),
        1
    );

    let form = [("id", "a1"), ("csrf", alice.csrf.as_str())];
    let r = h
        .post_as(&format!("{A}/passkeys/remove"), &alice, &form)
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        store
            .webauthn_credentials_of("myrealm", &alice_id)
            .await
            .unwrap()
            .is_empty()
    );
    let _ = bob;
}

#[tokio::test]
async fn passkey_ceremonies_start_with_server_side_state_and_refuse_bad_answers() {
    let h = harness().await;
    let alice = h.console_sign_in("alice", "password").await;
    let r = h
        .post_as(
            &format!("{A}/passkeys/options"),
            &alice,
            &[("csrf", &alice.csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    let j = json(r).await;
    let pk = &j["options"]["publicKey"];
    assert_eq!(pk["rp"]["id"], "id.test");
    assert_eq!(pk["user"]["name"], "alice");
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    let handle = j["handle"].as_str().unwrap().to_string();

    // A forged answer is refused in words, and the ceremony is used up.
    let add = |handle: String| {
        let csrf = alice.csrf.clone();
        let (h, alice) = (&h, &alice);
        async move {
            let form = [
                ("label", "Laptop"),
                ("webauthn_handle", handle.as_str()),
                ("webauthn_credential", "{\"id\":\"x\"}"),
                ("csrf", csrf.as_str()),
            ];
            text(h.post_as(&format!("{A}/passkeys"), alice, &form).await).await
        }
    };
    assert!(
        add(handle.clone())
            .await
            .contains("Passkey sign-in failed.")
    );
    assert!(add(handle).await.contains("The passkey request expired."));

    // The login page offers passkeys, with the script allowed and nothing inline.
    let page = h
        .get(&super::flow::auth_url(&super::flow::std_params(
            "myclient",
            super::flow::CB,
            &super::flow::challenge(super::flow::VERIFIER),
        )))
        .await;
    let csrf = set_cookie(&page, "PORTCULLIS_CSRF").unwrap();
    let html = text(page).await;
    assert!(html.contains("autocomplete=\"username webauthn\""));
    assert!(html.contains("src=\"/auth/resources/portcullis/webauthn.js\""));
    assert!(!html.contains("<script>"));
    let options = |csrf_field: &str, cookie: &str| {
        Request::post("/auth/realms/myrealm/login-actions/webauthn-options")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, format!("PORTCULLIS_CSRF={cookie}"))
            .body(Body::from(format!("csrf={csrf_field}")))
            .unwrap()
    };
    assert_eq!(
        h.send(options("x", &csrf)).await.status(),
        StatusCode::BAD_REQUEST
    );
    let r = h.send(options(&csrf, &csrf)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let j = json(r).await;
    assert!(
        j["options"]["publicKey"]["allowCredentials"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(j["options"].get("mediation").is_none(), "the page chooses");

    // An answer naming no passkey fails the login and counts toward brute force.
    let ch = super::flow::challenge(super::flow::VERIFIER);
    let mut form = super::flow::std_params("myclient", super::flow::CB, &ch);
    let handle = j["handle"].as_str().unwrap().to_string();
    let cred = r#"{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"authenticatorData":"AAAA","clientDataJSON":"AAAA","signature":"AAAA","userHandle":"AAAA"}}"#;
    form.extend([
        ("csrf", csrf.as_str()),
        ("webauthn_handle", handle.as_str()),
        ("webauthn_credential", cred),
    ]);
    let r = h
        .send(
            Request::post(format!("{P}/auth"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::COOKIE, format!("PORTCULLIS_CSRF={csrf}"))
                .body(Body::from(serde_urlencoded::to_string(&form).unwrap()))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(text(r).await.contains("Passkey sign-in failed."));
    let events = h
        .issuer
        .state()
        .store()
        .list_events("myrealm")
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == "LOGIN_ERROR" && e.user_id.is_none())
    );
}

/// The value of the hidden field `name` of a page.
fn field_of(html: &str, name: &str) -> String {
    let key = format!("name=\"{name}\" value=\"");
    let at = html.find(&key).unwrap() + key.len();
    html[at..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn totp_is_added_with_its_code_and_removed_own_only() {
    use crate::domain::totp::OtpData;
    let h = harness().await;
    let alice = h.console_sign_in("alice", "password").await;
    let bob = h.console_sign_in("bob", "password").await;
    let html = text(h.get_as(&format!("{A}/totp"), &alice).await).await;
    assert!(html.contains("You have no authenticator app set up."));
    assert!(html.contains("<svg") && html.contains("id=\"totp-secret\""));
    let pending = field_of(&html, "pending");
    // The secret the form carries, as the app would have it from the QR code.
    let st = h.issuer.state();
    let sid = h.session_id(&alice).await;
    let aad = crate::domain::account::totp_aad(&sid);
    let keys = st.keys.realm("myrealm").unwrap();
    let secret = String::from_utf8(keys.seal.open(&aad, &pending).unwrap()).unwrap();
    let dir = st.dir("myrealm").unwrap();
    let code = OtpData::of_policy(&dir.settings.accounts)
        .code_at(&secret, i64::try_from(T0).unwrap())
        .unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };

    let r = h.add_totp(&alice, &pending, wrong).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let again = text(r).await;
    assert!(again.contains("Invalid authenticator code."));
    assert!(!field_of(&again, "pending").is_empty());
    // Alice's form does not open in Bob's session.
    let r = h.add_totp(&bob, &pending, &code).await;
    assert!(text(r).await.contains("The form expired"));
    let r = h.add_totp(&alice, &pending, &code).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let list = crate::domain::account::totp_of(st, &dir, &h.session_user(&alice).await)
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    let html = text(h.get_as(&format!("{A}/totp"), &alice).await).await;
    assert!(html.contains("<td>Phone</td>"), "{html}");

    // Bob cannot remove it; Alice can.
    let form = [("id", list[0].id.as_str()), ("csrf", bob.csrf.as_str())];
    let r = h.post_as(&format!("{A}/totp/remove"), &bob, &form).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let form = [("id", list[0].id.as_str()), ("csrf", alice.csrf.as_str())];
    let r = h.post_as(&format!("{A}/totp/remove"), &alice, &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let alice_id = h.session_user(&alice).await;
    let left = crate::domain::account::totp_of(st, &dir, &alice_id).await;
    assert!(left.unwrap().is_empty());
}

impl Harness {
    async fn add_totp(&self, who: &Browser, pending: &str, code: &str) -> Response<Body> {
        let form = [
            ("pending", pending),
            ("totp", code),
            ("userLabel", "Phone"),
            ("csrf", who.csrf.as_str()),
        ];
        self.post_as(&format!("{A}/totp"), who, &form).await
    }

    async fn session_user(&self, b: &Browser) -> String {
        let hash = crate::secrets::token_hash(&b.cookie);
        let s = self.issuer.state().store().session_by_cookie(&hash).await;
        s.unwrap().unwrap().user_id
    }
}
