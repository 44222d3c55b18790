//! RBAC decision cost with 100 roles (inheritance chains ten deep) and 1,000 rules; target < 1 µs.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_authn::Principal;
use portcullis_authz::PolicySet;
use portcullis_core::config::{Diagnostics, Guard};
use portcullis_core::route::RouteTable;
use portcullis_gateway::proxy::identity::Standing;

const ROUTES: usize = 100;
const RULES_PER_ROUTE: usize = 10;
const ROLES: usize = 100;

/// 100 routes × 10 rules; 100 roles in ten chains, `role-{10c+9} ⊃ … ⊃ role-{10c}`; one group
/// per chain top. Written to files and loaded like production, so the bench measures the real
/// flattened structures.
fn policy(dir: &Path) -> PolicySet {
    let mut routes = String::new();
    for r in 0..ROUTES {
        let _ = write!(
            routes,
            "[[route]]\nname = \"route-{r}\"\nprefix = \"/api/r{r}\"\n\
             upstreams = [\"http://127.0.0.1:18001\"]\nauth = \"jwt\"\n"
        );
    }
    let methods = [
        r#"["GET", "HEAD"]"#,
        r#"["POST"]"#,
        r#"["PUT", "PATCH"]"#,
        r#"["DELETE"]"#,
        r#"["*"]"#,
    ];
    let actions = ["read", "write", "update", "delete", "admin"];
    let mut pol = String::from("[groups]\n");
    for c in 0..ROLES / 10 {
        let _ = writeln!(pol, "\"/g{c}\" = [\"role-{}\"]", c * 10 + 9);
    }
    for i in 0..ROLES {
        let _ = write!(
            pol,
            "[roles.role-{i}]\npermissions = [\"res{i}:read\", \"res{}:write\"]\n",
            (i * 7) % ROLES
        );
        if i % 10 != 0 {
            let _ = writeln!(pol, "inherits = [\"role-{}\"]", i - 1);
        }
    }
    for r in 0..ROUTES {
        for k in 0..RULES_PER_ROUTE {
            let _ = write!(
                pol,
                "[[allow]]\nroute = \"route-{r}\"\nmethods = {}\npermission = \"res{}:{}\"\n",
                methods[k % methods.len()],
                (r + k * 13) % ROLES,
                actions[k % actions.len()],
            );
        }
    }
    std::fs::write(dir.join("routes.toml"), routes).unwrap();
    std::fs::write(dir.join("policy.toml"), pol).unwrap();
    let guard = Guard {
        guarded_ports: BTreeSet::from([9000, 8081]),
        blocked_prefixes: vec![],
        allow_non_loopback_management: false,
    };
    let mut d = Diagnostics::default();
    let table = RouteTable::load(&dir.join("routes.toml"), &guard, &mut d).unwrap();
    let set = PolicySet::load(&dir.join("policy.toml"), &table, &mut d).unwrap();
    assert!(!d.has_errors(), "{d}");
    assert_eq!(
        (set.role_count(), set.rule_count()),
        (ROLES, ROUTES * RULES_PER_ROUTE)
    );
    set
}

fn principal() -> Principal {
    Principal {
        issuer: "https://idp.test/realms/main".into(),
        sub: "u-1".into(),
        username: Some("alice".into()),
        email: None,
        groups: vec!["/g3".into(), "/unmapped/team".into(), "/g7".into()],
        roles: vec![
            "offline_access".into(),
            "uma_authorization".into(),
            "role-42".into(),
        ],
        azp: None,
        exp: 0,
        memo: Default::default(),
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let set = policy(dir.path());
    let p = principal();
    // route-41 GET needs res41:read, which only the last source holds (token role role-42,
    // inherited from role-41): every group and token role is looked up before the allow.
    // DELETE on route-5 needs permissions nobody holds: every source and rule is tried.
    let allowed = ("route-41", "GET");
    let denied = ("route-5", "DELETE");
    assert!(
        set.decide(allowed.0, allowed.1, &p).allowed,
        "{}",
        set.explain(allowed.0, allowed.1, &p)
    );
    assert!(
        !set.decide(denied.0, denied.1, &p).allowed,
        "{}",
        set.explain(denied.0, denied.1, &p)
    );

    c.bench_function("rbac/decide_allow", |b| {
        b.iter(|| {
            let q = black_box(&p);
            Standing::of(&set, q).decide(&set, black_box(allowed.0), black_box(allowed.1))
        })
    });
    // A principal's first request: its grants and identity header values are derived.
    c.bench_function("rbac/decide_allow_first_request", |b| {
        b.iter_batched(
            || p.clone(),
            |q| Standing::of(&set, &q).decide(&set, black_box(allowed.0), black_box(allowed.1)),
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("rbac/decide_deny_missing_permission", |b| {
        b.iter(|| {
            let q = black_box(&p);
            Standing::of(&set, q).decide(&set, black_box(denied.0), black_box(denied.1))
        })
    });
    c.bench_function("rbac/explain_deny", |b| {
        b.iter(|| set.explain(black_box(denied.0), black_box(denied.1), black_box(&p)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
