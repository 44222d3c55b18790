//! Client certificates on the public listener (DESIGN §11): handshakes under both
//! `client_auth` modes, `mtls` routes with SPIFFE principals mapped by `[principals]`,
//! `require_client_cert` on `jwt` routes, `X-Forwarded-Client-Cert`, and `explain --cert`.

use std::path::Path;

use serde_json::Value;

use crate::harness::{Gateway, Opts, Upstream, check_in, route, run_in};
use crate::idp::{Jwks, Key};
use crate::mtls_pki::{Ca, Leaf, Names, client, tls_connect};

pub const ORDERS: &str = "spiffe://cluster.local/ns/shop/sa/orders";
pub const CART: &str = "spiffe://cluster.local/ns/shop/sa/cart";
pub const INTRUDER: &str = "spiffe://cluster.local/ns/other/sa/c";

pub const POLICY: &str = r#"
[principals]
"spiffe://cluster.local/ns/shop/sa/orders" = ["writer"]
"spiffe://cluster.local/ns/shop/*" = ["reader"]
"billing.internal" = ["reader"]

[roles.reader]
permissions = ["svc:read"]
[roles.writer]
inherits = ["reader"]
permissions = ["svc:write"]

[[allow]]
route = "svc"
methods = ["GET", "HEAD"]
permission = "svc:read"
[[allow]]
route = "svc"
methods = ["POST", "PUT", "DELETE"]
permission = "svc:write"
"#;

/// A gateway whose public listener asks for client certificates signed by `clients`.
pub struct Mesh {
    pub pki: tempfile::TempDir,
    pub server_ca: Ca,
    pub clients: Ca,
    pub up: Upstream,
    pub gw: Gateway,
}

/// The `[tls]` section for a gateway with `server` as its certificate and `clients` as its
/// client CA, files in `dir`.
pub fn tls_section(dir: &Path, server: &Leaf, clients: &Ca, mode: &str) -> String {
    let (cert, key) = server.write(dir, "gateway");
    let ca = dir.join("clients-ca.pem");
    std::fs::write(&ca, clients.pem()).unwrap();
    format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\nclient_auth = \"{mode}\"\n",
        cert.display(),
        key.display(),
        ca.display()
    )
}

impl Mesh {
    pub async fn start(mode: &str, routes: impl FnOnce(&Upstream) -> String, extra: &str) -> Mesh {
        let pki = tempfile::tempdir().unwrap();
        let (server_ca, clients) = (Ca::new("server CA"), Ca::new("clients CA"));
        let up = Upstream::start().await;
        let mut o = Opts::new(routes(&up))
            .extra(&tls_section(
                pki.path(),
                &server_ca.server(),
                &clients,
                mode,
            ))
            .extra(extra);
        o.tls = false;
        o.policies = POLICY.to_string();
        let gw = Gateway::start(o).await;
        Mesh {
            pki,
            server_ca,
            clients,
            up,
            gw,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.gw.public)
    }

    pub fn client(&self, leaf: Option<&Leaf>) -> reqwest::Client {
        client(&self.server_ca.pem(), leaf, false)
    }

    /// GET `path` presenting `leaf`: the status, or `None` when the connection failed.
    pub async fn get(&self, path: &str, leaf: Option<&Leaf>) -> Option<(u16, Value)> {
        let r = self.client(leaf).get(self.url(path)).send().await.ok()?;
        let status = r.status().as_u16();
        Some((status, r.json().await.unwrap_or(Value::Null)))
    }
}

fn svc_routes(up: &Upstream) -> String {
    route("svc", "/svc", &[up.url()], "auth = \"mtls\"") + &route("open", "/open", &[up.url()], "")
}

