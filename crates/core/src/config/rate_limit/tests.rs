//! Rate-limit settings: the GCRA parameters, and every refusal at its file:line:col.

use std::collections::BTreeSet;
use std::time::Duration;

use super::*;
use crate::config::{Config, Diagnostics, Guard};
use crate::route::RouteTable;

fn guard() -> Guard {
    Guard {
        guarded_ports: BTreeSet::from([9000, 8081]),
        blocked_prefixes: vec![],
        allow_non_loopback_management: false,
    }
}

fn routes(text: &str) -> Result<RouteTable, Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.toml"), text).unwrap();
    let mut d = Diagnostics::default();
    RouteTable::load(dir.path(), &guard(), &mut d).ok_or_else(|| {
        // Relative to the file: "r.toml:LINE:COL: …".
        d.errors()
            .map(|e| format!("r.toml:{}:{}: {}", e.line, e.col, e.message))
            .collect()
    })
}

fn config(text: &str) -> Result<Config, Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("portcullis.toml");
    std::fs::write(&p, format!("[listen]\npublic = \"127.0.0.1:0\"\n{text}")).unwrap();
    let mut d = Diagnostics::default();
    Config::load(&p, &mut d).map(|l| l.config).ok_or_else(|| {
        d.errors()
            .map(|e| format!("{}:{}: {}", e.line, e.col, e.message))
            .collect()
    })
}

fn route(extra: &str) -> String {
    format!(
        "[[route]]\nname = \"orders\"\nprefix = \"/api\"\nupstreams = [\"http://127.0.0.1:1\"]\nauth = \"jwt\"\n{extra}\n"
    )
}

#[test]
fn a_limit_is_a_bucket_of_requests_plus_burst_refilled_at_requests_per_seconds() {
    let t = routes(&route(
        "rate_limit = { requests = 100, per_seconds = 60, burst = 20, key = \"principal\" }",
    ))
    .unwrap();
    let l = t.get("orders").unwrap().rate_limit.unwrap();
    assert_eq!(
        l,
        RateLimit {
            requests: 100,
            per_seconds: 60,
            burst: 20,
            key: RateKey::Principal
        }
    );
    assert_eq!(l.capacity(), 120);
    assert_eq!(l.emission_interval(), Duration::from_millis(600));
    // Burst is optional; a sub-table works like the inline one.
    let t = routes(&route(
        "[route.rate_limit]\nrequests = 3\nper_seconds = 1\nkey = \"route\"",
    ))
    .unwrap();
    let l = t.get("orders").unwrap().rate_limit.unwrap();
    assert_eq!((l.capacity(), l.key), (3, RateKey::Route));
    assert_eq!(l.emission_interval(), Duration::from_nanos(333_333_333));
    assert!(
        routes(&route(""))
            .unwrap()
            .get("orders")
            .unwrap()
            .rate_limit
            .is_none()
    );
}

#[test]
fn zero_negative_and_missing_values_are_refused_at_their_place() {
    let e = routes(&route(
        "rate_limit = { requests = 0, per_seconds = 60, key = \"ip\" }",
    ))
    .unwrap_err();
    assert_eq!(
        e,
        vec![
            "r.toml:6:27: route \"orders\": rate_limit.requests = 0 is out of range: it must be at least 1 and at most 1000000"
        ]
    );
    let e = routes(&route(
        "rate_limit = { requests = 5, per_seconds = -1, burst = -2, key = \"ip\" }",
    ))
    .unwrap_err();
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with(
            "r.toml:6:44: route \"orders\": rate_limit.per_seconds = -1 is out of range"
        ),
        "{e:?}"
    );
    assert!(e[1].starts_with("r.toml:6:56: route \"orders\": rate_limit.burst = -2 is out of range: it must be 0 or more"), "{e:?}");
    let e = routes(&route("rate_limit = { requests = 5, key = \"ip\" }")).unwrap_err();
    assert_eq!(
        e,
        vec!["r.toml:6:14: route \"orders\": rate_limit has no per_seconds"]
    );
    let e = routes(&route("rate_limit = { requests = 5, per_seconds = 1 }")).unwrap_err();
    assert_eq!(
        e,
        vec!["r.toml:6:14: route \"orders\": rate_limit has no key"]
    );
    let e = routes(&route(
        "rate_limit = { requests = 5, per_seconds = 100000, key = \"ip\" }",
    ))
    .unwrap_err();
    assert!(e[0].contains("at most 86400"), "{e:?}");
}

