//! The verified-token cache never accepts what the full check would refuse.

use std::time::Duration;

use serde_json::json;

use super::support::*;

#[tokio::test]
async fn cache_never_outlives_exp() {
    let f = Fixture::new();
    let auth = f.build(&trust_toml("embedded", "leeway_seconds = 0"));
    let t = rsa().sign(&with(claims(), "exp", json!(NOW + 100)));
    assert_eq!(reason_of(&auth, &t).await, "ok");
    assert_eq!(auth.cache.len(), 1, "verified token is cached");
    f.clock.advance(99);
    assert_eq!(
        reason_of(&auth, &t).await,
        "ok",
        "still valid one second before exp"
    );
    f.clock.advance(1);
    assert_eq!(
        reason_of(&auth, &t).await,
        "expired",
        "refused at exp, cache or not"
    );
    assert_eq!(auth.cache.len(), 0, "expired entry dropped");
}

#[tokio::test]
async fn cache_entry_honours_leeway_like_the_full_check() {
    let f = Fixture::new();
    let auth = f.default_auth(); // leeway 30
    let t = rsa().sign(&with(claims(), "exp", json!(NOW + 10)));
    assert_eq!(reason_of(&auth, &t).await, "ok");
    f.clock.advance(39);
    assert_eq!(reason_of(&auth, &t).await, "ok");
    f.clock.advance(1);
    assert_eq!(reason_of(&auth, &t).await, "expired");
}

#[tokio::test]
async fn cache_ttl_bounds_an_entry() {
    let f = Fixture::new();
    let auth = f.default_auth().with_cache(Duration::from_secs(60), 10);
    let t = rsa().sign(&with(claims(), "exp", json!(NOW + 3600)));
    assert_eq!(reason_of(&auth, &t).await, "ok");
    assert_eq!(auth.cache.len(), 1);
    f.clock.advance(61);
    // The entry is gone; the full check runs again (and passes, and re-caches).
    assert_eq!(reason_of(&auth, &t).await, "ok");
    assert_eq!(auth.cache.len(), 1);
}

#[tokio::test]
async fn cache_is_bounded() {
    let f = Fixture::new();
    let auth = f.default_auth().with_cache(Duration::from_secs(300), 20);
    for i in 0..60 {
        let t = ec().sign(&with(claims(), "jti", json!(i)));
        assert_eq!(reason_of(&auth, &t).await, "ok");
        assert!(auth.cache.len() <= 20, "cache grew to {}", auth.cache.len());
    }
}

#[tokio::test]
async fn disabled_cache_stores_nothing() {
    let f = Fixture::new();
    let auth = f.default_auth().with_cache(Duration::from_secs(300), 0);
    assert_eq!(reason_of(&auth, &rsa().sign(&claims())).await, "ok");
    assert_eq!(auth.cache.len(), 0);
}

#[tokio::test]
async fn refused_tokens_are_never_cached() {
    let f = Fixture::new();
    let auth = f.default_auth();
    let t = rsa().sign(&with(claims(), "nbf", json!(NOW + 120)));
    assert_eq!(reason_of(&auth, &t).await, "not_yet_valid");
    assert_eq!(auth.cache.len(), 0);
}
