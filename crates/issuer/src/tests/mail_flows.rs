//! Every mail flow end to end over the SMTP sink (`mail.rs`): registration and its
//! verification link (once, then refused; expired), "forgot password" without enumeration and
//! its reset link, the admin API's mails, header-injection addresses, SMTP auth, and a down or
//! refusing SMTP server.

use std::time::Duration;

use serde_json::json;

use super::admin::call;
use super::harness::*;
use super::mail::*;

const FLAGS: &str = r#""registrationAllowed": true, "resetPasswordAllowed": true,
    "verifyEmail": true,"#;

fn base(realm: &str) -> String {
    format!("/auth/realms/{realm}")
}

#[tokio::test]
async fn registration_mails_a_verification_link_that_works_once() {
    let sink = Sink::start(&[]);
    let h = start(&[realm_text("reg", &smtp(sink.port), FLAGS)], true).await;
    // The login page offers both.
    let login = text(
        h.get(&format!(
            "{}/protocol/openid-connect/auth?client_id=app&response_type=code&redirect_uri=https%3A%2F%2Fapp.test%2Fcb",
            base("reg")
        ))
        .await,
    )
    .await;
    assert!(
        login.contains("Forgot password?") && login.contains(">Register<"),
        "{login}"
    );
    assert!(login.contains("/auth/realms/reg/login-actions/reset-credentials?client_id=app"));

    let reg = format!("{}/login-actions/registration", base("reg"));
    let (csrf, page) = form_csrf(
        &h,
        &format!("{}/protocol/openid-connect/registrations", base("reg")),
    )
    .await;
    assert!(page.contains("<label for=\"password-confirm\">"));
    let fields = |email: &'static str, user: &'static str| {
        vec![
            ("firstName", "Cy"),
            ("lastName", "Doe"),
            ("email", email),
            ("username", user),
            ("password", "new-pw-1"),
            ("password-confirm", "new-pw-1"),
        ]
    };
    // Taken names and addresses, and mismatched passwords, are said in words.
    let r = text(post_with_csrf(&h, &reg, &csrf, &fields("ann@example.com", "cy")).await).await;
    assert!(r.contains("Email already exists."), "{r}");
    let r = text(post_with_csrf(&h, &reg, &csrf, &fields("cy@example.com", "ANN")).await).await;
    assert!(r.contains("Username already exists."), "{r}");
    let mut bad = fields("cy@example.com", "cy");
    bad[5].1 = "other";
    let r = text(post_with_csrf(&h, &reg, &csrf, &bad).await).await;
    assert!(r.contains("Passwords don&#x27;t match."), "{r}");
    // Without the CSRF cookie nothing is created.
    let r = h
        .post_form(&reg, &fields("cy@example.com", "cy"), None)
        .await;
    assert_eq!(r.status(), 400);

    let r = post_with_csrf(&h, &reg, &csrf, &fields("cy@example.com", "cy")).await;
    assert_eq!(r.status(), 200);
    assert!(text(r).await.contains("verify your email address"));
    let mails = sink.wait_for(1).await;
    let m = &mails[0];
    assert_eq!(m["rcpt_tos"], json!(["cy@example.com"]));
    assert_eq!(m["mail_from"], "idp@example.com");
    assert_eq!(
        header_of(m, "Subject"),
        Some("Verify email for Example <Org>")
    );
    assert!(header_of(m, "From").unwrap().contains("Example IdP"));
    assert!(m["html"].as_str().unwrap().contains("Example &lt;Org&gt;"));
    assert_eq!(password_status(&h, "reg", "cy", "new-pw-1").await, 200);

    let link = link_in(m);
    let r = h.get(&link).await;
    assert_eq!(r.status(), 200);
    assert!(
        text(r)
            .await
            .contains("Your email address has been verified.")
    );
    let u = super::mail::text(
        call(
            &h,
            "GET",
            "/admin/realms/reg/users?username=cy&exact=true",
            None,
        )
        .await,
    )
    .await;
    assert!(u.contains("\"emailVerified\":true"), "{u}");
    // The second use is refused.
    let r = h.get(&link).await;
    assert_eq!(r.status(), 400);
    assert!(text(r).await.contains("already been used"));
    // A forged key is refused as invalid.
    let r = h.get(&format!("{}x", link)).await;
    assert_eq!(r.status(), 400);
    wait_sent("reg", "verify_email", "ok", 1).await;
}

