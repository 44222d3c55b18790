//! The live snapshot and its reloads: one `ArcSwap`, swapped only by a reload that validated
//! completely. A failed reload keeps the old snapshot, logs every error and counts the failure.
//! A reload also reads every TLS file again (DESIGN §11): the listener's certificate and client
//! CA, swapped in for new handshakes, and the routes' upstream TLS, part of the snapshot. A bad
//! file fails the reload like a bad route: what is in use stays.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use serde::Serialize;

use crate::snapshot::Snapshot;
use crate::tls::status::{CertBook, Expiry};
use crate::tls::{ServerTls, server};
use portcullis_authn::AuthnEnv;
use portcullis_core::config::{Config, Diagnostics};
use portcullis_core::metrics::metrics;

/// What `/admin/config` reports.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadStatus {
    pub generation: u64,
    pub loaded_at: String,
    pub sources: Vec<String>,
    pub last_error: Option<Vec<String>>,
    pub last_error_at: Option<String>,
}

/// The current snapshot plus the machinery to replace it.
pub struct Live {
    pub config: Config,
    /// Key caches and the clock, shared by every generation.
    pub env: AuthnEnv,
    current: ArcSwap<Snapshot>,
    status: Mutex<ReloadStatus>,
    /// Serializes reloads (SIGHUP, file watch and the admin endpoint may race).
    reload_lock: tokio::sync::Mutex<()>,
    /// The public listener's certificate and client verifier (`[tls]`), when it has TLS.
    pub tls: Option<Arc<ServerTls>>,
    certs: Mutex<CertBook>,
    /// Signalled after every successful reload (a stored permit, so none is missed): the file
    /// watcher, its one waiter, then re-reads what to watch.
    pub reloaded: tokio::sync::Notify,
}

/// What one reload read: the listener's TLS material (when it has TLS) and the snapshot.
struct Built {
    server: Option<Result<server::Material, Vec<String>>>,
    snap: Result<Snapshot, Diagnostics>,
}

fn fmt_time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

impl Live {
    /// `tls` is the listener's TLS as started, with the expiry of what it read.
    pub fn new(
        config: Config,
        env: AuthnEnv,
        first: Snapshot,
        tls: Option<(Arc<ServerTls>, Vec<Expiry>)>,
    ) -> Arc<Live> {
        metrics().config_generation.set(first.generation as i64);
        let status = ReloadStatus {
            generation: first.generation,
            loaded_at: fmt_time(first.loaded_at),
            sources: first
                .sources
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            last_error: None,
            last_error_at: None,
        };
        let (tls, mut expiry) = tls.map_or((None, Vec::new()), |(t, e)| (Some(t), e));
        expiry.extend(crate::tls::upstream::expiry(&first.routes));
        let mut certs = CertBook::default();
        certs.in_use(expiry);
        Arc::new(Live {
            config,
            env,
            current: ArcSwap::from_pointee(first),
            status: Mutex::new(status),
            reload_lock: tokio::sync::Mutex::new(()),
            tls,
            certs: Mutex::new(certs),
            reloaded: tokio::sync::Notify::new(),
        })
    }

    /// Every certificate in use with its expiry, and the last TLS reload error (`/admin/config`).
    pub fn certificates(&self) -> serde_json::Value {
        self.certs.lock().unwrap_or_else(|p| p.into_inner()).view()
    }

    /// Every file a reload reads, for the file watcher: the config, routes and policies, the
    /// listener's TLS files and the routes' upstream TLS files.
    pub fn watched_paths(&self) -> Vec<std::path::PathBuf> {
        let mut paths = vec![
            self.config.path.clone(),
            self.config.routing.routes.clone(),
            self.config.routing.policies.clone(),
        ];
        // The session's cookie keys: a removed key stops opening sessions at once.
        if let Some(s) = &self.config.session {
            paths.push(s.cookie_keys.clone());
        }
        if let Some(t) = &self.tls {
            paths.extend(t.paths());
        }
        paths.extend(crate::tls::upstream::paths(&self.snapshot().routes));
        paths
    }

