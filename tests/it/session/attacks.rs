//! Every callback attack of DESIGN §10, against a provider found by discovery that the test
//! controls (a real HTTP server on loopback that signs with a real RSA key): missing, unknown,
//! mismatched and reused `state` → 400 and no session; each kind of bad ID token → 400; a
//! refused code → 400; a provider that is down → 502 while existing sessions keep working;
//! and no open redirect through `rd=`.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::{Jar, POLICY, browser_client, location, metric, navigate};
use crate::harness::{Gateway, Opts, Upstream, route};
use crate::idp::Key;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Good,
    WrongAudience,
    WrongNonce,
    WrongIssuer,
    Expired,
    OtherKey,
    NoIdToken,
    RefuseCode,
    ServerError,
}

struct OpState {
    mode: Mode,
    nonce: String,
}

/// The test's provider: discovery, an authorization endpoint that signs "mallory" in at once,
/// a token endpoint answering as `mode` says, and its JWKS.
struct Op {
    issuer: String,
    state: Arc<Mutex<OpState>>,
    task: tokio::task::JoinHandle<()>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Op {
    async fn start() -> Op {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", l.local_addr().unwrap());
        let state = Arc::new(Mutex::new(OpState {
            mode: Mode::Good,
            nonce: String::new(),
        }));
        let (key, other) = (Arc::new(Key::rsa("k1")), Arc::new(Key::rsa("k1")));
        let (iss, st, st2) = (issuer.clone(), state.clone(), state.clone());
        let jwk = key.jwk();
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || {
                    let i = iss.clone();
                    async move {
                        axum::Json(json!({
                            "issuer": i, "authorization_endpoint": format!("{i}/authorize"),
                            "token_endpoint": format!("{i}/token"), "jwks_uri": format!("{i}/jwks"),
                        }))
                    }
                }),
            )
            .route(
                "/jwks",
                axum::routing::get(move || {
                    let jwk = jwk.clone();
                    async move { axum::Json(json!({"keys": [jwk]})) }
                }),
            )
            .route(
                "/authorize",
                axum::routing::get(
                    move |q: axum::extract::Query<std::collections::HashMap<String, String>>| {
                        let st = st.clone();
                        async move {
                            st.lock().unwrap().nonce = q["nonce"].clone();
                            let to =
                                format!("{}?code=the-code&state={}", q["redirect_uri"], q["state"]);
                            axum::response::Redirect::to(&to)
                        }
                    },
                ),
            )
            .route(
                "/token",
                axum::routing::post({
                    let issuer = issuer.clone();
                    move || {
                        let (st, key, other, issuer) =
                            (st2.clone(), key.clone(), other.clone(), issuer.clone());
                        async move { token(&st, &key, &other, &issuer) }
                    }
                }),
            );
        let task = tokio::spawn(async move {
            axum::serve(l, app).await.unwrap();
        });
        Op {
            issuer,
            state,
            task,
        }
    }

    fn mode(&self, m: Mode) {
        self.state.lock().unwrap().mode = m;
    }
}

