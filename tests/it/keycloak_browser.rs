//! Keycloak's own clients against the gateway's embedded issuer, in a real browser where they
//! run in one: headless Chromium (Selenium, `tests/interop/kc_browser.py`) signs in to a client
//! on another origin, comes back through SSO and logs out; keycloak-js 26 initialises with its
//! defaults (third-party-cookie check, session status iframe, fragment response mode),
//! refreshes and logs out; python-keycloak's `KeycloakOpenID` (`tests/interop/kc_openid.py`)
//! runs its calls end to end; a password + TOTP sign-in (`tests/interop/totp_browser.py`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::header;
use axum::response::{Html, IntoResponse};
use serde_json::{Value, json};

use crate::harness::{Gateway, INTEROP, Opts, free_port, interop, route, venv_python};

/// The relying party: plain pages on `http://localhost:{port}`, another origin than the
/// gateway's `https://localhost:{public}`.
struct RelyingParty {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl RelyingParty {
    /// Serves `/cb` and `/bye` (landing pages), `/kc/app.html` (the keycloak-js app, talking to
    /// `auth_url`) and `/kc/keycloak.js` (from tests/interop/node_modules).
    async fn start(auth_url: &str) -> RelyingParty {
        let lib = Path::new(INTEROP).join("node_modules/keycloak-js/lib/keycloak.js");
        let js = std::fs::read_to_string(&lib)
            .unwrap_or_else(|e| panic!("{}: {e} (run `make test-deps`)", lib.display()));
        let app = std::fs::read_to_string(Path::new(INTEROP).join("kc_app.html"))
            .unwrap()
            .replace("__AUTH_URL__", auth_url);
        let landing = |title: &'static str| {
            move || async move {
                Html(format!(
                    "<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
                ))
            }
        };
        let router = axum::Router::new()
            .route("/cb", axum::routing::get(landing("callback")))
            .route("/bye", axum::routing::get(landing("signed out")))
            .route("/kc/bye.html", axum::routing::get(landing("signed out")))
            .route(
                "/kc/app.html",
                axum::routing::get(move || async move { Html(app) }),
            )
            .route(
                "/kc/keycloak.js",
                axum::routing::get(move || async move {
                    ([(header::CONTENT_TYPE, "text/javascript")], js).into_response()
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        RelyingParty { port, task }
    }

    fn url(&self) -> String {
        format!("http://localhost:{}", self.port)
    }
}

impl Drop for RelyingParty {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The dev realm plus two public clients of the relying party: `webapp` (one callback) and
/// `kcjs` (keycloak-js: any page under `/kc/`, web origins `+`).
fn realm_file(dir: &Path, rp: &str) -> PathBuf {
    let mut realm: Value =
        serde_json::from_str(&std::fs::read_to_string(crate::issuer::REALM_FILE).unwrap()).unwrap();
    let clients = realm["clients"].as_array_mut().unwrap();
    clients.push(json!({
        "clientId": "webapp", "enabled": true, "publicClient": true,
        "redirectUris": [format!("{rp}/cb")], "webOrigins": [],
        "standardFlowEnabled": true, "directAccessGrantsEnabled": false,
        "attributes": {"pkce.code.challenge.method": "S256", "post.logout.redirect.uris": format!("{rp}/bye")}
    }));
    clients.push(json!({
        "clientId": "kcjs", "enabled": true, "publicClient": true,
        "redirectUris": [format!("{rp}/kc/*")], "webOrigins": ["+"],
        "standardFlowEnabled": true, "directAccessGrantsEnabled": false,
        "attributes": {"pkce.code.challenge.method": "S256", "post.logout.redirect.uris": format!("{rp}/kc/*")}
    }));
    // A user with TOTP (Keycloak's `otp` credential shape, raw secret) for the 2FA sign-in.
    realm["users"].as_array_mut().unwrap().push(json!({
        "username": "otp-user", "enabled": true,
        "credentials": [
            {"type": "password", "value": "password"},
            {"type": "otp", "secretData": json!({"value": TOTP_SECRET}).to_string(),
             "credentialData": json!({"subType": "totp", "digits": 6, "counter": 0,
                 "period": 30, "algorithm": "HmacSHA1"}).to_string()}
        ]
    }));
    let file = dir.join("realm.json");
    std::fs::write(&file, realm.to_string()).unwrap();
    file
}

/// `otp-user`'s TOTP secret.
const TOTP_SECRET: &str = "BrowserTotpSecret123";

/// A gateway serving the issuer at `https://localhost:{public}/auth` with the realm of
/// `realm_file`, and the relying party that realm names.
async fn gateway_and_rp(files: &Path) -> (Gateway, RelyingParty) {
    let public = free_port();
    let base = format!("https://localhost:{public}/auth");
    let rp = RelyingParty::start(&base).await;
    let realm = realm_file(files, &rp.url());
    let routes = route("auth", "/auth", &["embedded:issuer".into()], "");
    let mut o = Opts::new(routes).extra(&format!(
        "[issuer]\nfrontend_url = \"{base}\"\ndatabase = \"sqlite://data/portcullis.db\"\n\
         import = [\"{}\"]\n",
        realm.display()
    ));
    o.public_port = Some(public);
    (Gateway::start(o).await, rp)
}

/// The interop venv's python, with the packages these drivers import.
pub(crate) fn python() -> PathBuf {
    let py = venv_python();
    let ok = std::process::Command::new(&py)
        .args(["-c", "import selenium, keycloak, jwcrypto, requests"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} lacks selenium or python-keycloak: run `make test-deps`",
        py.display()
    );
    py
}

/// Runs an interop driver; panics with its output and the gateway's log unless it prints `ok`.
pub(crate) async fn drive(gw: &Gateway, script: &str, args: &[String], ok: &str) {
    let mut cmd = tokio::process::Command::new(python());
    cmd.arg(Path::new(INTEROP).join(script))
        .args(args)
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(90), interop(&mut cmd, ok, gw))
        .await
        .unwrap_or_else(|_| panic!("{script} ran over 90 s\n--- gateway:\n{}", gw.stderr()));
}

/// The statuses the audit log recorded for request paths ending in `suffix`.
fn audited(gw: &Gateway, suffix: &str) -> Vec<u64> {
    gw.stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["path"].as_str().is_some_and(|p| p.ends_with(suffix)))
        .filter_map(|l| l["status"].as_u64())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_signs_in_to_a_client_on_another_origin_then_sso_then_logout() {
    let files = tempfile::tempdir().unwrap();
    let (gw, rp) = gateway_and_rp(files.path()).await;
    let args = [
        "code".to_string(),
        gw.url("/auth/realms/myrealm"),
        gw.path("certs/dev-ca.crt").display().to_string(),
        rp.url(),
    ];
    drive(&gw, "kc_browser.py", &args, "browser code flow OK").await;
}

/// keycloak-js in Chromium, in `mode` (`kcjs`: third-party cookies allowed, `kcjs-no3p`:
/// blocked); returns the gateway for its audit log.
async fn keycloak_js(mode: &str) -> Gateway {
    let files = tempfile::tempdir().unwrap();
    let (gw, rp) = gateway_and_rp(files.path()).await;
    let args = [
        mode.to_string(),
        gw.url("/auth/realms/myrealm"),
        gw.path("certs/dev-ca.crt").display().to_string(),
        rp.url(),
    ];
    drive(&gw, "kc_browser.py", &args, "keycloak-js OK").await;
    // One third-party-cookie check per page load: before the login and after it.
    crate::harness::eventually("the audit lines", Duration::from_secs(5), || async {
        audited(&gw, "/3p-cookies/step1.html").len() == 2
    })
    .await;
    assert_eq!(audited(&gw, "/3p-cookies/step1.html"), [200, 200]);
    gw
}

#[tokio::test(flavor = "multi_thread")]
async fn keycloak_js_login_required_update_token_and_logout_in_chromium() {
    let gw = keycloak_js("kcjs").await;
    // Both checks reached step 2 (the test cookie came back), and the status iframe asked
    // `init` once, and was let in.
    assert_eq!(audited(&gw, "/3p-cookies/step2.html"), [200, 200]);
    assert_eq!(audited(&gw, "/login-status-iframe.html/init"), [204]);
}

#[tokio::test(flavor = "multi_thread")]
async fn keycloak_js_without_third_party_cookies_goes_on_without_the_iframe() {
    let gw = keycloak_js("kcjs-no3p").await;
    assert!(audited(&gw, "/login-status-iframe.html").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn python_keycloak_openid_end_to_end() {
    let files = tempfile::tempdir().unwrap();
    let (gw, _rp) = gateway_and_rp(files.path()).await;
    let args = [
        gw.url("/auth"),
        gw.path("certs/dev-ca.crt").display().to_string(),
    ];
    drive(&gw, "kc_openid.py", &args, "python-keycloak OK").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_signs_in_with_password_and_totp() {
    let files = tempfile::tempdir().unwrap();
    let (gw, rp) = gateway_and_rp(files.path()).await;
    let args = [
        gw.url("/auth/realms/myrealm"),
        gw.path("certs/dev-ca.crt").display().to_string(),
        rp.url(),
        "otp-user".into(),
        "password".into(),
        TOTP_SECRET.into(),
    ];
    drive(&gw, "totp_browser.py", &args, "totp browser OK").await;
}
