//! Process lifecycle as Pingora background services: SIGHUP reloads, SIGTERM drains (bounded,
//! and no longer than needed), the file watcher reloads, and the readiness probe.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::mgmt::Readiness;
use crate::reload::Live;
use portcullis_core::metrics::metrics;

/// Several background services on one Pingora runtime of one thread, each its own task:
/// Pingora gives every service a runtime (its threads, timer and I/O driver, and each thread
/// its allocator pages) of its own, and these only wait for signals, timers and the network.
pub struct Together {
    pub services: Vec<Arc<dyn BackgroundService + Send + Sync>>,
}

#[async_trait]
impl BackgroundService for Together {
    async fn start(&self, shutdown: ShutdownWatch) {
        let mut tasks = tokio::task::JoinSet::new();
        for service in &self.services {
            let (service, shutdown) = (Arc::clone(service), shutdown.clone());
            tasks.spawn(async move { service.start(shutdown).await });
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// SIGHUP → reload. (Pingora leaves SIGHUP unhandled, which would kill the process.)
pub struct SighupReload {
    pub live: Arc<Live>,
}

#[async_trait]
impl BackgroundService for SighupReload {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::error!("cannot install the SIGHUP handler; reload with POST /admin/reload");
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    let _ = self.live.reload("sighup").await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Once Pingora has stopped accepting (SIGTERM, or SIGQUIT once the successor has the
/// sockets), waits until no request is in flight and no client connection is open, or the
/// drain bound passes, then exits: Pingora itself would sleep its whole grace period. Open
/// connections close on their own: each answers its next request with `Connection: close`,
/// and the idle ones are closed after `handover::LINGER`.
pub struct Drain {
    pub max: Duration,
    /// The public listener's open client connections (`handover::OpenConnections`), and one
    /// while the internal listener serves (`handover::InternalListener`).
    pub open: Arc<AtomicUsize>,
    pub on_exit: Box<dyn Fn() + Send + Sync>,
}

#[async_trait]
impl BackgroundService for Drain {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                return;
            }
        }
        let deadline = Instant::now() + self.max;
        tracing::info!(
            max_seconds = self.max.as_secs(),
            "shutting down: draining in-flight requests and open connections"
        );
        // Let requests accepted just before the signal get their context counted.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let busy = || metrics().in_flight.get() > 0 || self.open.load(Ordering::Acquire) > 0;
        while busy() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (left, open) = (metrics().in_flight.get(), self.open.load(Ordering::Acquire));
        if left > 0 || open > 0 {
            tracing::warn!(
                in_flight = left,
                open_connections = open,
                "drain bound reached; exiting"
            );
        } else {
            tracing::info!("drained; exiting");
        }
        (self.on_exit)();
        std::process::exit(0);
    }
}

/// Marks the listeners bound once the public listener accepts a TCP connection.
pub struct ReadinessProbe {
    pub ready: Arc<Readiness>,
    pub public: std::net::SocketAddr,
}

#[async_trait]
impl BackgroundService for ReadinessProbe {
    async fn start(&self, _shutdown: ShutdownWatch) {
        let mut addr = self.public;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        for _ in 0..600 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                self.ready.listeners_bound.store(true, Ordering::Release);
                tracing::info!(listen.public = %self.public, "listeners bound; ready");
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::error!(listen.public = %self.public, "public listener never became reachable");
    }
}

/// Reloads when a watched file or directory changes, debounced so that an editor's
/// save-in-several-writes (or a ConfigMap's `..data` symlink swap) reloads once. What is
/// watched is what a reload reads ([`Live::watched_paths`]: config, routes, policies and every
/// TLS file), asked again after each successful reload, so a route's new certificate files are
/// watched too.
pub struct Watcher {
    pub live: Arc<Live>,
    pub debounce: Duration,
}

/// Watched directories, and the one file each cares about (None: every file in it).
type Targets = Vec<(PathBuf, Option<std::ffi::OsString>)>;

fn targets(paths: &[PathBuf]) -> Targets {
    let mut out: Targets = Vec::new();
    for p in paths {
        let t = if p.is_dir() {
            (p.clone(), None)
        } else {
            let dir = p
                .parent()
                .map(PathBuf::from)
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or_else(|| PathBuf::from("."));
            (dir, p.file_name().map(|n| n.to_os_string()))
        };
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// Whether an event on `path` concerns one of `targets`.
fn relevant(targets: &Targets, path: &std::path::Path) -> bool {
    let name = path.file_name().unwrap_or_default();
    // Kubernetes swaps a ConfigMap or Secret volume by renaming its `..data` symlink.
    let k8s = name.to_string_lossy().starts_with("..");
    targets.iter().any(|(dir, file)| {
        path.parent().is_some_and(|p| p == dir) && (k8s || file.as_ref().is_none_or(|f| f == name))
    })
}

#[async_trait]
impl BackgroundService for Watcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use notify::{RecursiveMode, Watcher as _};
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let current = Arc::new(std::sync::RwLock::new(targets(&self.live.watched_paths())));
        let filter = Arc::clone(&current);
        let mut watcher =
            match notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                let Ok(ev) = res else { return };
                let t = filter.read().unwrap_or_else(|p| p.into_inner());
                if !ev.kind.is_access() && ev.paths.iter().any(|p| relevant(&t, p)) {
                    let _ = tx.send(());
                }
            }) {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!(
                        "file watch unavailable ({e}); reload with SIGHUP or POST /admin/reload"
                    );
                    return;
                }
            };
        let mut watched: Vec<PathBuf> = Vec::new();
        let mut watch_new = |watcher: &mut notify::RecommendedWatcher, t: &Targets| {
            for (dir, _) in t {
                // Watch directories, not files: editors and Kubernetes replace files by rename.
                if watched.contains(dir) {
                    continue;
                }
                match watcher.watch(dir, RecursiveMode::NonRecursive) {
                    Ok(()) => watched.push(dir.clone()),
                    Err(e) => tracing::warn!(path = %dir.display(), "cannot watch: {e}"),
                }
            }
        };
        {
            let t = current.read().unwrap_or_else(|p| p.into_inner()).clone();
            watch_new(&mut watcher, &t);
        }
        loop {
            tokio::select! {
                got = rx.recv() => {
                    if got.is_none() { return; }
                    // Debounce: wait until the files have been quiet for a while.
                    loop {
                        match tokio::time::timeout(self.debounce, rx.recv()).await {
                            Ok(Some(())) => continue,
                            Ok(None) => return,
                            Err(_) => break,
                        }
                    }
                    let _ = self.live.reload("watch").await;
                }
                // Any successful reload (this one, SIGHUP, the admin endpoint) may name new files.
                _ = self.live.reloaded.notified() => {
                    let t = targets(&self.live.watched_paths());
                    watch_new(&mut watcher, &t);
                    *current.write().unwrap_or_else(|p| p.into_inner()) = t;
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Fetches the remote issuers' keys at startup, bounded, so the first requests don't pay for
/// it; readiness waits for this first attempt only, never for a down issuer.
pub struct PrefetchKeys {
    pub live: Arc<Live>,
    pub ready: Arc<Readiness>,
    pub timeout: Duration,
}

#[async_trait]
impl BackgroundService for PrefetchKeys {
    async fn start(&self, _shutdown: ShutdownWatch) {
        self.live.snapshot().authn.prefetch(self.timeout).await;
        self.ready.keys_attempted.store(true, Ordering::Release);
    }
}

/// Keeps the readiness latch in step with the issuer's store (SQLite file or PostgreSQL), and
/// `portcullis_issuer_store_up` with it. While the store answers, also samples it for the
/// metrics: its pool (connections in use and idle, the bound, a probe's wait for a connection)
/// each round and the live sessions per realm every third. Off the request path: requests
/// never touch these gauges.
pub struct StoreProbe {
    pub issuer: Arc<crate::embed::EmbeddedIssuer>,
    pub ready: Arc<Readiness>,
    /// `sqlite` or `postgres`: the metric's label.
    pub backend: &'static str,
}

#[async_trait]
impl BackgroundService for StoreProbe {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let up = metrics().issuer.up.with_label_values(&[self.backend]);
        let mut realms = std::collections::BTreeSet::new();
        for round in 0u64.. {
            let ok = self.issuer.ready().await;
            up.set(i64::from(ok));
            if self.ready.store_reachable.swap(ok, Ordering::AcqRel) != ok && !ok {
                tracing::error!("issuer store unreachable: not ready");
            }
            if ok {
                let sessions_at = (round % 3 == 0).then(unix_now);
                for sample in self.issuer.sample(sessions_at).await {
                    record(&sample, &mut realms);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(if ok { 5 } else { 1 })) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// One sample into the gauges; a realm gone since the last count loses its series.
fn record(s: &crate::embed::StoreSample, realms: &mut std::collections::BTreeSet<String>) {
    let m = &metrics().issuer;
    m.pool_connections
        .with_label_values(&[s.backend, "in_use"])
        .set(i64::from(s.in_use));
    m.pool_connections
        .with_label_values(&[s.backend, "idle"])
        .set(i64::from(s.idle));
    m.pool_max
        .with_label_values(&[s.backend])
        .set(i64::from(s.max));
    if let Some(wait) = s.acquire_wait {
        m.pool_acquire
            .with_label_values(&[s.backend])
            .observe(wait.as_secs_f64());
    }
    if let Some(sessions) = &s.sessions {
        let now: std::collections::BTreeSet<String> =
            sessions.iter().map(|(r, _)| r.clone()).collect();
        for gone in realms.difference(&now) {
            let _ = m.sessions_active.remove_label_values(&[gone.as_str()]);
        }
        for (realm, n) in sessions {
            m.sessions_active
                .with_label_values(&[realm.as_str()])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        *realms = now;
    }
}
