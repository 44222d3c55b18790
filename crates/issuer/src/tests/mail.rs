//! The account mails end to end over a real SMTP server (`tests/interop/smtp_sink.py`, an
//! aiosmtpd sink in the interop venv): the realm points at it, requests go through the
//! issuer's router, and the tests read what arrived. Shared setup here; the flows in
//! `mail_flows.rs`.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, Response, header};
use serde_json::Value;

use super::admin::{AdminHarness, root};
use super::harness::*;
use crate::BootstrapAdmin;
use portcullis_store::Secret;

/// A running sink; killed when dropped.
pub struct Sink {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> PathBuf {
    PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/portcullis-venv/bin/python")
}

impl Sink {
    /// Starts the sink; `args`: `--auth user:password`, `--reject`.
    pub fn start(args: &[&str]) -> Sink {
        let dir = tempfile::tempdir().unwrap();
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/smtp_sink.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(dir.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the interop venv's python with aiosmtpd (make test-deps)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("sink said {line:?}"));
        Sink { child, dir, port }
    }

    /// The messages received so far, in order.
    pub fn mails(&self) -> Vec<Value> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                let n = p.file_stem()?.to_str()?.parse().ok()?;
                (p.extension()? == "json").then_some((n, p))
            })
            .collect();
        files.sort();
        files
            .iter()
            .map(|(_, p)| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits (up to 10 s) until `n` messages have arrived; returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let m = self.mails();
            if m.len() >= n {
                return m;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{} of {n} mails",
                m.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A free local port nothing listens on (for "the SMTP server is down").
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A realm file named `realm` whose `smtpServer` is `smtp` (JSON object text), with users
/// `ann` (ann@example.com, password `pw`) and `bob` (no address, no password), client `app`.
pub fn realm_text(realm: &str, smtp: &str, extra: &str) -> String {
    format!(
        r#"{{"realm": "{realm}", "displayName": "Example <Org>", {extra}
        "smtpServer": {smtp},
        "users": [
          {{"username": "ann", "email": "ann@example.com", "firstName": "Ann",
            "credentials": [{{"type": "password", "value": "pw"}}]}},
          {{"username": "bob"}}
        ],
        "clients": [{{"clientId": "app", "secret": "app-secret", "directAccessGrantsEnabled": true,
                      "redirectUris": ["https://app.test/cb"]}}]}}"#
    )
}

/// The plain SMTP settings of a server on `port`.
pub fn smtp(port: u16) -> String {
    format!(
        r#"{{"host": "127.0.0.1", "port": "{port}", "from": "idp@example.com", "fromDisplayName": "Example IdP"}}"#
    )
}

/// An issuer with the realm files `texts` imported; with `admin`, a bootstrap admin (`call`
/// works; without, its token is empty). Password hashes dominate a test's time in a debug
/// build, so tests share an issuer between realms and ask for the admin only when they use it.
pub async fn start(texts: &[String], admin: bool) -> AdminHarness {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings();
    settings.import = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let file = dir.path().join(format!("realm{i}.json"));
            std::fs::write(&file, t).unwrap();
            file
        })
        .collect();
    let clock = portcullis_core::clock::ManualClock::new(T0);
    let root_admin = BootstrapAdmin {
        username: "root".into(),
        password: Secret("root-pw".into()),
    };
    let issuer = crate::Issuer::start_with(
        &settings,
        dir.path(),
        clock.clone(),
        admin.then_some(&root_admin),
    )
    .await
    .unwrap();
    let h = Harness {
        issuer,
        clock,
        settings,
        dir,
    };
    let token = if admin { root(&h).await } else { String::new() };
    AdminHarness { h, token }
}

pub async fn text(r: Response<Body>) -> String {
    String::from_utf8(body_bytes(r).await).unwrap()
}

/// GETs a form page; returns its CSRF token (cookie and hidden field alike) and body.
pub async fn form_csrf(h: &Harness, uri: &str) -> (String, String) {
    let r = h.get(uri).await;
    assert_eq!(r.status(), 200, "{uri}");
    let cookie = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("PORTCULLIS_CSRF="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_string();
    let body = text(r).await;
    assert!(body.contains(&cookie), "the form carries the token");
    (cookie, body)
}

/// POSTs a form with the CSRF cookie and field.
pub async fn post_with_csrf(
    h: &Harness,
    uri: &str,
    csrf: &str,
    form: &[(&str, &str)],
) -> Response<Body> {
    let mut all = form.to_vec();
    all.push(("csrf", csrf));
    let req = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, format!("PORTCULLIS_CSRF={csrf}"))
        .body(Body::from(serde_urlencoded::to_string(&all).unwrap()))
        .unwrap();
    h.send(req).await
}

/// The link in a mail's plain-text body (the same is in the HTML), as a path and query.
pub fn link_in(mail: &Value) -> String {
    let text = mail["text"].as_str().unwrap();
    let url = text
        .split_whitespace()
        .find(|w| w.contains("/login-actions/action-token?key="))
        .unwrap_or_else(|| panic!("no link in {text}"));
    let html = mail["html"].as_str().unwrap();
    assert!(
        html.contains(&url.replace('&', "&amp;")),
        "the HTML body has it too"
    );
    url.strip_prefix("https://id.test").unwrap().to_string()
}

/// The header `name` of a received mail.
pub fn header_of<'m>(mail: &'m Value, name: &str) -> Option<&'m str> {
    mail["headers"]
        .as_array()?
        .iter()
        .find(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .and_then(|h| h[1].as_str())
}

/// `portcullis_issuer_emails_sent_total{realm, kind, result}`.
pub fn sent(realm: &str, kind: &str, result: &str) -> u64 {
    portcullis_core::metrics::metrics()
        .issuer_emails_sent
        .with_label_values(&[realm, kind, result])
        .get()
}

/// Waits (up to 10 s) until the counter reaches `n`.
pub async fn wait_sent(realm: &str, kind: &str, result: &str, n: u64) {
    let start = Instant::now();
    while sent(realm, kind, result) < n {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{realm} {kind} {result}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A password grant of realm `realm` for `user` with client `app`: its status.
pub async fn password_status(h: &Harness, realm: &str, user: &str, pw: &str) -> u16 {
    h.post_form(
        &format!("/auth/realms/{realm}/protocol/openid-connect/token"),
        &[
            ("grant_type", "password"),
            ("username", user),
            ("password", pw),
            ("scope", "openid"),
        ],
        Some(("app", "app-secret")),
    )
    .await
    .status()
    .as_u16()
}
