//! The mail parts inside the sign-in flow (login2fa's `accounts` realm, pointed at the SMTP
//! sink): the realm's `verifyEmail` makes the `VERIFY_EMAIL` step mail a link, the link
//! verifies the address and the sign-in goes on to the code; and a reset link sets the
//! password through the realm's password policy (length, digits, history).

use axum::http::StatusCode;

use super::accounts::{self, APP, Browser, claims, tokens};
use super::mail::*;

const ACTION: &str = "/auth/realms/acct/login-actions/required-action?execution=";

/// The accounts realm with `verifyEmail`, "forgot password", the sink as its SMTP server, and
/// `vera`, whose address is not verified.
fn realm(port: u16) -> String {
    accounts::realm_text()
        .replacen(
            r#""realm": "acct","#,
            &format!(
                r#""realm": "acct", "verifyEmail": true, "resetPasswordAllowed": true,
                   "smtpServer": {},"#,
                smtp(port)
            ),
            1,
        )
        .replacen(
            r#""users": ["#,
            r#""users": [{"username": "vera", "email": "vera@example.com",
                          "credentials": [{"type": "password", "value": "Passw0rd!"}]},"#,
            1,
        )
}

#[tokio::test]
async fn verify_email_in_the_sign_in_mails_a_link_that_lets_it_finish() {
    let sink = Sink::start(&[]);
    let h = start(&[realm(sink.port)], false).await;
    let mut b = Browser::new(&h);
    let r = b.sign_in("app", &[], "vera", "Passw0rd!").await;
    assert_eq!(r.location, Some(format!("{ACTION}VERIFY_EMAIL")));
    let page = b.follow(&r).await;
    assert!(page.body.contains("vera@example.com"));
    let m = &sink.wait_for(1).await[0];
    assert_eq!(m["rcpt_tos"], serde_json::json!(["vera@example.com"]));
    assert_eq!(
        header_of(m, "Subject"),
        Some("Verify email for Acme <Accounts>")
    );
    // Not yet verified: "continue" shows the step again.
    let s = b
        .post(
            &format!("{ACTION}VERIFY_EMAIL"),
            &[("csrf", &page.csrf()), ("action", "continue")],
        )
        .await;
    assert_eq!(s.location, Some(format!("{ACTION}VERIFY_EMAIL")));
    // The link (opened anywhere) verifies; the sign-in then goes on to the code.
    let opened = h.get(&link_in(m)).await;
    assert_eq!(opened.status(), 200);
    let s = b
        .post(
            &format!("{ACTION}VERIFY_EMAIL"),
            &[("csrf", &page.csrf()), ("action", "continue")],
        )
        .await;
    let t = tokens(&h, &s, APP).await;
    let id = claims(&h, t["id_token"].as_str().unwrap()).await;
    assert_eq!(id["email_verified"], true);
    // Verified users are not asked again.
    let mut b = Browser::new(&h);
    let r = b.sign_in("app", &[], "vera", "Passw0rd!").await;
    assert_eq!(r.status, StatusCode::FOUND, "{:?}", r.location);
}

#[tokio::test]
async fn a_reset_link_sets_the_password_through_the_realms_policy() {
    let sink = Sink::start(&[]);
    let h = start(&[realm(sink.port)], false).await;
    let uri = "/auth/realms/acct/login-actions/reset-credentials";
    let (csrf, _) = form_csrf(&h, uri).await;
    post_with_csrf(&h, uri, &csrf, &[("username", "vera")]).await;
    let link = link_in(&sink.wait_for(1).await[0]);
    let key = link.split("key=").nth(1).unwrap();
    let action = "/auth/realms/acct/login-actions/action-token";
    for (pw, want) in [
        ("short1", "Invalid password: minimum length 8."),
        (
            "Passw0rd!",
            "Invalid password: must not be equal to any of last 2 passwords.",
        ),
    ] {
        let r = h
            .post_form(
                action,
                &[("key", key), ("password-new", pw), ("password-confirm", pw)],
                None,
            )
            .await;
        assert_eq!(r.status(), 200);
        let body = text(r).await;
        assert!(body.contains(want), "{pw}: {body}");
    }
    // A refused password leaves the link usable.
    let r = h
        .post_form(
            action,
            &[
                ("key", key),
                ("password-new", "Newpass1!"),
                ("password-confirm", "Newpass1!"),
            ],
            None,
        )
        .await;
    assert!(text(r).await.contains("Your password has been updated."));
    assert_eq!(h.get(&link).await.status(), 400, "used");
    let mut b = Browser::new(&h);
    let r = b.sign_in("app", &[], "vera", "Newpass1!").await;
    assert_eq!(r.location, Some(format!("{ACTION}VERIFY_EMAIL")));
}
