//! The validated configuration of one gateway process: listeners, TLS, guard, limits.
//! Routes, policies and trust are reloadable and live in the gateway's snapshot.

pub mod diag;
pub mod file;
pub mod source;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use source::SourceFile;

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
}

#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub self_signed_if_missing: bool,
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

/// A `[limits]` timeout: `default` when unset, within 1 s ..= [`MAX_LIMIT_SECONDS`].
fn limit_seconds(set: Option<u64>, default: u64) -> Duration {
    Duration::from_secs(set.unwrap_or(default).clamp(1, MAX_LIMIT_SECONDS))
}

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
        let config = validate(&source, &file, diags)?;
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

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn parse_addr(
    src: &SourceFile,
    v: &toml::Spanned<String>,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<SocketAddr> {
    match v.get_ref().parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            diags.push(
                src.error(
                    v.span(),
                    format!("{what}: \"{}\" is not an address", v.get_ref()),
                )
                .with_hint("write IP:PORT, e.g. \"127.0.0.1:9000\" or \"[::]:8443\""),
            );
            None
        }
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

fn validate(src: &SourceFile, f: &ConfigFile, diags: &mut Diagnostics) -> Option<Config> {
    let errors_before = diags.errors().count();
    let base_dir = src
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));

    let public = parse_addr(src, &f.listen.public, "listen.public", diags);
    let http_redirect = f
        .listen
        .http_redirect
        .as_ref()
        .and_then(|a| parse_addr(src, a, "listen.http_redirect", diags));
    let issuer_enabled = f.issuer.as_ref().is_some_and(|i| i.enabled.unwrap_or(true));
    let internal = match &f.listen.internal {
        Some(a) => parse_addr(src, a, "listen.internal", diags),
        None if issuer_enabled => DEFAULT_INTERNAL.parse().ok(),
        None => None,
    };
    let management = match &f.listen.management {
        Some(a) => parse_addr(src, a, "listen.management", diags),
        None => DEFAULT_MANAGEMENT.parse().ok(),
    };
    let allow_non_loopback_management = f.guard.allow_non_loopback_management.unwrap_or(false);

    if let (Some(m), false) = (management, allow_non_loopback_management)
        && !m.ip().is_loopback()
    {
        let span = f.listen.management.as_ref().map_or(0..0, |s| s.span());
        diags.push(
                src.error(
                    span,
                    format!("listen.management = \"{m}\" is not a loopback address; the management listener exposes reload and admin endpoints"),
                )
                .with_hint("bind 127.0.0.1 or [::1], or set guard.allow_non_loopback_management = true where a network policy protects it"),
            );
    }
    if let Some(i) = internal
        && !i.ip().is_loopback()
        && !allow_non_loopback_management
    {
        let span = f.listen.internal.as_ref().map_or(0..0, |s| s.span());
        diags.push(
                src.error(span, format!("listen.internal = \"{i}\" is not a loopback address; the issuer backchannel is never public"))
                    .with_hint("bind 127.0.0.1, or set guard.allow_non_loopback_management = true where a network policy protects it"),
            );
    }
    // Two listeners on one port would fail at bind time with a less helpful message.
    let mut seen: Vec<(SocketAddr, &str)> = Vec::new();
    for (addr, name, span) in [
        (public, "public", Some(f.listen.public.span())),
        (
            http_redirect,
            "http_redirect",
            f.listen.http_redirect.as_ref().map(|s| s.span()),
        ),
        (
            internal,
            "internal",
            f.listen.internal.as_ref().map(|s| s.span()),
        ),
        (
            management,
            "management",
            f.listen.management.as_ref().map(|s| s.span()),
        ),
    ] {
        let Some(addr) = addr else { continue };
        if addr.port() != 0
            && let Some((_, other)) = seen.iter().find(|(a, _)| {
                a.port() == addr.port()
                    && (a.ip() == addr.ip()
                        || a.ip().is_unspecified()
                        || addr.ip().is_unspecified())
            })
        {
            diags.push(src.error(
                span.unwrap_or(0..0),
                format!("listen.{name} uses the same address as listen.{other}"),
            ));
        }
        seen.push((addr, name));
    }

    let tls = f.tls.as_ref().map(|t| {
        // Refused here rather than at start, so `check` and a reload report it with its place.
        match t.min_version.as_ref().map(|v| v.get_ref().as_str()) {
            None | Some("1.2") => {}
            Some("1.3") => {
                let span = t.min_version.as_ref().map_or(0..0, |s| s.span());
                diags.push(
                    src.error(
                        span,
                        "tls.min_version = \"1.3\" is not available: Pingora 0.9's rustls listener always offers TLS 1.2 and 1.3",
                    )
                    .with_hint("use \"1.2\" (or leave it out), and enforce 1.3 at the load balancer if you must"),
                );
            }
            Some(other) => {
                let span = t.min_version.as_ref().map_or(0..0, |s| s.span());
                diags.push(
                    src.error(
                        span,
                        format!("tls.min_version = \"{other}\" is not supported"),
                    )
                    .with_hint("use \"1.2\""),
                );
            }
        }
        let tls = Tls {
            cert: resolve(
                &base_dir,
                t.cert.as_ref().map_or("certs/gateway.crt", |c| c.get_ref()),
            ),
            key: resolve(
                &base_dir,
                t.key.as_ref().map_or("certs/gateway.key", |c| c.get_ref()),
            ),
            self_signed_if_missing: t.self_signed_if_missing.unwrap_or(true),
        };
        // Without a generated fallback a missing file stops `run`; `check` should say so first.
        if !tls.self_signed_if_missing {
            for (path, key, name) in [(&tls.cert, &t.cert, "cert"), (&tls.key, &t.key, "key")] {
                if !path.exists() {
                    diags.push(
                        src.error(
                            key.as_ref().map_or(0..0, |k| k.span()),
                            format!("tls.{name}: {} does not exist", path.display()),
                        )
                        .with_hint("point it at the PEM file, or set tls.self_signed_if_missing = true for a dev certificate"),
                    );
                }
            }
        }
        tls
    });

    if f.tls.is_none()
        && let Some(r) = &f.listen.http_redirect
    {
        diags.push(
            src.warning(
                r.span(),
                "listen.http_redirect is not started without [tls]: there is no https listener to redirect to",
            )
            .with_hint("add a [tls] section, or remove http_redirect"),
        );
    }

    let mut trusted_proxies = Vec::new();
    for p in &f.forwarded.trusted_proxies {
        let s = p.get_ref();
        let parsed = s
            .parse::<IpNet>()
            .or_else(|_| s.parse::<IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => trusted_proxies.push(net),
            Err(_) => diags.push(
                src.error(
                    p.span(),
                    format!("forwarded.trusted_proxies: \"{s}\" is not a CIDR or IP address"),
                )
                .with_hint("e.g. \"10.0.0.0/8\" or \"192.168.1.10\""),
            ),
        }
    }

    let guarded_ports = guarded_ports_named(f);

    // Keycloak's admin console is blocked whatever the list says (like the gateway's own
    // ports in `internal_ports`): a list written for other paths must not expose it.
    let mut blocked_prefixes = vec![ALWAYS_BLOCKED.to_string()];
    for b in f.guard.blocked_prefixes.iter().flatten() {
        let s = b.get_ref();
        if !s.starts_with('/') {
            diags.push(src.error(
                b.span(),
                format!("guard.blocked_prefixes: \"{s}\" must start with '/'"),
            ));
            continue;
        }
        let p = crate::route::canonical_prefix(s);
        if !blocked_prefixes.contains(&p) {
            blocked_prefixes.push(p);
        }
    }

    let limits = Limits {
        max_header_bytes: f
            .limits
            .max_header_bytes
            .unwrap_or(64 * 1024)
            .clamp(1024, 1024 * 1024),
        header_read_timeout: limit_seconds(f.limits.header_read_timeout_seconds, 10),
        body_read_timeout: limit_seconds(f.limits.body_read_timeout_seconds, 30),
        keepalive_timeout: limit_seconds(f.limits.keepalive_timeout_seconds, 60),
        upstream_idle_timeout: limit_seconds(f.limits.upstream_idle_timeout_seconds, 60),
        max_connections: f.limits.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
    };

    // What the issuer would refuse at start, reported by `check` with its place.
    if let Some(i) = f.issuer.as_ref().filter(|_| issuer_enabled) {
        if let Some(db) = &i.database {
            let d = db.get_ref();
            let known = ["sqlite:", "postgres://", "postgresql://"];
            if !known.iter().any(|k| d.starts_with(k)) {
                diags.push(
                    src.error(
                        db.span(),
                        format!("issuer.database = \"{d}\" is neither SQLite nor PostgreSQL"),
                    )
                    .with_hint(
                        "write sqlite://PATH (relative to this file) or postgres://USER@HOST/DB",
                    ),
                );
            }
        }
        if let Some(u) = &i.frontend_url {
            let ok = url::Url::parse(u.get_ref()).is_ok_and(|p| {
                matches!(p.scheme(), "http" | "https")
                    && p.host().is_some()
                    && p.query().is_none()
                    && p.fragment().is_none()
            });
            if !ok {
                diags.push(
                    src.error(
                        u.span(),
                        format!(
                            "issuer.frontend_url = \"{}\" is not an http(s) URL",
                            u.get_ref()
                        ),
                    )
                    .with_hint("e.g. \"https://sso.example.com/auth\" (the public URL of the /auth route), or leave it out to follow X-Forwarded-*"),
                );
            } else if !u.get_ref().trim_end_matches('/').ends_with("/auth") {
                // Legitimate behind a proxy that maps this URL onto the gateway's /auth, a
                // mistake otherwise: browsers and relying parties would be sent to paths the
                // gateway does not serve.
                diags.push(
                    src.warning(
                        u.span(),
                        format!(
                            "issuer.frontend_url = \"{}\" does not end in /auth, where the gateway serves the issuer",
                            u.get_ref()
                        ),
                    )
                    .with_hint("right only if a proxy in front maps it onto the gateway's /auth"),
                );
            }
        }
    }

    let issuer = f
        .issuer
        .as_ref()
        .filter(|_| issuer_enabled)
        .map(|i| IssuerSettings {
            frontend_url: i
                .frontend_url
                .as_ref()
                .map(|u| u.get_ref().trim_end_matches('/').to_string()),
            database: i.database.as_ref().map_or_else(
                || "sqlite://data/portcullis.db".to_string(),
                |d| d.get_ref().clone(),
            ),
            import: i
                .import
                .iter()
                .map(|p| resolve(&base_dir, p.get_ref()))
                .collect(),
            login_event_retention_days: i.login_event_retention_days.unwrap_or(30),
        });

    if diags.errors().count() > errors_before {
        return None;
    }
    let (routes, policies) = table_paths(f, &base_dir);
    Some(Config {
        path: src.path.clone(),
        listen: Listen {
            public: public?,
            http_redirect,
            internal,
            management: management?,
        },
        runtime: Runtime {
            worker_threads: f.runtime.worker_threads.unwrap_or(0),
            shutdown_drain: Duration::from_secs(f.runtime.shutdown_drain_seconds.unwrap_or(10)),
            audit_log: f.runtime.audit_log.unwrap_or(true),
        },
        tls,
        trusted_proxies,
        guard: Guard {
            guarded_ports,
            blocked_prefixes,
            allow_non_loopback_management,
        },
        routing: Routing {
            routes,
            policies,
            watch: f.routing.watch.unwrap_or(true),
        },
        limits,
        issuer,
        base_dir,
    })
}
