//! The GCRA on both stores: exactly `requests + burst` per key at once, a refill every
//! `per_seconds / requests`, the IETF header values, and limiters kept across reloads.

use std::time::Duration;

use governor::clock::FakeRelativeClock;

use super::local::LocalLimiter;
use super::*;
use portcullis_core::config::rate_limit::RateKey;

fn spec(requests: u32, per_seconds: u32, burst: u32, key: RateKey) -> RateLimit {
    RateLimit {
        requests,
        per_seconds,
        burst,
        key,
    }
}

#[test]
fn a_quick_run_gets_requests_plus_burst_then_one_per_interval() {
    let clock = FakeRelativeClock::default();
    let s = spec(100, 60, 20, RateKey::Principal);
    let l = LocalLimiter::with_clock(&s, clock.clone());
    let alice = "alice".to_string();
    let mut passed = 0;
    for i in 0..200 {
        let d = l.check(Key::Text(&alice));
        if d.allowed {
            passed += 1;
            assert_eq!(d.remaining, 119 - i, "remaining after {i}");
        }
    }
    assert_eq!(passed, 120);
    let d = l.check(Key::Text(&alice));
    assert!(!d.allowed);
    assert_eq!(d.remaining, 0);
    assert_eq!(
        d.reset,
        Duration::from_millis(600),
        "the next one is an interval away"
    );
    // One interval refills one request, not more.
    clock.advance(Duration::from_millis(600));
    assert!(l.check(Key::Text(&alice)).allowed);
    assert!(!l.check(Key::Text(&alice)).allowed);
    // A whole minute refills `requests`, and the burst stays on top only once full.
    clock.advance(Duration::from_secs(60));
    let again = (0..200)
        .filter(|_| l.check(Key::Text(&alice)).allowed)
        .count();
    assert_eq!(again, 100);
}

#[test]
fn keys_have_their_own_buckets() {
    let clock = FakeRelativeClock::default();
    let l = LocalLimiter::with_clock(&spec(2, 1, 1, RateKey::Principal), clock.clone());
    let (a, b) = ("alice".to_string(), "bob".to_string());
    assert_eq!((0..5).filter(|_| l.check(Key::Text(&a)).allowed).count(), 3);
    assert_eq!((0..5).filter(|_| l.check(Key::Text(&b)).allowed).count(), 3);
    assert_eq!(l.len(), 2);
    // Full buckets are forgotten by the sweep; a busy one is kept.
    clock.advance(Duration::from_secs(10));
    assert!(l.check(Key::Text(&a)).allowed);
    l.sweep();
    assert_eq!(l.len(), 1);

    let l = LocalLimiter::with_clock(&spec(1, 1, 0, RateKey::Ip), clock.clone());
    let one = Key::Ip("192.0.2.1".parse().unwrap());
    let two = Key::Ip("192.0.2.2".parse().unwrap());
    assert!(l.check(one).allowed && l.check(two).allowed);
    assert!(!l.check(one).allowed && !l.check(two).allowed);

    let l = LocalLimiter::with_clock(&spec(2, 1, 0, RateKey::Route), clock);
    assert!(l.check(Key::Route).allowed && l.check(Key::Text(&a)).allowed);
    assert!(!l.check(Key::Ip("192.0.2.1".parse().unwrap())).allowed);
}

#[test]
fn headers_follow_the_ietf_draft() {
    let l = Limiter::new("orders", spec(100, 60, 20, RateKey::Principal));
    assert_eq!(l.policy, "\"orders\";q=100;w=60;portcullis-burst=20");
    let d = Decision {
        allowed: true,
        remaining: 5,
        reset: Duration::from_millis(1200),
    };
    assert_eq!(l.header(&d), "\"orders\";r=5;t=2");
    let l = Limiter::new("a.b", spec(3, 1, 0, RateKey::Route));
    assert_eq!(l.policy, "\"a.b\";q=3;w=1");
    assert_eq!(l.redis_key(Key::Route), "portcullis:rl:a.b:route");
    let sub = "f:1".to_string();
    assert_eq!(l.redis_key(Key::Text(&sub)), "portcullis:rl:a.b:f:1");
    assert_eq!(
        l.redis_key(Key::Ip("2001:db8::1".parse().unwrap())),
        "portcullis:rl:a.b:2001:db8::1"
    );
    assert_eq!(ceil_seconds(Duration::ZERO), 0);
    assert_eq!(ceil_seconds(Duration::from_millis(1)), 1);
    assert_eq!(ceil_seconds(Duration::from_secs(2)), 2);
    assert_eq!(ceil_seconds(Duration::from_millis(2001)), 3);
}