#[tokio::test]
async fn forgot_password_is_neutral_and_its_link_sets_the_password_once() {
    let sink = Sink::start(&[]);
    let h = start(&[realm_text("fp", &smtp(sink.port), FLAGS)], false).await;
    // A session and refresh token from before the reset.
    let before = h
        .post_form(
            "/auth/realms/fp/protocol/openid-connect/token",
            &[
                ("grant_type", "password"),
                ("username", "ann"),
                ("password", "pw"),
            ],
            Some(("app", "app-secret")),
        )
        .await;
    let rt = json(before).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();

    // It works until the reset.
    let r = refresh(&h, "fp", &rt).await;
    assert_eq!(r.status(), 200);
    let rt = json(r).await["refresh_token"].as_str().unwrap().to_string();

    let uri = format!(
        "{}/login-actions/reset-credentials?client_id=app",
        base("fp")
    );
    let (csrf, _) = form_csrf(&h, &uri).await;
    let mut answers = Vec::new();
    for who in [
        "ann",
        "ANN@example.com",
        "nobody",
        "nobody@example.com",
        "bob",
    ] {
        let r = post_with_csrf(&h, &uri, &csrf, &[("username", who)]).await;
        answers.push((r.status(), text(r).await));
    }
    assert!(answers[0].1.contains("You should receive an email shortly"));
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "the same answer for everyone"
    );
    // Only Ann's two requests were mailed (bob has no address), both to her.
    let mails = sink.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.mails().len(), 2);
    for m in &mails {
        assert_eq!(m["rcpt_tos"], json!(["ann@example.com"]));
        assert_eq!(
            header_of(m, "Subject"),
            Some("Reset password for Example <Org>")
        );
    }
    let (first, second) = (link_in(&mails[0]), link_in(&mails[1]));

    // Opening shows the form and uses nothing; the form says what is wrong.
    let r = h.get(&first).await;
    assert_eq!(r.status(), 200);
    let form = text(r).await;
    assert!(form.contains("<label for=\"password-new\">New password</label>"));
    let key = first.split("key=").nth(1).unwrap();
    let set = |pw: &'static str, confirm: &'static str| set_password(&h, "fp", key, pw, confirm);
    let r = set("n3w", "other").await;
    assert!(text(r).await.contains("Passwords don&#x27;t match."));
    let r = set("n3w", "n3w").await;
    assert_eq!(r.status(), 200);
    assert!(text(r).await.contains("Your password has been updated."));
    assert_eq!(password_status(&h, "fp", "ann", "pw").await, 401);
    assert_eq!(password_status(&h, "fp", "ann", "n3w").await, 200);
    // Her sessions and refresh tokens ended.
    assert_eq!(refresh(&h, "fp", &rt).await.status(), 400);
    // The link works once; the other link died with the old password.
    assert_eq!(set("again", "again").await.status(), 400);
    let r = h.get(&second).await;
    assert_eq!(r.status(), 400);
    assert!(text(r).await.contains("no longer valid"));
    assert_eq!(password_status(&h, "fp", "ann", "n3w").await, 200);
}

#[tokio::test]
async fn links_expire_with_the_realms_lifespan() {
    let sink = Sink::start(&[]);
    let flags = format!("{FLAGS} \"actionTokenGeneratedByUserLifespan\": 120,");
    let h = start(&[realm_text("exp", &smtp(sink.port), &flags)], false).await;
    let uri = format!("{}/login-actions/reset-credentials", base("exp"));
    let (csrf, _) = form_csrf(&h, &uri).await;
    post_with_csrf(&h, &uri, &csrf, &[("username", "ann")]).await;
    let m = &sink.wait_for(1).await[0];
    assert!(m["text"].as_str().unwrap().contains("within 2 minutes"));
    let link = link_in(m);
    h.clock.advance(119);
    assert_eq!(h.get(&link).await.status(), 200);
    h.clock.advance(1);
    let r = h.get(&link).await;
    assert_eq!(r.status(), 400);
    assert!(text(r).await.contains("expired"));
}

