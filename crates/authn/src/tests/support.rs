//! Test fixtures: keys generated at test time (openssl CLI), signed tokens, authenticators.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Authenticator, AuthnEnv, EmbeddedKeys, JwksRegistry};
use portcullis_core::clock::{ManualClock, SharedClock};
use portcullis_core::config::file::TrustFile;
use portcullis_core::config::{Diagnostics, SourceFile};

pub const ISS: &str = "https://idp.test/realms/r";
pub const AUD: &str = "myclient";
pub const NOW: u64 = 1_800_000_000;

/// A private key in PEM (PKCS#8) and its public half, made by `openssl genpkey`.
pub struct TestKey {
    pub alg: Algorithm,
    pub kid: String,
    pub private_pem: Vec<u8>,
    pub public_pem: Vec<u8>,
}

fn openssl(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl CLI is needed to generate test keys");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl TestKey {
    pub fn generate(alg: Algorithm, kid: &str) -> TestKey {
        let private_pem = match alg {
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::PS256 => openssl(
                &[
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                ],
                None,
            ),
            Algorithm::ES256 => openssl(
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                ],
                None,
            ),
            Algorithm::EdDSA => openssl(&["genpkey", "-algorithm", "ed25519"], None),
            other => panic!("no test key for {other:?}"),
        };
        let public_pem = openssl(&["pkey", "-pubout"], Some(&private_pem));
        TestKey {
            alg,
            kid: kid.to_string(),
            private_pem,
            public_pem,
        }
    }

    pub fn encoding_key(&self) -> EncodingKey {
        match self.alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(&self.private_pem).unwrap(),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&self.private_pem).unwrap(),
            _ => EncodingKey::from_rsa_pem(&self.private_pem).unwrap(),
        }
    }

    pub fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.encoding_key(), self.alg).unwrap();
        jwk.common.key_id = Some(self.kid.clone());
        jwk
    }

    /// Signs `claims` with this key, `kid` and `alg` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        let mut h = Header::new(self.alg);
        h.kid = Some(self.kid.clone());
        self.sign_with(h, claims)
    }

    pub fn sign_with(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.encoding_key()).unwrap()
    }
}

/// Keys shared by all tests of the process (RSA generation costs ~100 ms).
pub fn rsa() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| TestKey::generate(Algorithm::RS256, "rsa-1"))
}

pub fn rsa_other() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| TestKey::generate(Algorithm::RS256, "rsa-1"))
}

pub fn ec() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| TestKey::generate(Algorithm::ES256, "ec-1"))
}

/// Claims of a good token at `NOW`.
pub fn claims() -> Value {
    json!({
        "iss": ISS,
        "sub": "user-1",
        "aud": AUD,
        "azp": AUD,
        "exp": NOW + 300,
        "iat": NOW - 10,
        "preferred_username": "alice",
        "email": "alice@example.com",
        "groups": ["/staff"],
        "realm_access": { "roles": ["viewer", "editor"] },
        "resource_access": { "myclient": { "roles": ["orders-admin"] } },
    })
}

pub fn with(mut base: Value, key: &str, v: Value) -> Value {
    base[key] = v;
    base
}

pub fn without(mut base: Value, key: &str) -> Value {
    base.as_object_mut().unwrap().remove(key);
    base
}

/// The embedded issuer's keys, as the real issuer would hand them over.
pub struct StaticKeys {
    set: Mutex<Arc<JwkSet>>,
    version: AtomicU64,
}

impl StaticKeys {
    pub fn new(keys: Vec<Jwk>) -> Arc<Self> {
        Arc::new(Self {
            set: Mutex::new(Arc::new(JwkSet { keys })),
            version: AtomicU64::new(1),
        })
    }

    pub fn rotate(&self, keys: Vec<Jwk>) {
        *self.set.lock().unwrap() = Arc::new(JwkSet { keys });
        self.version.fetch_add(1, Ordering::SeqCst);
    }
}

impl EmbeddedKeys for StaticKeys {
    fn key_set(&self) -> Arc<JwkSet> {
        self.set.lock().unwrap().clone()
    }
    fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }
}

#[derive(Deserialize)]
struct Wrapper {
    #[serde(default)]
    trust: Vec<TrustFile>,
}

pub struct Fixture {
    pub clock: Arc<ManualClock>,
    pub env: AuthnEnv,
    pub keys: Arc<StaticKeys>,
}

impl Fixture {
    /// An env whose embedded issuer publishes the RSA and EC test keys.
    pub fn new() -> Fixture {
        let clock = ManualClock::new(NOW);
        let shared: SharedClock = clock.clone();
        let keys = StaticKeys::new(vec![rsa().jwk(), ec().jwk()]);
        let env = AuthnEnv {
            clock: shared.clone(),
            jwks: JwksRegistry::new(shared),
            embedded: Some(keys.clone()),
        };
        Fixture { clock, env, keys }
    }

    /// Builds from `[[trust]]` TOML; panics with the diagnostics when it is refused.
    pub fn build(&self, toml: &str) -> Authenticator {
        let (auth, diags) = self.try_build(toml);
        auth.unwrap_or_else(|| panic!("config refused:\n{diags}"))
    }

    pub fn try_build(&self, toml: &str) -> (Option<Authenticator>, Diagnostics) {
        let src = SourceFile {
            path: "portcullis.toml".into(),
            text: toml.to_string(),
        };
        let mut diags = Diagnostics::default();
        let w: Wrapper = src.parse_toml(&mut diags).expect("test TOML parses");
        (
            Authenticator::build(&src, &w.trust, &self.env, &mut diags),
            diags,
        )
    }

    /// The default trust block: embedded keys, RS256 + ES256, 30 s leeway.
    pub fn default_auth(&self) -> Authenticator {
        self.build(&trust_toml(
            "embedded",
            r#"algorithms = ["RS256", "ES256"]"#,
        ))
    }
}

pub fn trust_toml(jwks_uri: &str, extra: &str) -> String {
    format!(
        "[[trust]]\nissuer = \"{ISS}\"\njwks_uri = \"{jwks_uri}\"\naudiences = [\"{AUD}\"]\n{extra}\n"
    )
}

pub fn bearer(token: &str) -> Vec<u8> {
    format!("Bearer {token}").into_bytes()
}

/// The refusal reason of `authorization`, or "ok".
pub async fn reason(auth: &Authenticator, authorization: &[u8]) -> &'static str {
    match auth.authenticate(Some(authorization)).await {
        Ok(_) => "ok",
        Err(e) => e.reason,
    }
}

pub async fn reason_of(auth: &Authenticator, token: &str) -> &'static str {
    reason(auth, &bearer(token)).await
}
