//! The rate-limit phase's pure parts: whose address counts, which issuer requests count, and
//! which OAuth client a request names.

use super::*;

fn values(v: &[&str]) -> Vec<HeaderValue> {
    v.iter()
        .map(|s| HeaderValue::from_str(s).unwrap())
        .collect()
}

fn nets(v: &[&str]) -> Vec<IpNet> {
    v.iter().map(|s| s.parse().unwrap()).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn an_untrusted_peer_is_counted_by_its_own_address_whatever_it_forwards() {
    let xff = values(&["6.6.6.6", "7.7.7.7, 8.8.8.8"]);
    let trusted = nets(&["10.0.0.0/8"]);
    let a = client_address(xff.iter(), Some(ip("203.0.113.7")), false, &trusted);
    assert_eq!(a, ip("203.0.113.7"));
    let a = client_address(xff.iter(), None, false, &trusted);
    assert_eq!(a, ip("::"));
}

#[test]
fn behind_trusted_proxies_the_nearest_untrusted_hop_counts() {
    let trusted = nets(&["10.0.0.0/8"]);
    // Client-supplied junk on the left is never reached: 198.51.100.4 is the first hop the
    // trusted proxies did not add themselves.
    let xff = values(&["6.6.6.6, 198.51.100.4", "10.1.1.1"]);
    let a = client_address(xff.iter(), Some(ip("10.0.0.2")), true, &trusted);
    assert_eq!(a, ip("198.51.100.4"));
    // Garbage stops the walk at the last verified hop.
    let xff = values(&["198.51.100.4, not-an-ip, 10.1.1.1"]);
    let a = client_address(xff.iter(), Some(ip("10.0.0.2")), true, &trusted);
    assert_eq!(a, ip("10.1.1.1"));
    // No header: the proxy itself.
    let a = client_address([].iter(), Some(ip("10.0.0.2")), true, &trusted);
    assert_eq!(a, ip("10.0.0.2"));
}

#[test]
fn ipv6_clients_are_counted_by_their_64() {
    let a = client_address([].iter(), Some(ip("2001:db8:1:2:aaaa::1")), false, &[]);
    let b = client_address([].iter(), Some(ip("2001:db8:1:2:bbbb::9")), false, &[]);
    let c = client_address([].iter(), Some(ip("2001:db8:1:3::1")), false, &[]);
    assert_eq!(a, ip("2001:db8:1:2::"));
    assert_eq!(a, b);
    assert_ne!(a, c);
    let mapped = client_address([].iter(), Some(ip("::ffff:192.0.2.9")), false, &[]);
    assert_eq!(mapped, ip("192.0.2.9"));
}

#[test]
fn the_issuer_limit_counts_posts_to_the_token_endpoint_and_the_login_form() {
    let post = http::Method::POST;
    for p in [
        "/auth/realms/myrealm/protocol/openid-connect/token",
        "/auth/realms/myrealm/protocol/openid-connect/auth?client_id=x&tab=1",
        "/auth/realms/myrealm/login-actions/reset-credentials",
        "/auth/realms/myrealm/login-actions/registration?client_id=x",
    ] {
        assert!(issuer_counts(&post, p), "{p}");
    }
    for p in [
        "/auth/realms/myrealm/protocol/openid-connect/token/introspect",
        "/auth/realms/myrealm/protocol/openid-connect/userinfo",
        "/auth/realms/myrealm/login-actions/action-token",
        "/auth/realms//protocol/openid-connect/token",
        "/auth/admin/realms/myrealm/protocol/openid-connect/token",
    ] {
        assert!(!issuer_counts(&post, p), "{p}");
    }
    let get = http::Method::GET;
    assert!(!issuer_counts(
        &get,
        "/auth/realms/myrealm/protocol/openid-connect/auth"
    ));
}

#[test]
fn the_oauth_client_is_basics_user_else_the_forms_client_id() {
    let mut h = HeaderMap::new();
    assert_eq!(
        oauth_client(&h, b"grant_type=password&client_id=my%2Bclient"),
        Some("my+client".to_string())
    );
    assert_eq!(oauth_client(&h, b"grant_type=password"), None);
    assert_eq!(oauth_client(&h, b"client_id="), None);
    let long = format!("client_id={}", "a".repeat(300));
    assert_eq!(oauth_client(&h, long.as_bytes()), None);
    // Basic wins, and its user is form-decoded (RFC 6749 §2.3.1): "svc%3Areports" is "svc:reports".
    let basic = base64::engine::general_purpose::STANDARD.encode("svc%3Areports:s3cret");
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Basic {basic}")).unwrap(),
    );
    assert_eq!(
        oauth_client(&h, b"client_id=other"),
        Some("svc:reports".to_string())
    );
    h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
    assert_eq!(
        oauth_client(&h, b"client_id=other"),
        Some("other".to_string())
    );
}
