//! Route table tests: longest prefix, segment boundaries, virtual hosts, load-time refusals.

use super::*;
use crate::config::Diagnostics;
use std::collections::BTreeSet;

fn guard() -> Guard {
    Guard {
        guarded_ports: BTreeSet::from([9000, 8081]),
        blocked_prefixes: vec![],
        allow_non_loopback_management: false,
    }
}

fn load(text: &str) -> Result<RouteTable, Diagnostics> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.toml"), text).unwrap();
    let mut d = Diagnostics::default();
    RouteTable::load(dir.path(), &guard(), &mut d).ok_or(d)
}

const ROUTES: &str = r#"
[[route]]
name = "root"
prefix = "/"
upstreams = ["http://127.0.0.1:1"]
[[route]]
name = "api"
prefix = "/api"
upstreams = ["http://127.0.0.1:2"]
[[route]]
name = "orders"
prefix = "/api/orders/"
upstreams = ["http://127.0.0.1:3"]
[[route]]
name = "orders-host"
prefix = "/api"
host = "Shop.Example.com"
upstreams = ["http://127.0.0.1:4"]
"#;

#[test]
fn longest_prefix_on_segment_boundaries() {
    let t = load(ROUTES).unwrap();
    let name = |p: &str| t.find(None, p).map(|r| r.name.to_string());
    assert_eq!(name("/api/orders").as_deref(), Some("orders"));
    assert_eq!(name("/api/orders/").as_deref(), Some("orders"));
    assert_eq!(name("/api/orders/42").as_deref(), Some("orders"));
    assert_eq!(name("/api/ordersX").as_deref(), Some("api"));
    assert_eq!(name("/api").as_deref(), Some("api"));
    assert_eq!(name("/apix").as_deref(), Some("root"));
    assert_eq!(name("/").as_deref(), Some("root"));
}

#[test]
fn host_routes_win_for_their_host() {
    let t = load(ROUTES).unwrap();
    let name = |h: &str, p: &str| t.find(Some(h), p).map(|r| r.name.to_string());
    assert_eq!(
        name("shop.example.com:8443", "/api/orders/1").as_deref(),
        Some("orders-host")
    );
    assert_eq!(
        name("SHOP.example.com", "/api").as_deref(),
        Some("orders-host")
    );
    assert_eq!(
        name("other.example.com", "/api/orders/1").as_deref(),
        Some("orders")
    );
    assert_eq!(name("shop.example.com", "/x").as_deref(), Some("root"));
}

#[test]
fn no_root_means_no_match() {
    let t =
        load("[[route]]\nname = \"a\"\nprefix = \"/a\"\nupstreams = [\"http://127.0.0.1:1\"]\n")
            .unwrap();
    assert!(t.find(None, "/b").is_none());
    assert!(t.find(None, "/").is_none());
}

#[test]
fn strip_prefix_keeps_a_path() {
    let t = load("[[route]]\nname = \"a\"\nprefix = \"/a\"\nstrip_prefix = true\nupstreams = [\"http://127.0.0.1:1\"]\n").unwrap();
    let r = t.find(None, "/a/b").unwrap();
    assert_eq!(r.upstream_path("/a/b?x=1"), "/b?x=1");
    assert_eq!(r.upstream_path("/a"), "/");
}

#[test]
fn guarded_ports_and_bad_routes_are_refused_with_locations() {
    let err = load(
        "[[route]]\nname = \"m\"\nprefix = \"/m\"\nupstreams = [\"http://127.0.0.1:9000\"]\n\
         [[route]]\nname = \"h\"\nprefix = \"/h\"\nupstreams = [\"http://localhost:8081\"]\n\
         [[route]]\nname = \"ok\"\nprefix = \"/x\"\nupstreams = [\"http://127.0.0.1:1\"]\n\
         [[route]]\nname = \"ok\"\nprefix = \"/y\"\nupstreams = [\"http://127.0.0.1:1\"]\n\
         [[route]]\nname = \"p\"\nprefix = \"/h\"\nupstreams = [\"ftp://127.0.0.1:1\"]\n",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("r.toml:4:14: upstream \"http://127.0.0.1:9000\" targets guarded port 9000"),
        "{text}"
    );
    assert!(
        text.contains("r.toml:8:14: upstream \"http://localhost:8081\" targets guarded port 8081"),
        "{text}"
    );
    assert!(
        text.contains("r.toml:14:1: duplicate route name \"ok\""),
        "{text}"
    );
    assert!(
        text.contains("upstream scheme \"ftp\" is not supported"),
        "{text}"
    );
}

