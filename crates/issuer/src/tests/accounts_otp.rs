//! The TOTP second factor at sign-in: the page, wrong and right codes, `acr`/`amr`, replay,
//! the look-around window, brute force, CSRF and out-of-order posts, the direct grant, the
//! conditional second factor (by group, role, skip role) and `acr_values` / a client's
//! default acr with step-up of a live session.

use axum::http::StatusCode;
use serde_json::json;

use super::accounts::*;
use super::harness::*;

const OTP_PAGE: &str = "/auth/realms/acct/login-actions/authenticate?execution=otp";

#[tokio::test]
async fn password_then_totp_gives_two_factors_and_a_code_is_used_once() {
    let h = accounts_harness().await;
    let mut b = Browser::new(&h);
    let r = b.sign_in("app", &[], "tina", "Passw0rd!").await;
    assert_eq!(r.location.as_deref(), Some(OTP_PAGE));
    assert!(
        !b.cookies.contains_key("PORTCULLIS_SESSION"),
        "no session yet"
    );
    let page = b.follow(&r).await;
    assert_eq!(page.status, StatusCode::OK);
    for want in [
        "<html lang=\"en\">",
        "<title>Enter your one-time code · Acme &lt;Accounts&gt;</title>",
        "<label for=\"otp\">",
        "autocomplete=\"one-time-code\"",
        "inputmode=\"numeric\"",
    ] {
        assert!(page.body.contains(want), "{want}: {}", page.body);
    }
    assert!(!page.body.contains("<script"));
    let csrf = page.csrf();
    let wrong = b
        .post(OTP_PAGE, &[("csrf", &csrf), ("otp", "000000")])
        .await;
    assert_eq!(wrong.status, StatusCode::OK);
    assert!(
        wrong
            .body
            .contains("role=\"alert\">Invalid authenticator code.")
    );
    let ok = code(SECRET, T0);
    let done = b.post(OTP_PAGE, &[("csrf", &csrf), ("otp", &ok)]).await;
    assert_eq!(done.status, StatusCode::FOUND, "{}", done.body);
    assert!(b.cookies.contains_key("PORTCULLIS_SESSION"));
    assert!(
        !b.cookies.contains_key("PORTCULLIS_AUTH_SESSION"),
        "cleared"
    );
    let (acr, amr) = acr_amr(&h, &done, APP).await;
    assert_eq!((acr, amr), (json!("gold"), json!(["pwd", "otp"])));

    // The same code (same step, same credential) is refused in another sign-in.
    let mut b2 = Browser::new(&h);
    let r = b2.sign_in("app", &[], "tina", "Passw0rd!").await;
    let page = b2.follow(&r).await;
    let again = b2
        .post(OTP_PAGE, &[("csrf", &page.csrf()), ("otp", &ok)])
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.body.contains("Invalid authenticator code."));

    // The login event names both factors; the failure names the one that failed.
    let events = h.issuer.state().store().list_events(REALM).await.unwrap();
    let login = events.iter().find(|e| e.kind == "LOGIN").unwrap();
    assert_eq!(login.factors, ["pwd", "otp"]);
    let err = events.iter().find(|e| e.kind == "LOGIN_ERROR").unwrap();
    assert_eq!(err.factors, ["otp"]);
}

#[tokio::test]
async fn the_window_accepts_one_step_either_side_and_no_older_step_after() {
    let h = accounts_harness().await;
    let try_code = |c: String| {
        let h = &h;
        async move {
            let mut b = Browser::new(h);
            let r = b.sign_in("app", &[], "win", "Passw0rd!").await;
            let page = b.follow(&r).await;
            b.post(OTP_PAGE, &[("csrf", &page.csrf()), ("otp", &c)])
                .await
                .status
        }
    };
    // One step ahead is inside the window; the step after the window is not.
    assert_eq!(try_code(code(SECRET, T0 + 30)).await, StatusCode::FOUND);
    h.clock.advance(60);
    assert_eq!(
        try_code(code(SECRET, T0 + 120)).await,
        StatusCode::OK,
        "2 ahead"
    );
    // One step behind now is the step already used: refused; one ahead is fine.
    assert_eq!(
        try_code(code(SECRET, T0 + 30)).await,
        StatusCode::OK,
        "used"
    );
    assert_eq!(try_code(code(SECRET, T0 + 90)).await, StatusCode::FOUND);
}

