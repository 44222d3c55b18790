//! JWT routes end to end: 401/403 as DESIGN §6, identity headers, RBAC, policy hot reload
//! under load, and `explain` (CLI and admin endpoint).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{BIN, Gateway, Opts, Upstream, eventually, route, run_in};
use crate::idp::{Jwks, Key};

pub const POLICY: &str = r#"
[groups]
"/admins" = ["admin"]
"/staff" = ["editor"]

[roles.viewer]
permissions = ["orders:read"]
[roles.editor]
inherits = ["viewer"]
permissions = ["orders:write"]
[roles.admin]
inherits = ["editor"]
permissions = ["orders:*"]

[[allow]]
route = "orders"
methods = ["GET", "HEAD"]
permission = "orders:read"
[[allow]]
route = "orders"
methods = ["POST", "PUT", "PATCH", "DELETE"]
permission = "orders:write"
"#;

struct Setup {
    up: Upstream,
    key: Key,
    _jwks: Jwks,
    gw: Gateway,
}

async fn setup() -> Setup {
    let up = Upstream::start().await;
    let key = Key::rsa("k1");
    let jwks = Jwks::start(vec![key.jwk()]).await;
    let routes = route("orders", "/api/orders", &[up.url()], "auth = \"jwt\"")
        + &route("public", "/pub", &[up.url()], "");
    let mut o = Opts::new(routes).extra(&jwks.trust_block());
    o.policies = POLICY.to_string();
    let gw = Gateway::start(o).await;
    Setup {
        up,
        key,
        _jwks: jwks,
        gw,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_and_invalid_tokens_get_401_and_never_reach_the_upstream() {
    let s = setup().await;
    let c = s.gw.client();
    let r = c.get(s.gw.url("/api/orders")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer realm=\"portcullis\", error=\"invalid_token\", error_description=\"bearer token required\""
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert!(body["request_id"].is_string());

    let other = Key::rsa("k1");
    let forged = other.token("mallory", &["/admins"], &[]);
    for (auth, reason) in [
        (format!("Bearer {forged}"), "bad_signature"),
        ("Bearer not.a.jwt".to_string(), "malformed"),
        (
            format!("Basic {}", s.key.token("alice", &["/staff"], &[])),
            "missing_token",
        ),
    ] {
        let r = c
            .get(s.gw.url("/api/orders"))
            .header("Authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{reason}");
        let www = r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(www.contains("error=\"invalid_token\""), "{reason}: {www}");
    }
    // A token in the query string is ignored.
    let t = s.key.token("alice", &["/staff"], &[]);
    let r = c
        .get(s.gw.url(&format!("/api/orders?access_token={t}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(s.up.hits(), 0);
    let m = s.gw.metrics().await;
    assert!(
        m.contains("portcullis_authn_failures_total{reason=\"bad_signature\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("portcullis_authn_failures_total{reason=\"missing_token\"} 3"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rbac_decides_and_identity_headers_reach_the_upstream() {
    let s = setup().await;
    let c = s.gw.client();
    let alice = s.key.token("alice", &["/staff"], &[]);
    let r = c
        .get(s.gw.url("/api/orders/1"))
        .bearer_auth(&alice)
        .header("X-Auth-Request-User", "root")
        .header("x-auth-request-roles", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.json::<Value>().await.unwrap()["headers"].clone();
    assert_eq!(h["x-auth-request-user"], json!(["alice"]));
    assert_eq!(h["x-auth-request-email"], json!(["alice@example.com"]));
    assert_eq!(h["x-auth-request-groups"], json!(["/staff"]));
    assert_eq!(h["x-auth-request-roles"], json!(["editor,viewer"]));
    assert_eq!(
        h["authorization"],
        json!([format!("Bearer {alice}")]),
        "the token is passed on unchanged"
    );

    // editor (via /staff) may write; nobody has a rule for OPTIONS.
    let r = c
        .post(s.gw.url("/api/orders"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .request(reqwest::Method::OPTIONS, s.gw.url("/api/orders"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"insufficient_scope\"")
    );
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "insufficient_scope"
    );

    // No groups, no roles: deny by default.
    let bob = s.key.token("bob", &[], &[]);
    let r = c
        .get(s.gw.url("/api/orders"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Roles straight from realm_access.roles; unknown ones ignored.
    let carol = s
        .key
        .token("carol", &["/unknown"], &["viewer", "offline_access"]);
    let r = c
        .get(s.gw.url("/api/orders"))
        .bearer_auth(&carol)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .delete(s.gw.url("/api/orders/1"))
        .bearer_auth(&carol)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Public routes strip identity headers and need no token.
    let r = c
        .get(s.gw.url("/pub"))
        .bearer_auth(&alice)
        .header("X-Auth-Request-User", "root")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.json::<Value>().await.unwrap()["headers"]
            .get("x-auth-request-user")
            .is_none()
    );

    let m = s.gw.metrics().await;
    assert!(
        m.contains("portcullis_authz_deny_total{route=\"orders\"} 3"),
        "{m}"
    );
    assert!(
        m.contains("portcullis_authz_allow_total{route=\"orders\"} 3"),
        "{m}"
    );
    // GET 200 goes through the route's resolved series, the rest through the vector: both
    // under the same labels.
    assert!(
        m.contains(
            "portcullis_http_requests_total{method=\"GET\",route=\"orders\",status=\"200\"} 2"
        ),
        "{m}"
    );
    assert!(
        m.contains(
            "portcullis_http_requests_total{method=\"POST\",route=\"orders\",status=\"200\"} 1"
        ),
        "{m}"
    );

    eventually("audit lines", Duration::from_secs(5), || async {
        s.gw.stdout().lines().count() >= 7
    })
    .await;
    let out = s.gw.stdout();
    assert!(!out.contains(&alice), "a token reached the audit log");
    let deny: Value = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["user"] == "bob")
        .unwrap();
    assert_eq!(deny["decision"], "deny");
    assert_eq!(deny["reason"], "no_roles");
    assert_eq!(deny["groups"], "", "a token without groups");
    let allow: Value = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["user"] == "alice" && l["decision"] == "allow")
        .unwrap();
    assert_eq!(allow["groups"], "/staff");
    assert_eq!(deny["status"], 403);
    // A refusal is counted and audited under the route it matched.
    assert_eq!(deny["route"], "orders");
    assert!(
        m.contains(
            "portcullis_http_requests_total{method=\"GET\",route=\"orders\",status=\"403\"}"
        ),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_answers_why_on_the_cli_and_the_admin_endpoint() {
    let s = setup().await;
    let bob = s.key.token("bob", &["/staff"], &[]);
    let run = |method: &str, token: &str| {
        run_in(
            s.gw.dir.path(),
            [
                "explain",
                "--method",
                method,
                "--path",
                "/api/orders/1",
                "--token",
                token,
            ],
        )
    };
    let out = run("GET", &bob);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("ALLOW GET /api/orders/1"), "{text}");
    let out = run("OPTIONS", &bob);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("route: \"orders\""), "{text}");
    assert!(!text.contains(&bob), "the token is never echoed");

    let r = reqwest::Client::new()
        .post(s.gw.mgmt_url("/admin/explain"))
        .json(&json!({"method": "DELETE", "path": "/api/orders/1", "token": s.key.token("v", &[], &["viewer"])}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["allowed"], false);
    assert_eq!(e["status"], 403);
    assert_eq!(e["route"]["name"], "orders");
    assert_eq!(e["token"]["valid"], true);
    assert_eq!(e["authz"]["reason"], "missing_permission");
}

/// 20 alternating valid policies and 5 invalid ones while 8 clients send requests.
#[tokio::test(flavor = "multi_thread")]
async fn policy_hot_reload_under_load() {
    let s = Arc::new(setup().await);
    let alice = s.key.token("alice", &["/staff"], &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let (bad, total) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (s, stop, bad, total, t) = (
            s.clone(),
            stop.clone(),
            bad.clone(),
            total.clone(),
            alice.clone(),
        );
        clients.push(tokio::spawn(async move {
            let c = s.gw.client();
            let deadline = Instant::now() + Duration::from_secs(90);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                total.fetch_add(1, Ordering::SeqCst);
                match c.get(s.gw.url("/api/orders")).bearer_auth(&t).send().await {
                    Ok(r) if r.status() == 200 || r.status() == 403 => {}
                    _ => {
                        bad.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }));
    }
    let allow = POLICY.to_string();
    let deny = POLICY.replace(
        "permission = \"orders:read\"",
        "permission = \"orders:export\"",
    );
    let invalid = [
        POLICY.replace("inherits = [\"viewer\"]", "inherits = [\"admin\"]"), // cycle
        POLICY.replace("\"/staff\" = [\"editor\"]", "\"/staff\" = [\"editr\"]"),
        POLICY.replace("route = \"orders\"", "route = \"ordres\""),
        POLICY.replace(
            "permission = \"orders:read\"",
            "permission = \"orders read\"",
        ),
        "[roles.x\n".to_string(),
    ];
    let probe = s.gw.client();
    let status = || async {
        probe
            .get(s.gw.url("/api/orders"))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    let mut expect = 200;
    for i in 0..25 {
        let policy_file = s.gw.path("policies/policies.toml");
        if i % 5 == 4 {
            std::fs::write(&policy_file, &invalid[i / 5]).unwrap();
            let r = s.gw.reload().await;
            assert_eq!(r.status(), 422, "invalid policy {} accepted", i / 5);
            assert_eq!(
                status().await,
                expect,
                "an invalid policy changed the decision"
            );
            continue;
        }
        expect = if expect == 200 { 403 } else { 200 };
        std::fs::write(&policy_file, if expect == 200 { &allow } else { &deny }).unwrap();
        if i % 3 == 0 {
            s.gw.signal("HUP");
        } else if i % 3 == 1 {
            s.gw.reload().await;
        } // else: the file watcher picks it up
        let t = Instant::now();
        eventually("the policy change", Duration::from_secs(3), || async {
            status().await == expect
        })
        .await;
        assert!(t.elapsed() < Duration::from_secs(3));
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(
        bad.load(Ordering::SeqCst),
        0,
        "5xx or connection errors (of {})",
        total.load(Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sidecar_guards_one_workload_with_flags_only() {
    let up = Upstream::start().await;
    let key = Key::rsa("k1");
    let jwks = Jwks::start(vec![key.jwk()]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        POLICY.replace("route = \"orders\"", "route = \"sidecar\""),
    )
    .unwrap();
    let (port, mgmt) = (crate::harness::free_port(), crate::harness::free_port());
    let mut child = std::process::Command::new(BIN)
        .args([
            "sidecar",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--upstream",
            &up.url(),
        ])
        .args(["--issuer", crate::idp::ISS, "--audience", crate::idp::AUD])
        .args(["--policies", dir.path().to_str().unwrap()])
        .env("PORTCULLIS_JWKS_URI", format!("http://{}/jwks", jwks.addr))
        .env("PORTCULLIS_MANAGEMENT", format!("127.0.0.1:{mgmt}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let c = reqwest::Client::new();
    eventually("sidecar ready", Duration::from_secs(20), || async {
        c.get(format!("http://127.0.0.1:{mgmt}/health/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let url = format!("http://127.0.0.1:{port}/anything");
    assert_eq!(c.get(&url).send().await.unwrap().status(), 401);
    let alice = key.token("alice", &["/staff"], &[]);
    assert_eq!(
        c.get(&url)
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.request(reqwest::Method::OPTIONS, &url)
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(up.hits(), 1);
    let _ = child.kill();
    let _ = child.wait();
}
