//! Hot functions of the request path: path normalization and route matching (1,000 routes).

use std::collections::BTreeSet;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::config::{Diagnostics, Guard};
use portcullis_core::normalize::normalize_path;
use portcullis_core::route::RouteTable;

fn normalize(c: &mut Criterion) {
    let mut g = c.benchmark_group("normalize");
    for (name, p) in [
        ("canonical", "/api/orders/12345/items"),
        ("dot_segments", "/api/./orders/../orders//12345/items"),
        ("escapes", "/api/%6frders/%7Euser/caf%C3%A9"),
    ] {
        g.bench_function(name, |b| b.iter(|| normalize_path(black_box(p))));
    }
    g.finish();
}

fn routes_1000() -> RouteTable {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = String::new();
    for i in 0..1000 {
        let host = if i % 10 == 0 {
            format!("host = \"h{i}.example.com\"\n")
        } else {
            String::new()
        };
        text.push_str(&format!(
            "[[route]]\nname = \"r{i}\"\nprefix = \"/svc{}/v{}/res{i}\"\n{host}upstreams = [\"http://127.0.0.1:{}\"]\n",
            i % 37,
            i % 3,
            10000 + i
        ));
    }
    std::fs::write(dir.path().join("routes.toml"), text).expect("write");
    let guard = Guard {
        guarded_ports: BTreeSet::from([9000]),
        blocked_prefixes: vec![],
        allow_non_loopback_management: false,
    };
    let mut d = Diagnostics::default();
    RouteTable::load(dir.path(), &guard, &mut d).expect("routes load")
}

fn route_match(c: &mut Criterion) {
    let t = routes_1000();
    let mut g = c.benchmark_group("route_match_1000");
    g.bench_function("deep_hit", |b| {
        b.iter(|| {
            t.find(
                black_box(Some("api.example.com")),
                black_box("/svc19/v2/res500/orders/42/items"),
            )
        })
    });
    g.bench_function("host_hit", |b| {
        b.iter(|| {
            t.find(
                black_box(Some("h10.example.com:8443")),
                black_box("/svc10/v1/res10/x"),
            )
        })
    });
    g.bench_function("miss", |b| {
        b.iter(|| t.find(black_box(None), black_box("/nope/a/b/c/d/e")))
    });
    g.finish();
}

criterion_group!(benches, normalize, route_match);
criterion_main!(benches);
