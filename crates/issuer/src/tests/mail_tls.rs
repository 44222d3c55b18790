//! Account mail over TLS to a real SMTP server (`tests/interop/smtp_sink.py --tls`): STARTTLS
//! and SMTPS deliver when the server's CA is trusted (`portcullisCaFile`), and nothing is sent
//! in the clear or to an untrusted certificate: no plaintext fallback when STARTTLS is asked
//! for, no delivery past a certificate the issuer cannot verify.

use super::harness::*;
use super::mail::*;

const FLAGS: &str = r#""resetPasswordAllowed": true,"#;

fn base(realm: &str) -> String {
    format!("/auth/realms/{realm}")
}

/// `smtpServer` for the sink on `port`: `mode` is `"starttls"` or `"ssl"`, `ca` the CA file.
fn smtp_tls(port: u16, mode: &str, ca: Option<&str>) -> String {
    let ca = ca
        .map(|c| format!(r#", "portcullisCaFile": "{c}""#))
        .unwrap_or_default();
    format!(
        r#"{{"host": "127.0.0.1", "port": "{port}", "from": "idp@example.com", "{mode}": "true"{ca}}}"#
    )
}

/// Asks for a reset mail for ann in `realm`; the page says the same whatever happens.
async fn forgot(h: &Harness, realm: &str) {
    let uri = format!("{}/login-actions/reset-credentials", base(realm));
    let (csrf, _) = form_csrf(h, &uri).await;
    let r = post_with_csrf(h, &uri, &csrf, &[("username", "ann")]).await;
    assert!(
        text(r)
            .await
            .contains("You should receive an email shortly")
    );
}

#[tokio::test]
async fn starttls_and_smtps_deliver_to_a_trusted_server_and_never_in_the_clear() {
    let starttls = Sink::start(&["--tls", "starttls"]);
    let smtps = Sink::start(&["--tls", "ssl"]);
    let plain = Sink::start(&[]);
    let ca = |s: &Sink| s.dir.path().join("ca.pem").display().to_string();
    let (ca_starttls, ca_smtps) = (ca(&starttls), ca(&smtps));
    let h = start(
        &[
            realm_text(
                "tls-start",
                &smtp_tls(starttls.port, "starttls", Some(&ca_starttls)),
                FLAGS,
            ),
            realm_text(
                "tls-wrap",
                &smtp_tls(smtps.port, "ssl", Some(&ca_smtps)),
                FLAGS,
            ),
            // The system's roots only: the sink's CA is not among them.
            realm_text(
                "tls-untrusted",
                &smtp_tls(starttls.port, "starttls", None),
                FLAGS,
            ),
            // STARTTLS asked of a server that does not offer it: no plaintext fallback.
            realm_text(
                "tls-stripped",
                &smtp_tls(plain.port, "starttls", Some(&ca_starttls)),
                FLAGS,
            ),
        ],
        false,
    )
    .await;
    for realm in ["tls-start", "tls-wrap", "tls-untrusted", "tls-stripped"] {
        forgot(&h.h, realm).await;
    }
    let got = starttls.wait_for(1).await;
    assert!(link_in(&got[0]).contains("/login-actions/action-token?key="));
    let got = smtps.wait_for(1).await;
    assert!(link_in(&got[0]).contains("/login-actions/action-token?key="));
    wait_sent("tls-start", "reset_password", "ok", 1).await;
    wait_sent("tls-wrap", "reset_password", "ok", 1).await;
    wait_sent("tls-untrusted", "reset_password", "error", 1).await;
    wait_sent("tls-stripped", "reset_password", "error", 1).await;
    assert_eq!(
        starttls.mails().len(),
        1,
        "the untrusted realm's mail never got through"
    );
    assert!(plain.mails().is_empty(), "nothing was sent in the clear");
}
