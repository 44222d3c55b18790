//! RBAC decision and explanation tests over real policy files loaded from a temp directory.

use std::collections::BTreeSet;
use std::path::Path;

use super::*;
use portcullis_core::config::{Diagnostics, Guard};
use portcullis_core::route::RouteTable;

pub(super) const ROUTES: &str = r#"
[[route]]
name = "auth"
prefix = "/auth"
upstreams = ["embedded:issuer"]
auth = "public"

[[route]]
name = "orders"
prefix = "/api/orders"
upstreams = ["http://127.0.0.1:18001"]
auth = "jwt"

[[route]]
name = "reports"
prefix = "/api/reports"
upstreams = ["http://127.0.0.1:18002"]
auth = "jwt"
"#;

/// The DESIGN §5 example, plus an auditor for the `*` wildcard and a reports route.
pub(super) const POLICY: &str = r#"
[groups]
"/admins" = ["admin"]
"/staff" = ["viewer"]
"/staff/editors" = ["editor"]
"/root" = ["root"]
"/empty" = []

[roles.viewer]
permissions = ["orders:read"]
[roles.editor]
inherits = ["viewer"]
permissions = ["orders:write"]
[roles.admin]
inherits = ["editor"]
permissions = ["orders:*"]
[roles.root]
permissions = ["*"]
[roles.reporter]
permissions = ["reports:read"]

[[allow]]
route = "orders"
methods = ["GET", "HEAD"]
permission = "orders:read"
[[allow]]
route = "orders"
methods = ["POST", "PUT", "PATCH", "DELETE"]
permission = "orders:write"
[[allow]]
route = "reports"
methods = ["*"]
permission = "reports:read"
[[allow]]
route = "reports"
methods = ["DELETE"]
permission = "reports:*"
"#;

pub(super) fn route_table(dir: &Path) -> RouteTable {
    let routes = dir.join("routes.toml");
    std::fs::write(&routes, ROUTES).unwrap();
    let guard = Guard {
        guarded_ports: BTreeSet::from([9000, 8081]),
        blocked_prefixes: vec![],
        allow_non_loopback_management: false,
    };
    let mut d = Diagnostics::default();
    let t = RouteTable::load(&routes, &guard, &mut d);
    assert!(!d.has_errors(), "{d}");
    t.unwrap()
}

/// Loads `files` (name, text) from a `policies/` directory; diagnostics are rendered with
/// paths relative to the temp dir so tests can compare exact `file:line:col` text.
pub(super) fn load(files: &[(&str, &str)]) -> (Option<PolicySet>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let routes = route_table(dir.path());
    let pol = dir.path().join("policies");
    std::fs::create_dir(&pol).unwrap();
    for (name, text) in files {
        std::fs::write(pol.join(name), text).unwrap();
    }
    let mut d = Diagnostics::default();
    let set = PolicySet::load(&pol, &routes, &mut d);
    let prefix = format!("{}/", dir.path().display());
    let lines = d
        .all()
        .iter()
        .map(|x| x.to_string().replace(&prefix, ""))
        .collect();
    (set, lines)
}

pub(super) fn policy() -> PolicySet {
    let (set, diags) = load(&[("orders.toml", POLICY)]);
    assert!(diags.is_empty(), "{diags:?}");
    set.unwrap()
}

pub(super) fn who(groups: &[&str], roles: &[&str]) -> Principal {
    Principal {
        issuer: "https://idp.test/realms/main".into(),
        sub: "u-1".into(),
        username: Some("alice".into()),
        email: None,
        groups: groups.iter().map(|s| s.to_string()).collect(),
        roles: roles.iter().map(|s| s.to_string()).collect(),
        azp: None,
        exp: 0,
        memo: Default::default(),
    }
}

fn decide(set: &PolicySet, route: &str, method: &str, p: &Principal) -> Decision {
    let d = set.decide(route, method, p);
    // Deciding is pure: a second call answers the same.
    assert_eq!(set.decide(route, method, p), d);
    // explain must never disagree with the decision it explains.
    let e = set.explain(route, method, p);
    assert_eq!((e.allowed, e.reason), (d.allowed, d.reason), "{e}");
    d
}

