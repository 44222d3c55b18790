//! Remote JWKS against a real HTTP server on 127.0.0.1:0: rotation, rate limit, outage, max-age.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use serde_json::json;

use super::support::*;
use crate::Authenticator;
use crate::jwks::{MAX_MAX_AGE, MIN_MAX_AGE, cache_max_age};
use crate::keys::KeySet;
use portcullis_core::metrics::metrics;

#[derive(Clone)]
struct ServerState {
    hits: Arc<AtomicUsize>,
    keys: Arc<Mutex<JwkSet>>,
    cache_control: Arc<Mutex<Option<String>>>,
}

async fn certs(State(s): State<ServerState>) -> impl IntoResponse {
    s.hits.fetch_add(1, Ordering::SeqCst);
    let body = serde_json::to_string(&*s.keys.lock().unwrap()).unwrap();
    let cc = s.cache_control.lock().unwrap().clone();
    let mut resp = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(cc) = cc {
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, cc.parse().unwrap());
    }
    resp
}

struct JwksServer {
    url: String,
    state: ServerState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    async fn start(keys: Vec<Jwk>, cache_control: Option<&str>) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/certs", listener.local_addr().unwrap());
        let state = ServerState {
            hits: Arc::new(AtomicUsize::new(0)),
            keys: Arc::new(Mutex::new(JwkSet { keys })),
            cache_control: Arc::new(Mutex::new(cache_control.map(str::to_string))),
        };
        let app = axum::Router::new()
            .route("/certs", axum::routing::get(certs))
            .with_state(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        JwksServer {
            url,
            state,
            stop: Some(tx),
            task,
        }
    }

    fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    fn set_keys(&self, keys: Vec<Jwk>) {
        self.state.keys.lock().unwrap().keys = keys;
    }

    /// Stops the server for real: the port refuses connections afterwards.
    async fn shut_down(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("server stops")
            .unwrap();
    }
}

/// A trust block for `url` under a test-unique issuer (metrics are process-wide).
fn remote(f: &Fixture, iss: &str, url: &str) -> Authenticator {
    f.build(&format!(
        "[[trust]]\nissuer = \"{iss}\"\njwks_uri = \"{url}\"\naudiences = [\"{AUD}\"]\n"
    ))
}

fn token(key: &TestKey, iss: &str, now: u64) -> String {
    let c = with(
        with(claims(), "iss", json!(iss)),
        "exp",
        json!(now + 3 * 86_400),
    );
    key.sign(&with(c, "iat", json!(now)))
}

