//! TLS to upstreams (DESIGN §11): `https://` upstreams verified against the route's CA (or
//! the system roots), a wrong CA answered 502 with the reason logged, a client certificate
//! shown to upstreams that ask for one, and `server_name` as SNI and verified name.

use std::path::Path;

use crate::harness::{Gateway, Opts, check_in, route};
use crate::mtls_pki::{Ca, Leaf, Names, TlsUpstream};

/// `upstream_tls = { … }` with the given keys (paths absolute).
fn upstream_tls(keys: &[(&str, &Path)], server_name: Option<&str>) -> String {
    let mut parts: Vec<String> = keys
        .iter()
        .map(|(k, p)| format!("{k} = \"{}\"", p.display()))
        .collect();
    if let Some(n) = server_name {
        parts.push(format!("server_name = \"{n}\""));
    }
    format!("upstream_tls = {{ {} }}", parts.join(", "))
}

async fn gateway(routes: String) -> Gateway {
    Gateway::start(Opts::new(routes)).await
}

async fn status(gw: &Gateway, path: &str) -> u16 {
    gw.client()
        .get(gw.url(path))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn https_upstreams_are_verified_against_the_route_ca() {
    let pki = tempfile::tempdir().unwrap();
    let up_ca = Ca::new("upstream CA");
    let up = TlsUpstream::start(&up_ca.server(), None, &[b"http/1.1"]).await;
    let ca = pki.path().join("up-ca.pem");
    std::fs::write(&ca, up_ca.pem()).unwrap();
    let wrong = pki.path().join("wrong-ca.pem");
    std::fs::write(&wrong, Ca::new("not the upstream's").pem()).unwrap();
    let url = [format!("https://127.0.0.1:{}", up.addr.port())];
    let routes = route("good", "/good", &url, &upstream_tls(&[("ca", &ca)], None))
        + &route("wrong", "/wrong", &url, &upstream_tls(&[("ca", &wrong)], None))
        // No `upstream_tls`: the system roots, which don't know this CA.
        + &route("system", "/system", &url, "");
    let gw = gateway(routes).await;
    assert_eq!(status(&gw, "/good/x").await, 200);
    assert_eq!(status(&gw, "/wrong/x").await, 502);
    assert_eq!(status(&gw, "/system/x").await, 502);
    // The reason is in the log, for the route that failed.
    let logged = |err: &str| {
        err.lines().any(|l| {
            l.contains("upstream connect failed")
                && l.contains("wrong")
                && l.contains("UnknownIssuer")
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !logged(&gw.stderr()) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(logged(&gw.stderr()), "{}", gw.stderr());
    let m = gw.metrics().await;
    assert!(
        m.contains("portcullis_upstream_failures_total{kind=\"connect\",route=\"wrong\"} 1"),
        "{m}"
    );
    // Only the verified connection got past the handshake.
    assert_eq!(up.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_certificate_and_sni_reach_the_upstream() {
    let pki = tempfile::tempdir().unwrap();
    let up_ca = Ca::new("upstream CA");
    let gw_clients = Ca::new("gateway clients CA");
    // The upstream's certificate names only orders.internal, and it requires a client cert.
    let leaf = up_ca.leaf(Names {
        dns: &["orders.internal"],
        cn: Some("orders"),
        ..Default::default()
    });
    let up = TlsUpstream::start(&leaf, Some(&gw_clients), &[b"http/1.1"]).await;
    let ca = pki.path().join("up-ca.pem");
    std::fs::write(&ca, up_ca.pem()).unwrap();
    let me: Leaf = gw_clients.spiffe("spiffe://cluster.local/ns/edge/sa/gateway");
    let (cert, key) = me.write(pki.path(), "gateway-client");
    let url = [format!("https://127.0.0.1:{}", up.addr.port())];
    let full = upstream_tls(
        &[("ca", &ca), ("client_cert", &cert), ("client_key", &key)],
        Some("orders.internal"),
    );
    let routes = route("full", "/full", &url, &full)
        + &route(
            "nocert",
            "/nocert",
            &url,
            &upstream_tls(&[("ca", &ca)], Some("orders.internal")),
        )
        + &route(
            "noname",
            "/noname",
            &url,
            &upstream_tls(
                &[("ca", &ca), ("client_cert", &cert), ("client_key", &key)],
                None,
            ),
        );
    let gw = gateway(routes).await;
    assert_eq!(status(&gw, "/full/x").await, 200);
    let seen = up.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].sni.as_deref(), Some("orders.internal"));
    assert_eq!(seen[0].client.as_deref(), Some(&me.der[..]));
    // The upstream refuses a connection without a certificate; 127.0.0.1 is not its name.
    assert_eq!(status(&gw, "/nocert/x").await, 502);
    assert_eq!(status(&gw, "/noname/x").await, 502);
    let err = gw.stderr();
    assert!(
        err.lines()
            .any(|l| l.contains("noname")
                && l.contains("certificate not valid for name \"127.0.0.1\"")),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.contains("/nocert/x") && l.contains("CertificateRequired")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_tls_keys_are_checked_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("routes")).unwrap();
    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[listen]\npublic = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("garbage.pem"), "not pem").unwrap();
    let check = |routes: &str| {
        std::fs::write(dir.path().join("routes/r.toml"), routes).unwrap();
        let (code, err) = check_in(dir.path());
        assert_eq!(code, 1, "{err}");
        err
    };
    let err = check(
        "[[route]]\nname = \"a\"\nprefix = \"/a\"\nupstreams = [\"http://127.0.0.1:2\"]\n\
         upstream_tls = { ca = \"../garbage.pem\" }\n\
         [[route]]\nname = \"b\"\nprefix = \"/b\"\nupstreams = [\"https://127.0.0.1:2\"]\n\
         upstream_tls = { ca = \"../garbage.pem\", client_cert = \"../missing.pem\" }\n\
         upstream_protocol = \"h2c\"\n",
    );
    for want in [
        "routes/r.toml:5:16: upstream_tls applies to https:// upstreams",
        "routes/r.toml:10:55: upstream_tls.client_cert: ",
        "routes/r.toml:10:16: upstream_tls: client_cert and client_key go together",
        "routes/r.toml:11:21: upstream_protocol: \"h2c\" is cleartext HTTP/2",
    ] {
        assert!(err.contains(want), "missing {want:?} in\n{err}");
    }
    // Valid as written: the CA file is read when the routes load, and refused there.
    let err = check(
        "[[route]]\nname = \"c\"\nprefix = \"/c\"\nupstreams = [\"https://127.0.0.1:2\"]\n\
         upstream_tls = { ca = \"../garbage.pem\" }\n",
    );
    assert!(
        err.contains("routes/r.toml:2:1: route \"c\": upstream_tls: ")
            && err.contains("garbage.pem: no certificate"),
        "{err}"
    );
}
