//! A policy file from arbitrary bytes through `PolicySet::load` (against a fixed route table):
//! no panic, refusals located as `file:line:col`, and a loaded policy set decides without
//! panicking.

#![no_main]

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use portcullis_authn::Principal;
use portcullis_authz::PolicySet;
use portcullis_core::config::{Diagnostics, Guard};
use portcullis_core::route::RouteTable;

const ROUTES: &str = r#"
[[route]]
name = "orders"
prefix = "/api/orders"
upstreams = ["http://127.0.0.1:18002"]
auth = "jwt"

[[route]]
name = "admin"
prefix = "/admin"
upstreams = ["http://127.0.0.1:18003"]
auth = "jwt"

[[route]]
name = "public"
prefix = "/"
upstreams = ["http://127.0.0.1:18001"]
"#;

fn routes() -> &'static RouteTable {
    static T: OnceLock<RouteTable> = OnceLock::new();
    T.get_or_init(|| {
        let file = portcullis_fuzz::scratch_file("fixture-routes.toml", ROUTES.as_bytes());
        let guard = Guard {
            guarded_ports: BTreeSet::new(),
            blocked_prefixes: Vec::new(),
            allow_non_loopback_management: false,
        };
        let mut diags = Diagnostics::default();
        RouteTable::load(&file, &guard, &mut diags)
            .unwrap_or_else(|| panic!("fixture routes refused:\n{diags}"))
    })
}

fn principal(groups: &[&str], roles: &[&str]) -> Principal {
    Principal {
        issuer: Arc::from("https://idp.test/realms/r"),
        sub: "user-1".into(),
        username: Some("alice".into()),
        email: None,
        groups: groups.iter().map(|s| s.to_string()).collect(),
        roles: roles.iter().map(|s| s.to_string()).collect(),
        azp: None,
        exp: 0,
        memo: Default::default(),
    }
}

fuzz_target!(|data: &[u8]| {
    let file = portcullis_fuzz::scratch_file("policies.toml", data);
    let mut diags = Diagnostics::default();
    let set = PolicySet::load(&file, routes(), &mut diags);
    portcullis_fuzz::check_diagnostics(&file, data, &diags, set.is_none());
    let Some(set) = set else {
        return;
    };
    // Roles and groups named in the file itself, so decisions reach the granting paths.
    let text = String::from_utf8_lossy(data);
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_alphanumeric() || matches!(c, '/' | '-' | '_' | ':' | '.')))
        .filter(|w| !w.is_empty())
        .take(16)
        .collect();
    let users = [
        principal(&[], &[]),
        principal(&words, &words),
        principal(&["/staff"], &["admin", "viewer"]),
    ];
    for p in &users {
        let _ = set.role_names(p);
        for route in ["orders", "admin", "public", "missing"] {
            for m in ["GET", "DELETE", "PURGE", "get"] {
                let d = set.decide(route, m, p);
                let e = set.explain(route, m, p);
                // explain must never disagree with the decision it explains.
                assert_eq!((e.allowed, e.reason), (d.allowed, d.reason), "{e}");
            }
        }
    }
});