#[tokio::test]
async fn header_tricks_in_addresses_are_refused() {
    let sink = Sink::start(&[]);
    let h = start(&[realm_text("inj", &smtp(sink.port), FLAGS)], true).await;
    let reg = format!("{}/login-actions/registration", base("inj"));
    let (csrf, _) = form_csrf(&h, &reg).await;
    for (i, bad) in [
        "a@b.test\r\nBcc: x@evil.test",
        "a@b.test, c@evil.test",
        "a@b.test\0",
        "A <a@b.test>",
    ]
    .into_iter()
    .enumerate()
    {
        let user = format!("inj{i}");
        let form = [
            ("email", bad),
            ("username", user.as_str()),
            ("password", "p"),
            ("password-confirm", "p"),
        ];
        let r = text(post_with_csrf(&h, &reg, &csrf, &form).await).await;
        assert!(r.contains("Invalid email address."), "{bad:?}: {r}");
        assert_eq!(
            password_status(&h, "inj", &user, "p").await,
            401,
            "not created"
        );
        // The admin API refuses them too.
        let r = call(
            &h,
            "POST",
            "/admin/realms/inj/users",
            Some(json!({"username": user, "email": bad})),
        )
        .await;
        assert_eq!(r.status(), 400, "{bad:?}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(sink.mails().is_empty());
}

#[tokio::test]
async fn admin_mails_execute_actions_and_verify_email() {
    let sink = Sink::start(&[]);
    // A password without `auth` is kept but not used.
    let with_pw = smtp(sink.port).replace('}', r#", "password": "${PORTCULLIS_TEST_PW}"}"#);
    let h = start(&[realm_text("adm", &with_pw, "")], true).await;
    let users = json(
        call(
            &h,
            "GET",
            "/admin/realms/adm/users?username=ann&exact=true",
            None,
        )
        .await,
    )
    .await;
    let ann = users[0]["id"].as_str().unwrap().to_string();
    let users = json(
        call(
            &h,
            "GET",
            "/admin/realms/adm/users?username=bob&exact=true",
            None,
        )
        .await,
    )
    .await;
    let bob = users[0]["id"].as_str().unwrap().to_string();
    let path = |id: &str, what: &str| format!("/admin/realms/adm/users/{id}/{what}");

    for (body, status) in [
        (json!(["CONFIGURE_NOTHING"]), 400),
        (json!([]), 400),
        (json!("UPDATE_PASSWORD"), 400),
    ] {
        let r = call(&h, "PUT", &path(&ann, "execute-actions-email"), Some(body)).await;
        assert_eq!(r.status(), status);
    }
    let r = call(&h, "PUT", &path(&bob, "send-verify-email"), None).await;
    assert_eq!(r.status(), 400, "bob has no address");
    let r = call(&h, "PUT", &path("no-such-user", "send-verify-email"), None).await;
    assert_eq!(r.status(), 404);

    let r = call(
        &h,
        "PUT",
        &format!("{}?lifespan=600", path(&ann, "execute-actions-email")),
        Some(json!(["UPDATE_PASSWORD", "VERIFY_EMAIL"])),
    )
    .await;
    assert_eq!(r.status(), 204);
    let m = &sink.wait_for(1).await[0];
    assert_eq!(
        header_of(m, "Subject"),
        Some("Update your Example <Org> account")
    );
    assert!(
        m["text"]
            .as_str()
            .unwrap()
            .contains("Update Password, Verify Email")
    );
    assert!(m["text"].as_str().unwrap().contains("within 10 minutes"));
    let link = link_in(m);
    let key = link.split("key=").nth(1).unwrap();
    assert_eq!(h.get(&link).await.status(), 200);
    let r = h
        .post_form(
            &format!("{}/login-actions/action-token", base("adm")),
            &[
                ("key", key),
                ("password-new", "fresh"),
                ("password-confirm", "fresh"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(password_status(&h, "adm", "ann", "fresh").await, 200);
    let u = json(call(&h, "GET", &format!("/admin/realms/adm/users/{ann}"), None).await).await;
    assert_eq!(
        u["emailVerified"], true,
        "the link verified the address too"
    );

    let r = call(&h, "PUT", &path(&ann, "send-verify-email"), None).await;
    assert_eq!(r.status(), 204);
    let m = &sink.wait_for(2).await[1];
    assert!(
        m["text"].as_str().unwrap().contains("within 12 hours"),
        "the admin lifespan"
    );
    wait_sent("adm", "execute_actions", "ok", 1).await;
    // The realm representation shows the settings, never the password.
    let rep = json(call(&h, "GET", "/admin/realms/adm", None).await).await;
    assert_eq!(rep["smtpServer"]["from"], "idp@example.com");
    assert_eq!(rep["smtpServer"]["password"], "**********");
    assert_eq!(rep["displayName"], "Example <Org>");
}

#[tokio::test]
async fn smtp_auth_uses_the_password_from_the_environment_syntax() {
    let sink = Sink::start(&["--auth", "idp:s3cret"]);
    let with_pw = |realm: &str, pw: &str| {
        let smtp = format!(
            r#"{{"host": "127.0.0.1", "port": "{}", "from": "idp@example.com", "auth": "true",
                 "user": "idp", "password": "{pw}"}}"#,
            sink.port
        );
        realm_text(realm, &smtp, FLAGS)
    };
    // `${VAR:default}`: the variable is unset here, so its default is the password, read
    // when the mail is sent.
    let h = start(
        &[
            with_pw("auth-ok", "${PORTCULLIS_TEST_UNSET_SMTP_PW:s3cret}"),
            with_pw("auth-bad", "wrong"),
        ],
        false,
    )
    .await;
    for realm in ["auth-ok", "auth-bad"] {
        let uri = format!("{}/login-actions/reset-credentials", base(realm));
        let (csrf, _) = form_csrf(&h, &uri).await;
        let r = post_with_csrf(&h, &uri, &csrf, &[("username", "ann")]).await;
        assert!(
            text(r)
                .await
                .contains("You should receive an email shortly")
        );
    }
    wait_sent("auth-ok", "reset_password", "ok", 1).await;
    wait_sent("auth-bad", "reset_password", "error", 1).await;
    assert_eq!(
        sink.mails().len(),
        1,
        "only the right password got a mail through"
    );
}

#[tokio::test]
async fn a_down_or_refusing_server_is_counted_and_the_user_sees_the_same_page() {
    let refusing = Sink::start(&["--reject"]);
    let realms = [("down", closed_port()), ("refusing", refusing.port)];
    let mut texts: Vec<String> = realms
        .iter()
        .map(|(realm, port)| realm_text(realm, &smtp(*port), FLAGS))
        .collect();
    texts.push(realm_text("nosmtp", "{}", FLAGS));
    let h = start(&texts, false).await;
    for realm in ["down", "refusing", "nosmtp"] {
        let uri = format!("{}/login-actions/reset-credentials", base(realm));
        let (csrf, _) = form_csrf(&h, &uri).await;
        let r = post_with_csrf(&h, &uri, &csrf, &[("username", "ann")]).await;
        assert_eq!(r.status(), 200);
        assert!(
            text(r)
                .await
                .contains("You should receive an email shortly")
        );
    }
    // A realm without `smtpServer` counts the mail it could not send at once; the others
    // after three tries each. Nothing arrived; the issuer still answers.
    assert_eq!(sent("nosmtp", "reset_password", "error"), 1);
    for (realm, _) in realms {
        wait_sent(realm, "reset_password", "error", 1).await;
        assert_eq!(sent(realm, "reset_password", "ok"), 0);
    }
    assert!(refusing.mails().is_empty());
    assert_eq!(h.get(&base("down")).await.status(), 200);
}

#[tokio::test]
async fn the_forms_are_refused_when_the_realm_does_not_allow_them() {
    let h = start(&[realm_text("closed", "{}", "")], false).await;
    for path in [
        "login-actions/reset-credentials",
        "login-actions/registration",
        "protocol/openid-connect/registrations",
    ] {
        let r = h.get(&format!("{}/{path}", base("closed"))).await;
        assert_eq!(r.status(), 400, "{path}");
    }
    let login = text(
        h.get(&format!(
            "{}/protocol/openid-connect/auth?client_id=app&response_type=code&redirect_uri=https%3A%2F%2Fapp.test%2Fcb",
            base("closed")
        ))
        .await,
    )
    .await;
    assert!(!login.contains("Forgot password?") && !login.contains("Register"));
}

/// POSTs the new-password form of a link's `key`.
async fn set_password(
    h: &Harness,
    realm: &str,
    key: &str,
    pw: &str,
    confirm: &str,
) -> axum::http::Response<axum::body::Body> {
    h.post_form(
        &format!("{}/login-actions/action-token", base(realm)),
        &[
            ("key", key),
            ("password-new", pw),
            ("password-confirm", confirm),
        ],
        None,
    )
    .await
}

/// A refresh grant of `realm` with client `app`.
async fn refresh(h: &Harness, realm: &str, rt: &str) -> axum::http::Response<axum::body::Body> {
    h.post_form(
        &format!("{}/protocol/openid-connect/token", base(realm)),
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        Some(("app", "app-secret")),
    )
    .await
}