/// Good, expired, wrong-CA and no certificates against one listener mode.
async fn handshakes(mode: &str) {
    let m = Mesh::start(mode, svc_routes, "").await;
    let good = m.clients.spiffe(ORDERS);
    let expired = m.clients.leaf(Names {
        uris: &[ORDERS],
        expired: true,
        ..Default::default()
    });
    let stranger = Ca::new("someone else's CA").spiffe(ORDERS);

    let (status, body) = m
        .get("/svc/x", Some(&good))
        .await
        .expect("good certificate");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["headers"]["x-auth-request-user"][0], ORDERS);
    for (what, leaf) in [("expired", &expired), ("wrong CA", &stranger)] {
        assert!(
            m.get("/open", Some(leaf)).await.is_none(),
            "{mode}: a {what} certificate must fail the handshake"
        );
        // The raw handshake shows the alert itself (TLS 1.3 reports it on the first read).
        let refused =
            match tls_connect(m.gw.public, &m.server_ca.pem(), Some(leaf), &[b"http/1.1"]).await {
                Err(_) => true,
                Ok(mut s) => {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let _ = s
                        .write_all(b"GET /open HTTP/1.1\r\nHost: localhost\r\n\r\n")
                        .await;
                    let mut buf = [0u8; 64];
                    !matches!(s.read(&mut buf).await, Ok(n) if n > 0)
                }
            };
        assert!(refused, "{mode}: {what}");
    }
    let none = m.get("/open", None).await;
    match mode {
        "required" => assert!(
            none.is_none(),
            "required: no certificate must fail the handshake"
        ),
        _ => {
            assert_eq!(
                none.map(|(s, _)| s),
                Some(200),
                "optional: a public route without a certificate"
            );
            let (status, body) = m.get("/svc/x", None).await.unwrap();
            assert_eq!(status, 401, "{body}");
            assert_eq!(body["error"], "client_certificate_required");
            assert!(body["request_id"].is_string());
        }
    }
    // Only the good certificate's request reached the upstream (plus the optional public one).
    let expected = if mode == "required" { 1 } else { 2 };
    assert_eq!(m.up.hits(), expected, "{mode}");
}

