//! Required actions end to end (TOTP enrollment, password update under the realm's policy,
//! email verification with its hook), a temporary password, the admin API's
//! `requiredActions` and reset-password policy, and `otp` credentials through realm export
//! and import.

use axum::http::StatusCode;
use serde_json::json;

use super::accounts::*;
use super::harness::*;
use crate::domain::realm_import;

const ACTION: &str = "/auth/realms/acct/login-actions/required-action?execution=";

/// The base32 key an enrollment page shows, without its spaces.
fn shown_key(body: &str) -> String {
    let at = body.find("id=\"totp-secret\">").unwrap() + 17;
    let rest = &body[at..];
    rest[..rest.find('<').unwrap()].replace(' ', "")
}

/// Posts the `UPDATE_PASSWORD` form.
async fn update(b: &mut Browser<'_>, csrf: &str, new: &str, confirm: &str) -> Seen {
    let form = [
        ("csrf", csrf),
        ("password-new", new),
        ("password-confirm", confirm),
    ];
    b.post(&format!("{ACTION}UPDATE_PASSWORD"), &form).await
}

/// The admin API's representation of user `id` of the test realm.
async fn one(h: &super::admin::AdminHarness, id: &str) -> serde_json::Value {
    let uri = format!("/admin/realms/acct/users/{id}");
    json(super::admin::call(h, "GET", &uri, None).await).await
}

