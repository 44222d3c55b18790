//! Load-time validation tests: every error with its exact `file:line:col`, warnings vs errors.

use super::tests::{POLICY, load};

/// Loads one policy file and returns its diagnostics, asserting whether it was refused.
fn diags_of(text: &str, refused: bool) -> Vec<String> {
    let (set, diags) = load(&[("p.toml", text)]);
    assert_eq!(set.is_none(), refused, "{diags:#?}");
    diags
}

/// A rule for every jwt route, so tests see only the diagnostics they are about.
const RULES: &str = r#"
[[allow]]
route = "orders"
methods = ["GET"]
permission = "orders:read"
[[allow]]
route = "reports"
methods = ["GET"]
permission = "reports:read"
"#;

#[test]
fn the_design_example_loads_cleanly() {
    let (set, diags) = load(&[("orders.toml", POLICY)]);
    assert!(diags.is_empty(), "{diags:#?}");
    assert!(set.is_some());
}

#[test]
fn inheritance_cycle_is_named() {
    let text = format!(
        r#"[roles.admin]
inherits = ["editor"]
[roles.editor]
inherits = ["viewer"]
[roles.viewer]
inherits = ["admin"]
{RULES}"#
    );
    assert_eq!(
        diags_of(&text, true),
        [
            "policies/p.toml:6:13: inheritance cycle: admin -> editor -> viewer -> admin \
          (hint: a role can't inherit itself, directly or through others)"
        ]
    );
}

#[test]
fn a_role_inheriting_itself_is_a_cycle() {
    let text = format!("[roles.me]\ninherits = [\"me\"]\n{RULES}");
    assert_eq!(
        diags_of(&text, true),
        ["policies/p.toml:2:13: inheritance cycle: me -> me \
          (hint: a role can't inherit itself, directly or through others)"]
    );
}

#[test]
fn unknown_roles_in_groups_and_inherits() {
    let text = format!(
        r#"[groups]
"/staff" = ["viewer", "editr"]
[roles.viewer]
permissions = ["orders:read"]
[roles.editor]
inherits = ["veiwer", "zzzzzzzz"]
{RULES}"#
    );
    assert_eq!(
        diags_of(&text, true),
        [
            "policies/p.toml:6:13: unknown role \"veiwer\" in the inherits of role \"editor\" \
             (hint: did you mean \"viewer\"?)",
            "policies/p.toml:6:23: unknown role \"zzzzzzzz\" in the inherits of role \"editor\" \
             (hint: define it with a [roles.NAME] table)",
            "policies/p.toml:2:23: unknown role \"editr\" in group \"/staff\" \
             (hint: did you mean \"editor\"?)",
        ]
    );
}

#[test]
fn rule_for_unknown_route() {
    let text = format!(
        "{RULES}\n[[allow]]\nroute = \"ordrs\"\nmethods = [\"GET\"]\npermission = \"x:y\"\n"
    );
    assert_eq!(
        diags_of(&text, true),
        ["policies/p.toml:12:9: rule for unknown route \"ordrs\" (hint: did you mean \"orders\"?)"]
    );
}

#[test]
fn duplicate_role_across_files() {
    let a = "[roles.viewer]\npermissions = [\"orders:read\"]\n";
    let b = format!("{RULES}\n[roles.viewer]\npermissions = []\n");
    let (set, diags) = load(&[("a.toml", a), ("b.toml", &b)]);
    assert!(set.is_none());
    assert_eq!(
        diags,
        ["policies/b.toml:11:8: duplicate role \"viewer\" \
          (hint: first defined at policies/a.toml:1; a role is defined in one policy file only)"]
    );
}

#[test]
fn bad_permission_syntax_in_roles_and_rules() {
    let text = r#"[roles.viewer]
permissions = ["orders", "orders:", "*:read", "orders:read"]
[[allow]]
route = "orders"
methods = ["GET"]
permission = "orders read"
[[allow]]
route = "reports"
methods = ["GET"]
permission = "reports:*"
"#;
    assert_eq!(
        diags_of(text, true),
        [
            "policies/p.toml:2:16: bad permission \"orders\" \
             (hint: must be \"resource:action\", \"resource:*\" or \"*\")",
            "policies/p.toml:2:26: bad permission \"orders:\" (hint: the action must be \"*\" \
             or non-empty letters, digits, '_', '.' or '-')",
            "policies/p.toml:2:37: bad permission \"*:read\" (hint: the resource must be \
             non-empty letters, digits, '_', '.' or '-')",
            "policies/p.toml:6:14: bad permission \"orders read\" \
             (hint: must be \"resource:action\", \"resource:*\" or \"*\")",
        ]
    );
}

#[test]
fn bad_method_names() {
    let text = r#"[[allow]]
route = "orders"
methods = ["get", "GTE", "BREW", "*"]
permission = "orders:read"
[[allow]]
route = "reports"
methods = []
permission = "reports:read"
"#;
    assert_eq!(
        diags_of(text, true),
        [
            "policies/p.toml:3:12: bad method name \"get\" (hint: methods are upper case: \"GET\")",
            "policies/p.toml:3:19: bad method name \"GTE\" (hint: did you mean \"GET\"?)",
            "policies/p.toml:3:26: bad method name \"BREW\" (hint: use one of GET, HEAD, POST, \
             PUT, PATCH, DELETE, OPTIONS, TRACE, CONNECT or \"*\")",
            "policies/p.toml:7:11: methods is empty \
             (hint: list methods, e.g. [\"GET\", \"HEAD\"], or [\"*\"] for any)",
        ]
    );
}

