//! One real headless browser: Debian's chromium through chromedriver, driven by selenium
//! (tests/interop/session_browser.py, in the interop venv). It opens a session route, lands
//! on the embedded issuer's login page, signs in as alice, ends on the upstream's answer, and
//! signs out through the gateway's confirmation form.

use serde_json::{Value, json};

use super::embedded;
use crate::harness::{INTEROP, venv_python};

#[tokio::test(flavor = "multi_thread")]
async fn a_headless_chromium_signs_in_and_out() {
    let e = embedded(300, &[], "").await;
    let start = format!("{}/app/browser?from=chromium", e.origin());
    let out = tokio::process::Command::new(venv_python())
        .arg(format!("{INTEROP}/session_browser.py"))
        .args([start.as_str(), "alice", "password"])
        .output()
        .await
        .expect("the interop venv (make test-deps)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{stdout}\n{stderr}\n--- gateway:\n{}",
        e.gw.stderr()
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("{stdout}"));
    let login = format!(
        "{}/auth/realms/myrealm/protocol/openid-connect/auth",
        e.origin()
    );
    assert_eq!(seen["login_page"], login, "{seen}");
    assert_eq!(seen["landed_on"], start);
    let up = &seen["upstream"];
    assert_eq!(up["path"], "/app/browser");
    assert_eq!(up["query"], "from=chromium");
    assert_eq!(up["headers"]["x-auth-request-user"], json!(["alice"]));
    assert!(
        seen["cookie_names"]
            .as_array()
            .unwrap()
            .contains(&json!("__Host-portcullis"))
            || seen["cookie_names"]
                .as_array()
                .unwrap()
                .contains(&json!("__Host-portcullis.0")),
        "{seen}"
    );
    assert!(
        seen["sign_out_page"]
            .as_str()
            .unwrap()
            .contains("Signed in as alice"),
        "{seen}"
    );
    assert!(
        !seen["cookie_names_after"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().starts_with("__Host-portcullis")),
        "{seen}"
    );
    assert_eq!(seen["signed_out_asks_again"], login, "{seen}");
}
