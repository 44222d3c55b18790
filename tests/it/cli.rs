//! `portcullis check`: config refusals with file:line:col, and the summary.

use std::path::Path;
use std::process::Command;

use crate::harness::{BIN, Gateway, Opts, check_in, code_and_text, route, run_in};

fn check(o: &Opts) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    Gateway::write_config(dir.path(), o, 18443, 19000, None);
    let (code, text) = check_in(dir.path());
    (code == 0, text)
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
    let (code, text) = check_default(dir.path());
    assert_ne!(code, 0, "{text}");
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
    let (_, text) = check_default(dir.path());
    assert!(
        text.contains("portcullis.toml:3:14: listen.management: \"nowhere\" is not an address"),
        "{text}"
    );
    assert!(
        text.contains("portcullis.toml:5:20: forwarded.trusted_proxies"),
        "{text}"
    );
    // A refused portcullis.toml does not hide the errors of the routes it names.
    assert!(
        text.contains("routes/a.toml:5:1: unknown field `bogus`"),
        "{text}"
    );

    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[listen]\npublic = \"127.0.0.1:8443\"\nunknown = 1\n",
    )
    .unwrap();
    let (_, text) = check_default(dir.path());
    assert!(
        text.contains("portcullis.toml:3:1: unknown field `unknown`"),
        "{text}"
    );

    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[listen]\npublic = \"127.0.0.1:8443\"\n",
    )
    .unwrap();
    let (_, text) = check_default(dir.path());
    assert!(
        text.contains("routes/a.toml:5:1: unknown field `bogus`"),
        "{text}"
    );
}

/// `check` in a fresh directory holding only `portcullis.toml` with `text`.
fn check_file(text: &str, extra_files: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("portcullis.toml"), text).unwrap();
    for (name, body) in extra_files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    check_default(dir.path())
}

/// `portcullis check` in `dir` with no `--config`: the default `portcullis.toml` is read.
fn check_default(dir: &Path) -> (i32, String) {
    code_and_text(&run_in(dir, ["check"]))
}

#[test]
fn only_listen_public_is_required() {
    // No routes directory either: the defaults stand, with a warning that nothing is routed.
    let (code, text) = check_file("[listen]\npublic = \"127.0.0.1:18443\"\n", &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("0 routes"), "{text}");
    assert!(
        text.contains("routes:1:1: warning: no routes directory"),
        "{text}"
    );
    // A routes path the file names must exist (a typo would take every route away).
    let (code, text) = check_file(
        "[listen]\npublic = \"127.0.0.1:18443\"\n[routing]\nroutes = \"routs\"\n",
        &[],
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("routs:1:1: cannot read directory"), "{text}");
}

#[test]
fn tls_1_3_only_is_refused_by_check_with_its_location() {
    let (code, text) = check_file(
        "[listen]\npublic = \"127.0.0.1:18443\"\n[tls]\nmin_version = \"1.3\"\n",
        &[("routes/r.toml", "")],
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("portcullis.toml:4:15: tls.min_version = \"1.3\" is not available"),
        "{text}"
    );
}

#[test]
fn realm_file_errors_are_located_once() {
    let (code, text) = check_file(
        "[listen]\npublic = \"127.0.0.1:18443\"\n[issuer]\nimport = [\"realms/x.json\", \"realms/missing.json\"]\n",
        &[
            ("routes/r.toml", ""),
            (
                "realms/x.json",
                "{\"realm\": \"x\",\n \"users\": [{\"username\": 3}]}",
            ),
        ],
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("realms/x.json:2:25: invalid type: integer `3`, expected a string"),
        "{text}"
    );
    assert!(
        text.contains("realms/missing.json:1:1: cannot read file:"),
        "{text}"
    );
    assert_eq!(text.matches("x.json").count(), 1, "{text}");
}

#[test]
fn policy_errors_are_reported_even_when_a_route_is_refused() {
    let (code, text) = check_file(
        "[listen]\npublic = \"127.0.0.1:18443\"\n",
        &[
            (
                "routes/r.toml",
                "[[route]]\nname = \"a\"\nprefix = \"/a\"\nupstreams = [\"http://127.0.0.1:9000\"]\n",
            ),
            (
                "policies/p.toml",
                "[roles.x]\ninherits = [\"y\"]\n[roles.y]\ninherits = [\"x\"]\n[[allow]]\nroute = \"a\"\nmethods = [\"GET\"]\npermission = \"p:r\"\n",
            ),
        ],
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("routes/r.toml:4:14: upstream"), "{text}");
    assert!(
        text.contains("policies/p.toml:4:13: inheritance cycle"),
        "{text}"
    );
    // The rule's route can't be checked against routes that did not load: no false alarm.
    assert!(!text.contains("unknown route"), "{text}");
}

