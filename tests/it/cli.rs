//! `portcullis check`: config refusals with file:line:col, and the summary.

use std::process::Command;

use crate::harness::{BIN, Gateway, Opts, route};

fn check(o: &Opts) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    Gateway::write_config(dir.path(), o, 18443, 19000, None);
    let out = Command::new(BIN)
        .args(["check", "--config", "portcullis.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn check_accepts_a_good_config_with_a_summary() {
    let (ok, text) = check(&Opts::new(route(
        "a",
        "/a",
        &["http://127.0.0.1:1".into()],
        "",
    )));
    assert!(ok, "{text}");
    assert!(text.contains("1 routes"), "{text}");
}

#[test]
fn guarded_ports_are_refused_with_locations() {
    let routes = route("mgmt", "/m", &["http://127.0.0.1:19000".into()], "")
        + &route("via-name", "/n", &["http://localhost:8081".into()], "")
        + &route("custom", "/c", &["http://127.0.0.1:7777".into()], "");
    let (ok, text) = check(&Opts::new(routes).extra("[guard]\ninternal_ports = [7777, 8081]"));
    assert!(!ok);
    assert!(text.contains("routes/routes.toml:4:14: upstream \"http://127.0.0.1:19000\" targets guarded port 19000"), "{text}");
    assert!(
        text.contains(
            "routes/routes.toml:9:14: upstream \"http://localhost:8081\" targets guarded port 8081"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "routes/routes.toml:14:14: upstream \"http://127.0.0.1:7777\" targets guarded port 7777"
        ),
        "{text}"
    );
    assert!(text.contains("3 error(s)"), "{text}");
}

#[test]
fn wildcard_management_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("routes")).unwrap();
    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[listen]\npublic = \"0.0.0.0:8443\"\nmanagement = \"0.0.0.0:9000\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains(
            "portcullis.toml:3:14: listen.management = \"0.0.0.0:9000\" is not a loopback address"
        ),
        "{text}"
    );
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("routes")).unwrap();
    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[listen]\npublic = \"127.0.0.1:8443\"\nmanagement = \"nowhere\"\n[forwarded]\ntrusted_proxies = [\"10.0.0.0/99\"]\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("routes/a.toml"), "[[route]]\nname = \"a\"\nprefix = \"/a\"\nupstreams = [\"http://127.0.0.1:1\"]\nbogus = 1\n").unwrap();
    let out = Command::new(BIN)
        .args(["check"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("portcullis.toml:3:14: listen.management: \"nowhere\" is not an address"),
        "{text}"
    );
    assert!(
        text.contains("portcullis.toml:5:20: forwarded.trusted_proxies"),
        "{text}"
    );

    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[listen]\npublic = \"127.0.0.1:8443\"\nunknown = 1\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("portcullis.toml:3:1: unknown field `unknown`"),
        "{text}"
    );

    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[listen]\npublic = \"127.0.0.1:8443\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("routes/a.toml:5:1: unknown field `bogus`"),
        "{text}"
    );
}
