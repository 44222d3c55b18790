//! Assembles the Pingora server: public proxy, optional https redirect, management listener,
//! and the lifecycle background services, from one validated configuration.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use pingora::apps::HttpServerOptions;
use pingora::apps::http_app::HttpServer;
use pingora::prelude::*;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::services::listening::Service;

use crate::audit::LogGuard;
use crate::embed::EmbeddedIssuer;
use crate::handover::{InternalListener, Lingering, OpenConnections};
use crate::lifecycle::{
    Drain, PrefetchKeys, ReadinessProbe, SighupReload, StoreProbe, Together, Watcher,
};
use crate::mgmt::{HttpsRedirect, Management, Readiness};
use crate::proxy::PublicProxy;
use crate::proxy::head_deadline::{ConnectionCap, Guarded};
use crate::reload::Live;
use crate::snapshot::Snapshot;
use pingora::services::background::BackgroundService;
use portcullis_authn::{AuthnEnv, JwksRegistry};
use portcullis_core::config::{Config, Diagnostics};

pub use crate::embed::IssuerUse;

/// rustls is linked with two crypto back ends (Pingora's ring, reqwest's aws-lc-rs); pick one
/// process-wide before any TLS config is built.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The authentication environment shared by every generation of the config.
pub fn authn_env() -> AuthnEnv {
    let clock = portcullis_core::clock::system();
    AuthnEnv {
        jwks: JwksRegistry::new(clock.clone()),
        clock,
        embedded: None,
    }
}

/// What a command needs: the static config, the authn environment, the first snapshot and,
/// for `run`, the started issuer.
pub struct Loaded {
    pub config: Config,
    pub env: AuthnEnv,
    pub snapshot: Snapshot,
    pub issuer: Option<Arc<EmbeddedIssuer>>,
}

/// Why loading failed: located config errors, or an issuer that would not start.
pub enum LoadError {
    Config(Diagnostics),
    Start(anyhow::Error),
}

/// Loads the config (and realm templates) and builds the first snapshot, with the embedded
/// issuer used as `issuer_use` says.
pub fn load(path: &std::path::Path, issuer_use: IssuerUse) -> Result<Loaded, LoadError> {
    let mut diags = Diagnostics::default();
    let Some(loaded) = Config::load(path, &mut diags) else {
        // Its routes and policies are still checked: `check` reports every error at once.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        crate::snapshot::check_tables_of_refused_config(
            &path,
            &std::collections::BTreeSet::new(),
            &mut diags,
        );
        return Err(LoadError::Config(diags));
    };
    let mut env = authn_env();
    let threads = worker_threads(&loaded.config);
    let issuer = crate::embed::attach(&loaded, issuer_use, threads, &mut env, &mut diags)
        .map_err(LoadError::Start)?;
    let config = loaded.config;
    if diags.has_errors() {
        // The rest is still checked: `check` reports every error at once.
        if let Err(more) = Snapshot::load(&config, &env, 1) {
            diags.extend(more);
        }
        return Err(LoadError::Config(diags));
    }
    let snapshot = Snapshot::load(&config, &env, 1).map_err(LoadError::Config)?;
    Ok(Loaded {
        config,
        env,
        snapshot,
        issuer,
    })
}

