//! Hosting the embedded issuer inside the gateway (feature `issuer`). The issuer runs on its
//! own small tokio runtime (its database connections live there); the public listener calls
//! its router in-process, the internal listener serves it over loopback, and the management
//! listener serves its admin API. `attach` prepares it as each command needs it.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Body;
use tower::ServiceExt;

use super::{Answer, IssuerUse};
use portcullis_authn::AuthnEnv;
use portcullis_core::clock::SharedClock;
use portcullis_core::config::{Diagnostic, Diagnostics, IssuerSettings, Loaded};
use portcullis_issuer::{ClientIp, Issuer};

pub use portcullis_issuer::Listener;

/// Largest issuer response the gateway relays (login pages, JWKS, discovery: a few KiB).
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

pub struct EmbeddedIssuer {
    pub issuer: Issuer,
    router: Router,
    admin: Router,
    rt: Option<tokio::runtime::Runtime>,
}

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
        // Password hashes run on as many threads as the issuer has workers: more at once
        // would only hold more 7 MiB argon2 blocks, not log anyone in sooner.
        portcullis_issuer::secrets::set_hashing_threads(threads.max(1));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("issuer")
            .enable_all()
            .build()
            .context("issuer runtime")?;
        let issuer = rt.block_on(Issuer::start(settings, base_dir, clock))?;
        let _refresh = {
            let _guard = rt.enter();
            // Other replicas', `realm import --sync`'s and `keys rotate`'s changes arrive by
            // notification on PostgreSQL; the periodic re-read is the safety net (and SQLite's
            // only way to see another process's writes).
            let _follow = issuer.spawn_follow();
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

    /// Serves the issuer on the internal listener's socket (the services' backchannel), where
    /// discovery answers with this listener's own address (Keycloak's dynamic backchannel).
    /// With `audit`, each request writes an audit line with `listener` = `internal` (DESIGN
    /// §8). The socket comes from `handover::InternalListener` (bound at start, or handed over
    /// by the process this one upgrades).
    ///
    /// On `shutdown` it drains like the public listener: for `linger` it still serves (beside
    /// the successor after an upgrade) but answers with `Connection: close`, so clients using
    /// a keep-alive connection move to a new one; then it stops accepting, closes the idle
    /// connections and finishes the requests in flight.
    pub async fn serve_internal_on(
        &self,
        socket: std::net::TcpListener,
        audit: bool,
        shutdown: pingora::server::ShutdownWatch,
        linger: std::time::Duration,
    ) -> Result<()> {
        let handle = self.handle().context("issuer runtime stopped")?;
        let mut app = self
            .router
            .clone()
            .layer(axum::Extension(Listener::Internal));
        if audit {
            app = app.layer(axum::middleware::from_fn(audit_internal));
        }
        let draining = shutdown.clone();
        app = app.layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let draining = *draining.borrow();
                async move {
                    let mut resp = next.run(req).await;
                    if draining {
                        resp.headers_mut().insert(
                            http::header::CONNECTION,
                            http::HeaderValue::from_static("close"),
                        );
                    }
                    resp
                }
            },
        ));
        socket
            .set_nonblocking(true)
            .context("internal listener socket")?;
        let served = handle.spawn(async move {
            use axum::serve::ListenerExt as _;
            // Registered with the issuer's runtime, which serves it.
            let listener = StopsAccepting {
                listener: Some(tokio::net::TcpListener::from_std(socket)?),
                shutdown: shutdown.clone(),
            }
            // `tap_io` only for its `ConnectInfo<SocketAddr>`, which axum gives a wrapped
            // listener and not a listener of ours.
            .tap_io(|_| {});
            let svc = app.into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, svc)
                .with_graceful_shutdown(async move {
                    shutting_down(shutdown).await;
                    tokio::time::sleep(linger).await;
                })
                .await
        });
        served
            .await
            .context("internal listener task")?
            .context("internal listener")
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

    /// Samples the issuer's store (its pool, and with `sessions_at` = now in seconds its live
    /// sessions per realm) on the issuer's runtime, where its connections live. Each probe is
    /// bounded: a database that does not answer gives `None`s, never a stuck sampler.
    pub async fn sample(&self, sessions_at: Option<i64>) -> Vec<super::StoreSample> {
        const BOUND: std::time::Duration = std::time::Duration::from_secs(5);
        let Some(handle) = self.handle() else {
            return Vec::new();
        };
        let work = async move {
            let mut out = Vec::new();
            for store in portcullis_store::observe::opened() {
                let pool = store.pool();
                let acquire_wait = tokio::time::timeout(BOUND, store.acquire_wait())
                    .await
                    .ok()
                    .and_then(Result::ok);
                let sessions = match sessions_at {
                    Some(now) => tokio::time::timeout(BOUND, store.live_sessions(now))
                        .await
                        .ok()
                        .and_then(Result::ok),
                    None => None,
                };
                out.push(super::StoreSample {
                    backend: pool.backend,
                    in_use: pool.in_use(),
                    idle: pool.idle,
                    max: pool.max,
                    acquire_wait,
                    sessions,
                });
            }
            out
        };
        handle.spawn(work).await.unwrap_or_default()
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone).
async fn shutting_down(mut shutdown: pingora::server::ShutdownWatch) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// The internal listener's socket for axum, closed at shutdown: axum's graceful shutdown
/// (after the linger) would keep accepting until then, and close a connection accepted a
/// moment before, whose request it had not read yet, as idle. After an upgrade the socket
/// stays open in the successor, which accepts what comes; after SIGTERM, connecting is refused,
/// as on the public listener.
struct StopsAccepting {
    listener: Option<tokio::net::TcpListener>,
    shutdown: pingora::server::ShutdownWatch,
}

