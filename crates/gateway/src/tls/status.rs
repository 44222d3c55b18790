//! Certificate expiry (DESIGN §11): what `/admin/config` lists for every certificate file in
//! use, and the gauge `portcullis_tls_certificate_expiry_timestamp_seconds{name}`. A file that
//! failed its last reload is reported with its error while the certificate read before stays in
//! use (and listed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use portcullis_core::metrics::metrics;

/// When one certificate in use stops being valid. `name` is the metric's label: `server`,
/// `client_ca`, `upstream/<route>/ca` or `upstream/<route>/client_cert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    pub name: String,
    pub path: PathBuf,
    /// Unix seconds; for a CA bundle, its earliest.
    pub not_after: i64,
}

impl Expiry {
    pub fn new(name: impl Into<String>, path: &Path, not_after: i64) -> Expiry {
        Expiry {
            name: name.into(),
            path: path.to_path_buf(),
            not_after,
        }
    }
}

/// Every certificate in use, and the errors of the last failed TLS reload.
#[derive(Debug, Default)]
pub struct CertBook {
    in_use: BTreeMap<String, Expiry>,
    errors: Vec<String>,
    errors_at: Option<SystemTime>,
}

impl CertBook {
    /// `all` is now in use (and nothing else): the gauges follow, and old errors are cleared.
    pub fn in_use(&mut self, all: Vec<Expiry>) {
        let gauge = &metrics().tls_cert_expiry;
        let next: BTreeMap<String, Expiry> = all.into_iter().map(|e| (e.name.clone(), e)).collect();
        for gone in self.in_use.keys().filter(|k| !next.contains_key(*k)) {
            let _ = gauge.remove_label_values(&[gone]);
        }
        for e in next.values() {
            gauge.with_label_values(&[&e.name]).set(e.not_after);
        }
        self.in_use = next;
        self.errors.clear();
        self.errors_at = None;
    }

    /// A reload refused TLS files: what is in use stays, the errors are shown beside it.
    pub fn failed(&mut self, errors: Vec<String>) {
        self.errors = errors;
        self.errors_at = Some(SystemTime::now());
    }

    /// The view `/admin/config` shows under `certificates`.
    pub fn view(&self) -> Value {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let list: Vec<Value> = self
            .in_use
            .values()
            .map(|e| {
                let at = UNIX_EPOCH + Duration::from_secs(e.not_after.max(0) as u64);
                json!({
                    "name": e.name,
                    "path": e.path.display().to_string(),
                    "not_after": humantime::format_rfc3339_seconds(at).to_string(),
                    "not_after_unix": e.not_after,
                    "expires_in_seconds": e.not_after - now,
                })
            })
            .collect();
        json!({
            "in_use": list,
            "last_error": (!self.errors.is_empty()).then_some(&self.errors),
            "last_error_at": self.errors_at.map(|t| humantime::format_rfc3339_millis(t).to_string()),
        })
    }
}
