//! Session cookies: tampered, expired, old-key and unknown-key cookies are no session (never a
//! 5xx); a key rotation keeps sessions; concurrent requests share one refresh; a refused
//! refresh ends the session; sign-out needs its CSRF token and origin and kills the refresh
//! token at the provider.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{
    CLIENT_SECRET, Embedded, KEY_A, KEY_B, alice, embedded, form_of, location, metric, open_cookie,
    refresh_grant, seal_cookie, write_keys,
};
use portcullis_gateway::session::state::Header;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// GET `/app/x` as an API call with `cookie` as the session cookie: the status.
async fn with_cookie(e: &Embedded, cookie: &str) -> u16 {
    e.client
        .get(format!("{}/app/x", e.origin()))
        .header("cookie", format!("__Host-portcullis={cookie}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn reload(e: &Embedded) {
    let r = e.gw.reload().await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_cookies_are_no_session_and_a_key_rotation_keeps_sessions() {
    let e = embedded(300, &[], "").await;
    let (_, cookie) = alice(&e).await;
    assert_eq!(with_cookie(&e, &cookie).await, 200);
    let (head, body) = open_cookie(&[KEY_A], &cookie).expect("sealed with the configured key");
    assert_eq!(body.who.name.as_deref(), Some("alice"));

    // A cookie forged with the real key opens: the refusals below are about what they change.
    let forged = seal_cookie(
        KEY_A,
        &Header {
            seen: now(),
            ..head
        },
        &body,
    );
    assert_eq!(with_cookie(&e, &forged).await, 200);
    let mut flipped = cookie.clone().into_bytes();
    let mid = flipped.len() / 2;
    flipped[mid] = if flipped[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(flipped).unwrap();
    let expired = Header {
        created: now() - 43_201,
        seen: now() - 10,
        ..head
    };
    let idle = Header {
        seen: now() - 1801,
        ..head
    };
    for (what, value) in [
        ("tampered", tampered),
        ("past max_lifetime", seal_cookie(KEY_A, &expired, &body)),
        ("idle too long", seal_cookie(KEY_A, &idle, &body)),
        ("unknown key", seal_cookie([0x55; 32], &head, &body)),
        ("truncated", cookie[..cookie.len() / 2].to_string()),
        ("not base64", "%%%%".to_string()),
        ("empty", String::new()),
        ("huge", "A".repeat(6000)),
    ] {
        assert_eq!(with_cookie(&e, &value).await, 401, "{what}");
    }
    // Chunks that don't make a whole value are no session either.
    let r = e
        .client
        .get(format!("{}/app/x", e.origin()))
        .header("cookie", format!("__Host-portcullis.1={}", &cookie[..20]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Rotation: a new key goes first, the old one stays below it. Sessions go on.
    write_keys(&e.keys, &[KEY_B, KEY_A]);
    reload(&e).await;
    assert_eq!(
        with_cookie(&e, &cookie).await,
        200,
        "an old-key session after rotation"
    );
    let (_, fresh) = alice(&e).await;
    assert!(
        open_cookie(&[KEY_B], &fresh).is_some(),
        "the first key seals"
    );
    assert!(open_cookie(&[KEY_A], &fresh).is_none());
    // Removing the old key ends what it sealed, as soon as the file watch reloads.
    write_keys(&e.keys, &[KEY_B]);
    crate::harness::eventually(
        "the keys file to be re-read",
        Duration::from_secs(10),
        || {
            let (e, cookie) = (&e, &cookie);
            async move { with_cookie(e, cookie).await == 401 }
        },
    )
    .await;
    assert_eq!(with_cookie(&e, &fresh).await, 200);
    let m = e.gw.metrics().await;
    assert_eq!(
        metric(
            &m,
            "portcullis_http_requests_total{method=\"GET\",route=\"app\",status=\"500\"}"
        ),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_requests_make_one_refresh_and_a_refused_refresh_ends_the_session() {
    // Access tokens of 4 s: refreshed when less than min(60, 2) s are left, which (in whole
    // seconds) 3.2 s after they were issued always is.
    let e = embedded(4, &[], "").await;
    let (_, cookie) = alice(&e).await;
    let (_, before) = open_cookie(&[KEY_A], &cookie).unwrap();
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let c = e.client.clone();
        let url = format!("{}/app/x", e.origin());
        let cookie = cookie.clone();
        tasks.push(tokio::spawn(async move {
            let r = c
                .get(url)
                .header("cookie", format!("__Host-portcullis={cookie}"))
                .send()
                .await
                .unwrap();
            let set: Vec<String> = r
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect();
            let token = r.json::<Value>().await.unwrap()["headers"]["authorization"][0]
                .as_str()
                .unwrap()
                .to_string();
            (set, token)
        }));
    }
    let mut tokens = std::collections::BTreeSet::new();
    let mut resealed = None;
    for t in tasks {
        let (set, token) = t.await.unwrap();
        tokens.insert(token);
        if let Some(c) = sealed_from_set_cookies(&set, "__Host-portcullis") {
            resealed = Some(c);
        }
    }
    assert_eq!(
        tokens.len(),
        1,
        "every request went upstream with the one refreshed token"
    );
    assert!(!tokens.contains(&format!("Bearer {}", before.at)));
    let m = e.gw.metrics().await;
    assert_eq!(
        metric(&m, "portcullis_session_refreshes_total{result=\"success\"}"),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "portcullis_issuer_tokens_issued_total{grant_type=\"refresh_token\",realm=\"myrealm\"}"
        ),
        1.0,
        "exactly one refresh grant"
    );
    let resealed = resealed.expect("the refreshed session is re-sealed into the cookie");
    let (h, after) = open_cookie(&[KEY_A], &resealed).unwrap();
    assert_eq!(h.rev, 1);
    assert_ne!(after.rt, before.rt, "the refresh token rotated");

    // The provider revokes the refresh token: the next refresh is refused and the session ends.
    let r = e
        .client
        .post(format!(
            "{}/auth/realms/myrealm/protocol/openid-connect/revoke",
            e.origin()
        ))
        .basic_auth("portcullis", Some(CLIENT_SECRET))
        .form(&[("token", after.rt.as_deref().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(with_cookie(&e, &resealed).await, 401);
    let m = e.gw.metrics().await;
    assert_eq!(
        metric(&m, "portcullis_session_refreshes_total{result=\"failure\"}"),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_out_needs_its_form_and_origin_and_kills_the_refresh_token() {
    let e = embedded(300, &[], "").await;
    let (mut jar, cookie) = alice(&e).await;
    let (_, body) = open_cookie(&[KEY_A], &cookie).unwrap();
    let url = format!("{}/.portcullis/sign_out", e.origin());

    // GET renders the confirmation form and signs nobody out.
    let r = e
        .client
        .get(&url)
        .header("cookie", jar.header())
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (action, fields) = form_of(&r.text().await.unwrap());
    assert_eq!(action, "/.portcullis/sign_out");
    let csrf = fields.iter().find(|(k, _)| k == "csrf").unwrap().1.clone();
    assert_eq!(with_cookie(&e, &cookie).await, 200);

    let post = |origin: Option<&str>, csrf: &str| {
        let mut rq = e
            .client
            .post(&url)
            .header("cookie", jar.header())
            .form(&[("csrf", csrf)]);
        if let Some(o) = origin {
            rq = rq.header("origin", o);
        }
        rq.send()
    };
    let own = e.origin();
    for (origin, token, what) in [
        (None, csrf.as_str(), "no Origin"),
        (
            Some("https://evil.example"),
            csrf.as_str(),
            "another origin",
        ),
        (Some(own.as_str()), "forged", "a wrong token"),
        (Some(own.as_str()), "", "no token"),
    ] {
        assert_eq!(post(origin, token).await.unwrap().status(), 403, "{what}");
    }
    assert_eq!(with_cookie(&e, &cookie).await, 200, "still signed in");

    let r = post(Some(&own), &csrf).await.unwrap();
    assert_eq!(r.status(), 302);
    jar.absorb(&r);
    assert!(jar.session().is_none(), "the cookie is cleared");
    let to = url::Url::parse(&location(&r)).unwrap();
    assert!(
        to.path().ends_with("/protocol/openid-connect/logout"),
        "{to}"
    );
    let q: std::collections::BTreeMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(q["post_logout_redirect_uri"], format!("{own}/"));
    assert!(q.contains_key("id_token_hint"));
    // A copy of the old cookie is no session; the refresh token is dead at the provider.
    assert_eq!(with_cookie(&e, &cookie).await, 401);
    let realm = format!("{own}/auth/realms/myrealm");
    let r = refresh_grant(&e.client, &realm, body.rt.as_deref().unwrap()).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    // The provider's end-session endpoint takes the browser back to this origin.
    let r = e
        .client
        .get(to.as_str())
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    assert!(
        location(&r).starts_with(&format!("{own}/")),
        "{}",
        location(&r)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_tells_what_a_session_cookie_holds() {
    let e = embedded(300, &[], "").await;
    let (jar, cookie) = alice(&e).await;
    let explain = |cookie: &str, stdin: bool| {
        let mut cmd = std::process::Command::new(crate::harness::BIN);
        cmd.args(["explain", "--method", "GET", "--path", "/app/x", "--config"])
            .arg(e.gw.path("portcullis.toml"))
            .arg("--cookie")
            .arg(if stdin { "-" } else { cookie })
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            if stdin {
                input.write_all(cookie.as_bytes()).unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, text) = explain(&cookie, false);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.starts_with("ALLOW GET /app/x"), "{text}");
    assert!(
        text.contains("--- session") && text.contains("user: alice"),
        "{text}"
    );
    assert!(text.contains("groups: /staff"), "{text}");
    assert!(!text.contains(&cookie[..30]), "the cookie is not echoed");
    // The whole Cookie header works too, from stdin.
    let (code, text) = explain(&jar.header(), true);
    assert_eq!(code, Some(0), "{text}");
    let mut tampered = cookie.clone();
    tampered.replace_range(10..12, if &cookie[10..12] == "AA" { "BB" } else { "AA" });
    let (code, text) = explain(&tampered, false);
    assert_eq!(code, Some(3), "{text}");
    assert!(
        text.contains("401: no session: the cookie does not open"),
        "{text}"
    );
}

/// The session cookie's value that `Set-Cookie`s write: the cookie itself, or its numbered
/// chunks (`name.0`, `name.1`, …) joined, as the gateway splits a session past 4 KB.
fn sealed_from_set_cookies(set: &[String], name: &str) -> Option<String> {
    let value = |c: &str| c.split(';').next().unwrap_or("").to_string();
    if let Some(c) = set
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .filter(|c| !value(c).is_empty())
    {
        return Some(value(c));
    }
    let mut chunks = Vec::new();
    for i in 0.. {
        match set
            .iter()
            .find_map(|c| c.strip_prefix(&format!("{name}.{i}=")))
        {
            Some(c) if !value(c).is_empty() => chunks.push(value(c)),
            _ => break,
        }
    }
    (!chunks.is_empty()).then(|| chunks.concat())
}