#[tokio::test(flavor = "multi_thread")]
async fn handshakes_with_client_auth_required() {
    handshakes("required").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn handshakes_with_client_auth_optional() {
    handshakes("optional").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn spiffe_ids_map_to_roles_and_others_are_denied() {
    let m = Mesh::start("optional", svc_routes, "").await;
    let orders = m.clients.spiffe(ORDERS);
    let cart = m.clients.spiffe(CART);
    let intruder = m.clients.spiffe(INTRUDER);
    let dns = m.clients.leaf(Names {
        dns: &["billing.internal", "billing.other"],
        cn: Some("billing"),
        ..Default::default()
    });
    let cn_only = m.clients.leaf(Names {
        cn: Some("orders"),
        ..Default::default()
    });
    let send = |leaf: &Leaf, method: reqwest::Method| {
        let c = m.client(Some(leaf));
        let url = m.url("/svc/items");
        async move { c.request(method, url).send().await.unwrap() }
    };
    // orders holds writer ⊃ reader (exact entry) and reader (prefix entry).
    let r = send(&orders, reqwest::Method::POST).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["headers"]["x-auth-request-user"][0], ORDERS);
    assert_eq!(body["headers"]["x-auth-request-roles"][0], "reader,writer");
    // cart only matches the prefix: it reads, it can't write.
    assert_eq!(send(&cart, reqwest::Method::GET).await.status(), 200);
    let r = send(&cart, reqwest::Method::POST).await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");
    // Another namespace, and a CN no entry names: denied by default.
    assert_eq!(send(&intruder, reqwest::Method::GET).await.status(), 403);
    assert_eq!(send(&cn_only, reqwest::Method::GET).await.status(), 403);
    // No URI SAN: the first DNS SAN is the identity.
    let r = send(&dns, reqwest::Method::GET).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["headers"]["x-auth-request-user"][0],
        "billing.internal"
    );
    let metrics = m.gw.metrics().await;
    assert!(
        metrics.contains("portcullis_authz_deny_total{route=\"svc\"} 3"),
        "{metrics}"
    );
    // The audit line names the certificate's identity.
    crate::harness::eventually("the audit line", std::time::Duration::from_secs(10), || {
        let log = m.gw.stdout();
        async move { log.contains(INTRUDER) && log.contains("\"status\":403") }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn xfcc_reaches_the_upstream_and_client_copies_never_do() {
    let m = Mesh::start("optional", svc_routes, "").await;
    let leaf = m.clients.leaf(Names {
        uris: &[ORDERS],
        dns: &["orders.shop", "orders.shop.svc"],
        cn: Some("orders"),
        ..Default::default()
    });
    let forged = "Hash=00;URI=spiffe://cluster.local/ns/shop/sa/orders";
    for path in ["/svc/a", "/open"] {
        let r = m
            .client(Some(&leaf))
            .get(m.url(path))
            .header("X-Forwarded-Client-Cert", forged)
            .header("x-forwarded-client-cert", "By=evil")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        let xfcc = &body["headers"]["x-forwarded-client-cert"];
        assert_eq!(xfcc.as_array().map(Vec::len), Some(1), "{body}");
        assert_eq!(
            xfcc[0],
            format!(
                "Hash={};URI={ORDERS};DNS=orders.shop;DNS=orders.shop.svc;Subject=\"CN=orders\"",
                leaf.sha256_hex()
            )
        );
    }
    // Without a certificate the forged copies are removed and nothing takes their place.
    let r = m
        .client(None)
        .get(m.url("/open"))
        .header("X-Forwarded-Client-Cert", forged)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert!(
        body["headers"].get("x-forwarded-client-cert").is_none(),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jwt_route_with_require_client_cert_needs_both() {
    let key = Key::rsa("k1");
    let jwks = Jwks::start(vec![key.jwk()]).await;
    let policy_route = |up: &Upstream| {
        route(
            "svc",
            "/svc",
            &[up.url()],
            "auth = \"jwt\"\nrequire_client_cert = true",
        )
    };
    let m = Mesh::start("optional", policy_route, &jwks.trust_block()).await;
    // The token's group maps to nothing: give its user the writer role through a token role.
    let token = key.token("alice", &[], &["writer"]);
    let leaf = m.clients.spiffe(CART);
    let call = |leaf: Option<&Leaf>, token: Option<&str>| {
        let mut rb = m.client(leaf).get(m.url("/svc/x"));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        async move { rb.send().await.unwrap() }
    };
    let r = call(None, Some(&token)).await;
    assert_eq!(r.status(), 401, "a token alone");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "client_certificate_required");
    assert_eq!(
        call(Some(&leaf), None).await.status(),
        401,
        "a certificate alone"
    );
    let r = call(Some(&leaf), Some(&token)).await;
    assert_eq!(r.status(), 200, "both");
    let body: Value = r.json().await.unwrap();
    // The token says who; the certificate travels as XFCC.
    assert_eq!(body["headers"]["x-auth-request-user"][0], "alice");
    assert!(
        body["headers"]["x-forwarded-client-cert"][0]
            .as_str()
            .unwrap()
            .contains(CART)
    );
    assert_eq!(m.up.hits(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_reads_a_certificate() {
    let m = Mesh::start("optional", svc_routes, "").await;
    let dir = m.pki.path();
    let (orders, _) = m.clients.spiffe(ORDERS).write(dir, "orders");
    let (intruder, _) = m.clients.spiffe(INTRUDER).write(dir, "intruder");
    let (stranger, _) = Ca::new("other").spiffe(ORDERS).write(dir, "stranger");
    let explain = |cert: &Path, method: &str| {
        let cert = cert.to_str().unwrap();
        let out = run_in(
            m.gw.dir.path(),
            [
                "explain",
                "--method",
                method,
                "--path",
                "/svc/x",
                "--cert",
                cert,
                "--config",
                "portcullis.toml",
            ],
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = explain(&orders, "POST");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("identity: {ORDERS}")), "{out}");
    assert!(out.contains("verified: yes"), "{out}");
    assert!(
        out.contains("principal spiffe://cluster.local/ns/shop/sa/orders"),
        "{out}"
    );
    let (code, out) = explain(&intruder, "GET");
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("DENY"), "{out}");
    let (code, out) = explain(&stranger, "GET");
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("does not verify"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_that_need_certificates_need_a_listener_that_asks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("routes")).unwrap();
    std::fs::write(
        dir.path().join("routes/r.toml"),
        route(
            "svc",
            "/svc",
            &["http://127.0.0.1:2".into()],
            "auth = \"mtls\"",
        ),
    )
    .unwrap();
    let check = |config: &str| {
        std::fs::write(dir.path().join("portcullis.toml"), config).unwrap();
        let (code, err) = check_in(dir.path());
        assert_eq!(code, 1, "{err}");
        err
    };
    let err = check("[listen]\npublic = \"127.0.0.1:1\"\n[tls]\nclient_auth = \"required\"\n");
    assert!(
        err.contains("portcullis.toml:4:15: tls.client_auth needs tls.client_ca"),
        "{err}"
    );
    let err = check("[listen]\npublic = \"127.0.0.1:1\"\n[tls]\n");
    assert!(
        err.contains("routes/r.toml:2:1: route \"svc\" uses auth = \"mtls\" but the public listener asks for no client certificate"),
        "{err}"
    );
}
