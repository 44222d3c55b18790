//! The account pages around the sign-in in a real browser (issue 17: every page a person sees
//! is tested in headless Chromium): "forgot password" through the mail to a new password and
//! a sign-in, registration through the verification link to a sign-in, and the
//! `CONFIGURE_TOTP` + `UPDATE_PASSWORD` required actions, each walked as a person by
//! `tests/interop/account_browser.py`, with the mails delivered over SMTP to the real sink
//! (`tests/interop/smtp_sink.py`) and the gateway's embedded issuer behind real TLS.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Stdio};

use serde_json::{Value, json};

use crate::harness::{Gateway, INTEROP, Opts, free_port, route};
use crate::keycloak_browser::{drive, python};

/// The SMTP sink: writes each mail it receives to `dir` as JSON; killed when dropped.
struct Sink {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Sink {
    fn start() -> Sink {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(python())
            .arg(Path::new(INTEROP).join("smtp_sink.py"))
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the sink said {line:?}"));
        Sink { child, dir, port }
    }

    /// How many mails arrived.
    fn count(&self) -> usize {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter(|e| {
                let p = e.as_ref().unwrap().path();
                p.extension().is_some_and(|x| x == "json")
            })
            .count()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The relying party's landing page `http://localhost:{port}/cb`, another origin.
struct Landing {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Landing {
    async fn start() -> Landing {
        let router = axum::Router::new().route(
            "/cb",
            axum::routing::get(|| async {
                axum::response::Html(
                    "<!DOCTYPE html><html lang=\"en\"><head><title>callback</title></head>\
                     <body><h1>callback</h1></body></html>",
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Landing { port, task }
    }

    fn url(&self) -> String {
        format!("http://localhost:{}", self.port)
    }
}

impl Drop for Landing {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The dev realm with the account features on (registration, "forgot password", email
/// verification, a password policy), the sink as its SMTP server, the public client `webapp`
/// of the landing page, and two users: `rita` (password `Oldpass1`) and `ray` (`Firstpw1`,
/// required actions `UPDATE_PASSWORD` and `CONFIGURE_TOTP`), both with verified addresses.
fn realm_file(dir: &Path, smtp_port: u16, rp: &str) -> String {
    let mut realm: Value =
        serde_json::from_str(&std::fs::read_to_string(crate::issuer::REALM_FILE).unwrap()).unwrap();
    for (k, v) in [
        ("displayName", json!("Browser Realm")),
        ("registrationAllowed", json!(true)),
        ("resetPasswordAllowed", json!(true)),
        ("verifyEmail", json!(true)),
        ("passwordPolicy", json!("length(8) and digits(1)")),
        (
            "smtpServer",
            json!({"host": "127.0.0.1", "port": smtp_port.to_string(),
                   "from": "idp@example.com", "fromDisplayName": "Browser IdP"}),
        ),
    ] {
        realm[k] = v;
    }
    realm["clients"].as_array_mut().unwrap().push(json!({
        "clientId": "webapp", "enabled": true, "publicClient": true,
        "redirectUris": [format!("{rp}/cb")], "webOrigins": [],
        "standardFlowEnabled": true, "directAccessGrantsEnabled": false,
        "attributes": {"pkce.code.challenge.method": "S256"}
    }));
    let users = realm["users"].as_array_mut().unwrap();
    users.push(json!({
        "username": "rita", "enabled": true, "email": "rita@example.com",
        "emailVerified": true, "credentials": [{"type": "password", "value": "Oldpass1"}]
    }));
    users.push(json!({
        "username": "ray", "enabled": true, "email": "ray@example.com", "emailVerified": true,
        "requiredActions": ["UPDATE_PASSWORD", "CONFIGURE_TOTP"],
        "credentials": [{"type": "password", "value": "Firstpw1"}]
    }));
    let file = dir.join("realm.json");
    std::fs::write(&file, realm.to_string()).unwrap();
    file.display().to_string()
}

/// Runs `account_browser.py MODE` against a fresh gateway; returns it and the sink.
async fn walk(mode: &str, extra: &[&str]) -> (Gateway, Sink) {
    let sink = Sink::start();
    let landing = Landing::start().await;
    let files = tempfile::tempdir().unwrap();
    let public = free_port();
    let base = format!("https://localhost:{public}/auth");
    let routes = route("auth", "/auth", &["embedded:issuer".into()], "");
    let mut o = Opts::new(routes).extra(&format!(
        "[issuer]\nfrontend_url = \"{base}\"\ndatabase = \"sqlite://data/portcullis.db\"\n\
         import = [\"{}\"]\n",
        realm_file(files.path(), sink.port, &landing.url())
    ));
    o.public_port = Some(public);
    let gw = Gateway::start(o).await;
    let mut args = vec![
        mode.to_string(),
        gw.url("/auth/realms/myrealm"),
        gw.path("certs/dev-ca.crt").display().to_string(),
        landing.url(),
        sink.dir.path().display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    drive(
        &gw,
        "account_browser.py",
        &args,
        &format!("account browser {mode} OK"),
    )
    .await;
    (gw, sink)
}

/// The value of `portcullis_issuer_emails_sent_total` for `kind` and result `ok`.
async fn sent_ok(gw: &Gateway, kind: &str) -> u64 {
    gw.metrics()
        .await
        .lines()
        .filter(|l| {
            l.starts_with("portcullis_issuer_emails_sent_total{")
                && l.contains(&format!("kind=\"{kind}\""))
                && l.contains("result=\"ok\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn forgot_password_mail_link_new_password_then_sign_in_in_chromium() {
    let (gw, sink) = walk("reset", &[]).await;
    assert_eq!(sink.count(), 1, "one mail, one link");
    assert_eq!(sent_ok(&gw, "reset_password").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_then_the_verification_link_then_signed_in_in_chromium() {
    let (gw, sink) = walk("register", &[]).await;
    // The registration's mail and the VERIFY_EMAIL step's.
    assert_eq!(sink.count(), 2);
    assert_eq!(sent_ok(&gw, "verify_email").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn required_actions_configure_totp_and_update_password_in_chromium() {
    let (_gw, sink) = walk("actions", &["ray", "Firstpw1"]).await;
    assert_eq!(sink.count(), 0, "no mail for these actions");
}