/// Issue 21: a duplicate prefix in the routes, an unknown role in one policies file and a
/// rule for an unknown route in another are all reported in one `check`.
#[test]
fn a_rule_for_an_unknown_route_is_reported_when_the_routes_are_refused() {
    let route = |name: &str| {
        format!(
            "[[route]]\nname = \"{name}\"\nprefix = \"/a\"\nupstreams = [\"http://127.0.0.1:19000\"]\nauth = \"jwt\"\n"
        )
    };
    let (code, text) = check_file(
        "[listen]\npublic = \"127.0.0.1:18443\"\n",
        &[
            ("routes/r.toml", &(route("a") + &route("b"))),
            (
                "policies/1.toml",
                "[roles.x]\npermissions = [\"p:r\"]\ninherits = [\"nobody\"]\n",
            ),
            (
                "policies/2.toml",
                "[[allow]]\nroute = \"b\"\nmethods = [\"GET\"]\npermission = \"p:r\"\n\n[[allow]]\nroute = \"ordrs\"\nmethods = [\"GET\"]\npermission = \"p:r\"\n",
            ),
        ],
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("routes/r.toml:7:1: duplicate route prefix \"/a\""),
        "{text}"
    );
    assert!(
        text.contains("policies/1.toml:3:13: unknown role \"nobody\""),
        "{text}"
    );
    assert!(
        text.contains("policies/2.toml:7:9: rule for unknown route \"ordrs\""),
        "{text}"
    );
    // "b" is defined (refused for its prefix, but named): its rule is no false alarm.
    assert!(!text.contains("unknown route \"b\""), "{text}");
}

#[test]
fn an_http_redirect_without_tls_is_a_warning() {
    let (code, text) = check_file(
        "[listen]\npublic = \"127.0.0.1:18443\"\nhttp_redirect = \"127.0.0.1:18080\"\n",
        &[("routes/r.toml", "")],
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(
            "portcullis.toml:3:17: warning: listen.http_redirect is not started without [tls]"
        ),
        "{text}"
    );
}

#[test]
fn every_unknown_key_is_reported() {
    let (code, text) = check_file(
        "[listen]\npublic = \"127.0.0.1:18443\"\nfoo = 1\n[guard]\nbar = 2\n",
        &[("routes/r.toml", "")],
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("portcullis.toml:3:1: unknown field `foo`"),
        "{text}"
    );
    assert!(
        text.contains("portcullis.toml:5:1: unknown field `bar`"),
        "{text}"
    );
    assert!(text.contains("2 error(s)"), "{text}");
}

#[test]
fn a_missing_certificate_without_the_dev_fallback_is_a_check_error() {
    let (code, text) = check_file(
        "[listen]\npublic = \"127.0.0.1:18443\"\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nself_signed_if_missing = false\n",
        &[("routes/r.toml", ""), ("k.pem", "")],
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("portcullis.toml:4:8: tls.cert:"), "{text}");
    assert!(text.contains("c.pem does not exist"), "{text}");
    assert!(!text.contains("tls.key:"), "{text}");
}

#[test]
fn issuer_settings_the_issuer_would_refuse_are_check_errors() {
    let (code, text) = check_file(
        "[listen]\npublic = \"127.0.0.1:18443\"\n[issuer]\ndatabase = \"mysql://x\"\nfrontend_url = \"localhost:8443/auth\"\n",
        &[("routes/r.toml", "")],
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("portcullis.toml:4:12: issuer.database = \"mysql://x\" is neither"),
        "{text}"
    );
    assert!(
        text.contains("portcullis.toml:5:16: issuer.frontend_url = \"localhost:8443/auth\" is not an http(s) URL"),
        "{text}"
    );
}

/// `portcullis check | head`: a closed stdout ends the output quietly, never a panic.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let o = Opts::new(route("a", "/a", &["http://127.0.0.1:1".into()], ""));
    Gateway::write_config(dir.path(), &o, 18443, 19000, None);
    let mut child = Command::new(BIN)
        .args(["check", "--config", "portcullis.toml"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before anything is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

/// A broken realm template does not hide the other files' errors: `check` reports them all.
#[test]
fn check_reports_realm_and_route_errors_together() {
    let (code, text) = check_file(
        "[listen]\npublic = \"127.0.0.1:18443\"\n[issuer]\nimport = [\"realms/r.json\"]\n",
        &[
            ("realms/r.json", "{\n  \"realm\": 3\n}\n"),
            (
                "routes/r.toml",
                "[[route]]\nname = \"a\"\nprefix = \"/a\"\nupstreams = [\"ftp://127.0.0.1:1\"]\n",
            ),
        ],
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("r.json:2:"), "{text}");
    assert!(
        text.contains("upstream scheme \"ftp\" is not supported"),
        "{text}"
    );
}

#[test]
fn a_frontend_url_outside_auth_is_a_warning() {
    let toml = |url: &str| {
        format!("[listen]\npublic = \"127.0.0.1:18443\"\n[issuer]\nfrontend_url = \"{url}\"\n")
    };
    let (code, text) = check_file(&toml("https://sso.example.com"), &[("routes/r.toml", "")]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("portcullis.toml:4:16: warning: issuer.frontend_url = \"https://sso.example.com\" does not end in /auth"),
        "{text}"
    );
    let (code, text) = check_file(
        &toml("https://sso.example.com/auth/"),
        &[("routes/r.toml", "")],
    );
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("does not end in /auth"), "{text}");
}
