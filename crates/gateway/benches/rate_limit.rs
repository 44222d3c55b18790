//! The local rate limiter on the request path: one check against a route-wide bucket, a keyed
//! one (principal, address) with many keys alive, and the `RateLimit` field of an allowed
//! answer. Limits far above what the bench sends, so every check is an allowed one (the
//! common case); a refused check costs the same plus the 429.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::config::rate_limit::{RateKey, RateLimit};
use portcullis_gateway::limit::{Key, Limiter};

fn spec(key: RateKey) -> RateLimit {
    RateLimit {
        requests: 1_000_000,
        per_seconds: 1,
        burst: 1_000_000,
        key,
    }
}

fn local_check(c: &mut Criterion) {
    let mut g = c.benchmark_group("rate_limit_local");
    let route = Limiter::new("orders", spec(RateKey::Route));
    g.bench_function("route_key", |b| {
        b.iter(|| route.local.check(black_box(Key::Route)))
    });
    // 10,000 principals alive; the bench's one is among them.
    let subs: Vec<String> = (0..10_000).map(|i| format!("user-{i:05}")).collect();
    let principal = Limiter::new("orders", spec(RateKey::Principal));
    for s in &subs {
        principal.local.check(Key::Text(s));
    }
    let alice = &subs[4321];
    g.bench_function("principal_key_10k_keys", |b| {
        b.iter(|| principal.local.check(black_box(Key::Text(alice))))
    });
    let ip = Limiter::new("orders", spec(RateKey::Ip));
    for i in 0..10_000u32 {
        ip.local
            .check(Key::Ip(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))));
    }
    let client = IpAddr::V4(Ipv4Addr::new(10, 0, 16, 225));
    g.bench_function("ip_key_10k_keys", |b| {
        b.iter(|| ip.local.check(black_box(Key::Ip(client))))
    });
    let d = principal.local.check(Key::Text(alice));
    g.bench_function("ratelimit_header", |b| {
        b.iter(|| principal.header(black_box(&d)))
    });
    g.finish();
}

criterion_group!(benches, local_check);
criterion_main!(benches);
