//! Validation of one `[[route]]` into a [`Route`]: its name, prefix, host, auth mode, timeout,
//! upstreams and rate limit, each checked by its own function, every problem reported with its place.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::Duration;

use super::{AuthMode, Route, Target, Upstream};
use crate::config::diag::{display_path, line_col};
use crate::config::file::RouteFile;
use crate::config::rate_limit::{RateKey, RateLimit};
use crate::config::{Diagnostics, Guard, SourceFile};
use crate::normalize::canonical_prefix;

/// The route `rf` describes, or `None` when any of its checks reported an error.
pub(super) fn build_route(
    src: &SourceFile,
    rf: RouteFile,
    guard: &Guard,
    diags: &mut Diagnostics,
) -> Option<Route> {
    let errors_before = diags.errors().count();
    let name = check_name(src, &rf, diags);
    let prefix = check_prefix(src, &rf, diags);
    let host = check_host(src, &rf, diags);
    let auth = auth_mode(src, &rf, diags);
    let (pass_access_token, identity_assertion) = session_options(src, &rf, auth, diags);
    let timeout = timeout(src, &rf, diags);
    let target = target(src, &rf, &name, &prefix, guard, diags);
    let rate_limit = rate_limit(src, &rf, &name, auth, diags);
    let transport = super::transport::check(src, &rf, auth, &target, diags);

    let (line, _) = line_col(&src.text, rf.name.span().start);
    if diags.errors().count() > errors_before {
        return None;
    }
    Some(Route {
        name: Arc::from(name),
        prefix,
        host,
        target,
        auth,
        strip_prefix: rf.strip_prefix.unwrap_or(false),
        timeout,
        pass_access_token,
        identity_assertion,
        upstream_tls: transport.tls,
        upstream_protocol: transport.protocol,
        require_client_cert: transport.require_client_cert,
        defined_at: format!("{}:{line}", display_path(&src.path)),
        metrics: Default::default(),
        get_ok: Default::default(),
        rate_limit,
        limiter: Default::default(),
        next: AtomicUsize::new(0),
    })
}

/// The trimmed name: letters, digits, '-', '_' or '.' (it appears in metrics and headers).
fn check_name(src: &SourceFile, rf: &RouteFile, diags: &mut Diagnostics) -> String {
    let name = rf.name.get_ref().trim().to_string();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        diags.push(
            src.error(
                rf.name.span(),
                format!("route name \"{name}\" is not valid"),
            )
            .with_hint("use letters, digits, '-', '_' or '.'"),
        );
    }
    name
}

/// The canonical prefix; the one written must already be a normalized path, since requests
/// are matched after normalization.
fn check_prefix(src: &SourceFile, rf: &RouteFile, diags: &mut Diagnostics) -> String {
    let prefix_raw = rf.prefix.get_ref();
    if !prefix_raw.starts_with('/')
        || prefix_raw.contains("//")
        || prefix_raw.contains('?')
        || prefix_raw.contains('#')
        || prefix_raw.contains('%')
        || prefix_raw.split('/').any(|s| s == "." || s == "..")
    {
        diags.push(
            src.error(
                rf.prefix.span(),
                format!("route prefix \"{prefix_raw}\" is not a normalized path"),
            )
            .with_hint("start with '/', no '//', no '.' or '..' segments, no '%', '?' or '#'"),
        );
    }
    canonical_prefix(prefix_raw)
}

/// The lower-case bare host, when the route has one.
fn check_host(src: &SourceFile, rf: &RouteFile, diags: &mut Diagnostics) -> Option<String> {
    let host = rf
        .host
        .as_ref()
        .map(|h| h.get_ref().trim().to_ascii_lowercase());
    if let (Some(h), Some(span)) = (&host, rf.host.as_ref().map(|h| h.span()))
        && (h.is_empty() || h.contains('/') || h.contains(':') && !h.starts_with('['))
    {
        diags.push(
            src.error(span, format!("route host \"{h}\" is not a host name"))
                .with_hint("write the bare host, e.g. \"api.example.com\" (no scheme, no port)"),
        );
    }
    host
}

