//! Validation of `portcullis.toml` into a [`Config`], one function per section. Each reports
//! every problem of its section with its place; the sections are checked in one fixed order
//! (listen, tls, forwarded, guard, issuer, rate limits, session, tracing), which is the order `check`
//! reports them in.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use super::file::{ConfigFile, IssuerFile, TlsFile};
use super::{
    ALWAYS_BLOCKED, ClientAuth, Config, DEFAULT_INTERNAL, DEFAULT_MANAGEMENT,
    DEFAULT_MAX_CONNECTIONS, Diagnostics, Guard, IssuerSettings, Limits, Listen, MAX_LIMIT_SECONDS,
    Routing, Runtime, SourceFile, Tls, guarded_ports_named, resolve, table_paths,
};
use crate::config::rate_limit::{self, RateKey, RateLimits};
use crate::normalize::canonical_prefix;

pub(super) fn validate(
    src: &SourceFile,
    f: &ConfigFile,
    diags: &mut Diagnostics,
) -> Option<Config> {
    let errors_before = diags.errors().count();
    let base_dir = src
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let issuer_enabled = f.issuer.as_ref().is_some_and(|i| i.enabled.unwrap_or(true));
    let allow_non_loopback_management = f.guard.allow_non_loopback_management.unwrap_or(false);

    let listen = listen(src, f, issuer_enabled, allow_non_loopback_management, diags);
    let tls = f.tls.as_ref().map(|t| tls(src, t, &base_dir, diags));
    warn_redirect_without_tls(src, f, diags);
    let trusted_proxies = trusted_proxies(src, f, diags);
    let guard = guard(src, f, allow_non_loopback_management, diags);
    let limits = limits(f);
    let issuer = f
        .issuer
        .as_ref()
        .filter(|_| issuer_enabled)
        .map(|i| issuer(src, i, &base_dir, diags));
    let rate_limit = rate_limits(src, f, diags);
    let session = f
        .session
        .as_ref()
        .map(|s| super::session::validate(src, s, issuer_enabled, &base_dir, diags));
    let tracing = f
        .tracing
        .as_ref()
        .map(|t| super::telemetry::validate(src, t, diags));

    if diags.errors().count() > errors_before {
        return None;
    }
    Some(Config {
        path: src.path.clone(),
        listen: listen?,
        runtime: runtime(f, &base_dir),
        tls,
        trusted_proxies,
        guard,
        routing: routing(f, &base_dir),
        limits,
        issuer,
        rate_limit,
        session,
        tracing,
        base_dir,
    })
}

/// The addresses of `[listen]` as far as they parse (`None` where one does not).
struct Addrs {
    public: Option<SocketAddr>,
    http_redirect: Option<SocketAddr>,
    internal: Option<SocketAddr>,
    management: Option<SocketAddr>,
}

/// `[listen]`: the addresses, loopback-only management and internal listeners (unless
/// `guard.allow_non_loopback_management`), and no two listeners on one address.
/// `None` when the public or management address does not parse (already reported).
fn listen(
    src: &SourceFile,
    f: &ConfigFile,
    issuer_enabled: bool,
    allow_non_loopback_management: bool,
    diags: &mut Diagnostics,
) -> Option<Listen> {
    let addrs = listen_addrs(src, f, issuer_enabled, diags);
    if !allow_non_loopback_management {
        check_loopback(src, f, &addrs, diags);
    }
    check_distinct(src, f, &addrs, diags);
    Some(Listen {
        public: addrs.public?,
        http_redirect: addrs.http_redirect,
        internal: addrs.internal,
        management: addrs.management?,
    })
}

