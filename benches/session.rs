//! Session cookie cost on a `session` route (issue 21 item 5): finding the cookie in the
//! `Cookie` header, opening it (base64 + AES-256-GCM of a ~2.4 KB body, as the gateway seals
//! a session of the embedded issuer: access and refresh tokens, who they stand for), the
//! opened-cookie cache hit that replaces the open on every request after the first, and the
//! body's parse that only a session new to the process pays.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, header};
use portcullis_gateway::session::cookie;
use portcullis_gateway::session::keys::Keys;
use portcullis_gateway::session::opened::Opened;
use portcullis_gateway::session::state::{Body, Header, SESSION_PURPOSE, Who};

const NAME: &str = "__Host-portcullis";

/// A JWT-shaped token of `len` characters.
fn token(len: usize) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..len)
        .map(|i| {
            if i % 400 == 399 {
                '.'
            } else {
                alphabet[(i * 7 + i / 3) % 64] as char
            }
        })
        .collect()
}

/// A session cookie's value and plaintext body, sized like the bench's (token 1,200 bytes).
fn sealed() -> (Keys, String, Vec<u8>) {
    let keys = Keys::from_raw(&[[7u8; 32]]).expect("key");
    let body = Body {
        at: token(1200),
        at_exp: 1_900_000_000,
        at_life: 300,
        rt: Some(token(700)),
        it: None,
        who: Who {
            iss: "https://localhost:8443/auth/realms/myrealm".into(),
            sub: "0b0e6f4c-3d2a-4f63-9a57-2f9d8c1e7a10".into(),
            name: Some("alice".into()),
            email: Some("alice@example.com".into()),
            groups: vec!["/staff".into()],
            roles: vec!["user".into(), "offline_access".into()],
        },
    };
    let json = serde_json::to_vec(&body).expect("json");
    let head = Header {
        sid: [3; 16],
        rev: 0,
        created: 1_800_000_000,
        seen: 1_800_000_000,
    };
    let value = keys
        .seal(SESSION_PURPOSE, head.encode(&json))
        .expect("seal");
    (keys, value, json)
}

fn cookie_open(c: &mut Criterion) {
    let (keys, value, json) = sealed();
    let mut one = HeaderMap::new();
    let line = format!("_ga=GA1.1.123456789.1700000000; {NAME}={value}; theme=dark");
    one.insert(
        header::COOKIE,
        HeaderValue::from_str(&line).expect("header"),
    );
    let (a, b) = value.split_at(value.len() / 2);
    let mut two = HeaderMap::new();
    let line = format!("{NAME}.0={a}; {NAME}.1={b}");
    two.insert(
        header::COOKIE,
        HeaderValue::from_str(&line).expect("header"),
    );
    let opened = Opened::default();
    let head = keys
        .open(SESSION_PURPOSE, &value)
        .ok()
        .and_then(|p| Header::decode(&p).map(|(h, _)| h))
        .expect("opens");
    opened.insert(&value, head);

    let mut g = c.benchmark_group("cookie_open");
    g.bench_function("read_one_cookie", |bch| {
        bch.iter(|| cookie::read(black_box(&one), NAME).map(|v| v.len()))
    });
    g.bench_function("read_two_chunks", |bch| {
        bch.iter(|| cookie::read(black_box(&two), NAME).map(|v| v.len()))
    });
    g.bench_function("aead_open", |bch| {
        bch.iter(|| {
            let plain = keys.open(SESSION_PURPOSE, black_box(&value)).ok()?;
            Header::decode(&plain).map(|(h, _)| h)
        })
    });
    g.bench_function("opened_cache_hit", |bch| {
        bch.iter(|| opened.get(black_box(&value)))
    });
    g.bench_function("body_parse_first_request", |bch| {
        bch.iter(|| serde_json::from_slice::<Body>(black_box(&json)).ok())
    });
    g.finish();
    eprintln!(
        "cookie_open: sealed value {} bytes, body {} bytes",
        value.len(),
        json.len()
    );
}

criterion_group!(benches, cookie_open);
criterion_main!(benches);