#[test]
fn unguarded_jwt_route_and_rule_on_public_route_are_warnings() {
    let text = r#"[[allow]]
route = "orders"
methods = ["GET"]
permission = "orders:read"
[[allow]]
route = "auth"
methods = ["GET"]
permission = "auth:read"
"#;
    assert_eq!(
        diags_of(text, false),
        [
            "policies/p.toml:6:9: warning: rule for public route \"auth\" is never checked \
             (hint: the route has auth = \"public\"; set auth = \"jwt\" to enforce it)",
            "routes.toml:15:1: warning: route \"reports\" (auth = \"jwt\") has no [[allow]] rule: \
             every request to it is denied (hint: add an [[allow]] rule with route = \"reports\" \
             to a policy file)",
        ]
    );
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let text = r#"[groups]
"/a" = ["nope"]
[roles.x]
inherits = ["x"]
permissions = ["bad"]
[[allow]]
route = "nowhere"
methods = ["GOT"]
permission = "also bad"
"#;
    let diags = diags_of(text, true);
    let errors = diags.iter().filter(|d| !d.contains(": warning: ")).count();
    assert_eq!(errors, 6, "{diags:#?}");
}

#[test]
fn schema_errors_are_located() {
    let good = "[groups]\n\"/staff\" = [\"viewer\"]\n";
    let bad = "[roles.viewer]\npermisions = [\"orders:read\"]\n";
    let bad_too = "[[allow]]\nroute = \"orders\"\nmethods = [\"GET\"]\n";
    let (set, diags) = load(&[("a.toml", good), ("b.toml", bad), ("c.toml", bad_too)]);
    assert!(set.is_none());
    // Both broken files are reported; "viewer" is not blamed as unknown in a.toml, and no
    // route is called unguarded, because b.toml and c.toml could not be read.
    assert_eq!(
        diags,
        [
            "policies/b.toml:2:1: unknown field `permisions`, expected `permissions` or `inherits`",
            "policies/c.toml:1:1: missing field `permission`",
        ]
    );
}

#[test]
fn several_files_are_merged() {
    let roles = "[roles.viewer]\npermissions = [\"orders:read\"]\n\
                 [roles.reporter]\npermissions = [\"reports:read\"]\n";
    let groups_a = "[groups]\n\"/staff\" = [\"viewer\"]\n";
    let groups_b = "[groups]\n\"/staff\" = [\"reporter\"]\n";
    let (set, diags) = load(&[
        ("1-roles.toml", roles),
        ("2-groups.toml", groups_a),
        ("3-groups.toml", groups_b),
        ("4-rules.toml", RULES),
        ("notes.txt", "not a policy"),
    ]);
    assert!(diags.is_empty(), "{diags:#?}");
    let set = set.unwrap();
    assert_eq!(set.files().len(), 4);
    assert_eq!(
        (set.role_count(), set.rule_count(), set.group_count()),
        (2, 2, 1)
    );
    // One group, mapped in two files, holds the roles of both.
    let staff = super::tests::who(&["/staff"], &[]);
    assert!(set.decide("orders", "GET", &staff).allowed);
    assert!(set.decide("reports", "GET", &staff).allowed);
}

#[test]
fn a_single_file_path_loads_too() {
    let dir = tempfile::tempdir().unwrap();
    let routes = super::tests::route_table(dir.path());
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, POLICY).unwrap();
    let mut d = portcullis_core::config::Diagnostics::default();
    let set = super::PolicySet::load(&file, &routes, &mut d).unwrap();
    assert_eq!(set.rule_count(), 4);
    let mut d = portcullis_core::config::Diagnostics::default();
    assert!(super::PolicySet::load(&dir.path().join("missing"), &routes, &mut d).is_none());
    assert!(d.to_string().contains("cannot read directory"), "{d}");
}

#[test]
fn an_unknown_key_does_not_hide_the_errors_across_files() {
    let roles = "[roles.viewer]\npermissions = [\"orders:read\"]\nnote = \"x\"\n";
    let groups = "[groups]\n\"/staff\" = [\"viewr\"]\n";
    let rules = "[[allow]]\nroute = \"ordrs\"\nmethods = [\"GET\"]\npermission = \"orders:read\"\n";
    let (set, diags) = load(&[("a.toml", roles), ("b.toml", groups), ("c.toml", rules)]);
    assert!(set.is_none());
    let errors: Vec<&String> = diags
        .iter()
        .filter(|d| !d.contains(": warning: "))
        .collect();
    assert_eq!(errors.len(), 3, "{diags:#?}");
    assert!(errors[0].starts_with("policies/a.toml:3:1: unknown field `note`"));
    assert!(errors[1].starts_with("policies/b.toml:2:13: unknown role \"viewr\""));
    assert!(errors[2].starts_with("policies/c.toml:2:9: rule for unknown route \"ordrs\""));
}

#[test]
fn a_file_that_does_not_parse_leaves_the_others_rules_checked_for_their_route() {
    let broken = "[roles.viewer\n";
    let groups = "[groups]\n\"/staff\" = [\"viewer\"]\n";
    let rules = "[[allow]]\nroute = \"ordrs\"\nmethods = [\"GET\"]\npermission = \"orders:read\"\n";
    let (set, diags) = load(&[("a.toml", broken), ("b.toml", groups), ("c.toml", rules)]);
    assert!(set.is_none());
    assert_eq!(diags.len(), 2, "{diags:#?}");
    assert!(diags[0].starts_with("policies/a.toml:1:"), "{diags:#?}");
    // "viewer" may be defined in the broken file: not called unknown.
    assert!(
        diags[1].starts_with("policies/c.toml:2:9: rule for unknown route \"ordrs\""),
        "{diags:#?}"
    );
}