/// Worker threads per runtime: `runtime.worker_threads`, or one per core when 0.
fn worker_threads(config: &Config) -> usize {
    match config.runtime.worker_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// HTTP/2 settings of the public listener. With Pingora's default header-list limit (64 KiB)
/// the h2 layer answers an oversized request itself (a bare 431 and a stream reset) before the
/// guard sees it: no JSON body, no audit line, no metric (DESIGN §6, §8); h2 also counts 32
/// bytes per field more than the guard does. So the h2 limit is a few times
/// `limits.max_header_bytes` (at most 1 MiB, Pingora's HTTP/1 cap), and the guard answers up
/// to there.
///
/// Floods are bounded by h2 with these settings, stated here rather than left to defaults: at
/// most 100 streams at once per connection; a rapid reset (streams opened and cancelled before
/// they are served, CVE-2023-44487) past 20 pending, or 1024 streams the server itself had to
/// reset, ends the connection with ENHANCE_YOUR_CALM; a CONTINUATION flood is refused after
/// about `header list / frame size` frames. A header block that is never finished is cut off
/// by the head deadline (`proxy::head_deadline`).
fn h2_options(max_header_bytes: usize) -> pingora::protocols::http::v2::server::H2Options {
    let mut o = pingora::protocols::http::v2::server::default_h2_options();
    let limit = max_header_bytes.saturating_mul(4).min(1024 * 1024);
    o.max_header_list_size(u32::try_from(limit).unwrap_or(u32::MAX));
    o.max_concurrent_streams(100);
    o.max_pending_accept_reset_streams(20);
    o.max_local_error_reset_streams(Some(1024));
    o
}

/// Runs the gateway until SIGTERM/SIGINT, or SIGQUIT (a successor started with `upgrade`
/// takes the listening sockets over). With `upgrade`, this process is that successor: it
/// takes the listening sockets of the gateway running with the same config before it serves.
/// Never returns normally.
pub fn run(loaded: Loaded, log_guard: LogGuard, upgrade: bool) -> Result<()> {
    let Loaded {
        config,
        env,
        snapshot: first,
        issuer,
    } = loaded;
    install_crypto_provider();
    let public = config.listen.public;
    let server_tls = server_tls(&config)?;

    let threads = worker_threads(&config);
    let conf = server_conf(&config, threads)?;
    // The public listener's open connections, and the internal listener while it serves: the
    // drain waits for both to be done.
    let open = Arc::new(AtomicUsize::new(0));
    let linger = crate::handover::LINGER.min(config.runtime.shutdown_drain);
    let internal = internal_listener(&config, &issuer, upgrade, &open, linger)?;
    if upgrade {
        tracing::info!(
            upgrade_sock = %conf.upgrade_sock,
            "upgrade: waiting for the running gateway's listening sockets; send it SIGQUIT (within 5 s)"
        );
    }
    let opt = upgrade.then(|| Opt {
        upgrade: true,
        ..Opt::default()
    });
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    let conf = server.configuration.clone();

    let limits = Arc::new(crate::limit::Limits::new(&config.rate_limit)?);
    let live = Live::new(config.clone(), env, first, server_tls);
    let ready = Arc::new(Readiness::default());
    if let Some(internal) = internal {
        server.add_service(internal);
    }
    if issuer.is_none() {
        ready.store_reachable.store(true, Ordering::Release);
    }

    let tracing = match &config.tracing {
        Some(t) => Some(crate::proxy::trace::Tracing::start(t)?),
        None => None,
    };
    let parts = PublicParts {
        limits: &limits,
        tracing: &tracing,
        open: &open,
        linger,
    };
    add_public(&mut server, &conf, &config, &live, &issuer, parts)?;
    add_https_redirect(&mut server, &config);
    let mut mgmt = Service::new(
        "management".to_string(),
        HttpServer::new_app(Management {
            live: Arc::clone(&live),
            ready: Arc::clone(&ready),
            issuer: issuer.clone(),
        }),
    );
    // Its own work is small (health, metrics); the issuer's admin API runs on the issuer's
    // runtime. One thread, not `runtime.worker_threads`.
    mgmt.threads = Some(1);
    mgmt.add_tcp(&config.listen.management.to_string());
    server.add_service(mgmt);
    let ending = Ending { open, tracing };
    let mut services = background(&config, &live, ready, issuer, log_guard, ending);
    services.push(Arc::new(crate::limit::Upkeep {
        limits,
        live: Arc::clone(&live),
    }));
    // One runtime of one thread for all of them, each its own task.
    server.add_service(background_service("lifecycle", Together { services }));

    tracing::info!(listen.public = %public, listen.management = %config.listen.management, threads, "portcullis starting");
    server.run_forever()
}

/// The public listener's TLS material (a dev certificate made first when asked for), or `None`
/// with a warning for plain HTTP.
fn server_tls(
    config: &Config,
) -> Result<Option<(Arc<crate::tls::ServerTls>, Vec<crate::tls::status::Expiry>)>> {
    let Some(tls) = &config.tls else {
        tracing::warn!(listen.public = %config.listen.public, "no [tls] section: the public listener speaks plain HTTP (only behind a TLS-terminating proxy)");
        return Ok(None);
    };
    crate::certs::ensure(tls)?;
    let loaded = crate::tls::ServerTls::load(tls)
        .map_err(|errors| anyhow::anyhow!("[tls]: {}", errors.join("; ")))?;
    Ok(Some(loaded))
}

/// The embedded issuer's internal listener, when there is one. Bound now, so that a port in
/// use is a start error; a successor (`--upgrade`) takes it over instead.
fn internal_listener(
    config: &Config,
    issuer: &Option<Arc<EmbeddedIssuer>>,
    upgrade: bool,
    open: &Arc<AtomicUsize>,
    linger: std::time::Duration,
) -> Result<Option<InternalListener>> {
    let (Some(issuer), Some(addr)) = (issuer, config.listen.internal) else {
        return Ok(None);
    };
    let bound = if upgrade {
        None
    } else {
        Some(
            std::net::TcpListener::bind(addr)
                .with_context(|| format!("binding the internal listener {addr}"))?,
        )
    };
    Ok(Some(InternalListener {
        addr,
        bound,
        issuer: Arc::clone(issuer),
        audit: config.runtime.audit_log,
        open: Arc::clone(open),
        linger,
    }))
}

/// Pingora's server settings: `threads` workers, the drain backstop, a per-process pid file
/// and the upgrade socket (the same for a gateway and its successor).
fn server_conf(config: &Config, threads: usize) -> Result<ServerConf> {
    let drain = config.runtime.shutdown_drain;
    let mut conf = ServerConf {
        threads,
        // Our Drain service exits as soon as nothing is in flight; this is only the backstop.
        grace_period_seconds: Some(drain.as_secs() + 2),
        graceful_shutdown_timeout_seconds: Some(1),
        // Pingora's own timeouts of a second or more (upstream read, keep-alive, pool idle:
        // 3.5 per proxied request) on tokio's timer wheel rather than Pingora's "fast" timer,
        // whose every timeout takes a lock, subscribes to a `Notify` and is fired from a
        // separate clock thread. (`Server::run` applies this; setting it earlier is undone.)
        fast_timeout_to_tokio_threshold_seconds: Some(0),
        ..ServerConf::default()
    };
    // Several gateways on one host (tests, blue/green) must not share these files.
    let id = std::process::id();
    conf.pid_file = std::env::temp_dir()
        .join(format!("portcullis-{id}.pid"))
        .display()
        .to_string();
    conf.upgrade_sock = crate::handover::upgrade_sock(
        config.runtime.upgrade_sock.as_deref(),
        config.listen.public,
    )?
    .display()
    .to_string();
    Ok(conf)
}

/// The public listener: the proxy behind the connection guard, over TLS when `[tls]` says so.
/// What the public listener shares with the rest of the process.
struct PublicParts<'a> {
    limits: &'a Arc<crate::limit::Limits>,
    tracing: &'a Option<Arc<crate::proxy::trace::Tracing>>,
    /// The open-connection count, for the drain.
    open: &'a Arc<AtomicUsize>,
    /// How long idle connections linger at shutdown.
    linger: std::time::Duration,
}