impl axum::serve::Listener for StopsAccepting {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Some(listener) = &self.listener else {
                return std::future::pending().await;
            };
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(io) => return io,
                    // Out of descriptors, or a connection reset before it was taken: wait a
                    // little (as axum's own listener does) and go on.
                    Err(e) => {
                        tracing::debug!("internal listener accept: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                _ = shutting_down(self.shutdown.clone()) => self.listener = None,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        match &self.listener {
            Some(l) => l.local_addr(),
            None => Err(std::io::Error::other("the internal listener is closed")),
        }
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

/// Prepares the embedded issuer as `issuer_use` says when the config enables it: realm
/// templates checked (errors go to `diags`, and the rest of the config is then checked
/// against an empty key set), then started, its keys read, or nothing more. `env.embedded`
/// gets its keys, so `jwks_uri = "embedded"` validates. `threads`: the issuer runtime's workers.
pub fn attach(
    loaded: &Loaded,
    issuer_use: IssuerUse,
    threads: usize,
    env: &mut AuthnEnv,
    diags: &mut Diagnostics,
) -> Result<Option<Arc<EmbeddedIssuer>>> {
    let config = &loaded.config;
    let Some(settings) = &config.issuer else {
        return Ok(None);
    };
    for file in &settings.import {
        if let Err(e) = portcullis_issuer::realm_check(file) {
            diags.push(realm_diagnostic(file, &e));
        }
    }
    if diags.has_errors() {
        // The rest is still checked: `check` reports every error at once.
        env.embedded = Some(Arc::new(FixedKeys::none()));
        return Ok(None);
    }
    match issuer_use {
        IssuerUse::Start => {
            let started =
                EmbeddedIssuer::start(settings, &config.base_dir, env.clock.clone(), threads)?;
            env.embedded = Some(started.issuer.embedded_keys());
            Ok(Some(started))
        }
        IssuerUse::ReadKeys => {
            let now = i64::try_from(env.clock.now_unix()).unwrap_or(i64::MAX);
            let keys = read_published_keys(settings, &config.base_dir, now);
            env.embedded = Some(Arc::new(keys));
            Ok(None)
        }
        IssuerUse::CheckOnly => {
            env.embedded = Some(Arc::new(FixedKeys::none()));
            Ok(None)
        }
    }
}

/// Keys for validating `jwks_uri = "embedded"` without a running issuer: none
/// (`portcullis check`), or the published keys read once from its database (`explain`).
struct FixedKeys(Arc<jsonwebtoken::jwk::JwkSet>);

impl FixedKeys {
    fn none() -> Self {
        FixedKeys(Arc::new(jsonwebtoken::jwk::JwkSet { keys: Vec::new() }))
    }
}

impl portcullis_authn::EmbeddedKeys for FixedKeys {
    fn key_set(&self) -> Arc<jsonwebtoken::jwk::JwkSet> {
        Arc::clone(&self.0)
    }
    fn version(&self) -> u64 {
        0
    }
}

/// The embedded issuer's published keys, or none (with a note on stderr) when its database
/// can't be read: `explain` still answers for every other issuer's tokens.
fn read_published_keys(settings: &IssuerSettings, base_dir: &Path, now: i64) -> FixedKeys {
    let read = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(portcullis_issuer::published_keys(settings, base_dir, now)));
    match read {
        Ok(set) => FixedKeys(Arc::new(set)),
        Err(e) => {
            eprintln!(
                "note: the embedded issuer's keys are unavailable ({e:#}); its tokens can't be verified"
            );
            FixedKeys::none()
        }
    }
}

/// A realm file's error (`{file}: message` or `{file}:L:C: message`) as a located diagnostic,
/// so it prints once as `file:line:col: message` like every other config error.
fn realm_diagnostic(file: &Path, err: &str) -> Diagnostic {
    let prefix = file.display().to_string();
    let rest = err.strip_prefix(prefix.as_str()).unwrap_or(err);
    let located = rest.strip_prefix(':').and_then(|r| {
        let mut parts = r.splitn(3, ':');
        let line = parts.next()?.parse::<u32>().ok()?;
        let col = parts.next()?.parse::<u32>().ok()?;
        Some((line, col, parts.next()?.trim_start()))
    });
    match located {
        Some((line, col, message)) => Diagnostic {
            line,
            col,
            ..Diagnostic::file_error(file, message)
        },
        None => Diagnostic::file_error(file, rest.trim_start_matches(':').trim_start()),
    }
}

#[cfg(test)]
mod tests {
    use super::realm_diagnostic;

    #[test]
    fn realm_errors_print_once_with_their_location() {
        let file = std::path::Path::new("/srv/realms/x.json");
        let d = realm_diagnostic(
            file,
            "/srv/realms/x.json:4:17: invalid type: integer `3`, expected a string",
        );
        assert_eq!((d.line, d.col), (4, 17));
        assert_eq!(d.message, "invalid type: integer `3`, expected a string");
        let d = realm_diagnostic(file, "/srv/realms/x.json: No such file or directory");
        assert_eq!((d.line, d.col), (1, 1));
        assert_eq!(d.message, "No such file or directory");
        let d = realm_diagnostic(file, "something else: entirely");
        assert_eq!(d.message, "something else: entirely");
    }
}