#[test]
fn round_robin_skips_down_and_tried() {
    let t = load("[[route]]\nname = \"a\"\nprefix = \"/a\"\nupstreams = [\"http://127.0.0.1:1\", \"http://127.0.0.1:2\", \"http://127.0.0.1:3\"]\n").unwrap();
    let r = t.find(None, "/a").unwrap();
    let picks: Vec<usize> = (0..3).map(|_| r.pick(0).unwrap().0).collect();
    let mut sorted = picks.clone();
    sorted.sort();
    assert_eq!(sorted, vec![0, 1, 2]);
    let Target::Servers(ups) = &r.target else {
        panic!()
    };
    ups[1].mark_down();
    for _ in 0..6 {
        assert_ne!(r.pick(0).unwrap().0, 1);
    }
    // everything else tried: the down one is still offered
    assert_eq!(r.pick(0b101).unwrap().0, 1);
    assert!(r.pick(0b111).is_none());
}

#[test]
fn paths_longer_than_every_prefix_still_match_and_never_split_a_character() {
    let t = load(ROUTES).unwrap();
    let name = |p: &str| t.find(None, p).map(|r| r.name.to_string());
    assert_eq!(
        name("/api/orders/42/items/7/x/y/z").as_deref(),
        Some("orders")
    );
    assert_eq!(name("/api/orderséé/1").as_deref(), Some("api"));
    // A multi-byte character across the longest prefix's length.
    assert_eq!(
        name("/api/ordere\u{e9}\u{e9}\u{e9}").as_deref(),
        Some("api")
    );
    assert_eq!(
        name("/\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}").as_deref(),
        Some("root")
    );
}

#[test]
fn the_embedded_issuer_is_routed_only_where_its_paths_arrive_whole() {
    for ok in ["/auth", "/auth/realms/myrealm", "/"] {
        let text = format!(
            "[[route]]\nname = \"auth\"\nprefix = \"{ok}\"\nupstreams = [\"embedded:issuer\"]\n"
        );
        assert!(load(&text).is_ok(), "{ok}");
    }
    let err = load(
        "[[route]]\nname = \"sso\"\nprefix = \"/sso\"\nupstreams = [\"embedded:issuer\"]\n\
         [[route]]\nname = \"auth\"\nprefix = \"/auth\"\nstrip_prefix = true\nupstreams = [\"embedded:issuer\"]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(
            "r.toml:3:10: route \"sso\": \"embedded:issuer\" serves paths under /auth, not \"/sso\""
        ),
        "{err}"
    );
    assert!(
        err.contains("r.toml:7:10: route \"auth\": \"embedded:issuer\" needs the full path, and strip_prefix = true removes \"/auth\""),
        "{err}"
    );
}

#[test]
fn session_modes_and_their_options() {
    let t = load(
        "[[route]]\nname = \"app\"\nprefix = \"/app\"\nupstreams = [\"http://127.0.0.1:1\"]\n\
         auth = \"session\"\npass_access_token = true\nidentity_assertion = true\n\
         [[route]]\nname = \"both\"\nprefix = \"/both\"\nupstreams = [\"http://127.0.0.1:1\"]\n\
         auth = \"session_or_jwt\"\n",
    )
    .unwrap();
    let app = t.get("app").unwrap();
    assert_eq!(app.auth, AuthMode::Session);
    assert!(app.pass_access_token && app.identity_assertion);
    let both = t.get("both").unwrap();
    assert_eq!(both.auth.as_str(), "session_or_jwt");
    assert!(both.auth.takes_session() && !both.pass_access_token);

    let err = load(
        "[[route]]\nname = \"api\"\nprefix = \"/api\"\nupstreams = [\"http://127.0.0.1:1\"]\n\
         auth = \"jwt\"\npass_access_token = true\n\
         [[route]]\nname = \"pub\"\nprefix = \"/pub\"\nupstreams = [\"http://127.0.0.1:1\"]\n\
         identity_assertion = true\n\
         [[route]]\nname = \"x\"\nprefix = \"/x\"\nupstreams = [\"http://127.0.0.1:1\"]\n\
         auth = \"sesion\"\n",
    )
    .unwrap_err()
    .to_string();
    for want in [
        "r.toml:6:21: pass_access_token needs auth = \"session\" or \"session_or_jwt\", not \"jwt\"",
        "r.toml:11:22: identity_assertion needs an authenticated route",
        "r.toml:16:8: unknown auth mode \"sesion\"",
    ] {
        assert!(err.contains(want), "{want}\nnot in {err}");
    }
}