/// What the drain waits for and flushes at the end.
struct Ending {
    open: Arc<AtomicUsize>,
    tracing: Option<Arc<crate::proxy::trace::Tracing>>,
}

fn add_public(
    server: &mut Server,
    conf: &Arc<ServerConf>,
    config: &Config,
    live: &Arc<Live>,
    issuer: &Option<Arc<EmbeddedIssuer>>,
    PublicParts {
        limits,
        tracing,
        open,
        linger,
    }: PublicParts<'_>,
) -> Result<()> {
    let proxy = PublicProxy {
        live: Arc::clone(live),
        proto: if config.tls.is_some() {
            "https"
        } else {
            "http"
        },
        audit: config.runtime.audit_log,
        issuer: issuer.clone(),
        limits: Arc::clone(limits),
        sessions: crate::session::Runtime::new(
            live.env.clock.clone(),
            issuer.clone(),
            live.env.embedded.clone(),
        ),
        tracing: tracing.clone(),
    };
    let mut opts = HttpServerOptions::default();
    // CONNECT reaches our guard, which answers 400 (Pingora's own answer would be 405).
    opts.allow_connect_method_proxying = true;
    opts.h2_idle_timeout = Some(config.limits.keepalive_timeout);
    // `headers::edit_request` writes the upstream request's header names in their canonical
    // form: the per-request map of their original case would be thrown away (patched
    // pingora-core), from a connection's first request on.
    opts.discard_h1_header_case = true;
    let mut proxy = pingora::proxy::http_proxy(conf, proxy);
    proxy.server_options = Some(opts);
    proxy.h2_options = Some(h2_options(config.limits.max_header_bytes));
    let mut public_svc = Service::new(
        "public".to_string(),
        Lingering {
            inner: Guarded::new(
                proxy,
                config.limits.header_read_timeout,
                config.limits.max_header_bytes,
            )
            .into(),
            linger,
        },
    );
    // Counts the listener's connections from accept (for the cap, and for the drain) and
    // bounds their TLS handshake.
    public_svc.set_connection_filter(Arc::new(OpenConnections {
        inner: ConnectionCap::new(
            config.limits.max_connections,
            config.limits.header_read_timeout,
        ),
        open: Arc::clone(open),
    }));
    let public_addr = config.listen.public.to_string();
    match &live.tls {
        // The certificate and client verifier come from `live.tls`, which reloads swap.
        Some(tls) => {
            let settings = tls.settings().context("TLS settings")?;
            public_svc.add_tls_with_settings(&public_addr, None, settings);
        }
        None => public_svc.add_tcp(&public_addr),
    }
    server.add_service(public_svc);
    Ok(())
}

