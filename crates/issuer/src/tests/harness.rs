//! Test harness: an issuer over a temp SQLite file with the dev realm and a manual clock.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, Response, header};
use tower::ServiceExt;

use crate::Issuer;
use portcullis_core::clock::ManualClock;
use portcullis_core::config::IssuerSettings;

pub const T0: u64 = 1_700_000_000;

pub fn dev_realm() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../realms/myrealm-realm.json")
}

pub struct Harness {
    pub issuer: Issuer,
    pub clock: Arc<ManualClock>,
    pub settings: IssuerSettings,
    pub dir: tempfile::TempDir,
}

/// The issuer's settings in every test: a SQLite file under the test's directory, the dev realm.
pub fn settings() -> IssuerSettings {
    IssuerSettings {
        frontend_url: Some("https://id.test/auth".into()),
        database: "sqlite://data/portcullis.db".into(),
        import: vec![dev_realm()],
        login_event_retention_days: 30,
    }
}

pub async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings();
    let clock = ManualClock::new(T0);
    let issuer = Issuer::start(&settings, dir.path(), clock.clone())
        .await
        .unwrap();
    Harness {
        issuer,
        clock,
        settings,
        dir,
    }
}

impl Harness {
    pub async fn send(&self, req: Request<Body>) -> Response<Body> {
        self.issuer.router().oneshot(req).await.unwrap()
    }

    pub async fn get(&self, uri: &str) -> Response<Body> {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    /// POSTs a form, optionally with HTTP Basic client credentials.
    pub async fn post_form(
        &self,
        uri: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Response<Body> {
        let mut req =
            Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            use base64::Engine;
            let v = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
            req = req.header(header::AUTHORIZATION, format!("Basic {v}"));
        }
        let body = serde_urlencoded::to_string(form).unwrap();
        self.send(req.body(Body::from(body)).unwrap()).await
    }
}

pub async fn body_bytes(resp: Response<Body>) -> Vec<u8> {
    axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap()
        .to_vec()
}

pub async fn json(resp: Response<Body>) -> serde_json::Value {
    let b = body_bytes(resp).await;
    serde_json::from_slice(&b)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&b)))
}

pub const P: &str = "/auth/realms/myrealm/protocol/openid-connect";

impl Harness {
    /// Verifies a JWT's signature against the realm's published JWKS; returns its claims.
    pub async fn verify(&self, token: &str) -> serde_json::Value {
        let jwks: jsonwebtoken::jwk::JwkSet =
            serde_json::from_value(json(self.get(&format!("{P}/certs")).await).await).unwrap();
        let header = jsonwebtoken::decode_header(token).unwrap();
        let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let mut v = jsonwebtoken::Validation::new(header.alg);
        // Tokens are stamped with the manual clock, not wall time.
        v.validate_exp = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
            .unwrap()
            .claims
    }

    /// A `refresh_token` grant with `rt`, authenticated as `client` (id, secret).
    pub async fn refresh_grant(&self, rt: &str, client: Option<(&str, &str)>) -> Response<Body> {
        self.post_form(
            &format!("{P}/token"),
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
            client,
        )
        .await
    }

    pub async fn password_grant(&self, user: &str, pw: &str) -> Response<Body> {
        self.post_form(
            &format!("{P}/token"),
            &[
                ("grant_type", "password"),
                ("username", user),
                ("password", pw),
                ("scope", "openid"),
            ],
            Some(("myclient", "my-client-secret")),
        )
        .await
    }
}
