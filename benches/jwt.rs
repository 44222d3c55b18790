//! Bearer-token authentication cost: RS256 and ES256, cold (full verification) and cached.
//!
//! Keys are generated at start with the `openssl` CLI; the authenticator is built from a
//! `[[trust]]` block exactly as the gateway builds it, with the embedded key source.

use std::hint::black_box;
use std::pin::pin;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis_authn::{Authenticator, AuthnEnv, EmbeddedKeys, JwksRegistry};
use portcullis_core::clock::{self, Clock};
use portcullis_core::config::file::TrustFile;
use portcullis_core::config::{Diagnostics, SourceFile};

const ISS: &str = "https://idp.bench/realms/r";

fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the openssl CLI generates the bench keys");
    let mut stdin = child.stdin.take().expect("stdin");
    if let Some(i) = input {
        stdin.write_all(i).expect("write");
    }
    drop(stdin);
    child.wait_with_output().expect("openssl").stdout
}

fn key(alg: Algorithm, kid: &str) -> (EncodingKey, Jwk) {
    let pem = match alg {
        Algorithm::RS256 => openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
            None,
        ),
        _ => openssl(
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ],
            None,
        ),
    };
    let enc = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        _ => EncodingKey::from_ec_pem(&pem),
    }
    .expect("key");
    let mut jwk = Jwk::from_encoding_key(&enc, alg).expect("jwk");
    jwk.common.key_id = Some(kid.to_string());
    (enc, jwk)
}

struct Keys(Arc<JwkSet>);

impl EmbeddedKeys for Keys {
    fn key_set(&self) -> Arc<JwkSet> {
        self.0.clone()
    }
    fn version(&self) -> u64 {
        1
    }
}

#[derive(serde::Deserialize)]
struct Wrapper {
    trust: Vec<TrustFile>,
}

fn authenticator(keys: Vec<Jwk>, cache_entries: usize) -> Authenticator {
    let text = format!(
        "[[trust]]\nissuer = \"{ISS}\"\njwks_uri = \"embedded\"\naudiences = [\"myclient\"]\nalgorithms = [\"RS256\", \"ES256\"]\n"
    );
    let src = SourceFile {
        path: "bench.toml".into(),
        text,
    };
    let mut diags = Diagnostics::default();
    let w: Wrapper = src.parse_toml(&mut diags).expect("bench TOML");
    let clock = clock::system();
    let env = AuthnEnv {
        clock: clock.clone(),
        jwks: JwksRegistry::new(clock),
        embedded: Some(Arc::new(Keys(Arc::new(JwkSet { keys })))),
    };
    Authenticator::build(&src, &w.trust, &env, &mut diags)
        .expect("bench config")
        .with_cache(Duration::from_secs(300), cache_entries)
}

/// A Keycloak-sized access token.
fn token(enc: &EncodingKey, alg: Algorithm, kid: &str) -> Vec<u8> {
    let now = clock::SystemClock.now_unix();
    let claims = serde_json::json!({
        "iss": ISS, "sub": "7f3c2a9e-2b4d-4c1e-9f6a-1d2e3f4a5b6c", "aud": ["myclient", "account"],
        "azp": "myclient", "exp": now + 3600, "iat": now, "jti": "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e",
        "typ": "Bearer", "sid": "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d", "scope": "openid profile email",
        "preferred_username": "alice", "email": "alice@example.com", "email_verified": true,
        "groups": ["/staff", "/staff/support"],
        "realm_access": { "roles": ["viewer", "editor", "offline_access", "uma_authorization"] },
        "resource_access": { "account": { "roles": ["manage-account", "view-profile"] } },
    });
    let mut h = Header::new(alg);
    h.kid = Some(kid.to_string());
    let t = jsonwebtoken::encode(&h, &claims, enc).expect("sign");
    format!("Bearer {t}").into_bytes()
}

/// Runs `authenticate` to completion: it only awaits on a remote JWKS fetch, which the
/// embedded key source never does, so one poll finishes it (no runtime overhead measured).
fn run(auth: &Authenticator, header: &[u8]) {
    let mut fut = pin!(auth.authenticate(Some(header)));
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => {
            black_box(r.expect("bench token is valid"));
        }
        Poll::Pending => panic!("embedded keys never wait"),
    }
}

fn bench(c: &mut Criterion) {
    let (rsa, rsa_jwk) = key(Algorithm::RS256, "rsa");
    let (ec, ec_jwk) = key(Algorithm::ES256, "ec");
    let keys = vec![rsa_jwk, ec_jwk];
    let cold = authenticator(keys.clone(), 0);
    let cached = authenticator(keys, 1000);
    let mut g = c.benchmark_group("authenticate");
    for (name, header) in [
        ("RS256", token(&rsa, Algorithm::RS256, "rsa")),
        ("ES256", token(&ec, Algorithm::ES256, "ec")),
    ] {
        g.bench_function(format!("{name}/cold"), |b| {
            b.iter(|| run(&cold, black_box(&header)))
        });
        run(&cached, &header);
        g.bench_function(format!("{name}/cached"), |b| {
            b.iter(|| run(&cached, black_box(&header)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
