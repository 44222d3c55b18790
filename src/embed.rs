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

use crate::clock::SharedClock;
use crate::config::IssuerSettings;
use crate::issuer::{ClientIp, Issuer, Listener};

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
    /// Opens the store, imports missing realms and loads keys, on the issuer's own runtime.
    pub fn start(
        settings: &IssuerSettings,
        base_dir: &Path,
        clock: SharedClock,
    ) -> Result<Arc<Self>> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
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
    /// answers with this listener's own address (Keycloak's dynamic backchannel).
    pub fn serve_internal(&self, addr: SocketAddr) -> Result<()> {
        let handle = self.handle().context("issuer runtime stopped")?;
        let app = self
            .router
            .clone()
            .layer(axum::Extension(Listener::Internal));
        let listener = handle
            .block_on(tokio::net::TcpListener::bind(addr))
            .with_context(|| format!("binding the internal listener {addr}"))?;
        handle.spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
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

impl Drop for EmbeddedIssuer {
    fn drop(&mut self) {
        // A runtime may not be dropped (blocking) from inside another runtime.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