#[tokio::test]
async fn wrong_codes_count_toward_brute_force() {
    let h = accounts_harness().await;
    let mut b = Browser::new(&h);
    let r = b.sign_in("app", &[], "tina", "Passw0rd!").await;
    let page = b.follow(&r).await;
    let csrf = page.csrf();
    for _ in 0..3 {
        let s = b
            .post(OTP_PAGE, &[("csrf", &csrf), ("otp", "123456")])
            .await;
        assert!(s.body.contains("Invalid authenticator code."));
    }
    // Locked now (failureFactor 3): even the right code is refused, and so is the password.
    let s = b
        .post(OTP_PAGE, &[("csrf", &csrf), ("otp", &code(SECRET, T0))])
        .await;
    assert_eq!(s.status, StatusCode::OK);
    assert!(s.body.contains("Invalid authenticator code."));
    let mut b2 = Browser::new(&h);
    let r = b2.sign_in("app", &[], "tina", "Passw0rd!").await;
    assert_eq!(r.status, StatusCode::OK, "the login form again");
    assert!(r.body.contains("Invalid username or password."));
}

#[tokio::test]
async fn steps_need_their_csrf_token_their_turn_and_a_live_sign_in() {
    let h = accounts_harness().await;
    let mut b = Browser::new(&h);
    let r = b.sign_in("app", &[], "tina", "Passw0rd!").await;
    let page = b.follow(&r).await;
    let ok = code(SECRET, T0);
    // No token, a wrong token.
    for form in [
        vec![("otp", ok.as_str())],
        vec![("otp", ok.as_str()), ("csrf", "x")],
    ] {
        let s = b.post(OTP_PAGE, &form).await;
        assert_eq!(s.status, StatusCode::BAD_REQUEST);
        assert!(s.body.contains("Invalid or expired form"));
    }
    // A later step posted to before its turn: refused, nothing changes.
    let later = "/auth/realms/acct/login-actions/required-action?execution=UPDATE_PASSWORD";
    let s = b
        .post(
            later,
            &[
                ("csrf", &page.csrf()),
                ("password-new", "Newpass1!"),
                ("password-confirm", "Newpass1!"),
            ],
        )
        .await;
    assert_eq!(s.status, StatusCode::BAD_REQUEST);
    assert!(s.body.contains("not the current step"));
    // A GET of another step's page leads back to the current one.
    let s = b.get(later).await;
    assert_eq!(s.location.as_deref(), Some(OTP_PAGE));
    // Another browser, or after the sign-in's lifespan: no sign-in to go on with.
    let mut other = Browser::new(&h);
    let s = other
        .post(OTP_PAGE, &[("csrf", &page.csrf()), ("otp", &ok)])
        .await;
    assert_eq!(s.status, StatusCode::BAD_REQUEST);
    h.clock.advance(1801);
    let s = b.get(OTP_PAGE).await;
    assert_eq!(s.status, StatusCode::BAD_REQUEST);
    assert!(s.body.contains("timed out"));
    // The password still works, and the state is untouched (nothing was changed).
    let stored = h
        .issuer
        .state()
        .store()
        .user_by_username(REALM, "tina")
        .await
        .unwrap()
        .unwrap();
    assert!(crate::secrets::verify_password(
        "Passw0rd!",
        stored.password_hash.unwrap().expose()
    ));
}

#[tokio::test]
async fn conditional_second_factor_by_group_role_and_skip_role() {
    let h = accounts_harness().await;
    // Required by group (a subgroup of the named one) and by client role: enroll first.
    for user in ["grp", "rol"] {
        let mut b = Browser::new(&h);
        let r = b.sign_in("app", &[], user, "Passw0rd!").await;
        assert_eq!(
            r.location.as_deref(),
            Some("/auth/realms/acct/login-actions/required-action?execution=CONFIGURE_TOTP"),
            "{user}"
        );
    }
    // Neither: one factor, at once.
    let mut b = Browser::new(&h);
    let r = b.sign_in("app", &[], "plain", "Passw0rd!").await;
    assert_eq!(
        acr_amr(&h, &r, APP).await,
        (json!("silver"), json!(["pwd"]))
    );
    // A skip-role holder with TOTP is not asked.
    let mut b = Browser::new(&h);
    let r = b.sign_in("app", &[], "bot", "Passw0rd!").await;
    assert_eq!(r.status, StatusCode::FOUND);
}

