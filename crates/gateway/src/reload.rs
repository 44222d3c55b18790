//! The live snapshot and its reloads: one `ArcSwap`, swapped only by a reload that validated
//! completely. A failed reload keeps the old snapshot, logs every error and counts the failure.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use serde::Serialize;

use crate::snapshot::Snapshot;
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
}

fn fmt_time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

impl Live {
    pub fn new(config: Config, env: AuthnEnv, first: Snapshot) -> Arc<Live> {
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
        Arc::new(Live {
            config,
            env,
            current: ArcSwap::from_pointee(first),
            status: Mutex::new(status),
            reload_lock: tokio::sync::Mutex::new(()),
        })
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
        let built =
            tokio::task::spawn_blocking(move || Snapshot::load(&this.config, &this.env, next_gen))
                .await
                .unwrap_or_else(|e| {
                    let mut d = Diagnostics::default();
                    d.push(portcullis_core::config::Diagnostic::file_error(
                        &self.config.path,
                        format!("reload task failed: {e}"),
                    ));
                    Err(d)
                });
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
