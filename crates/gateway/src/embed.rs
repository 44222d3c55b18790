//! Hosting the embedded issuer inside the gateway. The issuer runs on its own small tokio
//! runtime (its database connections live there); the public listener calls its router
//! in-process, the internal listener serves it over loopback, and the management listener
//! serves its admin API.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use tower::ServiceExt;

use portcullis_core::clock::SharedClock;
use portcullis_core::config::IssuerSettings;
use portcullis_issuer::{ClientIp, Issuer, Listener};

/// Largest issuer response the gateway relays (login pages, JWKS, discovery: a few KiB).
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

pub struct EmbeddedIssuer {
    pub issuer: Issuer,
    router: Router,
    admin: Router,
    rt: Option<tokio::runtime::Runtime>,
}

/// The issuer's answer, whole.
pub type Answer = http::Response<Bytes>;

impl EmbeddedIssuer {
    /// Opens the store, imports missing realms and loads keys, on the issuer's own runtime of
    /// `threads` workers (the gateway's `runtime.worker_threads`: signing and password hashing
    /// are CPU work that scales with cores, and more workers than cores only add wake-ups).
    pub fn start(
        settings: &IssuerSettings,
        base_dir: &Path,
        clock: SharedClock,
        threads: usize,
    ) -> Result<Arc<Self>> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("issuer")
            .enable_all()
            .build()
            .context("issuer runtime")?;
        let issuer = rt.block_on(Issuer::start(settings, base_dir, clock))?;
        let _refresh = {
            let _guard = rt.enter();
            // Picks up `realm import --sync`, `keys rotate` and other replicas' changes.
            issuer.spawn_refresh(std::time::Duration::from_secs(30))
        };
        Ok(Arc::new(EmbeddedIssuer {
            router: issuer.router(),
            admin: issuer.admin_router(),
            issuer,
            rt: Some(rt),
        }))
    }

    fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.rt.as_ref().map(|rt| rt.handle())
    }

    /// Runs one request through the public router (or the admin router) on the issuer runtime.
    pub async fn call(
        &self,
        mut req: http::Request<Body>,
        listener: Listener,
        client: Option<IpAddr>,
        admin: bool,
    ) -> Result<Answer> {
        req.extensions_mut().insert(listener);
        if let Some(ip) = client {
            req.extensions_mut().insert(ClientIp(ip));
        }
        let router = if admin {
            self.admin.clone()
        } else {
            self.router.clone()
        };
        let handle = self.handle().context("issuer runtime stopped")?;
        let resp = handle
            .spawn(async move {
                let resp = router
                    .oneshot(req)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let (parts, body) = resp.into_parts();
                let bytes = axum::body::to_bytes(body, MAX_RESPONSE_BYTES)
                    .await
                    .context("issuer response body")?;
                Ok::<_, anyhow::Error>(http::Response::from_parts(parts, bytes))
            })
            .await
            .context("issuer task")??;
        Ok(resp)
    }

    /// Serves the issuer on the internal listener (the services' backchannel), where discovery
    /// answers with this listener's own address (Keycloak's dynamic backchannel). With `audit`,
    /// each request writes an audit line with `listener` = `internal` (DESIGN §8).
    pub fn serve_internal(&self, addr: SocketAddr, audit: bool) -> Result<()> {
        let handle = self.handle().context("issuer runtime stopped")?;
        let mut app = self
            .router
            .clone()
            .layer(axum::Extension(Listener::Internal));
        if audit {
            app = app.layer(axum::middleware::from_fn(audit_internal));
        }
        let listener = handle
            .block_on(tokio::net::TcpListener::bind(addr))
            .with_context(|| format!("binding the internal listener {addr}"))?;
        handle.spawn(async move {
            let svc = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, svc).await {
                tracing::error!("internal listener stopped: {e}");
            }
        });
        Ok(())
    }

    /// The store answers (for readiness).
    pub async fn ready(&self) -> bool {
        let Some(handle) = self.handle() else {
            return false;
        };
        let issuer = self.issuer.clone();
        handle
            .spawn(async move { issuer.ready().await })
            .await
            .unwrap_or(false)
    }
}

/// The audit line of one internal-listener request. The route is `issuer` (the listener
/// serves nothing else); the request gets its own id, returned in `X-Request-Id`.
async fn audit_internal(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let start = std::time::Instant::now();
    let client_ip = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let method = req.method().clone();
    // Only the path: queries carry codes and tokens.
    let path = req.uri().path().to_owned();
    let request_id = crate::proxy::guard::new_request_id();
    let mut resp = next.run(req).await;
    if let Ok(v) = http::HeaderValue::from_str(&request_id) {
        resp.headers_mut()
            .insert(crate::proxy::forwarded::X_REQUEST_ID, v);
    }
    crate::audit::request(&crate::audit::RequestRecord {
        request_id: &request_id,
        listener: "internal",
        client_ip,
        method: method.as_str(),
        path: &path,
        route: "issuer",
        status: resp.status().as_u16(),
        decision: "allow",
        reason: "",
        sub: None,
        user: None,
        groups: None,
        upstream: Some("embedded:issuer"),
        duration: start.elapsed(),
    });
    resp
}

impl Drop for EmbeddedIssuer {
    fn drop(&mut self) {
        // A runtime may not be dropped (blocking) from inside another runtime.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