fn deny(reason: &'static str) -> Decision {
    Decision {
        allowed: false,
        reason,
    }
}

#[test]
fn viewer_reads_but_cannot_write() {
    let set = policy();
    let staff = who(&["/staff"], &[]);
    assert_eq!(decide(&set, "orders", "GET", &staff), Decision::ALLOW);
    assert_eq!(decide(&set, "orders", "HEAD", &staff), Decision::ALLOW);
    assert_eq!(
        decide(&set, "orders", "POST", &staff),
        deny(reason::MISSING_PERMISSION)
    );
}

#[test]
fn two_level_inheritance_reaches_the_most_junior_role() {
    let set = policy();
    // admin ⊃ editor ⊃ viewer: orders:read comes from viewer, two levels down.
    let admin = who(&["/admins"], &[]);
    assert_eq!(decide(&set, "orders", "GET", &admin), Decision::ALLOW);
    assert_eq!(decide(&set, "orders", "DELETE", &admin), Decision::ALLOW);
    let editor = who(&["/staff/editors"], &[]);
    assert_eq!(decide(&set, "orders", "GET", &editor), Decision::ALLOW);
    assert_eq!(decide(&set, "orders", "PUT", &editor), Decision::ALLOW);
    // Inheritance goes one way: a junior never gets a senior's permissions.
    let viewer = who(&[], &["viewer"]);
    assert!(!decide(&set, "orders", "PUT", &viewer).allowed);
}

#[test]
fn methods_without_a_rule_are_denied() {
    let set = policy();
    let admin = who(&["/admins"], &[]);
    assert_eq!(
        decide(&set, "orders", "OPTIONS", &admin),
        deny(reason::NO_RULE_FOR_METHOD)
    );
    let propfind = "PROPFIND";
    assert_eq!(
        decide(&set, "orders", propfind, &admin),
        deny(reason::NO_RULE_FOR_METHOD)
    );
    // A "*" rule covers extension methods too.
    let reporter = who(&[], &["reporter"]);
    assert_eq!(
        decide(&set, "reports", propfind, &reporter),
        Decision::ALLOW
    );
    assert_eq!(decide(&set, "reports", "PATCH", &reporter), Decision::ALLOW);
}

#[test]
fn deny_by_default() {
    let set = policy();
    let root = who(&["/root"], &[]);
    assert_eq!(
        decide(&set, "nowhere", "GET", &root),
        deny(reason::NO_RULE_FOR_ROUTE)
    );
    assert_eq!(
        decide(&set, "auth", "GET", &root),
        deny(reason::NO_RULE_FOR_ROUTE)
    );
    let nobody = who(&[], &[]);
    assert_eq!(
        decide(&set, "orders", "GET", &nobody),
        deny(reason::NO_ROLES)
    );
    let strangers = who(&["/elsewhere", "/empty"], &["offline_access"]);
    assert_eq!(
        decide(&set, "orders", "GET", &strangers),
        deny(reason::NO_ROLES)
    );
    let empty = PolicySet::empty();
    assert_eq!(
        decide(&empty, "orders", "GET", &root),
        deny(reason::NO_RULE_FOR_ROUTE)
    );
    assert_eq!((empty.role_count(), empty.rule_count()), (0, 0));
}

#[test]
fn star_grants_everything_and_res_star_its_resource() {
    let set = policy();
    let root = who(&["/root"], &[]);
    for (route, m) in [("orders", "GET"), ("orders", "POST"), ("reports", "DELETE")] {
        assert_eq!(decide(&set, route, m, &root), Decision::ALLOW);
    }
    // admin holds orders:* but nothing on reports.
    let admin = who(&["/admins"], &[]);
    assert_eq!(
        decide(&set, "reports", "GET", &admin),
        deny(reason::MISSING_PERMISSION)
    );
}

