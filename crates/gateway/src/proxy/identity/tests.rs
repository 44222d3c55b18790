//! The standing memo and identity header values, over real policy files (moved with the headers
//! from the RBAC crate: the assertions are the ones `authz` had).

use std::collections::BTreeSet;
use std::sync::Arc;

use portcullis_authz::{Decision, PolicySet, reason};
use portcullis_core::config::{Diagnostics, Guard};
use portcullis_core::identity::Principal;
use portcullis_core::route::RouteTable;

use super::Standing;

const ROUTES: &str = r#"
[[route]]
name = "orders"
prefix = "/api/orders"
upstreams = ["http://127.0.0.1:18001"]
auth = "jwt"
"#;

const POLICY: &str = r#"
[groups]
"/staff" = ["viewer"]
"/staff/editors" = ["editor"]
[roles.viewer]
permissions = ["orders:read"]
[roles.editor]
inherits = ["viewer"]
permissions = ["orders:write"]
[[allow]]
route = "orders"
methods = ["GET", "HEAD"]
permission = "orders:read"
[[allow]]
route = "orders"
methods = ["POST", "PUT", "PATCH", "DELETE"]
permission = "orders:write"
"#;

fn load(policy: &str) -> PolicySet {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.toml");
    std::fs::write(&routes, ROUTES).unwrap();
    let guard = Guard {
        guarded_ports: BTreeSet::from([9000, 8081]),
        blocked_prefixes: vec![],
        allow_non_loopback_management: false,
    };
    let mut d = Diagnostics::default();
    let table = RouteTable::load(&routes, &guard, &mut d).unwrap();
    let pol = dir.path().join("policies");
    std::fs::create_dir(&pol).unwrap();
    std::fs::write(pol.join("p.toml"), policy).unwrap();
    let set = PolicySet::load(&pol, &table, &mut d);
    assert!(!d.has_errors(), "{d}");
    set.unwrap()
}

fn who(groups: &[&str]) -> Principal {
    Principal {
        issuer: "https://idp.test/realms/main".into(),
        sub: "u-1".into(),
        username: Some("alice".into()),
        email: None,
        groups: groups.iter().map(|s| s.to_string()).collect(),
        roles: vec![],
        azp: None,
        exp: 0,
        memo: Default::default(),
    }
}

fn header(s: &Standing, i: usize) -> Option<String> {
    s.headers[i]
        .as_ref()
        .map(|v| v.to_str().unwrap().to_string())
}

#[test]
fn standing_is_derived_once_per_principal_and_never_read_under_another_set() {
    let set = load(POLICY);
    let editor = who(&["/staff/editors"]);
    let first = Standing::of(&set, &editor);
    assert!(
        Arc::ptr_eq(&first, &Standing::of(&set, &editor)),
        "derived again"
    );
    assert_eq!(header(&first, 0).as_deref(), Some("alice"));
    assert_eq!(header(&first, 1), None);
    assert_eq!(header(&first, 2).as_deref(), Some("/staff/editors"));
    assert_eq!(header(&first, 3).as_deref(), Some("editor,viewer"));
    assert_eq!(first.groups_header(), Some("/staff/editors"));

    // The same principal under a reloaded policy where editors only view: the new set's
    // answer, not the memo of the old one.
    let other = load(
        r#"
[groups]
"/staff/editors" = ["viewer"]
[roles.viewer]
permissions = ["orders:read"]
[[allow]]
route = "orders"
methods = ["GET"]
permission = "orders:read"
[[allow]]
route = "orders"
methods = ["PUT"]
permission = "orders:write"
"#,
    );
    assert_eq!(first.decide(&set, "orders", "PUT"), Decision::ALLOW);
    let under_other = Standing::of(&other, &editor);
    assert!(!Arc::ptr_eq(&first, &under_other));
    assert_eq!(
        under_other.decide(&other, "orders", "PUT"),
        Decision {
            allowed: false,
            reason: reason::MISSING_PERMISSION
        }
    );
    assert_eq!(header(&under_other, 3).as_deref(), Some("viewer"));
    // The memo still holds the first set's standing.
    assert!(Arc::ptr_eq(&first, &Standing::of(&set, &editor)));
    // A clone carries no memo: it is derived afresh.
    assert!(!Arc::ptr_eq(&first, &Standing::of(&set, &editor.clone())));
    assert_eq!(editor.clone(), editor);
}

#[test]
fn identity_values_with_control_bytes_are_left_out() {
    let set = load(POLICY);
    let mut p = who(&["/staff", "/evil\r\nX-Injected: 1"]);
    p.username = Some("bob\u{7f}".into());
    p.email = Some("bob@example.com".into());
    let s = Standing::of(&set, &p);
    assert!(s.headers[0].is_none(), "user with DEL");
    assert_eq!(s.headers[1].as_ref().unwrap(), "bob@example.com");
    assert!(s.headers[2].is_none(), "groups with CR LF");
    assert_eq!(s.headers[3].as_ref().unwrap(), "viewer");
    let mut req = http::HeaderMap::new();
    s.set_headers(&mut req);
    assert_eq!(req.len(), 2, "{req:?}");
}
