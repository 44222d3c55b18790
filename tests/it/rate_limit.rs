//! Rate limits end to end (DESIGN §12): exactly `requests + burst` answers per key, then 429
//! with a JSON body, `Retry-After` and the IETF `RateLimit-Policy`/`RateLimit` fields; keys
//! kept apart; a spoofed `X-Forwarded-For` from an untrusted peer changing nothing; refill; two
//! gateways sharing a limit on a real Redis; Redis stopped → each gateway's own limits, no 5xx;
//! the embedded issuer's token endpoint and login form.

use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Gateway, Opts, Upstream, eventually, free_port, route};
use crate::idp::{Jwks, Key};

/// A `redis-server` of this test only, on a free port, without persistence; killed on drop.
struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    async fn start() -> Redis {
        Self::start_on(free_port()).await
    }

    async fn start_on(port: u16) -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server) must be installed");
        let r = Redis {
            child,
            port,
            _dir: dir,
        };
        eventually("redis-server answers", Duration::from_secs(10), || async {
            r.ping().await
        })
        .await;
        r
    }

    async fn ping(&self) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").await.is_ok()
            && matches!(s.read(&mut buf).await, Ok(n) if buf[..n].starts_with(b"+PONG"))
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A plain-HTTP client whose connections come from `ip` (any 127.0.0.0/8 address is this host).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
}

async fn metric(gw: &Gateway, line: &str) -> bool {
    gw.metrics().await.lines().any(|l| l == line)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_principal_gets_requests_plus_burst_then_429_with_the_ietf_fields() {
    let up = Upstream::start().await;
    let key = Key::rsa("k1");
    let jwks = Jwks::start(vec![key.jwk()]).await;
    let limit = "rate_limit = { requests = 5, per_seconds = 60, burst = 2, key = \"principal\" }";
    let mut o = Opts::new(route(
        "orders",
        "/api/orders",
        &[up.url()],
        &format!("auth = \"jwt\"\n{limit}"),
    ))
    .extra(&jwks.trust_block());
    o.policies = crate::auth::POLICY.to_string();
    let gw = Gateway::start(o).await;
    let c = gw.client();
    let alice = key.token("alice", &["/staff"], &[]);
    let get = |token: &str| c.get(gw.url("/api/orders/1")).bearer_auth(token).send();

    for i in 0..7 {
        let r = get(&alice).await.unwrap();
        assert_eq!(r.status(), 200, "request {i}");
        assert_eq!(
            header(&r, "ratelimit-policy"),
            "\"orders\";q=5;w=60;portcullis-burst=2"
        );
        let rl = header(&r, "ratelimit");
        assert!(
            rl.starts_with(&format!("\"orders\";r={};t=", 6 - i)),
            "request {i}: {rl}"
        );
    }
    let r = get(&alice).await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = header(&r, "retry-after").parse().unwrap();
    // One request back every 12 s.
    assert!((1..=12).contains(&retry), "{retry}");
    assert_eq!(
        header(&r, "ratelimit-policy"),
        "\"orders\";q=5;w=60;portcullis-burst=2"
    );
    assert_eq!(header(&r, "ratelimit"), format!("\"orders\";r=0;t={retry}"));
    assert_eq!(header(&r, "content-type"), "application/json");
    let id = header(&r, "x-request-id").to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests");
    assert_eq!(body["request_id"], id.as_str());
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains(&format!("retry after {retry} s")),
        "{body}"
    );
    assert_eq!(up.hits(), 7, "a refused request never reaches the upstream");

    // Bob has his own bucket; alice stays refused.
    let bob = key.token("bob", &["/staff"], &[]);
    let mut bob_ok = 0;
    for _ in 0..9 {
        if get(&bob).await.unwrap().status() == 200 {
            bob_ok += 1;
        }
    }
    assert_eq!(bob_ok, 7);
    assert_eq!(get(&alice).await.unwrap().status(), 429);

    assert!(metric(&gw, "portcullis_rate_limited_total{route=\"orders\"} 4").await);
    assert!(
        metric(
            &gw,
            "portcullis_http_requests_total{method=\"GET\",route=\"orders\",status=\"429\"} 4"
        )
        .await
    );
    assert!(metric(&gw, "portcullis_rate_limit_store_up 1").await);
    eventually("audit lines", Duration::from_secs(5), || async {
        gw.stdout().lines().count() >= 18
    })
    .await;
    let limited: Vec<Value> = gw
        .stdout()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["status"] == 429)
        .collect();
    assert_eq!(limited.len(), 4);
    for l in &limited {
        assert_eq!(l["decision"], "rate_limited");
        assert_eq!(l["reason"], "rate_limit");
        assert_eq!(l["route"], "orders");
    }
}

fn ip_gateway_opts(up: &Upstream, limit: &str, trusted: &str) -> Opts {
    let mut o = Opts::new(route("pub", "/pub", &[up.url()], limit))
        .extra(&format!("[forwarded]\ntrusted_proxies = [{trusted}]"));
    o.tls = false;
    o
}