fn table(dir: &std::path::Path, limit: &str) -> portcullis_core::route::RouteTable {
    std::fs::write(
        dir.join("r.toml"),
        format!(
            "[[route]]\nname = \"orders\"\nprefix = \"/o\"\nupstreams = [\"http://127.0.0.1:1\"]\n{limit}\n"
        ),
    )
    .unwrap();
    let guard = portcullis_core::config::Guard {
        guarded_ports: Default::default(),
        blocked_prefixes: vec![],
        allow_non_loopback_management: false,
    };
    let mut d = portcullis_core::config::Diagnostics::default();
    portcullis_core::route::RouteTable::load(dir, &guard, &mut d).unwrap()
}

#[test]
fn a_reload_keeps_the_buckets_of_an_unchanged_limit() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits::new(&RateLimits::default()).unwrap();
    let one = "rate_limit = { requests = 2, per_seconds = 60, key = \"route\" }";
    let gen1 = table(dir.path(), one);
    let l1 = limits.route(gen1.get("orders").unwrap()).unwrap();
    assert!(l1.local.check(Key::Route).allowed && l1.local.check(Key::Route).allowed);
    // Generation 2, same limit: same buckets, still empty.
    let gen2 = table(dir.path(), one);
    let l2 = limits.route(gen2.get("orders").unwrap()).unwrap();
    assert!(std::ptr::eq(l1, l2));
    assert!(!l2.local.check(Key::Route).allowed);
    // Generation 3 changes it: new buckets.
    let gen3 = table(
        dir.path(),
        "rate_limit = { requests = 3, per_seconds = 60, key = \"route\" }",
    );
    let l3 = limits.route(gen3.get("orders").unwrap()).unwrap();
    assert_eq!(l3.spec.requests, 3);
    assert!(l3.local.check(Key::Route).allowed);
    // No limit, no limiter.
    let gen4 = table(dir.path(), "");
    assert!(limits.route(gen4.get("orders").unwrap()).is_none());
}

/// A `redis-server` of this test only (free port, no persistence), killed on drop.
struct RedisServer {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn redis_server() -> (RedisServer, ::redis::aio::MultiplexedConnection) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let child = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server (Debian package redis-server) must be installed");
    let server = RedisServer { child, _dir: dir };
    let client = ::redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(conn) = client.get_multiplexed_async_connection().await {
            return (server, conn);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "redis-server did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The Lua GCRA on a real Redis: one `EVALSHA` per request, Redis' clock.
#[tokio::test(flavor = "multi_thread")]
async fn the_redis_script_is_the_same_gcra_in_one_round_trip() {
    let (_server, mut conn) = redis_server().await;
    let script = ::redis::Script::new(redis::GCRA_LUA);
    let key = "portcullis:rl:unit:k".to_string();
    // 10 per second, burst 2: T = 100 ms, capacity 12.
    let call = |conn: &mut ::redis::aio::MultiplexedConnection| {
        let mut inv = script.key(&key);
        inv.arg(100_000u64).arg(12u32);
        let mut conn = conn.clone();
        async move {
            inv.invoke_async::<(i64, i64, i64)>(&mut conn)
                .await
                .unwrap()
        }
    };
    let mut remaining = Vec::new();
    for _ in 0..12 {
        let (allowed, r, reset) = call(&mut conn).await;
        assert_eq!(allowed, 1);
        assert!(reset > 0 && reset <= 1_200_000, "{reset}");
        remaining.push(r);
    }
    assert_eq!(remaining, (0..12).rev().collect::<Vec<i64>>());
    let (allowed, r, retry) = call(&mut conn).await;
    assert_eq!((allowed, r), (0, 0));
    assert!(retry > 0 && retry <= 100_000, "retry in {retry} µs");
    // The key expires once the bucket would be whole again.
    let ttl: i64 = ::redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 1_200, "{ttl}");
    tokio::time::sleep(Duration::from_micros(u64::try_from(retry).unwrap() + 5_000)).await;
    assert_eq!(call(&mut conn).await.0, 1, "refilled one");
    assert_eq!(call(&mut conn).await.0, 0, "only one");
    let _: () = ::redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
}