fn auth_mode(src: &SourceFile, rf: &RouteFile, diags: &mut Diagnostics) -> AuthMode {
    match rf.auth.as_ref().map(|a| a.get_ref().as_str()) {
        None | Some("public") => AuthMode::Public,
        Some("jwt") => AuthMode::Jwt,
        Some("session") => AuthMode::Session,
        Some("session_or_jwt") => AuthMode::SessionOrJwt,
        Some("mtls") => AuthMode::Mtls,
        Some(other) => {
            let span = rf.auth.as_ref().map_or(0..0, |a| a.span());
            diags.push(
                src.error(span, format!("unknown auth mode \"{other}\""))
                    .with_hint(
                        "use \"public\", \"jwt\", \"session\", \"session_or_jwt\" or \"mtls\"",
                    ),
            );
            AuthMode::Public
        }
    }
}

/// `pass_access_token` (session routes only: a jwt route passes the bearer token on as it
/// came) and `identity_assertion` (any route that knows who is calling).
fn session_options(
    src: &SourceFile,
    rf: &RouteFile,
    auth: AuthMode,
    diags: &mut Diagnostics,
) -> (bool, bool) {
    let pass = rf.pass_access_token.as_ref();
    if let Some(p) = pass.filter(|p| *p.get_ref() && !auth.takes_session()) {
        diags.push(
            src.error(
                p.span(),
                format!(
                    "pass_access_token needs auth = \"session\" or \"session_or_jwt\", not \"{}\"",
                    auth.as_str()
                ),
            )
            .with_hint(
                "a jwt route passes the caller's bearer token on unchanged; remove the option",
            ),
        );
    }
    let assert = rf.identity_assertion.as_ref();
    if let Some(a) = assert.filter(|a| *a.get_ref() && auth == AuthMode::Public) {
        diags.push(
            src.error(a.span(), "identity_assertion needs an authenticated route: a public route has no identity to assert")
                .with_hint("use auth = \"jwt\", \"session\" or \"session_or_jwt\", or remove the option"),
        );
    }
    (
        pass.is_some_and(|p| *p.get_ref()),
        assert.is_some_and(|a| *a.get_ref()),
    )
}

/// `rate_limit = { … }`: a `principal` or `client` key needs a route that knows who calls.
fn rate_limit(
    src: &SourceFile,
    rf: &RouteFile,
    name: &str,
    auth: AuthMode,
    diags: &mut Diagnostics,
) -> Option<RateLimit> {
    let t = rf.rate_limit.as_ref()?;
    crate::config::rate_limit::check(
        src,
        t,
        &format!("route \"{name}\""),
        |k| match k {
            RateKey::Principal | RateKey::Client if auth == AuthMode::Public => Some((
                format!(
                    "needs a principal, and a public route has none: it checks no token or session, so there is no `{}` to count by",
                    if k == RateKey::Principal {
                        "sub"
                    } else {
                        "azp"
                    }
                ),
                "use key = \"ip\" or \"route\", or authenticate the route (auth = \"jwt\")".into(),
            )),
            _ => None,
        },
        diags,
    )
}

fn timeout(src: &SourceFile, rf: &RouteFile, diags: &mut Diagnostics) -> Duration {
    match rf.timeout_seconds.as_ref() {
        None => Duration::from_secs(30),
        Some(t) if *t.get_ref() == 0 || *t.get_ref() > 3600 => {
            diags.push(src.error(t.span(), "timeout_seconds must be between 1 and 3600"));
            Duration::from_secs(30)
        }
        Some(t) => Duration::from_secs(*t.get_ref()),
    }
}

/// Where the route's requests go: the embedded issuer, or the listed upstream servers.
fn target(
    src: &SourceFile,
    rf: &RouteFile,
    name: &str,
    prefix: &str,
    guard: &Guard,
    diags: &mut Diagnostics,
) -> Target {
    let ups = rf.upstreams.get_ref();
    if ups.is_empty() {
        diags.push(
            src.error(
                rf.upstreams.span(),
                format!("route \"{name}\" has no upstreams"),
            )
            .with_hint("list at least one, e.g. upstreams = [\"http://127.0.0.1:18001\"]"),
        );
        Target::Servers(Vec::new())
    } else if ups.iter().any(|u| u.get_ref().starts_with("embedded:")) {
        check_embedded(src, rf, name, prefix, diags);
        Target::EmbeddedIssuer
    } else {
        let mut servers = Vec::new();
        for u in ups {
            if let Some(up) = parse_upstream(src, u, guard, diags) {
                servers.push(Arc::new(up));
            }
        }
        if servers.len() > 64 {
            diags.push(src.error(rf.upstreams.span(), "a route can have at most 64 upstreams"));
        }
        Target::Servers(servers)
    }
}

