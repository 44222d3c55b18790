//! The sidecar as a mesh endpoint (DESIGN §11): workload A calls B through A's egress sidecar,
//! which calls B's sidecar over mutual TLS with A's SPIFFE certificate from the mesh CA; B's
//! policy allows A's SPIFFE ID and denies C's, and B's workload learns who called (XFCC).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{BIN, Upstream, free_port};
use crate::mtls_pki::{Ca, Names};

const A: &str = "spiffe://mesh.test/ns/shop/sa/a";
const C: &str = "spiffe://mesh.test/ns/shop/sa/c";

/// A running `portcullis sidecar` and its management port.
struct Sidecar {
    child: Child,
    port: u16,
    mgmt: u16,
    log: std::path::PathBuf,
}

impl Sidecar {
    /// Starts `portcullis sidecar` with `args` (flags) and `env` (`PORTCULLIS_*`), ready.
    async fn start(
        dir: &std::path::Path,
        name: &str,
        args: &[String],
        env: &[(&str, String)],
    ) -> Sidecar {
        let (port, mgmt) = (free_port(), free_port());
        let log = dir.join(format!("{name}.log"));
        let mut cmd = Command::new(BIN);
        cmd.arg("sidecar")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .env("PORTCULLIS_MANAGEMENT", format!("127.0.0.1:{mgmt}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let c = reqwest::Client::new();
        let ready = format!("http://127.0.0.1:{mgmt}/health/ready");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "sidecar {name} exited with {status}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if c.get(&ready).send().await.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "sidecar {name} not ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Sidecar {
            child,
            port,
            mgmt,
            log,
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An egress sidecar's flags: B's sidecar as its upstream, called with `cert`.
fn egress_args(
    b_port: u16,
    ca: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Vec<String> {
    vec![
        "--upstream".into(),
        format!("https://127.0.0.1:{b_port}"),
        "--upstream-ca".into(),
        s(ca),
        "--upstream-cert".into(),
        s(cert),
        "--upstream-key".into(),
        s(key),
        "--upstream-server-name".into(),
        "b.mesh".into(),
    ]
}

fn s(p: &std::path::Path) -> String {
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_sidecars_talk_mtls_and_b_allows_a_but_not_c() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mesh = Ca::new("mesh CA");
    let ca = d.join("mesh-ca.pem");
    std::fs::write(&ca, mesh.pem()).unwrap();
    // B serves as b.mesh; A and C call with their SPIFFE IDs.
    let b_leaf = mesh.leaf(Names {
        uris: &["spiffe://mesh.test/ns/shop/sa/b"],
        dns: &["b.mesh", "localhost"],
        ..Default::default()
    });
    let (b_cert, b_key) = b_leaf.write(d, "b");
    let (a_cert, a_key) = mesh.spiffe(A).write(d, "a");
    let (c_cert, c_key) = mesh.spiffe(C).write(d, "c");
    std::fs::create_dir(d.join("b-policies")).unwrap();
    std::fs::write(
        d.join("b-policies/mesh.toml"),
        format!(
            "[principals]\n\"{A}\" = [\"caller\"]\n\n[roles.caller]\npermissions = [\"b:call\"]\n\n\
             [[allow]]\nroute = \"sidecar\"\nmethods = [\"*\"]\npermission = \"b:call\"\n"
        ),
    )
    .unwrap();

    let workload_b = Upstream::start().await;
    // B's mesh flags through the environment, as a pod spec would set them.
    let b = Sidecar::start(
        d,
        "b",
        &[
            "--upstream".into(),
            workload_b.url(),
            "--policies".into(),
            s(&d.join("b-policies")),
        ],
        &[
            ("PORTCULLIS_TLS_CERT", s(&b_cert)),
            ("PORTCULLIS_TLS_KEY", s(&b_key)),
            ("PORTCULLIS_CLIENT_CA", s(&ca)),
        ],
    )
    .await;
    let a = Sidecar::start(d, "a", &egress_args(b.port, &ca, &a_cert, &a_key), &[]).await;
    let c = Sidecar::start(d, "c", &egress_args(b.port, &ca, &c_cert, &c_key), &[]).await;

    // Workload A calls B through its own sidecar, in plain HTTP on loopback.
    let http = reqwest::Client::new();
    let r = http
        .post(format!("http://127.0.0.1:{}/orders?x=1", a.port))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "{}",
        std::fs::read_to_string(&b.log).unwrap_or_default()
    );
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["path"], "/orders");
    assert_eq!(seen["body_bytes"], 5);
    // B's workload learns the caller from B's sidecar: the identity header and XFCC.
    assert_eq!(seen["headers"]["x-auth-request-user"][0], A);
    assert_eq!(seen["headers"]["x-auth-request-roles"][0], "caller");
    let xfcc = seen["headers"]["x-forwarded-client-cert"][0]
        .as_str()
        .unwrap();
    assert!(xfcc.contains(&format!("URI={A}")), "{xfcc}");

    // C holds a certificate from the same CA, but B's policy has no rule for it.
    let r = http
        .get(format!("http://127.0.0.1:{}/orders", c.port))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(workload_b.hits(), 1);

    // Nobody reaches B without a mesh certificate.
    let direct = crate::mtls_pki::client(&mesh.pem(), None, true)
        .get(format!("https://localhost:{}/orders", b.port))
        .send()
        .await;
    assert!(direct.is_err(), "{direct:?}");
    let stranger = Ca::new("not the mesh").spiffe(A);
    let forged = crate::mtls_pki::client(&mesh.pem(), Some(&stranger), true)
        .get(format!("https://localhost:{}/orders", b.port))
        .send()
        .await;
    assert!(forged.is_err(), "{forged:?}");
    assert_eq!(workload_b.hits(), 1);
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", b.mgmt))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("portcullis_authz_deny_total{route=\"sidecar\"} 1"),
        "{metrics}"
    );
}