/// The token endpoint's answer for the current mode.
fn token(st: &Mutex<OpState>, key: &Key, other: &Key, issuer: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (mode, nonce) = {
        let s = st.lock().unwrap();
        (s.mode, s.nonce.clone())
    };
    let t = now();
    let mut claims = json!({"iss": issuer, "aud": "gw", "sub": "u-mallory", "exp": t + 300,
        "iat": t, "nonce": nonce, "preferred_username": "mallory", "groups": ["/staff"]});
    match mode {
        Mode::WrongAudience => claims["aud"] = json!("another-client"),
        Mode::WrongNonce => claims["nonce"] = json!("not-the-nonce"),
        Mode::WrongIssuer => claims["iss"] = json!("https://elsewhere.example"),
        Mode::Expired => claims["exp"] = json!(t - 3600),
        Mode::RefuseCode => {
            let body = json!({"error": "invalid_grant", "error_description": "code used"});
            return (axum::http::StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
        Mode::ServerError => return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response(),
        _ => {}
    }
    let signer = if mode == Mode::OtherKey { other } else { key };
    let mut answer = json!({"access_token": "opaque-access", "token_type": "Bearer",
        "expires_in": 300, "refresh_token": "opaque-refresh", "id_token": signer.sign(&claims)});
    if mode == Mode::NoIdToken {
        answer.as_object_mut().unwrap().remove("id_token");
    }
    axum::Json(answer).into_response()
}

impl Drop for Op {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Setup {
    op: Op,
    gw: Gateway,
    _up: Upstream,
    c: reqwest::Client,
}

async fn setup() -> Setup {
    let op = Op::start().await;
    let up = Upstream::start().await;
    let routes = route("app", "/app", &[up.url()], "auth = \"session\"")
        + &route("both", "/both", &[up.url()], "auth = \"session_or_jwt\"");
    let mut o = Opts::new(routes).extra(&format!(
        "[session]\nprovider = \"{}\"\nclient_id = \"gw\"\nclient_secret = \"s3cret\"\n\
         cookie_keys = \"session-keys\"\n",
        op.issuer
    ));
    o.policies = POLICY.to_string();
    let gw = Gateway::start(o).await;
    let c = browser_client(&[gw.cert_pem()]);
    Setup { op, gw, _up: up, c }
}

/// Starts a sign-in at `path` and follows the provider back: the callback URL (not yet
/// visited) with the jar holding its pre-auth cookie.
async fn to_callback(s: &Setup, jar: &mut Jar, path: &str) -> String {
    let start = s.gw.url(path);
    let r = navigate(&s.c, jar, &start).await;
    assert_eq!(r.status(), 302);
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(location(&r))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the provider sends the browser back");
    location(&r)
}

/// Visits the callback: its status, and whether it set a session cookie.
async fn callback(s: &Setup, jar: &mut Jar, url: &str) -> (u16, bool, String) {
    let r = navigate(&s.c, jar, url).await;
    let sets_session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("__Host-portcullis="));
    let status = r.status().as_u16();
    let loc = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = r.text().await.unwrap();
    assert!(!body.contains("the-code"), "no code on an error page");
    (status, sets_session, loc)
}

#[tokio::test(flavor = "multi_thread")]
async fn state_attacks_are_400_without_a_session() {
    let s = setup().await;
    let mut jar = Jar::default();
    let cb = to_callback(&s, &mut jar, "/app/").await;
    let state = url::Url::parse(&cb)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    let base = s.gw.url("/.portcullis/callback");
    let cases = [
        (format!("{base}?code=the-code"), "missing state"),
        (format!("{base}?code=the-code&state="), "empty state"),
        (
            format!("{base}?code=the-code&state=nope-unknown-state"),
            "unknown state",
        ),
        (
            format!(
                "{base}?code=the-code&state={}{}",
                &state[..8],
                "x".repeat(35)
            ),
            "mismatched state",
        ),
    ];
    for (url, what) in cases {
        let (status, session, _) = callback(&s, &mut jar.clone(), &url).await;
        assert_eq!((status, session), (400, false), "{what}");
    }
    // Another browser (no pre-auth cookie) can't finish this sign-in.
    let (status, session, _) = callback(&s, &mut Jar::default(), &cb).await;
    assert_eq!(
        (status, session),
        (400, false),
        "state from another browser"
    );

    // The real one signs in once; replaying it with the same cookies is refused.
    let replay = jar.clone();
    let (status, session, loc) = callback(&s, &mut jar, &cb).await;
    assert_eq!((status, session, loc.as_str()), (302, true, "/app/"));
    let (status, session, _) = callback(&s, &mut replay.clone(), &cb).await;
    assert_eq!((status, session), (400, false), "reused state");
    let r = navigate(&s.c, &mut jar, &s.gw.url("/app/x")).await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["headers"]["x-auth-request-user"],
        json!(["mallory"])
    );
    let m = s.gw.metrics().await;
    assert_eq!(
        metric(&m, "portcullis_session_sign_ins_total{result=\"failure\"}"),
        6.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_id_tokens_and_refused_codes_are_400_and_a_down_provider_502() {
    let s = setup().await;
    for mode in [
        Mode::WrongAudience,
        Mode::WrongNonce,
        Mode::WrongIssuer,
        Mode::Expired,
        Mode::OtherKey,
        Mode::NoIdToken,
        Mode::RefuseCode,
    ] {
        s.op.mode(mode);
        let mut jar = Jar::default();
        let cb = to_callback(&s, &mut jar, "/app/").await;
        let (status, session, _) = callback(&s, &mut jar, &cb).await;
        assert_eq!((status, session), (400, false), "{mode:?}");
    }
    s.op.mode(Mode::ServerError);
    let mut jar = Jar::default();
    let cb = to_callback(&s, &mut jar, "/app/").await;
    assert_eq!(
        callback(&s, &mut jar, &cb).await.0,
        502,
        "a provider failing is 502"
    );

    // Signed in, then the provider goes away: the session goes on, a new sign-in is 502.
    s.op.mode(Mode::Good);
    let mut alice = Jar::default();
    let cb = to_callback(&s, &mut alice, "/app/").await;
    assert_eq!(callback(&s, &mut alice, &cb).await.0, 302);
    let mut other = Jar::default();
    let cb = to_callback(&s, &mut other, "/app/").await;
    s.op.task.abort();
    let addr = s.op.issuer.trim_start_matches("http://").to_string();
    crate::harness::eventually(
        "the provider to stop",
        std::time::Duration::from_secs(5),
        || {
            let addr = addr.clone();
            async move { tokio::net::TcpStream::connect(addr).await.is_err() }
        },
    )
    .await;
    assert_eq!(
        callback(&s, &mut other, &cb).await.0,
        502,
        "provider down at the callback"
    );
    let r = navigate(&s.c, &mut alice, &s.gw.url("/app/x")).await;
    assert_eq!(r.status(), 200, "existing sessions keep working");
    let m = s.gw.metrics().await;
    assert_eq!(
        metric(&m, "portcullis_session_sign_ins_total{result=\"error\"}"),
        2.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rd_never_leaves_the_origin() {
    let s = setup().await;
    let origin = s.gw.url("");
    let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let cases = [
        ("/app/x?y=1&z=%2F".to_string(), "/app/x?y=1&z=%2F"),
        (format!("{origin}/app/abs"), "/app/abs"),
        ("//evil.example/x".into(), "/"),
        ("/\\evil.example".into(), "/"),
        ("/%2F%2Fevil.example".into(), "/"),
        ("%2F%2Fevil.example".into(), "/"),
        ("https://evil.example/".into(), "/"),
        ("javascript:alert(1)".into(), "/"),
        ("http://localhost/".into(), "/"),
        (format!("{origin}@evil.example/"), "/"),
        ("/\t/evil.example".into(), "/"),
    ];
    let mut signed_in = Jar::default();
    for (i, (rd, want)) in cases.iter().enumerate() {
        let mut jar = Jar::default();
        let cb = to_callback(
            &s,
            &mut jar,
            &format!("/.portcullis/sign_in?rd={}", enc(rd)),
        )
        .await;
        let (status, _, loc) = callback(&s, &mut jar, &cb).await;
        assert_eq!((status, loc.as_str()), (302, *want), "rd={rd:?}");
        if i == 0 {
            signed_in = jar;
        }
    }
    // Already signed in, sign_in goes straight to rd: the same rules.
    for (rd, want) in &cases {
        let r = navigate(
            &s.c,
            &mut signed_in,
            &s.gw.url(&format!("/.portcullis/sign_in?rd={}", enc(rd))),
        )
        .await;
        assert_eq!(
            (r.status().as_u16(), location(&r)),
            (302, want.to_string()),
            "rd={rd:?}"
        );
    }
    // A navigation's own target is its return URL: `//app/x` routes to /app/x, but a browser
    // would read it as host "app", so the return goes to `/` instead.
    let mut jar = Jar::default();
    let cb = to_callback(&s, &mut jar, "//app/x").await;
    assert_eq!(callback(&s, &mut jar, &cb).await.2, "/");
}