#[test]
fn unknown_fields_and_keys_are_refused_at_their_place() {
    let e = routes(&route(
        "rate_limit = { requests = 5, per_seconds = 1, burts = 2, key = \"ip\" }",
    ))
    .unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("r.toml:6:47: "), "{e:?}");
    assert!(e[0].contains("burts"), "{e:?}");
    let e = routes(&route(
        "rate_limit = { requests = 5, per_seconds = 1, key = \"user\" }",
    ))
    .unwrap_err();
    assert_eq!(
        e,
        vec!["r.toml:6:53: route \"orders\": unknown rate_limit key \"user\""]
    );
}

#[test]
fn a_public_route_has_no_principal_or_client_to_count_by() {
    let public = |key: &str| {
        format!(
            "[[route]]\nname = \"pub\"\nprefix = \"/p\"\nupstreams = [\"http://127.0.0.1:1\"]\nrate_limit = {{ requests = 5, per_seconds = 1, key = \"{key}\" }}\n"
        )
    };
    for key in ["principal", "client"] {
        let e = routes(&public(key)).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("r.toml:5:53: route \"pub\": rate_limit key = "),
            "{e:?}"
        );
        assert!(e[0].contains("a public route has none"), "{e:?}");
    }
    for key in ["ip", "route"] {
        assert!(routes(&public(key)).is_ok(), "{key}");
    }
}

#[test]
fn the_store_is_local_or_a_redis_url() {
    assert_eq!(config("").unwrap().rate_limit, RateLimits::default());
    let c = config("[rate_limit]\nstore = \"local\"\n").unwrap();
    assert_eq!(c.rate_limit.store, RateStore::Local);
    let c = config("[rate_limit]\nstore = \"redis://127.0.0.1:6379/2\"\n").unwrap();
    let RateStore::Redis(url) = &c.rate_limit.store else {
        panic!("not redis")
    };
    assert_eq!(url.expose(), "redis://127.0.0.1:6379/2");
    assert_eq!(url.to_string(), "redis://127.0.0.1:6379/2");
    // A password is used, never shown.
    let c = config("[rate_limit]\nstore = \"redis://:hunter2@redis.internal\"\n").unwrap();
    assert!(!format!("{:?}", c.rate_limit).contains("hunter2"));
    assert!(format!("{c:?}").contains("redis://redis.internal:6379"));
    for (bad, why) in [
        ("http://127.0.0.1:6379", "is not redis://"),
        ("rediss://127.0.0.1", "TLS to Redis"),
        ("redis://127.0.0.1:6379/cache", "database number"),
        ("127.0.0.1:6379", "neither \"local\" nor a URL"),
        ("redis://:hunter2@h/x", "database number"),
        ("lokal", "neither \"local\" nor a URL"),
    ] {
        let e = config(&format!("[rate_limit]\nstore = \"{bad}\"\n")).unwrap_err();
        assert_eq!(e.len(), 1, "{bad}: {e:?}");
        assert!(e[0].starts_with("4:9: rate_limit.store: "), "{bad}: {e:?}");
        assert!(e[0].contains(why), "{bad}: {e:?}");
        assert!(!e[0].contains("hunter2"), "{e:?}");
    }
    let e = config("[rate_limit]\nstore = \"local\"\nshared = true\n").unwrap_err();
    assert!(
        e[0].starts_with("5:1: ") && e[0].contains("shared"),
        "{e:?}"
    );
}

#[test]
fn the_issuer_counts_by_client_or_address() {
    let issuer = |key: &str| {
        format!(
            "[issuer]\nrate_limit = {{ requests = 10, per_seconds = 60, burst = 5, key = \"{key}\" }}\n"
        )
    };
    let c = config(&issuer("client")).unwrap();
    assert_eq!(
        c.rate_limit.issuer,
        Some(RateLimit {
            requests: 10,
            per_seconds: 60,
            burst: 5,
            key: RateKey::Client
        })
    );
    assert_eq!(
        config(&issuer("ip"))
            .unwrap()
            .rate_limit
            .issuer
            .unwrap()
            .key,
        RateKey::Ip
    );
    for (key, why) in [
        ("principal", "before anyone is authenticated"),
        ("route", "one bucket"),
    ] {
        let e = config(&issuer(key)).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("4:66: [issuer]: rate_limit key = "),
            "{e:?}"
        );
        assert!(e[0].contains(why), "{e:?}");
    }
}
