//! The embedded issuer through the gateway over TLS: the authorization-code + PKCE flow driven
//! with a real HTTP client (login form, cookies, redirect), then a jwt route with the token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::Digest;

use crate::harness::{
    Gateway, INTEROP, Opts, Upstream, free_port, interop, route, run_in, set_cookies,
};

pub const REALM_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/realms/myrealm-realm.json");

/// A gateway with the issuer enabled (SQLite in its temp dir), the dev realm, the `/auth`
/// route, a jwt route to `up`, and the demo policy.
pub async fn issuer_gateway(up: &Upstream) -> Gateway {
    Gateway::start(issuer_opts(up, &["myclient", "spa", "svc-reports"])).await
}

/// The options of [`issuer_gateway`] on a free public port, its jwt route taking tokens for
/// `audiences`.
pub fn issuer_opts(up: &Upstream, audiences: &[&str]) -> Opts {
    let public = free_port();
    let routes = route("auth", "/auth", &["embedded:issuer".into()], "")
        + &route("orders", "/api/orders", &[up.url()], "auth = \"jwt\"");
    let base = format!("https://localhost:{public}/auth");
    let mut o = Opts::new(routes).extra(&format!(
        "[[trust]]\nissuer = \"{base}/realms/myrealm\"\njwks_uri = \"embedded\"\n\
         audiences = {audiences:?}\n\
         [issuer]\nfrontend_url = \"{base}\"\ndatabase = \"sqlite://data/portcullis.db\"\n\
         import = [\"{REALM_FILE}\"]\n"
    ));
    o.policies = crate::auth::POLICY.to_string();
    o.public_port = Some(public);
    o
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// `(action, [(name, value)])` of the login page's first form (the password form): its hidden
/// inputs. On a host name the page has a second form, the passkey one, which a browser never
/// submits together with the first.
fn parse_form(page: &str) -> (String, Vec<(String, String)>) {
    let html = page.split("</form>").next().unwrap_or(page);
    let action = html
        .split("action=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .map(html_unescape)
        .unwrap();
    let mut fields = Vec::new();
    for input in html.split("<input type=\"hidden\" ").skip(1) {
        let name = input
            .split("name=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap();
        let value = input
            .split("value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap();
        fields.push((html_unescape(name), html_unescape(value)));
    }
    (action, fields)
}

/// Drives the login page like a browser (fresh cookies) and returns the code from the redirect.
async fn login_for_code(
    c: &reqwest::Client,
    gw: &Gateway,
    auth_url: &str,
    redirect_uri: &str,
    verifier: &str,
) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let auth_url = url::Url::parse_with_params(
        auth_url,
        &[
            ("client_id", "spa"),
            ("redirect_uri", redirect_uri),
            ("response_type", "code"),
            ("scope", "openid profile"),
            ("state", "st-123"),
            ("nonce", "n-456"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let r = c.get(auth_url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let jar = set_cookies(&r);
    let (action, mut fields) = parse_form(&r.text().await.unwrap());
    fields.push(("username".into(), "dev-admin".into()));
    fields.push(("password".into(), "admin".into()));
    let action = if action.starts_with("http") {
        action
    } else {
        gw.url(&action)
    };
    let r = c
        .post(&action)
        .header("Cookie", &jar)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(redirect_uri), "{location}");
    let loc = url::Url::parse(&location).unwrap();
    let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "st-123");
    q["code"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn authorization_code_with_pkce_through_the_gateway_then_a_jwt_route() {
    let up = Upstream::start().await;
    let gw = issuer_gateway(&up).await;
    let c = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&gw.cert_pem()).unwrap()])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = gw.url("/auth/realms/myrealm");
    let disco: Value = c
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        disco["issuer"],
        format!("https://localhost:{}/auth/realms/myrealm", gw.public)
    );
    let verifier = "a-very-long-pkce-code-verifier-0123456789-abcdefghijk";
    let redirect_uri = "http://localhost:5173/callback";
    let auth_url = disco["authorization_endpoint"].as_str().unwrap();
    let code = login_for_code(&c, &gw, auth_url, redirect_uri, verifier).await;
    let token_url = disco["token_endpoint"].as_str().unwrap();
    let exchange = |verifier: &'static str, code: String| {
        c.post(token_url).form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri),
            ("client_id", "spa"),
            ("code_verifier", verifier),
        ])
    };
    let r = exchange(
        "the-wrong-verifier-0123456789-0123456789-abcdefg",
        code.clone(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 400, "a wrong verifier is refused");
    let r = exchange(verifier, code).send().await.unwrap();
    assert_eq!(r.status(), 400, "and the code it was tried with is spent");
    let code = login_for_code(&c, &gw, auth_url, redirect_uri, verifier).await;
    let tokens: Value = exchange(verifier, code.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{tokens}"))
        .to_string();
    assert!(tokens["id_token"].is_string());
    let r = exchange(verifier, code).send().await.unwrap();
    assert_eq!(r.status(), 400, "a code is single-use");

    // dev-admin is in /admins: admin ⊃ editor ⊃ viewer.
    let r = c
        .delete(gw.url("/api/orders/9"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.json::<Value>().await.unwrap()["headers"].clone();
    assert_eq!(h["x-auth-request-user"], serde_json::json!(["dev-admin"]));
    assert_eq!(h["x-auth-request-groups"], serde_json::json!(["/admins"]));
    // The admin API is never public.
    let r = c
        .get(gw.url("/auth/admin/realms/myrealm/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// An access token for a dev-realm user (password `password`) from `myclient`'s password grant.
async fn password_token(gw: &Gateway, user: &str) -> String {
    let t: Value = gw
        .client()
        .post(gw.url("/auth/realms/myrealm/protocol/openid-connect/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "myclient"),
            ("client_secret", "my-client-secret"),
            ("username", user),
            ("password", "password"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    t["access_token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn password_and_client_credentials_grants_through_the_gateway() {
    let up = Upstream::start().await;
    let gw = issuer_gateway(&up).await;
    let c = gw.client();
    let token_url = gw.url("/auth/realms/myrealm/protocol/openid-connect/token");
    let bob = &password_token(&gw, "bob").await;
    // bob has no groups: authenticated, but deny by default.
    assert_eq!(
        c.get(gw.url("/api/orders"))
            .bearer_auth(bob)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let r = c
        .post(&token_url)
        .form(&[
            ("grant_type", "password"),
            ("client_id", "myclient"),
            ("client_secret", "wrong"),
            ("username", "bob"),
            ("password", "password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    let t: Value = c
        .post(&token_url)
        .basic_auth("svc-reports", Some("svc-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(t["access_token"].is_string(), "{t}");
    let m = gw.metrics().await;
    assert!(m.contains("portcullis_issuer_tokens_issued_total{grant_type=\"client_credentials\",realm=\"myrealm\"} 1"), "{m}");
}

/// The internal listener's port, as the harness wrote it into portcullis.toml.
fn internal_port(gw: &Gateway) -> u16 {
    let cfg = std::fs::read_to_string(gw.path("portcullis.toml")).unwrap();
    cfg.lines()
        .find_map(|l| l.strip_prefix("internal = \"127.0.0.1:"))
        .and_then(|rest| rest.trim_end_matches('"').parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_internal_listener_serves_the_backchannel_and_audits_each_request() {
    let up = Upstream::start().await;
    let gw = issuer_gateway(&up).await;
    let internal = format!("http://127.0.0.1:{}", internal_port(&gw));
    let r = reqwest::get(format!(
        "{internal}/auth/realms/myrealm/.well-known/openid-configuration?x=hunter2"
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let d: Value = r.json().await.unwrap();
    // Browser-facing URLs keep the frontend URL; the backchannel ones use this listener.
    assert_eq!(
        d["token_endpoint"],
        format!("{internal}/auth/realms/myrealm/protocol/openid-connect/token")
    );
    assert!(
        d["authorization_endpoint"]
            .as_str()
            .unwrap()
            .starts_with(&gw.url("/auth/realms/myrealm/"))
    );
    crate::harness::eventually(
        "the internal audit line",
        std::time::Duration::from_secs(5),
        || async { gw.stdout().contains(&id) },
    )
    .await;
    let out = gw.stdout();
    assert!(!out.contains("hunter2"), "no query in the audit log");
    let line: Value = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["request_id"] == id.as_str())
        .unwrap();
    assert_eq!(line["listener"], "internal");
    assert_eq!(line["status"], 200);
    assert_eq!(line["client_ip"], "127.0.0.1");
    assert_eq!(
        line["path"],
        "/auth/realms/myrealm/.well-known/openid-configuration"
    );
}

/// A Python venv with Authlib, made once and kept outside the clone.
fn authlib_python() -> std::path::PathBuf {
    let venv =
        std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/portcullis-venv");
    let py = venv.join("bin/python");
    let has = |py: &std::path::Path| {
        std::process::Command::new(py)
            .args(["-c", "import authlib, requests"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has(&py) {
        let ok = std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap()
            .success()
            && std::process::Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "authlib==1.*", "requests"])
                .status()
                .unwrap()
                .success();
        assert!(
            ok && has(&py),
            "could not set up the Authlib venv at {}",
            venv.display()
        );
    }
    py
}

#[tokio::test(flavor = "multi_thread")]
async fn authlib_relying_party_interoperates() {
    let py = authlib_python();
    let up = Upstream::start().await;
    let gw = issuer_gateway(&up).await;
    interop(
        tokio::process::Command::new(py)
            .arg(format!("{INTEROP}/authlib_rp.py"))
            .arg(gw.url("/auth/realms/myrealm"))
            .arg(gw.path("certs/dev-ca.crt"))
            .arg(gw.url("/api/orders")),
        "authlib interop OK",
        &gw,
    )
    .await;
}

/// Copies `from` into `to`, leaving out the `data` directory (the issuer's database).
fn copy_without_data(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "data" {
                std::fs::create_dir_all(&dst).unwrap();
                copy_without_data(&src, &dst);
            }
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// `explain` checks an embedded issuer's token against the keys in its database, and never
/// creates, migrates or imports one: it is safe to run against a production config.
#[tokio::test(flavor = "multi_thread")]
async fn explain_reads_the_issuer_keys_and_creates_nothing() {
    let up = Upstream::start().await;
    let gw = issuer_gateway(&up).await;
    let alice = password_token(&gw, "alice").await;
    let explain = |dir: &std::path::Path| {
        let args = ["explain", "--method", "GET", "--path", "/api/orders/1"];
        run_in(dir, args.iter().chain(&["--token", alice.as_str()]))
    };
    let out = explain(gw.dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("ALLOW GET /api/orders/1"), "{text}");

    // The same config where the gateway never ran: no key to check with, and no database made.
    let fresh = tempfile::tempdir().unwrap();
    copy_without_data(gw.dir.path(), fresh.path());
    let out = explain(fresh.path());
    let (text, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(3), "{text}{err}");
    assert!(text.starts_with("DENY"), "{text}");
    assert!(err.contains("no issuer database yet"), "{err}");
    assert!(
        !fresh.path().join("data").exists(),
        "explain created the database"
    );
}

/// The issuer's own response headers reach the client through the gateway, with the gateway's
/// request id and a Content-Length that matches the body.
#[tokio::test(flavor = "multi_thread")]
async fn issuer_response_headers_pass_through_the_gateway() {
    let up = Upstream::start().await;
    let gw = issuer_gateway(&up).await;
    let r = gw
        .client()
        .post(gw.url("/auth/realms/myrealm/protocol/openid-connect/token"))
        .basic_auth("svc-reports", Some("svc-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["cache-control"], "no-store");
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(!h["x-request-id"].is_empty());
    let len: usize = h["content-length"].to_str().unwrap().parse().unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), len);
}
