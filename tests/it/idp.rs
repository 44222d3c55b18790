//! A test identity provider: an RSA key made with the openssl CLI, its JWKS served by a real
//! local HTTP server, and tokens signed with it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const ISS: &str = "https://idp.test/realms/t";
pub const AUD: &str = "gw";

fn openssl(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut c = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        c.stdin.take().unwrap().write_all(input).unwrap();
    }
    let out = c.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

pub struct Key {
    pub kid: String,
    pub pem: Vec<u8>,
}

impl Key {
    pub fn rsa(kid: &str) -> Key {
        Key {
            kid: kid.into(),
            pem: openssl(
                &[
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                ],
                None,
            ),
        }
    }

    pub fn jwk(&self) -> Jwk {
        let k = EncodingKey::from_rsa_pem(&self.pem).unwrap();
        let mut jwk = Jwk::from_encoding_key(&k, Algorithm::RS256).unwrap();
        jwk.common.key_id = Some(self.kid.clone());
        jwk
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &EncodingKey::from_rsa_pem(&self.pem).unwrap()).unwrap()
    }

    /// A valid access token for `sub` with these groups and realm roles.
    pub fn token(&self, sub: &str, groups: &[&str], roles: &[&str]) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        self.sign(&json!({
            "iss": ISS, "aud": AUD, "sub": sub, "exp": now + 600, "iat": now,
            "preferred_username": sub, "email": format!("{sub}@example.com"),
            "groups": groups, "realm_access": {"roles": roles},
        }))
    }
}

/// A JWKS endpoint on 127.0.0.1.
pub struct Jwks {
    pub addr: SocketAddr,
    pub keys: Arc<Mutex<Vec<Jwk>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Jwks {
    pub async fn start(keys: Vec<Jwk>) -> Jwks {
        let keys = Arc::new(Mutex::new(keys));
        let k = keys.clone();
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let k = k.clone();
                async move {
                    axum::Json(JwkSet {
                        keys: k.lock().unwrap().clone(),
                    })
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(l, app).await.unwrap();
        });
        Jwks { addr, keys, task }
    }

    pub fn trust_block(&self) -> String {
        format!(
            "[[trust]]\nissuer = \"{ISS}\"\njwks_uri = \"http://{}/jwks\"\naudiences = [\"{AUD}\"]\nalgorithms = [\"RS256\"]\n",
            self.addr
        )
    }
}

impl Drop for Jwks {
    fn drop(&mut self) {
        self.task.abort();
    }
}
