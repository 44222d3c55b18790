//! The OpenID provider a gateway signs people in with: the embedded issuer (`embedded:REALM`,
//! its browser-facing URLs under the public `/auth`, its token and revocation endpoints called
//! in process, its keys read in process) or any provider found by discovery (`remote`). Both
//! offer the same calls: the endpoints for one request's origin, the token endpoint (code and
//! refresh grants), revocation, and the keys that sign ID tokens.

mod remote;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::idtoken::{self, Expect, Refused};
use super::redirect::Origin;
use crate::embed::{EmbeddedIssuer, Listener};
use portcullis_core::config::file::SecretString;
use portcullis_core::config::{SessionProvider, SessionSettings};
use portcullis_core::keys::EmbeddedKeys;

/// Why a call to the provider did not give what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Not reachable, or a server error: the provider is down (502).
    Unreachable,
    /// An OAuth error answer (`invalid_grant`, …): the grant is refused.
    Refused(String),
    /// An answer that breaks the protocol.
    Malformed,
}

/// Where one request's sign-in goes.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The `iss` its ID tokens carry.
    pub issuer: String,
    /// Browser-facing.
    pub authorization: String,
    pub end_session: Option<String>,
    token: Target,
    revocation: Option<Target>,
}

/// A backchannel endpoint: a URL, or a path of the in-process issuer.
#[derive(Debug, Clone)]
enum Target {
    Url(String),
    InProcess(String),
}

/// The request a provider call is made for (the embedded issuer derives its URLs, and its
/// brute-force and event records, from it).
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub origin: Origin<'a>,
    pub client_ip: Option<IpAddr>,
}

/// A token endpoint's answer (RFC 6749 §5.1).
#[derive(Deserialize)]
pub struct TokenAnswer {
    pub access_token: String,
    #[serde(default)]
    expires_in: Option<Value>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub id_token: Option<String>,
}

impl TokenAnswer {
    /// Seconds the access token lives (RFC 6749 recommends sending it; 300 when absent).
    pub fn expires_in(&self) -> u64 {
        self.expires_in
            .as_ref()
            .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))
            .map_or(300, |s| s.clamp(1.0, 86_400.0) as u64)
    }
}

impl fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenAnswer { *** }")
    }
}

/// The provider of one `[session]` configuration.
pub struct Provider {
    /// What the provider was made from: a new configuration with another makes a new one.
    pub(super) made_from: String,
    client_id: String,
    client_secret: Option<SecretString>,
    source: Source,
}

enum Source {
    Embedded {
        realm: String,
        frontend_url: Option<String>,
        issuer: Option<Arc<EmbeddedIssuer>>,
        keys: Option<Arc<dyn EmbeddedKeys>>,
    },
    Remote(remote::Remote),
}

/// The identity of a provider configuration (provider, client, a digest of the secret, CA).
pub fn made_from(s: &SessionSettings) -> String {
    let secret = s.client_secret.as_ref().map_or("", |c| c.expose());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    format!(
        "{:?}|{}|{}|{:?}",
        s.provider,
        s.client_id,
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref()),
        s.provider_ca
    )
}

