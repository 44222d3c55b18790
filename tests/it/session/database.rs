//! `store = "database"`: two gateway processes (replicas) share the issuer's SQLite database
//! and cookie keys. A session made on one works on the other; its cookie carries no tokens;
//! signing out on one ends it on both.

use std::time::Duration;

use serde_json::json;

use super::{EmbeddedOpts, Jar, KEY_A, embedded_with, form_of, navigate, open_cookie, sign_in};
use crate::harness::{eventually, free_port};
use portcullis_gateway::session::keys::Keys;
use portcullis_gateway::session::state::{Header, SESSION_PURPOSE};

async fn status(c: &reqwest::Client, url: &str, jar: &Jar) -> u16 {
    c.get(url)
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_session_works_on_every_replica_and_ends_on_all() {
    let shared = tempfile::tempdir().unwrap();
    let (p1, p2) = (free_port(), free_port());
    let (o1, o2) = (
        format!("https://localhost:{p1}"),
        format!("https://localhost:{p2}"),
    );
    let g1 = embedded_with(EmbeddedOpts {
        shared: Some(shared.path()),
        public: Some(p1),
        more_origins: std::slice::from_ref(&o2),
        ..Default::default()
    })
    .await;
    let g2 = embedded_with(EmbeddedOpts {
        shared: Some(shared.path()),
        public: Some(p2),
        more_origins: std::slice::from_ref(&o1),
        ..Default::default()
    })
    .await;
    let c = super::browser_client(&[g1.gw.cert_pem(), g2.gw.cert_pem()]);

    let mut jar = Jar::default();
    let r = sign_in(&c, &mut jar, &format!("{o1}/app/"), "alice", "password").await;
    assert_eq!(r.status(), 200);
    // The cookie only names the session: no token in it, whatever the keys.
    let cookie = jar.session().unwrap();
    assert!(cookie.len() < 200, "{} bytes", cookie.len());
    assert!(open_cookie(&[KEY_A], &cookie).is_none(), "no body to parse");
    let plain = Keys::from_raw(&[KEY_A])
        .unwrap()
        .open(SESSION_PURPOSE, &cookie)
        .unwrap();
    let (_, body) = Header::decode(&plain).unwrap();
    assert!(body.is_empty());

    // The other replica finds the session in the database.
    let r = c
        .get(format!("{o2}/app/x"))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen: serde_json::Value = r.json().await.unwrap();
    assert_eq!(seen["headers"]["x-auth-request-user"], json!(["alice"]));

    // Sign out on the first: the second refuses the session within seconds.
    let old = jar.clone();
    let r = navigate(&c, &mut jar, &format!("{o1}/.portcullis/sign_out")).await;
    let (_, fields) = form_of(&r.text().await.unwrap());
    let r = c
        .post(format!("{o1}/.portcullis/sign_out"))
        .header("cookie", jar.header())
        .header("origin", &o1)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(status(&c, &format!("{o1}/app/x"), &old).await, 401);
    let url = format!("{o2}/app/x");
    eventually(
        "the other replica to end the session",
        Duration::from_secs(10),
        || {
            let (c, url, old) = (c.clone(), url.clone(), old.clone());
            async move { status(&c, &url, &old).await == 401 }
        },
    )
    .await;
}