#[tokio::test]
async fn every_required_action_then_the_code() {
    let h = accounts_harness().await;
    let st = h.issuer.state().clone();
    let mut b = Browser::new(&h);
    let r = b.sign_in("app", &[], "ra", "Passw0rd!").await;
    // Keycloak's order: CONFIGURE_TOTP, UPDATE_PASSWORD, VERIFY_EMAIL.
    assert_eq!(r.location, Some(format!("{ACTION}CONFIGURE_TOTP")));
    let page = b.follow(&r).await;
    assert!(
        page.body.contains("<svg role=\"img\" aria-label="),
        "inline QR code"
    );
    assert!(page.body.contains("<label for=\"userLabel\">"));
    let key = shown_key(&page.body);
    // Every step form needs the sign-in's CSRF token.
    for action in ["CONFIGURE_TOTP", "UPDATE_PASSWORD", "VERIFY_EMAIL"] {
        let s = b
            .post(
                &format!("{ACTION}{action}"),
                &[("csrf", "forged"), ("totp", "1")],
            )
            .await;
        assert_eq!(s.status, StatusCode::BAD_REQUEST, "{action}");
        assert!(s.body.contains("Invalid or expired form"), "{action}");
    }
    let enc = data(Some("BASE32"));
    let wrong = b
        .post(
            &format!("{ACTION}CONFIGURE_TOTP"),
            &[("csrf", &page.csrf()), ("totp", "999999")],
        )
        .await;
    assert!(wrong.body.contains("Invalid authenticator code."));
    assert_eq!(
        shown_key(&wrong.body),
        key,
        "the same secret until enrolled"
    );
    let good = enc.code_at(&key, T0 as i64).unwrap();
    let r = b
        .post(
            &format!("{ACTION}CONFIGURE_TOTP"),
            &[
                ("csrf", &page.csrf()),
                ("totp", &good),
                ("userLabel", "work phone"),
            ],
        )
        .await;
    assert_eq!(r.location, Some(format!("{ACTION}UPDATE_PASSWORD")));
    let page = b.follow(&r).await;
    assert!(page.body.contains("autocomplete=\"new-password\""));
    let csrf = page.csrf();
    for (a, c, want) in [
        ("Newpass1!", "Newpass2!", "Passwords don&#x27;t match."),
        ("short1", "short1", "Invalid password: minimum length 8."),
        (
            "nodigits!",
            "nodigits!",
            "Invalid password: must contain at least 1 numerical digits.",
        ),
        (
            "Passw0rd!",
            "Passw0rd!",
            "Invalid password: must not be equal to any of last 2 passwords.",
        ),
    ] {
        let s = update(&mut b, &csrf, a, c).await;
        assert_eq!(s.status, StatusCode::OK);
        assert!(
            s.body.contains(&format!("role=\"alert\">{want}")),
            "{a}: {}",
            s.body
        );
    }
    let r = update(&mut b, &csrf, "Newpass1!", "Newpass1!").await;
    assert_eq!(r.location, Some(format!("{ACTION}VERIFY_EMAIL")));
    let page = b.follow(&r).await;
    assert!(page.body.contains("ra@example.com"));
    // Continue before the address is verified: the same page again.
    let s = b
        .post(
            &format!("{ACTION}VERIFY_EMAIL"),
            &[("csrf", &page.csrf()), ("action", "continue")],
        )
        .await;
    assert_eq!(s.location, Some(format!("{ACTION}VERIFY_EMAIL")));
    let s = b
        .post(
            &format!("{ACTION}VERIFY_EMAIL"),
            &[("csrf", &page.csrf()), ("action", "resend")],
        )
        .await;
    assert!(s.body.contains("We sent the email again."));
    // The link's handler sets emailVerified; then the sign-in goes on to the code.
    let store = st.store();
    let mut u = store.user_by_username(REALM, "ra").await.unwrap().unwrap();
    u.email_verified = true;
    u.password_hash = None;
    store.put_user(&u).await.unwrap();
    let s = b
        .post(
            &format!("{ACTION}VERIFY_EMAIL"),
            &[("csrf", &page.csrf()), ("action", "continue")],
        )
        .await;
    assert_eq!(
        acr_amr(&h, &s, APP).await,
        (json!("gold"), json!(["pwd", "otp"]))
    );
    assert!(store.user_required_actions(&u.id).await.unwrap().is_empty());
    let creds = store.user_credentials(REALM, &u.id).await.unwrap();
    let otp = creds.iter().find(|c| c.kind == "otp").unwrap();
    assert_eq!(otp.label.as_deref(), Some("work phone"));
    assert!(!otp.secret.expose().contains(&key), "sealed at rest");
    // The old password is history; the new one signs in (with the new TOTP).
    let mut b = Browser::new(&h);
    assert_eq!(
        b.sign_in("app", &[], "ra", "Passw0rd!").await.status,
        StatusCode::OK
    );
    let r = b.sign_in("app", &[], "ra", "Newpass1!").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_temporary_password_is_changed_at_first_sign_in() {
    let h = accounts_harness().await;
    let mut b = Browser::new(&h);
    let r = b.sign_in("app", &[], "temp", "Passw0rd!").await;
    assert_eq!(r.location, Some(format!("{ACTION}UPDATE_PASSWORD")));
    let page = b.follow(&r).await;
    let s = b
        .post(
            &format!("{ACTION}UPDATE_PASSWORD"),
            &[
                ("csrf", &page.csrf()),
                ("password-new", "Passw0rd!"),
                ("password-confirm", "Passw0rd!"),
            ],
        )
        .await;
    assert!(
        s.body
            .contains("must not be equal to any of last 2 passwords"),
        "{}",
        s.body
    );
    let s = b
        .post(
            &format!("{ACTION}UPDATE_PASSWORD"),
            &[
                ("csrf", &page.csrf()),
                ("password-new", "Fresh123"),
                ("password-confirm", "Fresh123"),
            ],
        )
        .await;
    assert_eq!(
        acr_amr(&h, &s, APP).await,
        (json!("silver"), json!(["pwd"]))
    );
}

#[tokio::test]
async fn otp_credentials_and_required_actions_round_trip_through_export_and_import() {
    let h = accounts_harness().await;
    let store = h.issuer.state().store().clone();
    let file = realm_import::export(store.as_ref(), REALM).await.unwrap();
    let tina = file.users.iter().find(|u| u.username == "tina").unwrap();
    let otp = tina.credentials.iter().find(|c| c.kind == "otp").unwrap();
    let secret: serde_json::Value =
        serde_json::from_str(otp.secret_data.as_deref().unwrap()).unwrap();
    assert_eq!(secret, json!({"value": SECRET}));
    let data: serde_json::Value =
        serde_json::from_str(otp.credential_data.as_deref().unwrap()).unwrap();
    assert_eq!(
        (
            &data["subType"],
            &data["digits"],
            &data["period"],
            &data["algorithm"]
        ),
        (&json!("totp"), &json!(6), &json!(30), &json!("HmacSHA1"))
    );
    assert_eq!(otp.user_label.as_deref(), Some("phone"));
    let ra = file.users.iter().find(|u| u.username == "ra").unwrap();
    assert_eq!(
        ra.required_actions.as_deref(),
        Some(
            &[
                "VERIFY_EMAIL".to_string(),
                "UPDATE_PASSWORD".into(),
                "CONFIGURE_TOTP".into()
            ][..]
        )
    );
    let text = serde_json::to_string(&file).unwrap();
    for key in [
        "\"passwordPolicy\"",
        "\"otpPolicyPeriod\":30",
        "portcullis.otp.requiredGroups",
        "\"forceOtpRole\":\"app.admin\"",
        "\"displayName\":\"Acme <Accounts>\"",
    ] {
        assert!(text.contains(key), "{key}");
    }
    // Imported again under another name, the secret still gives the same codes; a sync of the
    // same file does not duplicate the credential.
    let mut copy = file.clone();
    copy.realm = "acct2".into();
    // User and credential ids are global: the copy gets new ones (the credential's derived
    // from its user and secret, so the sync below finds it again).
    for u in &mut copy.users {
        u.id = None;
        for c in &mut u.credentials {
            c.id = None;
        }
    }
    realm_import::apply(store.as_ref(), &copy, false)
        .await
        .unwrap();
    realm_import::apply(store.as_ref(), &copy, true)
        .await
        .unwrap();
    let u = store
        .user_by_username("acct2", "tina")
        .await
        .unwrap()
        .unwrap();
    let creds = store.user_credentials("acct2", &u.id).await.unwrap();
    assert_eq!(creds.iter().filter(|c| c.kind == "otp").count(), 1);
    let back = realm_import::export(store.as_ref(), "acct2").await.unwrap();
    let tina2 = back.users.iter().find(|u| u.username == "tina").unwrap();
    assert_eq!(tina2.credentials[0].secret_data, otp.secret_data);
    assert_eq!(back.accounts, file.accounts);
}

#[tokio::test]
async fn the_admin_api_reads_and_writes_required_actions_and_enforces_the_policy() {
    use super::admin::{AdminHarness, call, root};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acct.json");
    std::fs::write(&file, realm_text()).unwrap();
    let mut settings = settings();
    settings.import = vec![file];
    let clock = portcullis_core::clock::ManualClock::new(T0);
    let admin = crate::BootstrapAdmin {
        username: "root".into(),
        password: portcullis_store::Secret("root-pw".into()),
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
    let h = AdminHarness { h, token };
    let users = json(
        call(
            &h,
            "GET",
            "/admin/realms/acct/users?username=ra&exact=true",
            None,
        )
        .await,
    )
    .await;
    let id = users[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        one(&h, &id).await["requiredActions"],
        json!(["VERIFY_EMAIL", "UPDATE_PASSWORD", "CONFIGURE_TOTP"])
    );
    let tina = json(
        call(
            &h,
            "GET",
            "/admin/realms/acct/users?username=tina&exact=true",
            None,
        )
        .await,
    )
    .await;
    let tina_id = tina[0]["id"].as_str().unwrap();
    let t = json(
        call(
            &h,
            "GET",
            &format!("/admin/realms/acct/users/{tina_id}"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(t["totp"], true);
    let r = call(
        &h,
        "PUT",
        &format!("/admin/realms/acct/users/{id}"),
        Some(json!({"requiredActions": ["VERIFY_EMAIL"]})),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        one(&h, &id).await["requiredActions"],
        json!(["VERIFY_EMAIL"])
    );
    let r = call(
        &h,
        "PUT",
        &format!("/admin/realms/acct/users/{id}"),
        Some(json!({"requiredActions": ["DANCE"]})),
    )
    .await;
    assert_eq!(r.status(), 400);
    // Reset: the policy in words; a temporary password adds UPDATE_PASSWORD.
    let reset = format!("/admin/realms/acct/users/{id}/reset-password");
    let r = call(
        &h,
        "PUT",
        &reset,
        Some(json!({"type": "password", "value": "short1"})),
    )
    .await;
    assert_eq!(r.status(), 400);
    let body = json(r).await;
    assert!(
        body.to_string()
            .contains("Invalid password: minimum length 8."),
        "{body}"
    );
    let r = call(
        &h,
        "PUT",
        &reset,
        Some(json!({"type": "password", "value": "Passw0rd!"})),
    )
    .await;
    assert_eq!(r.status(), 400, "history");
    let r = call(
        &h,
        "PUT",
        &reset,
        Some(json!({"type": "password", "value": "Another1", "temporary": true})),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        one(&h, &id).await["requiredActions"],
        json!(["VERIFY_EMAIL", "UPDATE_PASSWORD"])
    );
    // Creating a user with a password: the policy too.
    let r = call(
        &h,
        "POST",
        "/admin/realms/acct/users",
        Some(json!({"username": "newbie", "credentials": [{"type": "password", "value": "nodigitshere"}]})),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(json(r).await.to_string().contains("numerical digits"));
    let r = call(
        &h,
        "POST",
        "/admin/realms/acct/users",
        Some(json!({"username": "newbie", "credentials": [{"type": "password", "value": "x1"}]})),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(json(r).await.to_string().contains("minimum length 8"));
}
