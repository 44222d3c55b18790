//! What the login paths cost the store, call by call: the password grant and the login form
//! read the user row once, and the brute-force counters once; the second-factor and required-
//! action checks read the user's credentials and actions once each.

use axum::body::Body;
use axum::http::{Request, header};

use super::counting::Counting;
use super::harness::*;
use crate::Issuer;
use portcullis_core::clock::ManualClock;

/// The harness, over a store that records its calls.
async fn counted() -> (Harness, std::sync::Arc<Counting>) {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings();
    let store = portcullis_store::open(&settings.database, dir.path())
        .await
        .unwrap();
    let counting = Counting::new(store);
    let clock = ManualClock::new(T0);
    let issuer = Issuer::start_on(counting.clone(), &settings, clock.clone())
        .await
        .unwrap();
    counting.take();
    let h = Harness {
        issuer,
        clock,
        settings,
        dir,
    };
    (h, counting)
}

#[tokio::test]
async fn password_grant_reads_the_user_once() {
    let (h, calls) = counted().await;
    // Cold: the grants are expanded from the row the credential check read (it used to be
    // read a second time, by id, for them).
    assert_eq!(h.password_grant("bob", "password").await.status(), 200);
    assert_eq!(
        calls.take(),
        [
            "user_by_username",
            "failures_of",
            "user_roles",
            "user_groups",
            "user_required_actions",
            "user_credentials",
            "add_event",
            "create_session",
            "create_family"
        ]
    );
    // Warm: the grants come from the directory's cache.
    assert_eq!(h.password_grant("bob", "password").await.status(), 200);
    assert_eq!(
        calls.take(),
        [
            "user_by_username",
            "failures_of",
            "user_required_actions",
            "user_credentials",
            "add_event",
            "create_session",
            "create_family"
        ]
    );
    // A failure counts from the counters read before the attempt (no client address here:
    // only the user's counter).
    assert_eq!(h.password_grant("bob", "wrong").await.status(), 401);
    assert_eq!(
        calls.take(),
        [
            "user_by_username",
            "failures_of",
            "put_failures",
            "add_event"
        ]
    );
}

#[tokio::test]
async fn login_form_reads_the_user_once() {
    let (h, calls) = counted().await;
    let params = [
        ("client_id", "myclient"),
        ("redirect_uri", "http://localhost:8000/oidc/callback/"),
        ("response_type", "code"),
        ("scope", "openid"),
    ];
    let page = h
        .get(&format!(
            "{P}/auth?{}",
            serde_urlencoded::to_string(params).unwrap()
        ))
        .await;
    assert_eq!(page.status(), 200);
    assert!(calls.take().is_empty(), "the form needs no store");
    let mut form = params.to_vec();
    form.extend([("username", "bob"), ("password", "password"), ("csrf", "c")]);
    let req = Request::post(format!("{P}/auth"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(
            header::COOKIE,
            "PORTCULLIS_CSRF=c; PORTCULLIS_SESSION=stale",
        )
        .body(Body::from(serde_urlencoded::to_string(&form).unwrap()))
        .unwrap();
    let r = h.send(req).await;
    assert_eq!(r.status(), 302);
    // The stale session cookie is looked up (to end it were it live), never the user twice.
    assert_eq!(
        calls.take(),
        [
            "user_by_username",
            "failures_of",
            "user_roles",
            "user_groups",
            "user_credentials",
            "user_required_actions",
            // A user without TOTP may have a passkey as second factor (its own table).
            "webauthn_credentials_of",
            "session_by_cookie",
            "create_session",
            "add_event",
            "put_code"
        ]
    );
}