#[tokio::test(flavor = "multi_thread")]
async fn addresses_have_their_own_buckets_and_a_spoofed_forwarded_for_changes_nothing() {
    let up = Upstream::start().await;
    let limit = "rate_limit = { requests = 3, per_seconds = 60, key = \"ip\" }";
    let gw = Gateway::start(ip_gateway_opts(&up, limit, "\"127.0.0.3\"")).await;
    let url = gw.url("/pub/x");

    // An untrusted peer (127.0.0.1) claiming a new address each time: still one bucket.
    let one = client_from("127.0.0.1");
    let mut statuses = Vec::new();
    for i in 0..5 {
        let r = one
            .get(&url)
            .header("X-Forwarded-For", format!("198.51.100.{i}"))
            .header("Forwarded", format!("for=198.51.100.{i}"))
            .header("X-Real-IP", format!("198.51.100.{i}"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);

    // Another address has its own bucket.
    let two = client_from("127.0.0.2");
    let ok = count_ok(&two, &url, 5, &[]).await;
    assert_eq!(ok, 3);

    // A trusted proxy (127.0.0.3) speaks for its clients: each forwarded client is counted
    // apart, and one it never named is the proxy itself.
    let proxy = client_from("127.0.0.3");
    for client in ["203.0.113.1", "203.0.113.2"] {
        let ok = count_ok(&proxy, &url, 5, &[("X-Forwarded-For", client)]).await;
        assert_eq!(ok, 3, "{client}");
    }
    let ok = count_ok(
        &proxy,
        &url,
        5,
        &[("X-Forwarded-For", "198.51.100.9, 203.0.113.1")],
    )
    .await;
    assert_eq!(ok, 0, "the nearest untrusted hop, 203.0.113.1, is spent");
    assert!(metric(&gw, "portcullis_rate_limited_total{route=\"pub\"} 13").await);
}

/// How many of `n` sequential GETs to `url` got 200.
async fn count_ok(c: &reqwest::Client, url: &str, n: usize, h: &[(&str, &str)]) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        let mut req = c.get(url);
        for (k, v) in h {
            req = req.header(*k, *v);
        }
        let s = req.send().await.unwrap().status();
        assert!(s == 200 || s == 429, "{s}");
        ok += usize::from(s == 200);
    }
    ok
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_bucket_refills_one_request_per_interval() {
    let up = Upstream::start().await;
    // 10 per second: one back every 100 ms.
    let limit = "rate_limit = { requests = 10, per_seconds = 1, key = \"route\" }";
    let gw = Gateway::start(ip_gateway_opts(&up, limit, "")).await;
    let c = client_from("127.0.0.1");
    let url = gw.url("/pub/x");
    let start = Instant::now();
    let ok = count_ok(&c, &url, 12, &[]).await;
    // Within ±1: the run itself may take long enough for one refill.
    assert!((10..=11).contains(&ok), "{ok}");
    let spent = Instant::now();
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after"), "1", "100 ms, rounded up");
    eventually("a refill", Duration::from_secs(2), || async {
        c.get(&url).send().await.unwrap().status() == 200
    })
    .await;
    let refill = spent.elapsed();
    assert!(
        refill >= Duration::from_millis(40) && refill < Duration::from_millis(1500),
        "{refill:?} (run took {:?})",
        spent - start
    );
    assert_eq!(
        c.get(&url).send().await.unwrap().status(),
        429,
        "one at a time"
    );
}

fn shared_opts(up: &Upstream, redis: &str, capacity: u32) -> Opts {
    let limit =
        format!("rate_limit = {{ requests = {capacity}, per_seconds = 600, key = \"route\" }}");
    let mut o = Opts::new(route("shared", "/shared", &[up.url()], &limit))
        .extra(&format!("[rate_limit]\nstore = \"{redis}\""));
    o.tls = false;
    o
}

async fn store_up(gw: &Gateway, up: bool) {
    let line = format!("portcullis_rate_limit_store_up {}", u8::from(up));
    eventually(&line, Duration::from_secs(10), || async {
        metric(gw, &line).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_gateways_share_one_limit_on_redis() {
    let redis = Redis::start().await;
    let up = Upstream::start().await;
    let a = Gateway::start(shared_opts(&up, &redis.url(), 6)).await;
    let b = Gateway::start(shared_opts(&up, &redis.url(), 6)).await;
    store_up(&a, true).await;
    store_up(&b, true).await;
    let c = client_from("127.0.0.1");
    let mut ok = [0, 0];
    for i in 0..10 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let s = c.get(gw.url("/shared/x")).send().await.unwrap().status();
        assert!(s == 200 || s == 429, "{s}");
        ok[i % 2] += usize::from(s == 200);
    }
    // Alone each would have let 5 through; together they let the limit's 6 through.
    assert_eq!(ok, [3, 3]);
    assert_eq!(up.hits(), 6);
    assert!(metric(&a, "portcullis_rate_limited_total{route=\"shared\"} 2").await);
    assert!(metric(&a, "portcullis_rate_limit_store_errors_total 0").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_stopped_falls_back_to_each_gateways_own_limits() {
    let mut redis = Redis::start().await;
    let port = redis.port;
    let up = Upstream::start().await;
    let gw = Gateway::start(shared_opts(&up, &redis.url(), 5)).await;
    store_up(&gw, true).await;
    let c = client_from("127.0.0.1");
    let url = gw.url("/shared/x");
    assert_eq!(count_ok(&c, &url, 2, &[]).await, 2);

    redis.stop();
    // The first request after the stop meets the dead connection: counted here, as every
    // later one; none gets a 5xx, and the 3 left of the 5 pass.
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(c.get(&url).send().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429, 429, 429]);
    store_up(&gw, false).await;
    let m = gw.metrics().await;
    let errors: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("portcullis_rate_limit_store_errors_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(errors >= 1, "{m}");
    let ready = reqwest::get(gw.mgmt_url("/health/ready")).await.unwrap();
    assert_eq!(ready.status(), 200, "falling back is not unready");
    let fell = "rate-limit store failed: counting in this process";
    assert_eq!(gw.stderr().matches(fell).count(), 1, "{}", gw.stderr());

    // Redis back: shared again, and said so once.
    let _again = Redis::start_on(port).await;
    store_up(&gw, true).await;
    eventually(
        "the log of the recovery",
        Duration::from_secs(5),
        || async { gw.stderr().contains("rate-limit store answers") },
    )
    .await;
    assert_eq!(gw.stderr().matches(fell).count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_issuer_token_endpoint_and_login_form_are_limited_per_client() {
    let public = free_port();
    let base = format!("https://localhost:{public}/auth");
    let mut o = Opts::new(route("auth", "/auth", &["embedded:issuer".into()], "")).extra(&format!(
        "[issuer]\nfrontend_url = \"{base}\"\ndatabase = \"sqlite://data/portcullis.db\"\n\
             import = [\"{}\"]\n\
             rate_limit = {{ requests = 2, per_seconds = 600, key = \"client\" }}\n",
        crate::issuer::REALM_FILE
    ));
    o.public_port = Some(public);
    let gw = Gateway::start(o).await;
    let c = gw.client();
    let token_url = gw.url("/auth/realms/myrealm/protocol/openid-connect/token");
    let token = |client: &'static str| {
        c.post(&token_url)
            .form(&[
                ("grant_type", "password"),
                ("client_id", client),
                ("client_secret", "my-client-secret"),
                ("username", "alice"),
                ("password", "password"),
            ])
            .send()
    };
    for _ in 0..2 {
        assert_eq!(token("myclient").await.unwrap().status(), 200);
    }
    let r = token("myclient").await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "ratelimit-policy"), "\"@issuer\";q=2;w=600");
    assert!(header(&r, "ratelimit").starts_with("\"@issuer\";r=0;t="));
    let retry: u64 = header(&r, "retry-after").parse().unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests");

    // The same client through HTTP Basic, and through the login form: the same bucket.
    let r = c
        .post(&token_url)
        .basic_auth("myclient", Some("my-client-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let r = c
        .post(gw.url("/auth/realms/myrealm/protocol/openid-connect/auth"))
        .form(&[("client_id", "myclient"), ("username", "alice")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // Another client has its own bucket (the issuer itself refuses the wrong secret).
    let r = token("svc-reports").await.unwrap();
    assert!(matches!(r.status().as_u16(), 400 | 401), "{}", r.status());
    // What the limit does not count passes: discovery, and GETs of the login page.
    let r = c
        .get(gw.url("/auth/realms/myrealm/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(metric(&gw, "portcullis_rate_limited_total{route=\"auth\"} 3").await);
    eventually("audit lines", Duration::from_secs(5), || async {
        gw.stdout().matches("\"rate_limited\"").count() >= 3
    })
    .await;
    let line: Value = gw
        .stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["status"] == 429)
        .unwrap();
    assert_eq!(line["decision"], "rate_limited");
    assert_eq!(line["reason"], "issuer_rate_limit");
    assert_eq!(line["route"], "auth");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_whose_redis_never_answers_starts_ready_and_limits_locally() {
    let up = Upstream::start().await;
    // A port nothing listens on.
    let dead = format!("redis://127.0.0.1:{}", free_port());
    let gw = Gateway::start(shared_opts(&up, &dead, 3)).await;
    let c = client_from("127.0.0.1");
    let url = gw.url("/shared/x");
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(c.get(&url).send().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    assert!(metric(&gw, "portcullis_rate_limit_store_up 0").await);
    eventually("a second failed probe", Duration::from_secs(5), || async {
        gw.metrics()
            .await
            .lines()
            .filter_map(|l| l.strip_prefix("portcullis_rate_limit_store_errors_total "))
            .any(|n| n.parse::<u64>().unwrap() >= 2)
    })
    .await;
    let unreachable = "rate-limit store unreachable";
    assert_eq!(gw.stderr().matches(unreachable).count(), 1, "logged once");
}
