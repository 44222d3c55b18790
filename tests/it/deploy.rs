//! deploy/: the Kubernetes overlays rendered with `kubectl kustomize`, validated against the
//! Kubernetes schemas and held to tools/deploy_check.py's checks (each of which must fail on a
//! doctored copy); the configs they ship accepted by the real binary (`check`, and a sidecar
//! started with the overlay's own flags); compose.yaml; the Prometheus rules under promtool.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::harness::{BIN, Upstream, free_port, venv_python};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.current_dir(root());
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn deploy_check(args: &[&str]) -> Output {
    run(Command::new(venv_python())
        .arg("tools/deploy_check.py")
        .args(args))
}

const EDGE: &str = "deploy/kubernetes/overlays/edge";
const SIDECAR: &str = "deploy/kubernetes/overlays/sidecar";

#[test]
fn kustomize_overlays_render_validate_and_pass_every_check() {
    let out = deploy_check(&["kubernetes", EDGE, SIDECAR]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for overlay in [EDGE, SIDECAR] {
        assert!(
            stdout.contains(&format!("{overlay}: ")) && !stdout.contains("FAIL"),
            "{}",
            text(&out)
        );
    }
    assert!(stdout.contains("(strict)"), "{}", text(&out));
}

/// Every check of deploy_check.py fails on a copy of a render doctored to break what it guards
/// (a LoadBalancer onto the management port, a root container, the sidecar's app on 0.0.0.0, a
/// NetworkPolicy admitting management from any namespace, …), and the pristine files pass.
#[test]
fn every_deploy_check_fails_on_a_doctored_manifest() {
    let out = deploy_check(&["self-test"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let oks = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(
        oks >= 40,
        "only {oks} doctored copies caught:\n{}",
        text(&out)
    );
    for check in [
        "schema:",
        "nonroot:",
        "exposure:",
        "public:",
        "services:",
        "probes:",
        "netpol:",
        "sidecar:",
        "reload:",
        "edge:",
        "compose:",
    ] {
        assert!(
            stdout.contains(&format!("→ {check}")),
            "{check} never failed:\n{stdout}"
        );
    }
}

/// The ConfigMaps of an overlay as the kubelet would mount them, under `dir`, and the args of
/// its portcullis containers.
fn extract(overlay: &str, dir: &Path) -> Vec<serde_json::Value> {
    let out = deploy_check(&["extract", overlay, dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The edge overlay's portcullis.toml, routes and policies, as mounted, pass `portcullis check`.
/// Two things are mapped to this machine: the mount paths under /etc/portcullis (into a temp
/// dir) and the cluster's DNS name `orders` (to 127.0.0.1: upstream hosts resolve at load).
#[test]
fn the_edge_overlays_config_passes_portcullis_check() {
    let dir = tempfile::tempdir().unwrap();
    let containers = extract(EDGE, dir.path());
    assert_eq!(containers.len(), 1, "{containers:?}");
    let args = containers[0]["args"].as_array().unwrap();
    let config_arg = args[2].as_str().unwrap();
    assert_eq!(config_arg, "/etc/portcullis/config/portcullis.toml");
    let etc = dir.path().join("etc/portcullis");
    let tls = etc.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let out = run(Command::new(BIN).args([
        "certs",
        "dev",
        "--cert",
        tls.join("tls.crt").to_str().unwrap(),
        "--key",
        tls.join("tls.key").to_str().unwrap(),
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let localize = |p: &Path| {
        let t = std::fs::read_to_string(p).unwrap();
        let t = t
            .replace("/etc/portcullis/", &format!("{}/", etc.display()))
            .replace("http://orders:", "http://127.0.0.1:");
        std::fs::write(p, t).unwrap();
    };
    let config = etc.join("config/portcullis.toml");
    localize(&config);
    localize(&etc.join("routes/routes.toml"));
    let out = run(Command::new(BIN).args(["check", "--config", config.to_str().unwrap()]));
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(": OK"), "{}", text(&out));
    assert!(stdout.contains("2 routes"), "{}", text(&out));
    // The same files with a typo are refused: `check` reads what the overlay ships.
    let routes = etc.join("routes/routes.toml");
    let t = std::fs::read_to_string(&routes).unwrap();
    std::fs::write(&routes, t.replace("auth = \"jwt\"", "auth = \"jwtt\"")).unwrap();
    let out = run(Command::new(BIN).args(["check", "--config", config.to_str().unwrap()]));
    assert!(!out.status.success(), "{}", text(&out));
}

/// The sidecar overlay's own flags (ports and the policies path mapped to this machine, the
/// upstream to a real echo on loopback) start a sidecar that enforces its jwt route.
#[tokio::test]
async fn the_sidecar_overlays_flags_start_a_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let containers = extract(SIDECAR, dir.path());
    assert_eq!(containers.len(), 1, "{containers:?}");
    let upstream = Upstream::start().await;
    let (listen, mgmt) = (free_port(), free_port());
    let etc = format!("{}/", dir.path().join("etc/portcullis").display());
    let args: Vec<String> = containers[0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_str().unwrap();
            match a {
                "0.0.0.0:8000" => format!("127.0.0.1:{listen}"),
                "0.0.0.0:9000" => format!("127.0.0.1:{mgmt}"),
                "http://127.0.0.1:8080" => upstream.url(),
                _ => a.replace("/etc/portcullis/", &etc),
            }
        })
        .collect();
    assert!(args.contains(&upstream.url()), "{args:?}");
    let mut child = Command::new(BIN)
        .args(&args)
        .env("TMPDIR", dir.path())
        .stdout(std::fs::File::create(dir.path().join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let c = reqwest::Client::new();
    let live = format!("http://127.0.0.1:{mgmt}/health/live");
    let mut up = false;
    for _ in 0..200 {
        if let Ok(r) = c.get(&live).send().await
            && r.status() == 200
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stderr = || std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
    assert!(up, "sidecar not live: {}", stderr());
    let r = c
        .get(format!("http://127.0.0.1:{listen}/anything"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no token: refused before the app");
    assert_eq!(upstream.hits(), 0);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn compose_has_every_service_and_publishes_only_443() {
    let out = deploy_check(&["compose", "deploy/compose.yaml"]);
    assert!(out.status.success(), "{}", text(&out));
    // `docker compose config` needs the compose plugin (or docker-compose); without it the
    // PyYAML checks above are the test.
    let compose = if run(Command::new("docker").args(["compose", "version"]))
        .status
        .success()
    {
        Some(vec!["docker", "compose"])
    } else if run(Command::new("sh").args(["-c", "command -v docker-compose"]))
        .status
        .success()
    {
        Some(vec!["docker-compose"])
    } else {
        eprintln!("docker compose is not installed here: `docker compose config` not run");
        None
    };
    if let Some(cmd) = compose {
        let out = run(Command::new(cmd[0])
            .args(&cmd[1..])
            .args(["-f", "deploy/compose.yaml", "config", "-q"])
            .env("POSTGRES_PASSWORD", "test"));
        assert!(out.status.success(), "{}", text(&out));
    }
}

/// The compose stack's portcullis.toml, routes, policies and the realm it imports pass
/// `portcullis check` (the compose service names mapped to 127.0.0.1).
#[test]
fn the_compose_config_passes_portcullis_check() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["routes", "policies", "realms"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let copy = |from: &str, to: &str, map: bool| {
        let t = std::fs::read_to_string(root().join(from)).unwrap();
        let t = if map {
            t.replace("http://orders:", "http://127.0.0.1:")
                .replace("http://reports:", "http://127.0.0.1:")
        } else {
            t
        };
        std::fs::write(d.join(to), t).unwrap();
    };
    copy("deploy/compose/portcullis.toml", "portcullis.toml", false);
    copy(
        "deploy/compose/routes/routes.toml",
        "routes/routes.toml",
        true,
    );
    copy(
        "deploy/compose/policies/demo.toml",
        "policies/demo.toml",
        false,
    );
    copy(
        "realms/myrealm-realm.json",
        "realms/myrealm-realm.json",
        false,
    );
    let out = run(Command::new(BIN).args([
        "check",
        "--config",
        d.join("portcullis.toml").to_str().unwrap(),
    ]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3 routes"),
        "{}",
        text(&out)
    );
}

/// promtool accepts the alert rules, and their unit tests (deploy/prometheus/alerts_test.yaml:
/// each alert fires on its series and stays quiet on a near miss) pass.
#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    let out =
        run(Command::new("promtool").args(["check", "rules", "deploy/prometheus/alerts.yaml"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("SUCCESS: 8 rules found"),
        "{}",
        text(&out)
    );
    let out =
        run(Command::new("promtool").args(["test", "rules", "deploy/prometheus/alerts_test.yaml"]));
    assert!(out.status.success(), "{}", text(&out));
}

/// The issuer's store metrics the alerts and the dashboard read are on /metrics: reachable,
/// the pool (SQLite's bound is 3: two lent per query, one kept by the refresh rotation), the probe's waits, and the live sessions per realm, which
/// count a session the password grant opens. A gateway without the issuer has none of them (so
/// `PortcullisDatabaseUnreachable` cannot fire for it).
#[tokio::test]
async fn the_issuer_store_metrics_are_exported() {
    let up = Upstream::start().await;
    let gw = crate::issuer::issuer_gateway(&up).await;
    let has = |text: &str, line: &str| text.lines().any(|l| l == line);
    crate::harness::eventually(
        "the store's first sample",
        Duration::from_secs(15),
        || async {
            let m = gw.metrics().await;
            has(&m, "portcullis_issuer_store_up{backend=\"sqlite\"} 1")
                && has(
                    &m,
                    "portcullis_issuer_db_pool_max_connections{backend=\"sqlite\"} 3",
                )
                && has(&m, "portcullis_issuer_sessions_active{realm=\"myrealm\"} 0")
                && m.contains(
                    "portcullis_issuer_db_pool_connections{backend=\"sqlite\",state=\"idle\"}",
                )
                && m.contains(
                    "portcullis_issuer_db_pool_connections{backend=\"sqlite\",state=\"in_use\"}",
                )
                && m.contains(
                    "portcullis_issuer_db_pool_acquire_seconds_count{backend=\"sqlite\"} ",
                )
        },
    )
    .await;
    let r = gw
        .client()
        .post(gw.url("/auth/realms/myrealm/protocol/openid-connect/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "myclient"),
            ("client_secret", "my-client-secret"),
            ("username", "alice"),
            ("password", "password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    crate::harness::eventually(
        "the new session counted",
        Duration::from_secs(20),
        || async {
            has(
                &gw.metrics().await,
                "portcullis_issuer_sessions_active{realm=\"myrealm\"} 1",
            )
        },
    )
    .await;

    let plain = crate::harness::Gateway::start(crate::harness::Opts::new(crate::harness::route(
        "r",
        "/",
        &[up.url()],
        "",
    )))
    .await;
    let m = plain.metrics().await;
    assert!(!m.contains("portcullis_issuer_store_up"), "{m}");
    assert!(!m.contains("portcullis_issuer_db_pool"), "{m}");
}
