//! Providers found by discovery: a second portcullis process over TLS (its CA trusted through
//! `provider_ca`), and the foreign, certified oidc-provider (tests/interop/oidc_provider.mjs).
//! Each signs alice in through its own login page and back to the session route, then out.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::{
    CLIENT_SECRET, Jar, KEY_A, POLICY, browser_client, echoed, form_of, location, navigate,
    open_cookie, realm_with_gateway_client, refresh_grant, sign_in, write_keys,
};
use crate::harness::{Gateway, Opts, Upstream, eventually, free_port, route};

/// A gateway with one session route `app` signing in with `provider`.
async fn gateway_for(public: u16, up: &Upstream, dir: &std::path::Path, session: &str) -> Gateway {
    let keys = dir.join("session-keys");
    write_keys(&keys, &[KEY_A]);
    let routes = route(
        "app",
        "/app",
        &[up.url()],
        "auth = \"session\"\npass_access_token = true",
    );
    let mut o = Opts::new(routes).extra(&format!(
        "[session]\nclient_id = \"portcullis\"\nclient_secret = \"{CLIENT_SECRET}\"\n\
         cookie_keys = \"{}\"\n{session}",
        keys.display()
    ));
    o.policies = POLICY.replace(
        "[[allow]]\nroute = \"both\"\nmethods = [\"GET\"]\npermission = \"app:use\"\n",
        "",
    );
    o.public_port = Some(public);
    Gateway::start(o).await
}

/// Signs out through the confirmation form: the Location the gateway sends the browser to.
async fn sign_out(c: &reqwest::Client, jar: &mut Jar, origin: &str) -> String {
    let r = navigate(c, jar, &format!("{origin}/.portcullis/sign_out")).await;
    let (_, fields) = form_of(&r.text().await.unwrap());
    let r = c
        .post(format!("{origin}/.portcullis/sign_out"))
        .header("cookie", jar.header())
        .header("origin", origin)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    jar.absorb(&r);
    assert!(jar.session().is_none());
    location(&r)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_portcullis_is_the_provider_by_discovery_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (pg, pp) = (free_port(), free_port());
    let gw_origin = format!("https://localhost:{pg}");
    let realm = realm_with_gateway_client(dir.path(), std::slice::from_ref(&gw_origin), 300);
    let base = format!("https://localhost:{pp}/auth");
    let mut o = Opts::new(route("auth", "/auth", &["embedded:issuer".into()], "")).extra(&format!(
        "[issuer]\nfrontend_url = \"{base}\"\ndatabase = \"sqlite://data/p.db\"\nimport = [\"{}\"]\n",
        realm.display()
    ));
    o.public_port = Some(pp);
    let provider = Gateway::start(o).await;

    let up = Upstream::start().await;
    let ca = provider.path("certs/dev-ca.crt");
    let gw = gateway_for(
        pg,
        &up,
        dir.path(),
        &format!(
            "provider = \"{base}/realms/myrealm\"\nprovider_ca = \"{}\"\n",
            ca.display()
        ),
    )
    .await;
    let c = browser_client(&[gw.cert_pem(), provider.cert_pem()]);
    let mut jar = Jar::default();
    let r = sign_in(
        &c,
        &mut jar,
        &format!("{gw_origin}/app/ext?x=1"),
        "alice",
        "password",
    )
    .await;
    let seen = echoed(r).await;
    assert_eq!(seen["query"], "x=1");
    assert_eq!(seen["headers"]["x-auth-request-user"], json!(["alice"]));
    assert_eq!(seen["headers"]["x-auth-request-groups"], json!(["/staff"]));
    assert!(
        seen["headers"]["authorization"][0]
            .as_str()
            .unwrap()
            .starts_with("Bearer ey")
    );

    // Sign-out revokes the refresh token at the provider and goes through its end-session page.
    let (_, body) = open_cookie(&[KEY_A], &jar.session().unwrap()).unwrap();
    let to = sign_out(&c, &mut jar, &gw_origin).await;
    assert!(
        to.starts_with(&format!(
            "{base}/realms/myrealm/protocol/openid-connect/logout?"
        )),
        "{to}"
    );
    let realm = format!("{base}/realms/myrealm");
    let r = refresh_grant(&c, &realm, body.rt.as_deref().unwrap()).await;
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

/// `node tests/interop/oidc_provider.mjs` on a free port, until dropped.
struct OidcProvider {
    child: Child,
    issuer: String,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn oidc_provider(realm: &std::path::Path) -> OidcProvider {
    let port = free_port();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/oidc_provider.mjs"
    );
    let log = realm.with_file_name("oidc-provider.log");
    let child = Command::new("node")
        .args([script, "--port", &port.to_string(), "--realm"])
        .arg(realm)
        .stdout(std::fs::File::create(&log).unwrap())
        // Its development warnings (in-memory adapter, generated keys) are expected here.
        .stderr(Stdio::null())
        .spawn()
        .expect("node (make test-deps installs the interop packages)");
    let p = OidcProvider {
        child,
        issuer: format!("http://127.0.0.1:{port}/auth/realms/myrealm"),
    };
    let disco = format!("{}/.well-known/openid-configuration", p.issuer);
    eventually("oidc-provider to listen", Duration::from_secs(20), || {
        let disco = disco.clone();
        async move { reqwest::get(disco).await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    p
}

#[tokio::test(flavor = "multi_thread")]
async fn the_certified_oidc_provider_signs_alice_in() {
    let dir = tempfile::tempdir().unwrap();
    let pg = free_port();
    let gw_origin = format!("https://localhost:{pg}");
    let realm = realm_with_gateway_client(dir.path(), std::slice::from_ref(&gw_origin), 300);
    let op = oidc_provider(&realm).await;
    let up = Upstream::start().await;
    let gw = gateway_for(
        pg,
        &up,
        dir.path(),
        &format!("provider = \"{}\"\n", op.issuer),
    )
    .await;
    let c = browser_client(&[gw.cert_pem()]);
    let mut jar = Jar::default();
    let r = sign_in(
        &c,
        &mut jar,
        &format!("{gw_origin}/app/op?y=2"),
        "alice",
        "password",
    )
    .await;
    let seen = echoed(r).await;
    assert_eq!(seen["query"], "y=2");
    assert_eq!(seen["headers"]["x-auth-request-user"], json!(["alice"]));
    assert_eq!(seen["headers"]["x-auth-request-groups"], json!(["/staff"]));
    assert_eq!(
        seen["headers"]["x-auth-request-email"],
        json!(["alice@example.com"])
    );
    let info: Value = c
        .get(format!("{gw_origin}/.portcullis/userinfo"))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["iss"], op.issuer);
    let to = sign_out(&c, &mut jar, &gw_origin).await;
    assert!(
        to.starts_with(&format!("{}/protocol/openid-connect/logout?", op.issuer)),
        "{to}"
    );
}