impl Provider {
    /// The provider `s` names. `issuer` and `keys`: the embedded issuer of this process.
    pub fn new(
        s: &SessionSettings,
        frontend_url: Option<String>,
        issuer: Option<Arc<EmbeddedIssuer>>,
        keys: Option<Arc<dyn EmbeddedKeys>>,
    ) -> Provider {
        let source = match &s.provider {
            SessionProvider::Embedded { realm } => Source::Embedded {
                realm: realm.clone(),
                frontend_url,
                issuer,
                keys,
            },
            SessionProvider::Discovery { issuer } => {
                Source::Remote(remote::Remote::new(issuer, s.provider_ca.as_deref()))
            }
        };
        Provider {
            made_from: made_from(s),
            client_id: s.client_id.clone(),
            client_secret: s.client_secret.clone(),
            source,
        }
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The endpoints for a request made to `origin` (discovery may be fetched now).
    pub async fn endpoints(&self, origin: &Origin<'_>) -> Result<Endpoints, Failure> {
        match &self.source {
            Source::Embedded {
                realm,
                frontend_url,
                ..
            } => {
                let front = frontend_url
                    .clone()
                    .unwrap_or_else(|| format!("{}/auth", origin.url()));
                let issuer = format!("{front}/realms/{realm}");
                let p = "protocol/openid-connect";
                let local = format!("/auth/realms/{realm}/{p}");
                Ok(Endpoints {
                    authorization: format!("{issuer}/{p}/auth"),
                    end_session: Some(format!("{issuer}/{p}/logout")),
                    token: Target::InProcess(format!("{local}/token")),
                    revocation: Some(Target::InProcess(format!("{local}/revoke"))),
                    issuer,
                })
            }
            Source::Remote(r) => {
                let d = r.discovered().await?;
                Ok(Endpoints {
                    issuer: d.issuer.clone(),
                    authorization: d.authorization_endpoint.clone(),
                    end_session: d.end_session_endpoint.clone(),
                    token: Target::Url(d.token_endpoint.clone()),
                    revocation: d.revocation_endpoint.clone().map(Target::Url),
                })
            }
        }
    }

    /// The keys that sign ID tokens; `refetch` after a `kid` was not found (rate-limited).
    pub async fn keys(&self, refetch: bool) -> Result<Arc<JwkSet>, Failure> {
        match &self.source {
            Source::Embedded { keys, .. } => keys
                .as_ref()
                .map(|k| k.key_set())
                .ok_or(Failure::Unreachable),
            Source::Remote(r) => r.keys(refetch).await,
        }
    }

    /// Validates an ID token with the provider's keys (fetched again once when its `kid` is
    /// not among them: the provider may have rotated). `nonce`: the sign-in's, `None` on a
    /// refresh.
    pub async fn verify_id_token(
        &self,
        ep: &Endpoints,
        token: &str,
        nonce: Option<&str>,
        now: u64,
    ) -> Result<Map<String, Value>, Refused> {
        let (kid, alg) = idtoken::header(token)?;
        let unreachable = |_| Refused("the provider's keys cannot be fetched");
        let mut keys = self.keys(false).await.map_err(unreachable)?;
        if !idtoken::has_key(&keys, kid.as_deref(), alg) {
            keys = self.keys(true).await.map_err(unreachable)?;
        }
        let expect = Expect {
            issuer: &ep.issuer,
            client_id: &self.client_id,
            nonce,
            now,
        };
        idtoken::verify(token, &keys, &expect)
    }

    /// A grant at the token endpoint (`grant_type` and its parameters in `form`).
    pub async fn token(
        &self,
        ep: &Endpoints,
        form: &[(&str, &str)],
        call: &Call<'_>,
    ) -> Result<TokenAnswer, Failure> {
        let (status, body) = self.post(&ep.token, form, call).await?;
        if status >= 500 {
            return Err(Failure::Unreachable);
        }
        if status != 200 {
            let error = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("error")?.as_str().map(String::from))
                .unwrap_or_else(|| format!("HTTP {status}"));
            return Err(Failure::Refused(error));
        }
        serde_json::from_slice::<TokenAnswer>(&body).map_err(|_| Failure::Malformed)
    }

    /// Revokes a refresh token (RFC 7009); a provider without the endpoint has nothing to do.
    pub async fn revoke(
        &self,
        ep: &Endpoints,
        refresh_token: &str,
        call: &Call<'_>,
    ) -> Result<(), Failure> {
        let Some(target) = &ep.revocation else {
            return Ok(());
        };
        let form = [
            ("token", refresh_token),
            ("token_type_hint", "refresh_token"),
        ];
        match self.post(target, &form, call).await? {
            (200, _) => Ok(()),
            (s, _) if s >= 500 => Err(Failure::Unreachable),
            (s, _) => Err(Failure::Refused(format!("HTTP {s}"))),
        }
    }

    /// POSTs a form with the client's credentials (`client_secret_basic`, or `client_id` in
    /// the form for a public client).
    async fn post(
        &self,
        target: &Target,
        form: &[(&str, &str)],
        call: &Call<'_>,
    ) -> Result<(u16, Bytes), Failure> {
        let body = {
            // Not held across an await: the serializer is not `Send`.
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            ser.extend_pairs(form.iter().copied());
            if self.client_secret.is_none() {
                ser.append_pair("client_id", &self.client_id);
            }
            ser.finish()
        };
        let basic = self.client_secret.as_ref().map(|secret| {
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(&self.client_id), enc(secret.expose()));
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        match (target, &self.source) {
            (Target::Url(url), Source::Remote(r)) => r.post(url, body, basic).await,
            (Target::InProcess(path), Source::Embedded { issuer, .. }) => {
                let issuer = issuer.as_ref().ok_or(Failure::Unreachable)?;
                post_in_process(issuer, path, body, basic, call).await
            }
            _ => Err(Failure::Malformed),
        }
    }
}

/// A form POST to the embedded issuer's router, as if made to the request's origin (so its
/// `iss` is the one the browser's sign-in saw).
async fn post_in_process(
    issuer: &EmbeddedIssuer,
    path: &str,
    body: String,
    basic: Option<String>,
    call: &Call<'_>,
) -> Result<(u16, Bytes), Failure> {
    let mut req = http::Request::builder()
        .method(http::Method::POST)
        .uri(path)
        .header(http::header::HOST, call.origin.host)
        .header("x-forwarded-proto", call.origin.proto)
        .header("x-forwarded-host", call.origin.host)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
    if let Some(b) = basic {
        req = req.header(http::header::AUTHORIZATION, b);
    }
    let req = req
        .body(axum::body::Body::from(body))
        .map_err(|_| Failure::Malformed)?;
    let resp = issuer
        .call(req, Listener::Public, call.client_ip, false)
        .await
        .map_err(|_| Failure::Unreachable)?;
    Ok((resp.status().as_u16(), resp.into_body()))
}