/// The plain-HTTP listener that redirects to https, when both it and `[tls]` are configured.
fn add_https_redirect(server: &mut Server, config: &Config) {
    let (Some(redirect), Some(_)) = (config.listen.http_redirect, &config.tls) else {
        return;
    };
    let mut svc = Service::new(
        "https-redirect".to_string(),
        Guarded::new(
            HttpServer::new_app(HttpsRedirect {
                https_port: config.listen.public.port(),
            }),
            config.limits.header_read_timeout,
            config.limits.max_header_bytes,
        ),
    );
    svc.set_connection_filter(ConnectionCap::new(
        config.limits.max_connections,
        config.limits.header_read_timeout,
    ));
    // It only answers with a redirect: one thread.
    svc.threads = Some(1);
    svc.add_tcp(&redirect.to_string());
    server.add_service(svc);
}

/// The lifecycle services: SIGHUP reload, the drain (which exports buffered spans and flushes
/// the audit log last), the issuer's store probe, the first JWKS fetch, readiness and the file
/// watcher.
fn background(
    config: &Config,
    live: &Arc<Live>,
    ready: Arc<Readiness>,
    issuer: Option<Arc<EmbeddedIssuer>>,
    log_guard: LogGuard,
    Ending { open, tracing }: Ending,
) -> Vec<Arc<dyn BackgroundService + Send + Sync>> {
    let mut services: Vec<Arc<dyn BackgroundService + Send + Sync>> = Vec::new();
    services.push(Arc::new(SighupReload {
        live: Arc::clone(live),
    }));
    let guard = Mutex::new(Some(log_guard));
    services.push(Arc::new(Drain {
        max: config.runtime.shutdown_drain,
        open,
        on_exit: Box::new(move || {
            // Export the buffered spans (bounded), then flush the audit log.
            if let Some(t) = &tracing {
                t.shutdown(std::time::Duration::from_secs(3));
            }
            if let Ok(mut g) = guard.lock() {
                g.take();
            }
        }),
    }));
    if let Some(issuer) = issuer {
        let backend = match &config.issuer {
            Some(i) if i.database.starts_with("postgres") => "postgres",
            _ => "sqlite",
        };
        services.push(Arc::new(StoreProbe {
            issuer,
            ready: Arc::clone(&ready),
            backend,
        }));
    }
    services.push(Arc::new(PrefetchKeys {
        live: Arc::clone(live),
        ready: Arc::clone(&ready),
        timeout: std::time::Duration::from_secs(10),
    }));
    services.push(Arc::new(ReadinessProbe {
        ready,
        public: config.listen.public,
    }));
    if config.routing.watch {
        services.push(Arc::new(Watcher {
            live: Arc::clone(live),
            debounce: std::time::Duration::from_millis(1000),
        }));
    }
    services
}