/// `embedded:issuer` stands alone, on a prefix under /auth that is passed on whole.
fn check_embedded(
    src: &SourceFile,
    rf: &RouteFile,
    name: &str,
    prefix: &str,
    diags: &mut Diagnostics,
) {
    let ups = rf.upstreams.get_ref();
    for u in ups {
        if u.get_ref() != "embedded:issuer" {
            diags.push(
                src.error(u.span(), format!("unknown upstream \"{}\"", u.get_ref()))
                    .with_hint(
                        "the only embedded upstream is \"embedded:issuer\", and it stands alone",
                    ),
            );
        }
    }
    if ups.len() > 1 {
        diags.push(src.error(
            rf.upstreams.span(),
            "\"embedded:issuer\" can't be mixed with other upstreams",
        ));
    }
    // The issuer answers Keycloak's paths, `/auth/realms/…`, as they arrive: any other
    // prefix, or a stripped one, could only ever answer 404.
    let under_auth = prefix == "/" || prefix == "/auth" || prefix.starts_with("/auth/");
    if !under_auth {
        diags.push(
            src.error(
                rf.prefix.span(),
                format!("route \"{name}\": \"embedded:issuer\" serves paths under /auth, not \"{prefix}\""),
            )
            .with_hint("use prefix = \"/auth\" (Keycloak's paths, /auth/realms/{realm}/…)"),
        );
    } else if rf.strip_prefix == Some(true) && prefix != "/" {
        diags.push(
            src.error(
                rf.prefix.span(),
                format!("route \"{name}\": \"embedded:issuer\" needs the full path, and strip_prefix = true removes \"{prefix}\" from it"),
            )
            .with_hint("remove strip_prefix from this route"),
        );
    }
}

/// One upstream server: an http(s) URL with no path, off the guarded ports, resolved now.
fn parse_upstream(
    src: &SourceFile,
    u: &toml::Spanned<String>,
    guard: &Guard,
    diags: &mut Diagnostics,
) -> Option<Upstream> {
    let raw = u.get_ref();
    let url = match url::Url::parse(raw) {
        Ok(url) => url,
        Err(e) => {
            diags.push(
                src.error(u.span(), format!("upstream \"{raw}\" is not a URL: {e}"))
                    .with_hint(
                        "write e.g. \"http://127.0.0.1:18001\" or \"https://orders.internal:8443\"",
                    ),
            );
            return None;
        }
    };
    let tls = match url.scheme() {
        "http" => false,
        "https" => true,
        other => {
            diags.push(
                src.error(
                    u.span(),
                    format!("upstream scheme \"{other}\" is not supported"),
                )
                .with_hint("use http:// or https://"),
            );
            return None;
        }
    };
    if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
        diags.push(
            src.error(
                u.span(),
                format!("upstream \"{raw}\" must be scheme://host[:port] only"),
            )
            .with_hint("use strip_prefix on the route to change the path sent upstream"),
        );
        return None;
    }
    let Some(host) = url.host_str() else {
        diags.push(src.error(u.span(), format!("upstream \"{raw}\" has no host")));
        return None;
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    if guard.guarded_ports.contains(&port) {
        diags.push(
            src.error(u.span(), format!("upstream \"{raw}\" targets guarded port {port} (management, internal or guard.internal_ports)"))
                .with_hint("internal and management ports can never be a route's upstream"),
        );
        return None;
    }
    let addrs: Vec<SocketAddr> = match (host.as_str(), port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            diags.push(src.error(
                u.span(),
                format!("upstream host \"{host}\" does not resolve: {e}"),
            ));
            return None;
        }
    };
    if let Some(bad) = addrs
        .iter()
        .find(|a| guard.guarded_ports.contains(&a.port()))
    {
        diags.push(src.error(
            u.span(),
            format!("upstream \"{raw}\" resolves to {bad}, a guarded port"),
        ));
        return None;
    }
    let Some(addr) = addrs.into_iter().next() else {
        diags.push(src.error(u.span(), format!("upstream host \"{host}\" has no address")));
        return None;
    };
    Some(Upstream {
        url: raw.clone(),
        addr,
        tls,
        sni: host,
        down_until_ms: AtomicU64::new(0),
    })
}