    /// When the whole reload validated: installs the listener's new TLS material (new
    /// handshakes use it) and records every certificate now in use. Otherwise nothing changes
    /// and the TLS errors are recorded beside what stays in use.
    fn install_tls(&self, built: Built) -> Result<Snapshot, Diagnostics> {
        let mut certs = self.certs.lock().unwrap_or_else(|p| p.into_inner());
        match (built.server, built.snap) {
            (server @ (None | Some(Ok(_))), Ok(snap)) => {
                let mut expiry = Vec::new();
                if let (Some(Ok(m)), Some(tls)) = (server, &self.tls) {
                    expiry.extend(m.expiry.iter().cloned());
                    tls.install(m);
                }
                expiry.extend(crate::tls::upstream::expiry(&snap.routes));
                certs.in_use(expiry);
                Ok(snap)
            }
            (server, snap) => {
                let mut diags = Diagnostics::default();
                let mut tls_errors = Vec::new();
                if let Some(Err(errors)) = server {
                    for e in errors {
                        diags.push(portcullis_core::config::Diagnostic::file_error(
                            &self.config.path,
                            format!("[tls]: {e}"),
                        ));
                        tls_errors.push(e);
                    }
                }
                if let Err(d) = snap {
                    tls_errors.extend(
                        d.errors()
                            .filter(|e| e.message.contains("upstream_tls"))
                            .map(ToString::to_string),
                    );
                    diags.extend(d);
                }
                if !tls_errors.is_empty() {
                    certs.failed(tls_errors);
                }
                Err(diags)
            }
        }
    }

    /// Reads everything a reload needs (blocking I/O and DNS).
    fn build(&self, generation: u64) -> Built {
        Built {
            server: self.tls.as_ref().map(|t| t.read()),
            snap: Snapshot::load(&self.config, &self.env, generation),
        }
    }

    /// The snapshot a request uses from start to end.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    pub fn status(&self) -> ReloadStatus {
        self.status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Rebuilds the snapshot from the files; swaps it in only if everything validated.
    pub async fn reload(self: &Arc<Self>, trigger: &str) -> Result<u64, Diagnostics> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let next_gen = self.current.load().generation + 1;
        let this = Arc::clone(self);
        // File reads and DNS resolution block: keep them off the async workers.
        let built = tokio::task::spawn_blocking(move || this.build(next_gen))
            .await
            .unwrap_or_else(|e| {
                let mut d = Diagnostics::default();
                d.push(portcullis_core::config::Diagnostic::file_error(
                    &self.config.path,
                    format!("reload task failed: {e}"),
                ));
                Built {
                    server: None,
                    snap: Err(d),
                }
            });
        let built = self.install_tls(built);
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        match built {
            Ok(snap) => {
                status.generation = snap.generation;
                status.loaded_at = fmt_time(snap.loaded_at);
                status.sources = snap
                    .sources
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                status.last_error = None;
                status.last_error_at = None;
                metrics().config_generation.set(snap.generation as i64);
                metrics()
                    .config_reloads
                    .with_label_values(&["success"])
                    .inc();
                tracing::info!(
                    generation = snap.generation,
                    trigger,
                    "config reloaded: {}",
                    crate::snapshot::summary(&snap)
                );
                let snap = Arc::new(snap);
                self.current.store(Arc::clone(&snap));
                self.reloaded.notify_one();
                // New issuers' keys, fetched off the reload path (bounded, best effort).
                tokio::spawn(async move {
                    snap.authn
                        .prefetch(std::time::Duration::from_secs(10))
                        .await
                });
                Ok(next_gen)
            }
            Err(diags) => {
                for d in diags.errors() {
                    tracing::error!(trigger, "reload refused: {d}");
                }
                status.last_error = Some(diags.error_strings());
                status.last_error_at = Some(fmt_time(SystemTime::now()));
                metrics()
                    .config_reloads
                    .with_label_values(&["failure"])
                    .inc();
                Err(diags)
            }
        }
    }
}
