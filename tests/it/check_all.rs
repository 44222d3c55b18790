//! Issue 21 ("Also"): `portcullis check` and a refused reload report every error across the
//! routes and policy files, each at its file:line:col: a duplicate route prefix in the routes
//! file, an unknown role in one policy file and a rule for an unknown route in another, also
//! when those files have unknown keys besides; a reload refused for them leaves the running
//! routes and policies as they were.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Gateway, Opts, Upstream, check_in, eventually, route};

/// Two routes `a` and `b` on the same prefix `/a` (the second one's `[[route]]` on line 7),
/// with `extra` TOML in `b`.
fn routes(extra: &str) -> String {
    format!(
        "[[route]]\nname = \"a\"\nprefix = \"/a\"\nupstreams = [\"http://127.0.0.1:19000\"]\n\n\
         [[route]]\nname = \"b\"\nprefix = \"/a\"\nupstreams = [\"http://127.0.0.1:19000\"]\n{extra}"
    )
}

/// Role `x` inheriting the undefined `nobody` (line 3, column 13), then `extra`.
fn roles(extra: &str) -> String {
    format!("[roles.x]\npermissions = [\"p:r\"]\ninherits = [\"nobody\"]\n{extra}")
}

/// A rule for the defined `b`, then one for the unknown `ordrs` (line 7, column 9).
const RULES: &str = "[[allow]]\nroute = \"b\"\nmethods = [\"GET\"]\npermission = \"p:r\"\n\n\
     [[allow]]\nroute = \"ordrs\"\nmethods = [\"GET\"]\npermission = \"p:r\"\n";

/// `portcullis check` in a directory holding `portcullis.toml` and `files`: exit code and
/// everything printed.
fn check(files: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[listen]\npublic = \"127.0.0.1:18443\"\n",
    )
    .unwrap();
    for (name, body) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    check_in(dir.path())
}

const DUPLICATE: &str = "routes/r.toml:7:1: duplicate route prefix \"/a\"";
const UNKNOWN_ROLE: &str =
    "policies/1.toml:3:13: unknown role \"nobody\" in the inherits of role \"x\"";
const UNKNOWN_ROUTE: &str = "policies/2.toml:7:9: rule for unknown route \"ordrs\"";

#[test]
fn check_reports_the_duplicate_prefix_the_unknown_role_and_the_unknown_route_together() {
    let (code, text) = check(&[
        ("routes/r.toml", &routes("")),
        ("policies/1.toml", &roles("")),
        ("policies/2.toml", RULES),
    ]);
    assert_eq!(code, 1, "{text}");
    for want in [DUPLICATE, UNKNOWN_ROLE, UNKNOWN_ROUTE] {
        assert_eq!(text.matches(want).count(), 1, "{want}:\n{text}");
    }
    // These three and nothing else: "b" is defined (refused for its prefix, but named).
    assert!(text.contains("\n3 error(s)"), "{text}");
    assert!(!text.contains("unknown route \"b\""), "{text}");
}

/// An unknown key in a routes file, or in a policy file, used to end that file's check (its
/// routes unchecked, the rules' route names unknown; every check across policy files skipped).
#[test]
fn unknown_keys_do_not_hide_the_other_errors() {
    let (code, text) = check(&[
        ("routes/r.toml", &routes("timout_ms = 5\n")),
        ("policies/1.toml", &roles("descripton = \"x\"\n")),
        ("policies/2.toml", RULES),
    ]);
    assert_eq!(code, 1, "{text}");
    for want in [
        "routes/r.toml:10:1: unknown field `timout_ms`",
        DUPLICATE,
        "policies/1.toml:4:1: unknown field `descripton`",
        UNKNOWN_ROLE,
        UNKNOWN_ROUTE,
    ] {
        assert_eq!(text.matches(want).count(), 1, "{want}:\n{text}");
    }
    assert!(text.contains("\n5 error(s)"), "{text}");

    // A routes file whose route has a value of the wrong type still names its routes: the
    // rule for "b" is no false alarm, the one for "ordrs" is still reported.
    let (code, text) = check(&[
        ("routes/r.toml", &routes("timeout_seconds = \"soon\"\n")),
        ("policies/2.toml", RULES),
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("routes/r.toml:10:19: "), "{text}");
    assert!(text.contains(UNKNOWN_ROUTE), "{text}");
    assert!(!text.contains("unknown route \"b\""), "{text}");

    // A policy file that doesn't parse: the others' rules are still checked for their route,
    // but no role is called unknown (it might be defined in the broken file).
    let (code, text) = check(&[
        ("routes/r.toml", &routes("")),
        ("policies/0.toml", "[roles.nobody\n"),
        ("policies/1.toml", &roles("")),
        ("policies/2.toml", RULES),
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("policies/0.toml:1:"), "{text}");
    assert!(
        text.contains(DUPLICATE) && text.contains(UNKNOWN_ROUTE),
        "{text}"
    );
    assert!(!text.contains("unknown role"), "{text}");
}

/// The same files on a running gateway: the reload is refused with all three errors, and the
/// routes and policies it runs stay as they were.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_refused_for_them_reports_all_three_and_keeps_the_running_state() {
    let up = Upstream::start().await;
    let routes_now = route("a", "/a", &[up.url()], "") + &route("b", "/b", &[up.url()], "");
    let gw = Gateway::start(Opts::new(routes_now)).await;
    let c = gw.client();
    for p in ["/a/x", "/b/x"] {
        assert_eq!(c.get(gw.url(p)).send().await.unwrap().status(), 200, "{p}");
    }
    let before = gw.admin_config().await;

    std::fs::write(
        gw.path("routes/routes.toml"),
        routes("").replace("http://127.0.0.1:19000", &up.url()),
    )
    .unwrap();
    std::fs::write(gw.path("policies/1.toml"), roles("")).unwrap();
    std::fs::write(gw.path("policies/2.toml"), RULES).unwrap();
    let r = gw.reload().await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    let errors: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(errors.len(), 3, "{body}");
    for want in [
        "routes.toml:7:1: duplicate route prefix \"/a\"",
        "1.toml:3:13: unknown role \"nobody\"",
        "2.toml:7:9: rule for unknown route \"ordrs\"",
    ] {
        assert!(errors.iter().any(|e| e.contains(want)), "{want}: {body}");
    }

    // The file watcher may try the same files again; whatever it does, nothing changes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = gw.admin_config().await;
    assert_eq!(after["generation"], before["generation"], "{after}");
    assert!(
        after["last_error"]
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "{after}"
    );
    // Both old routes still serve (the refused table would have dropped `/b`).
    for p in ["/a/x", "/b/x"] {
        assert_eq!(c.get(gw.url(p)).send().await.unwrap().status(), 200, "{p}");
    }
    eventually("the failure counted", Duration::from_secs(3), || async {
        gw.metrics()
            .await
            .lines()
            .any(|l| l.starts_with("portcullis_config_reloads_total{result=\"failure\"}"))
    })
    .await;
}