#[test]
fn a_wildcard_requirement_needs_a_wildcard_permission() {
    let set = policy();
    // DELETE on reports has two rules: "*" needing reports:read, and DELETE needing
    // reports:*. reports:read satisfies the first, so it is allowed by that rule.
    let reporter = who(&[], &["reporter"]);
    let e = set.explain("reports", "DELETE", &reporter);
    assert!(e.allowed);
    assert_eq!(
        e.deciding_rule.map(|r| r.permission).as_deref(),
        Some("reports:read")
    );
    assert_eq!(
        e.rules
            .iter()
            .map(|r| (r.permission.as_str(), r.satisfied))
            .collect::<Vec<_>>(),
        [("reports:read", true), ("reports:*", false)]
    );

    let (set, _) = load(&[(
        "p.toml",
        r#"
[roles.reader]
permissions = ["orders:read", "orders:write"]
[roles.owner]
permissions = ["orders:*"]
[[allow]]
route = "orders"
methods = ["*"]
permission = "orders:*"
"#,
    )]);
    let set = set.unwrap();
    assert_eq!(
        decide(&set, "orders", "GET", &who(&[], &["reader"])),
        deny(reason::MISSING_PERMISSION)
    );
    assert_eq!(
        decide(&set, "orders", "GET", &who(&[], &["owner"])),
        Decision::ALLOW
    );
}

#[test]
fn roles_from_token_claims_count_and_unknown_ones_are_ignored() {
    let set = policy();
    // What authn puts in `roles` from e.g. `realm_access.roles`.
    let p = who(&[], &["offline_access", "uma_authorization", "editor"]);
    assert_eq!(decide(&set, "orders", "PATCH", &p), Decision::ALLOW);
    let e = set.explain("orders", "PATCH", &p);
    assert_eq!(
        e.ignored_token_roles,
        ["offline_access", "uma_authorization"]
    );
    assert_eq!(e.roles.len(), 1);
    assert_eq!(
        (e.roles[0].role.as_str(), e.roles[0].via.as_str()),
        ("editor", "token")
    );
    // Group roles and token roles add up.
    let both = who(&["/staff"], &["reporter"]);
    assert_eq!(decide(&set, "orders", "GET", &both), Decision::ALLOW);
    assert_eq!(decide(&set, "reports", "GET", &both), Decision::ALLOW);
    // Group names are not role names, and role names are not group names.
    assert!(!decide(&set, "orders", "GET", &who(&["viewer"], &["/staff"])).allowed);
}

#[test]
fn explain_answers_why_forbidden_in_one_line() {
    let set = policy();
    let e = set.explain("orders", "POST", &who(&["/staff"], &[]));
    assert_eq!(
        e.summary,
        "DENY: POST on route \"orders\" needs orders:write; you have roles viewer (via /staff) with orders:read"
    );
    assert_eq!(e.rules.len(), 1);
    assert_eq!(
        e.rules[0].at,
        "policies/orders.toml:27".replace("policies/", &rule_prefix(&set))
    );
    assert!(e.deciding_rule.is_none());
    let text = e.to_string();
    assert!(text.starts_with(&e.summary), "{text}");
    assert!(
        text.contains("needs orders:write for [POST, PUT, PATCH, DELETE] at"),
        "{text}"
    );
    assert!(
        text.contains("deny by default (missing_permission)"),
        "{text}"
    );

    let e = set.explain("orders", "OPTIONS", &who(&["/staff"], &[]));
    assert_eq!(
        e.summary,
        "DENY: no [[allow]] rule of route \"orders\" covers OPTIONS (rules cover GET, HEAD, POST, PUT, PATCH, DELETE)"
    );
    let e = set.explain("orders", "GET", &who(&["/nope"], &["x"]));
    assert_eq!(
        e.summary,
        "DENY: GET on route \"orders\" needs orders:read; you have no roles (groups /nope and token roles x map to no defined role)"
    );
    assert_eq!(e.unmapped_groups, ["/nope"]);
}