fn listen_addrs(
    src: &SourceFile,
    f: &ConfigFile,
    issuer_enabled: bool,
    diags: &mut Diagnostics,
) -> Addrs {
    let public = parse_addr(src, &f.listen.public, "listen.public", diags);
    let http_redirect = f
        .listen
        .http_redirect
        .as_ref()
        .and_then(|a| parse_addr(src, a, "listen.http_redirect", diags));
    let internal = match &f.listen.internal {
        Some(a) => parse_addr(src, a, "listen.internal", diags),
        None if issuer_enabled => DEFAULT_INTERNAL.parse().ok(),
        None => None,
    };
    let management = match &f.listen.management {
        Some(a) => parse_addr(src, a, "listen.management", diags),
        None => DEFAULT_MANAGEMENT.parse().ok(),
    };
    Addrs {
        public,
        http_redirect,
        internal,
        management,
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

/// The management and internal listeners serve reload, admin and the issuer's backchannel:
/// never on a public address unless the operator says a network policy protects them.
fn check_loopback(src: &SourceFile, f: &ConfigFile, addrs: &Addrs, diags: &mut Diagnostics) {
    if let Some(m) = addrs.management
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
    if let Some(i) = addrs.internal
        && !i.ip().is_loopback()
    {
        let span = f.listen.internal.as_ref().map_or(0..0, |s| s.span());
        diags.push(
                src.error(span, format!("listen.internal = \"{i}\" is not a loopback address; the issuer backchannel is never public"))
                    .with_hint("bind 127.0.0.1, or set guard.allow_non_loopback_management = true where a network policy protects it"),
            );
    }
}

/// Two listeners on one port would fail at bind time with a less helpful message.
fn check_distinct(src: &SourceFile, f: &ConfigFile, addrs: &Addrs, diags: &mut Diagnostics) {
    let mut seen: Vec<(SocketAddr, &str)> = Vec::new();
    for (addr, name, span) in [
        (addrs.public, "public", Some(f.listen.public.span())),
        (
            addrs.http_redirect,
            "http_redirect",
            f.listen.http_redirect.as_ref().map(|s| s.span()),
        ),
        (
            addrs.internal,
            "internal",
            f.listen.internal.as_ref().map(|s| s.span()),
        ),
        (
            addrs.management,
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
}

fn runtime(f: &ConfigFile, base_dir: &Path) -> Runtime {
    Runtime {
        worker_threads: f.runtime.worker_threads.unwrap_or(0),
        shutdown_drain: Duration::from_secs(f.runtime.shutdown_drain_seconds.unwrap_or(10)),
        audit_log: f.runtime.audit_log.unwrap_or(true),
        upgrade_sock: f
            .runtime
            .upgrade_sock
            .as_deref()
            .map(|p| resolve(base_dir, p)),
    }
}

/// `[tls]`: the minimum version, and the certificate and key (which must exist when no dev
/// certificate may stand in for them).
fn tls(src: &SourceFile, t: &TlsFile, base_dir: &Path, diags: &mut Diagnostics) -> Tls {
    check_min_version(src, t, diags);
    let (client_ca, client_auth) = client_certificates(src, t, base_dir, diags);
    let tls = Tls {
        cert: resolve(
            base_dir,
            t.cert.as_ref().map_or("certs/gateway.crt", |c| c.get_ref()),
        ),
        key: resolve(
            base_dir,
            t.key.as_ref().map_or("certs/gateway.key", |c| c.get_ref()),
        ),
        self_signed_if_missing: t.self_signed_if_missing.unwrap_or(true),
        client_ca,
        client_auth,
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
}

/// `[tls] client_ca` and `client_auth` (DESIGN §11): the CA bundle must exist (its contents
/// are read, and reported, by the gateway's TLS loader), and `client_auth` means nothing
/// without it.
fn client_certificates(
    src: &SourceFile,
    t: &TlsFile,
    base_dir: &Path,
    diags: &mut Diagnostics,
) -> (Option<PathBuf>, ClientAuth) {
    let auth = match t
        .client_auth
        .as_ref()
        .map(|a| (a.get_ref().as_str(), a.span()))
    {
        None | Some(("optional", _)) => ClientAuth::Optional,
        Some(("required", _)) => ClientAuth::Required,
        Some((other, span)) => {
            diags.push(
                src.error(span, format!("tls.client_auth = \"{other}\" is not a mode"))
                    .with_hint("use \"optional\" or \"required\""),
            );
            ClientAuth::Optional
        }
    };
    let Some(ca) = &t.client_ca else {
        if let Some(a) = &t.client_auth {
            diags.push(
                src.error(a.span(), "tls.client_auth needs tls.client_ca")
                    .with_hint(
                        "set client_ca to the PEM file of the CAs that sign client certificates",
                    ),
            );
        }
        return (None, auth);
    };
    let path = resolve(base_dir, ca.get_ref());
    if !path.is_file() {
        diags.push(
            src.error(
                ca.span(),
                format!("tls.client_ca: {} does not exist", path.display()),
            )
            .with_hint("point it at a PEM file holding the CA certificates of your clients"),
        );
    }
    (Some(path), auth)
}

/// Refused here rather than at start, so `check` and a reload report it with its place.
fn check_min_version(src: &SourceFile, t: &TlsFile, diags: &mut Diagnostics) {
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
}

fn warn_redirect_without_tls(src: &SourceFile, f: &ConfigFile, diags: &mut Diagnostics) {
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
}

/// `[forwarded] trusted_proxies`: CIDRs, or single addresses.
fn trusted_proxies(src: &SourceFile, f: &ConfigFile, diags: &mut Diagnostics) -> Vec<IpNet> {
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
    trusted_proxies
}

/// `[guard]`: the guarded ports and the blocked prefixes, canonical and without repeats.
fn guard(
    src: &SourceFile,
    f: &ConfigFile,
    allow_non_loopback_management: bool,
    diags: &mut Diagnostics,
) -> Guard {
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
        let p = canonical_prefix(s);
        if !blocked_prefixes.contains(&p) {
            blocked_prefixes.push(p);
        }
    }
    Guard {
        guarded_ports: guarded_ports_named(f),
        blocked_prefixes,
        allow_non_loopback_management,
    }
}

fn routing(f: &ConfigFile, base_dir: &Path) -> Routing {
    let (routes, policies) = table_paths(f, base_dir);
    Routing {
        routes,
        policies,
        watch: f.routing.watch.unwrap_or(true),
    }
}

fn limits(f: &ConfigFile) -> Limits {
    Limits {
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
    }
}

/// A `[limits]` timeout: `default` when unset, within 1 s ..= [`MAX_LIMIT_SECONDS`].
fn limit_seconds(set: Option<u64>, default: u64) -> Duration {
    Duration::from_secs(set.unwrap_or(default).clamp(1, MAX_LIMIT_SECONDS))
}

/// `[issuer]` (when enabled): what the issuer would refuse at start, reported by `check` with
/// its place, and the settings.
fn issuer(
    src: &SourceFile,
    i: &IssuerFile,
    base_dir: &Path,
    diags: &mut Diagnostics,
) -> IssuerSettings {
    check_database(src, i, diags);
    check_frontend_url(src, i, diags);
    IssuerSettings {
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
            .map(|p| resolve(base_dir, p.get_ref()))
            .collect(),
        login_event_retention_days: i.login_event_retention_days.unwrap_or(30),
    }
}

/// `[rate_limit] store` and `[issuer] rate_limit`, which counts by OAuth client or address:
/// the issuer's endpoints have no authenticated principal yet, and one bucket for all callers
/// would let anyone lock everyone out.
fn rate_limits(src: &SourceFile, f: &ConfigFile, diags: &mut Diagnostics) -> RateLimits {
    let store = rate_limit::check_store(src, f.rate_limit.store.as_ref(), diags);
    let issuer = f
        .issuer
        .as_ref()
        .and_then(|i| i.rate_limit.as_ref())
        .and_then(|t| {
            rate_limit::check(
                src,
                t,
                "[issuer]",
                |k| match k {
                    RateKey::Client | RateKey::Ip => None,
                    RateKey::Principal => Some((
                        "is not available: the token endpoint and the login form are called before anyone is authenticated".into(),
                        "use key = \"client\" (the OAuth client of the request) or \"ip\"".into(),
                    )),
                    RateKey::Route => Some((
                        "would put every caller in one bucket, so one client could lock out all".into(),
                        "use key = \"client\" or \"ip\"".into(),
                    )),
                },
                diags,
            )
        });
    RateLimits { store, issuer }
}

fn check_database(src: &SourceFile, i: &IssuerFile, diags: &mut Diagnostics) {
    let Some(db) = &i.database else { return };
    let d = db.get_ref();
    let known = ["sqlite:", "postgres://", "postgresql://"];
    if !known.iter().any(|k| d.starts_with(k)) {
        diags.push(
            src.error(
                db.span(),
                format!("issuer.database = \"{d}\" is neither SQLite nor PostgreSQL"),
            )
            .with_hint("write sqlite://PATH (relative to this file) or postgres://USER@HOST/DB"),
        );
    }
}

fn check_frontend_url(src: &SourceFile, i: &IssuerFile, diags: &mut Diagnostics) {
    let Some(u) = &i.frontend_url else { return };
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