fn refreshes(iss: &str, result: &str) -> u64 {
    metrics()
        .jwks_refreshes
        .with_label_values(&[iss, result])
        .get()
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn rotation_new_kid_accepted_after_refetch_and_rate_limited() {
    let iss = "https://idp.test/rotation";
    let server = JwksServer::start(vec![rsa().jwk()], None).await;
    let f = Fixture::new();
    let auth = remote(&f, iss, &server.url);
    f.env.jwks.prefetch_all().await;
    assert_eq!(server.hits(), 1);
    assert_eq!(refreshes(iss, "success"), 1);
    assert_eq!(reason_of(&auth, &token(rsa(), iss, NOW)).await, "ok");

    let new_key = TestKey::generate(Algorithm::ES256, "ec-rotated");
    server.set_keys(vec![rsa().jwk(), new_key.jwk()]);
    // Within 10 s of the last fetch: no refetch, the new kid is unknown for now.
    assert_eq!(
        reason_of(&auth, &token(&new_key, iss, NOW)).await,
        "unknown_kid"
    );
    assert_eq!(server.hits(), 1);

    f.clock.advance(10);
    assert_eq!(reason_of(&auth, &token(&new_key, iss, NOW)).await, "ok");
    assert_eq!(server.hits(), 2);

    // A flood of made-up kids costs the issuer nothing more within 10 s.
    let ghost = TestKey::generate(Algorithm::ES256, "ghost");
    for _ in 0..20 {
        assert_eq!(
            reason_of(&auth, &token(&ghost, iss, NOW)).await,
            "unknown_kid"
        );
    }
    assert_eq!(server.hits(), 2);
    f.clock.advance(10);
    assert_eq!(
        reason_of(&auth, &token(&ghost, iss, NOW)).await,
        "unknown_kid"
    );
    assert_eq!(server.hits(), 3);
    server.shut_down().await;
}

#[tokio::test]
async fn issuer_outage_serves_the_cached_keys_for_a_day() {
    let iss = "https://idp.test/outage";
    let server = JwksServer::start(vec![rsa().jwk()], None).await;
    let f = Fixture::new();
    // No token cache here: every request must go to the keys.
    let auth = remote(&f, iss, &server.url).with_cache(Duration::from_secs(300), 0);
    f.env.jwks.prefetch_all().await;
    assert_eq!(reason_of(&auth, &token(rsa(), iss, NOW)).await, "ok");
    server.shut_down().await;

    f.clock.advance(301); // past the default 5 min freshness
    assert_eq!(
        reason_of(&auth, &token(rsa(), iss, NOW)).await,
        "ok",
        "stale keys served"
    );
    eventually("a failed refresh", || refreshes(iss, "failure") >= 1).await;
    assert_eq!(
        reason_of(&auth, &token(rsa(), iss, NOW)).await,
        "ok",
        "still after the failure"
    );

    f.clock.set(NOW + 300 + 86_400 - 1);
    assert_eq!(
        reason_of(&auth, &token(rsa(), iss, NOW)).await,
        "ok",
        "last second of staleness"
    );
    f.clock.set(NOW + 300 + 86_400);
    assert_eq!(
        reason_of(&auth, &token(rsa(), iss, NOW)).await,
        "jwks_unavailable"
    );
}

#[tokio::test]
async fn max_age_is_honoured() {
    let iss = "https://idp.test/max-age";
    let server = JwksServer::start(vec![rsa().jwk()], Some("public, max-age=120")).await;
    let f = Fixture::new();
    let auth = remote(&f, iss, &server.url).with_cache(Duration::from_secs(300), 0);
    f.env.jwks.prefetch_all().await;
    f.clock.advance(119);
    assert_eq!(reason_of(&auth, &token(rsa(), iss, NOW)).await, "ok");
    assert_eq!(server.hits(), 1, "fresh for 120 s");
    f.clock.advance(2);
    assert_eq!(reason_of(&auth, &token(rsa(), iss, NOW)).await, "ok");
    eventually("a refresh after max-age", || server.hits() == 2).await;
    server.shut_down().await;
}

#[test]
fn cache_control_is_clamped() {
    assert_eq!(cache_max_age("max-age=5"), 60);
    assert_eq!(cache_max_age("public, max-age=600"), 600);
    assert_eq!(cache_max_age("max-age=9999999"), 86_400);
    assert_eq!(cache_max_age("no-store"), 60);
    assert_eq!(cache_max_age("public"), 300);
    assert_eq!(cache_max_age("max-age=abc"), 300);
}

#[test]
fn cache_control_bounds_are_the_public_ones() {
    assert_eq!((MIN_MAX_AGE, MAX_MAX_AGE), (60, 86_400));
    assert_eq!(cache_max_age("max-age=0"), MIN_MAX_AGE);
    assert_eq!(cache_max_age("max-age=18446744073709551615"), MAX_MAX_AGE);
}

#[test]
fn a_key_set_counts_only_usable_signing_keys() {
    let mut encryption = rsa_other().jwk();
    encryption.common.public_key_use = Some(PublicKeyUse::Encryption);
    let keys = vec![rsa().jwk(), ec().jwk(), encryption];
    let set = KeySet::parse(Arc::new(JwkSet { keys }), 1, 0);
    assert_eq!(set.len(), 2);
    assert!(!set.is_empty());
    let none = KeySet::parse(Arc::new(JwkSet { keys: Vec::new() }), 1, 0);
    assert!(none.is_empty());
}

#[tokio::test]
async fn remote_key_change_invalidates_cached_tokens() {
    let iss = "https://idp.test/invalidate";
    let server = JwksServer::start(vec![rsa().jwk()], None).await;
    let f = Fixture::new();
    let auth = remote(&f, iss, &server.url);
    f.env.jwks.prefetch_all().await;
    let old = token(rsa(), iss, NOW);
    assert_eq!(reason_of(&auth, &old).await, "ok");
    server.set_keys(vec![ec().jwk()]);
    f.clock.advance(10);
    assert_eq!(
        reason_of(&auth, &token(ec(), iss, NOW)).await,
        "ok",
        "refetched"
    );
    assert_eq!(
        reason_of(&auth, &old).await,
        "unknown_kid",
        "cached token no longer vouched for"
    );
    server.shut_down().await;
}

#[tokio::test]
async fn registry_outlives_reloads() {
    let iss = "https://idp.test/reload";
    let server = JwksServer::start(vec![rsa().jwk()], None).await;
    let f = Fixture::new();
    let first = remote(&f, iss, &server.url);
    f.env.jwks.prefetch_all().await;
    assert_eq!(reason_of(&first, &token(rsa(), iss, NOW)).await, "ok");
    let reloaded = remote(&f, iss, &server.url);
    reloaded.prefetch(Duration::from_secs(5)).await;
    assert_eq!(reason_of(&reloaded, &token(rsa(), iss, NOW)).await, "ok");
    assert_eq!(server.hits(), 1, "a reload does not refetch");
    server.shut_down().await;
}

#[tokio::test]
async fn prefetch_is_bounded_when_the_issuer_hangs() {
    // Accepts connections (kernel backlog) but never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/certs", hang.local_addr().unwrap());
    let f = Fixture::new();
    let auth = remote(&f, "https://idp.test/hang", &url);
    let start = Instant::now();
    f.env
        .jwks
        .prefetch_all_within(Duration::from_millis(300))
        .await;
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    drop(hang);
    // Nothing was ever fetched and the rate limit holds the next attempt: refused, not hung.
    let start = Instant::now();
    assert_eq!(
        reason_of(&auth, &token(rsa(), "https://idp.test/hang", NOW)).await,
        "jwks_unavailable"
    );
    assert!(start.elapsed() < Duration::from_secs(3));
}
