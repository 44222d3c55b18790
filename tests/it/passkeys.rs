//! Passkeys in a real browser: headless Chromium with its WebAuthn virtual authenticator
//! (`tests/interop/passkey_browser.py`) registers a passkey in the account console of the
//! gateway's embedded issuer, signs in with it as second factor and alone, removes it, and is
//! refused with it.

use crate::harness::{Gateway, Opts, free_port, route};
use crate::keycloak_browser::drive;

/// The gateway serving the dev realm's issuer at `https://localhost:{public}/auth`: a host
/// name, so a valid WebAuthn relying party id.
async fn gateway() -> Gateway {
    let public = free_port();
    let base = format!("https://localhost:{public}/auth");
    let routes = route("auth", "/auth", &["embedded:issuer".into()], "");
    let mut o = Opts::new(routes).extra(&format!(
        "[issuer]\nfrontend_url = \"{base}\"\ndatabase = \"sqlite://data/portcullis.db\"\n\
         import = [\"{}\"]\n",
        crate::issuer::REALM_FILE
    ));
    o.public_port = Some(public);
    Gateway::start(o).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_passkey_registered_in_the_account_console_signs_in_alone_until_removed() {
    let gw = gateway().await;
    let args = [
        gw.url("/auth/realms/myrealm"),
        "alice".to_string(),
        "password".to_string(),
    ];
    drive(&gw, "passkey_browser.py", &args, "passkey browser OK").await;
    // The passkey checks are counted apart from passwords: two passed (second factor and
    // passwordless), one refused.
    let metrics = gw.metrics().await;
    for (result, n) in [("success", 2), ("failure", 1)] {
        let counted = metrics.lines().any(|l| {
            l.starts_with("portcullis_issuer_second_factor_total{")
                && l.contains("kind=\"webauthn\"")
                && l.contains(&format!("result=\"{result}\""))
                && l.ends_with(&format!(" {n}"))
        });
        assert!(counted, "{result}: {metrics}");
    }
}
