//! The validated configuration of one gateway process: listeners, TLS, guard, limits.
//! Routes, policies and trust are reloadable and live in the gateway's snapshot.

pub mod diag;
pub mod file;
pub mod rate_limit;
pub mod session;
pub mod source;
pub mod telemetry;
mod validate;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use session::{SessionProvider, SessionSettings, SessionStore};
pub use source::SourceFile;
pub use telemetry::TracingSettings;

use file::ConfigFile;

/// Static settings: what needs a restart to change.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file itself, and the directory relative paths are resolved against.
    pub path: PathBuf,
    pub base_dir: PathBuf,
    pub listen: Listen,
    pub runtime: Runtime,
    pub tls: Option<Tls>,
    pub trusted_proxies: Vec<IpNet>,
    pub guard: Guard,
    pub routing: Routing,
    pub limits: Limits,
    pub issuer: Option<IssuerSettings>,
    /// `[rate_limit] store` and `[issuer] rate_limit` (DESIGN §12).
    pub rate_limit: rate_limit::RateLimits,
    /// `[session]`: browser sign-in at the gateway.
    pub session: Option<SessionSettings>,
    /// `[tracing]`: OpenTelemetry export; `None` leaves the request path untouched.
    pub tracing: Option<TracingSettings>,
}

#[derive(Debug, Clone)]
pub struct Listen {
    pub public: SocketAddr,
    pub http_redirect: Option<SocketAddr>,
    pub internal: Option<SocketAddr>,
    pub management: SocketAddr,
}

#[derive(Debug, Clone)]
pub struct Runtime {
    pub worker_threads: usize,
    pub shutdown_drain: Duration,
    pub audit_log: bool,
    /// `runtime.upgrade_sock`, resolved; `None`: a per-user private directory in `$TMPDIR`.
    pub upgrade_sock: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub self_signed_if_missing: bool,
    /// Client certificates (DESIGN §11): asked for when set, verified against these CAs.
    pub client_ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

/// Whether a client must present a certificate during the handshake (`[tls] client_auth`).
/// Either way a certificate that is presented must verify against `client_ca`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// A client without a certificate completes the handshake; `mtls` routes answer it 401.
    Optional,
    /// The handshake fails without a verified certificate.
    Required,
}

#[derive(Debug, Clone)]
pub struct Guard {
    /// Ports no route may reach: `internal_ports` plus the management and internal listeners'.
    pub guarded_ports: BTreeSet<u16>,
    pub blocked_prefixes: Vec<String>,
    pub allow_non_loopback_management: bool,
}

#[derive(Debug, Clone)]
pub struct Routing {
    pub routes: PathBuf,
    pub policies: PathBuf,
    pub watch: bool,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub keepalive_timeout: Duration,
    /// A pooled upstream connection idle longer is closed, not reused: set it below the
    /// upstreams' own keep-alive timeout so the gateway never sends on a connection they close.
    pub upstream_idle_timeout: Duration,
    /// Open client connections per public/redirect listener; 0: no cap.
    pub max_connections: usize,
}

/// The longest any `[limits]` timeout may be: a day. Larger values are taken as a day, so a
/// deadline computed from one (`Instant + timeout`) can never overflow.
pub const MAX_LIMIT_SECONDS: u64 = 86_400;

/// Never served on the public listener, whatever `guard.blocked_prefixes` lists.
pub const ALWAYS_BLOCKED: &str = "/auth/admin";

/// Default `limits.max_connections`: HAProxy's order of magnitude, far above what one worker
/// serves well, low enough that a connection flood meets a wall before the file-descriptor limit.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct IssuerSettings {
    pub frontend_url: Option<String>,
    pub database: String,
    pub import: Vec<PathBuf>,
    pub login_event_retention_days: u32,
}

pub const DEFAULT_MANAGEMENT: &str = "127.0.0.1:9000";
pub const DEFAULT_INTERNAL: &str = "127.0.0.1:8081";

/// The parsed file and its source, kept for the reloadable parts (`[[trust]]`).
pub struct Loaded {
    pub config: Config,
    pub source: SourceFile,
    pub file: ConfigFile,
}

impl Config {
    /// Reads and validates `portcullis.toml`; every problem is collected in `diags`.
    pub fn load(path: &Path, diags: &mut Diagnostics) -> Option<Loaded> {
        // Absolute (not canonical) paths: the file watcher compares them with event paths.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let source = SourceFile::read(&path, diags)?;
        let file: ConfigFile = source.parse_toml(diags)?;
        let config = validate::validate(&source, &file, diags)?;
        Some(Loaded {
            config,
            source,
            file,
        })
    }

    /// A path from the config, relative to the config file's directory.
    pub fn resolve(&self, p: &str) -> PathBuf {
        resolve(&self.base_dir, p)
    }
}

pub(crate) fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// The ports a file guards (DESIGN §6), for checking its routes when the file itself is refused:
/// `guard.internal_ports` (default 9000, 8081) and the management and internal listeners'
/// ports, as far as their addresses parse.
pub fn guarded_ports_named(f: &ConfigFile) -> BTreeSet<u16> {
    let mut ports: BTreeSet<u16> = f
        .guard
        .internal_ports
        .as_ref()
        .map(|v| v.iter().map(|p| *p.get_ref()).collect())
        .unwrap_or_else(|| [9000, 8081].into_iter().collect());
    let port = |a: &Option<toml::Spanned<String>>, default: Option<&str>| {
        a.as_ref()
            .map(|s| s.get_ref().as_str())
            .or(default)
            .and_then(|s| s.parse::<SocketAddr>().ok())
            .map(|a| a.port())
    };
    let issuer_enabled = f.issuer.as_ref().is_some_and(|i| i.enabled.unwrap_or(true));
    ports.extend(port(&f.listen.management, Some(DEFAULT_MANAGEMENT)));
    ports.extend(port(
        &f.listen.internal,
        issuer_enabled.then_some(DEFAULT_INTERNAL),
    ));
    ports.remove(&0);
    ports
}

/// The routes and policies paths a file names (defaults `routes`, `policies`), resolved
/// against `base`, the file's directory.
pub fn table_paths(f: &ConfigFile, base: &Path) -> (PathBuf, PathBuf) {
    (
        resolve(base, f.routing.routes.as_deref().unwrap_or("routes")),
        resolve(base, f.routing.policies.as_deref().unwrap_or("policies")),
    )
}