/// The directory part of the rules' `file:line`, which is the temp dir of that load.
fn rule_prefix(set: &PolicySet) -> String {
    let f = set.files()[0].display().to_string();
    f.strip_suffix("orders.toml").unwrap().to_string()
}

#[test]
fn explain_shows_the_inheritance_chain_and_the_deciding_rule() {
    let set = policy();
    let e = set.explain("orders", "GET", &who(&["/admins"], &[]));
    assert!(e.allowed);
    assert_eq!(e.roles[0].chain, "admin ⊃ editor ⊃ viewer");
    assert_eq!(e.permissions, ["orders:*", "orders:read", "orders:write"]);
    let rule = e.deciding_rule.clone().unwrap();
    assert!(rule.at.ends_with("policies/orders.toml:23"), "{}", rule.at);
    assert!(
        e.summary.starts_with(
            "ALLOW: GET on route \"orders\" needs orders:read; granted to admin (via /admins) by the rule at "
        ),
        "{}",
        e.summary
    );
    let text = e.to_string();
    assert!(
        text.contains("admin (via /admins) ⊃ editor ⊃ viewer"),
        "{text}"
    );
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["reason"], "allowed");
    assert_eq!(json["roles"][0]["via"], "/admins");
}

#[test]
fn diamond_inheritance_is_flattened_and_shown_once() {
    let (set, diags) = load(&[(
        "p.toml",
        r#"
[roles.base]
permissions = ["orders:read"]
[roles.left]
inherits = ["base"]
[roles.right]
inherits = ["base"]
permissions = ["orders:write"]
[roles.top]
inherits = ["left", "right"]
[[allow]]
route = "orders"
methods = ["POST"]
permission = "orders:write"
[[allow]]
route = "reports"
methods = ["GET"]
permission = "reports:read"
"#,
    )]);
    assert!(diags.is_empty(), "{diags:?}");
    let set = set.unwrap();
    let top = who(&[], &["top"]);
    assert_eq!(decide(&set, "orders", "POST", &top), Decision::ALLOW);
    let e = set.explain("orders", "POST", &top);
    assert_eq!(e.roles[0].chain, "top ⊃ (left ⊃ base, right ⊃ base)");
    assert_eq!(e.permissions, ["orders:read", "orders:write"]);
}

#[test]
fn accessors_for_check() {
    let set = policy();
    assert_eq!(set.role_count(), 5);
    assert_eq!(set.rule_count(), 4);
    assert_eq!(set.group_count(), 5);
    assert_eq!(
        set.routes_with_rules().collect::<Vec<_>>(),
        ["orders", "reports"]
    );
    assert!(set.has_rules_for("orders") && !set.has_rules_for("auth"));
    assert_eq!(set.files().len(), 1);
}

#[test]
fn held_is_tied_to_the_set_that_derived_it() {
    let set = policy();
    let editor = who(&["/staff/editors"], &[]);
    let first = set.held(&editor);
    assert!(first.derived_by(&set));
    let names: Vec<&str> = first.roles.iter().map(|r| &**r).collect();
    assert_eq!(names, ["editor", "viewer"]);
    assert_eq!(set.decide_held("orders", "PUT", &first), Decision::ALLOW);

    // The same principal under a reloaded policy where editors only view: the new set's
    // answer, and the old standing means nothing to it.
    let (other, diags) = load(&[(
        "p.toml",
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
    )]);
    assert!(diags.iter().all(|d| d.contains("warning")), "{diags:?}");
    let other = other.unwrap();
    assert!(!first.derived_by(&other));
    assert_eq!(decide(&set, "orders", "PUT", &editor), Decision::ALLOW);
    assert_eq!(
        decide(&other, "orders", "PUT", &editor),
        deny(reason::MISSING_PERMISSION)
    );
    let under_other = other.held(&editor);
    let names: Vec<&str> = under_other.roles.iter().map(|r| &**r).collect();
    assert_eq!(names, ["viewer"]);
}