#[tokio::test]
async fn acr_values_and_a_clients_default_demand_two_factors() {
    let h = accounts_harness().await;
    let enroll = "/auth/realms/acct/login-actions/required-action?execution=CONFIGURE_TOTP";
    // acr_values=2 (or its name): enrollment before any code.
    for acr in ["2", "gold"] {
        let mut b = Browser::new(&h);
        let r = b
            .sign_in("app", &[("acr_values", acr)], "plain", "Passw0rd!")
            .await;
        assert_eq!(r.location.as_deref(), Some(enroll), "{acr}");
    }
    // The client's default.acr.values does the same without the parameter.
    let mut b = Browser::new(&h);
    let r = b.sign_in("strict", &[], "plain", "Passw0rd!").await;
    assert_eq!(r.location.as_deref(), Some(enroll));

    // A live one-factor session: prompt=none is refused, otherwise a step-up raises it.
    let mut b = Browser::new(&h);
    let r = b.sign_in("app", &[], "tina", "Passw0rd!").await;
    let page = b.follow(&r).await;
    let done = b
        .post(
            OTP_PAGE,
            &[("csrf", &page.csrf()), ("otp", &code(SECRET, T0))],
        )
        .await;
    assert_eq!(done.status, StatusCode::FOUND);
    let mut b1 = Browser::new(&h);
    let r = b1
        .sign_in("app", &[("acr_values", "1")], "bot", "Passw0rd!")
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "one factor asked, one given");
    let sso = b1.cookies["PORTCULLIS_SESSION"].clone();
    let ch = super::flow::challenge(super::flow::VERIFIER);
    let q = |extra: &str| {
        format!(
            "{A}/auth?client_id=app&redirect_uri={}&response_type=code&scope=openid\
             &code_challenge={ch}&code_challenge_method=S256&acr_values=2{extra}",
            super::flow::CB
        )
    };
    let s = b1.get(&q("&prompt=none")).await;
    assert_eq!(s.param("error").as_deref(), Some("interaction_required"));
    let s = b1.get(&q("")).await;
    assert_eq!(s.location.as_deref(), Some(OTP_PAGE));
    let page = b1.get(OTP_PAGE).await;
    let s = b1
        .post(
            OTP_PAGE,
            &[("csrf", &page.csrf()), ("otp", &code(SECRET, T0 + 30))],
        )
        .await;
    assert_eq!(s.status, StatusCode::FOUND, "{}", s.body);
    assert_eq!(b1.cookies["PORTCULLIS_SESSION"], sso, "raised in place");
    assert_eq!(
        acr_amr(&h, &s, APP).await,
        (json!("gold"), json!(["pwd", "otp"]))
    );
}

#[tokio::test]
async fn the_direct_grant_asks_for_the_code_too() {
    let h = accounts_harness().await;
    let grant = |user: &'static str, totp: Option<String>| {
        let h = &h;
        async move {
            let mut form = vec![
                ("grant_type", "password".to_string()),
                ("username", user.to_string()),
                ("password", "Passw0rd!".to_string()),
                ("scope", "openid".to_string()),
            ];
            if let Some(t) = totp {
                form.push(("totp", t));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            h.post_form(&format!("{A}/token"), &form, Some(APP)).await
        }
    };
    let r = grant("tina", None).await;
    assert_eq!(json(r).await["error"], "invalid_grant");
    let r = grant("tina", Some(code(SECRET, T0))).await;
    assert_eq!(r.status(), 200);
    let at = json(r).await["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&h, &at).await["amr"], json!(["pwd", "otp"]));
    // Required but not set up, or actions pending: not fully set up.
    for user in ["grp", "ra", "temp"] {
        let e = json(grant(user, None).await).await;
        assert_eq!(
            e["error_description"], "Account is not fully set up",
            "{user}"
        );
    }
}
