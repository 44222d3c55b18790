//! Route table: longest path prefix on segment boundaries, virtual-host first, round-robin
//! upstreams with passive health. Built once per snapshot, read lock-free per request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::file::RoutesFile;
use crate::config::{Diagnostics, Guard, SourceFile, source};
// Lives with path normalization, which the config's guard uses too; kept reachable here.
pub use crate::normalize::canonical_prefix;

mod build;
mod transport;

pub use transport::{UpstreamProtocol, UpstreamTls};

/// How a route authenticates its callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    Public,
    Jwt,
    /// A browser session signed in at the gateway (DESIGN §10).
    Session,
    /// A bearer token when the request has one, the session otherwise.
    SessionOrJwt,
    /// A verified client certificate (DESIGN §11); its identity is the principal.
    Mtls,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Public => "public",
            AuthMode::Jwt => "jwt",
            AuthMode::Session => "session",
            AuthMode::SessionOrJwt => "session_or_jwt",
            AuthMode::Mtls => "mtls",
        }
    }

    /// Whether a browser session can stand for the caller (`[session]` is then required).
    pub fn takes_session(self) -> bool {
        matches!(self, AuthMode::Session | AuthMode::SessionOrJwt)
    }
}

/// How long a failed upstream is skipped by round robin.
pub const DOWN_FOR: Duration = Duration::from_secs(5);
/// Connect timeout to an upstream (capped by the route's own timeout).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// One upstream server of a route, resolved at load time.
#[derive(Debug)]
pub struct Upstream {
    /// As written in the route file, for logs and `explain`.
    pub url: String,
    pub addr: SocketAddr,
    pub tls: bool,
    /// Host name for SNI and certificate verification of https upstreams.
    pub sni: String,
    /// Unix milliseconds until which this upstream is skipped after a failed connect.
    down_until_ms: AtomicU64,
}

impl Upstream {
    pub fn mark_down(&self) {
        self.down_until_ms
            .store(now_ms() + DOWN_FOR.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn is_down(&self, now_ms: u64) -> bool {
        self.down_until_ms.load(Ordering::Relaxed) > now_ms
    }
}

/// Where a route's requests go.
#[derive(Debug)]
pub enum Target {
    /// Real upstream servers, round robin.
    Servers(Vec<Arc<Upstream>>),
    /// The embedded OpenID Connect issuer, served in-process.
    EmbeddedIssuer,
}

#[derive(Debug)]
pub struct Route {
    pub name: Arc<str>,
    /// Canonical prefix: starts with '/', no trailing '/' (except the root route "/").
    pub prefix: String,
    /// Lower-case host without port, when the route is host-specific.
    pub host: Option<String>,
    pub target: Target,
    pub auth: AuthMode,
    pub strip_prefix: bool,
    pub timeout: Duration,
    /// Session routes: the session's access token goes upstream as `Authorization: Bearer`.
    pub pass_access_token: bool,
    /// The upstream also gets `X-Portcullis-Assertion`, a JWT signed by the gateway.
    pub identity_assertion: bool,
    /// TLS settings for its `https://` upstreams, when the route names any.
    pub upstream_tls: Option<UpstreamTls>,
    pub upstream_protocol: UpstreamProtocol,
    /// A `jwt` route that also needs a verified client certificate.
    pub require_client_cert: bool,
    /// `file:line` of the route's definition, for `explain`.
    pub defined_at: String,
    /// This route's series of the request metrics.
    pub metrics: crate::metrics::RouteMetricsCell,
    /// Its `http_requests_total{method="GET",status="200"}`, the series nearly every request
    /// counts, resolved once (`with_label_values` hashes three labels and takes a lock).
    pub get_ok: GetOkCounter,
    /// `rate_limit = { … }` (DESIGN §12), and the gateway's limiter for it.
    pub rate_limit: Option<crate::config::rate_limit::RateLimit>,
    pub limiter: crate::config::rate_limit::LimiterSlot,
    next: AtomicUsize,
}

/// A route's `GET` / `200` request counter, resolved on first use.
#[derive(Default)]
pub struct GetOkCounter(std::sync::OnceLock<prometheus::IntCounter>);

impl GetOkCounter {
    pub fn get(&self, route: &str) -> &prometheus::IntCounter {
        self.0.get_or_init(|| {
            crate::metrics::metrics()
                .http_requests
                .with_label_values(&[route, "GET", "200"])
        })
    }
}

impl std::fmt::Debug for GetOkCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GetOkCounter")
    }
}

impl Route {
    /// The next upstream to try: round robin, skipping ones already tried (bitmask) and ones
    /// marked down, unless every untried one is down (then a down one is better than none).
    pub fn pick(&self, tried: u64) -> Option<(usize, &Arc<Upstream>)> {
        let Target::Servers(ups) = &self.target else {
            return None;
        };
        let n = ups.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = now_ms();
        let mut fallback = None;
        for k in 0..n {
            let i = (start + k) % n;
            if i < 64 && tried & (1u64 << i) != 0 {
                continue;
            }
            if ups[i].is_down(now) {
                fallback.get_or_insert(i);
                continue;
            }
            return Some((i, &ups[i]));
        }
        fallback.map(|i| (i, &ups[i]))
    }

    /// True when `pick` could still offer an upstream not yet tried.
    pub fn pick_would_have_more(&self, tried: u64) -> bool {
        match &self.target {
            Target::Servers(ups) => (0..ups.len().min(64)).any(|i| tried & (1u64 << i) == 0),
            Target::EmbeddedIssuer => false,
        }
    }

    /// The path sent upstream: the prefix removed when `strip_prefix` (never empty).
    pub fn upstream_path<'a>(&self, path: &'a str) -> &'a str {
        if !self.strip_prefix || self.prefix == "/" {
            return path;
        }
        match path.get(self.prefix.len()..) {
            Some("") | None => "/",
            Some(rest) => rest,
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    any_host: Option<u32>,
    hosts: Vec<(String, u32)>,
}

/// All routes of one snapshot, indexed by prefix.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Arc<Route>>,
    by_prefix: HashMap<String, Entry>,
    /// Hosts that have routes of their own: any other host skips the virtual-host pass.
    hosts: std::collections::HashSet<String>,
    /// The longest prefix: longer candidates of a path are skipped without a lookup.
    longest: usize,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [v6]:port
        return host
            .split_once(']')
            .map_or(host, |(h, _)| h)
            .trim_start_matches('[');
    }
    host.rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
}

/// The `name` strings of a routes file's `[[route]]` tables, read as plain TOML (for a file
/// whose routes don't all have the right shape); `None` if it isn't TOML.
fn loose_route_names(text: &str) -> Option<Vec<String>> {
    let doc: toml::Table = text.parse().ok()?;
    let routes = doc.get("route").and_then(toml::Value::as_array);
    Some(
        routes
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("name")?.as_str().map(str::to_string))
            .collect(),
    )
}

impl RouteTable {
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|r| &*r.name == name)
    }

    /// The route for a normalized path and the request's host (may carry a port).
    /// Host-specific routes are tried first (a virtual host), then routes without a host;
    /// within each, the longest prefix that ends on a segment boundary wins.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<&Arc<Route>> {
        if let Some(host) = host.map(host_without_port)
            && self.has_routes_for(host)
        {
            let hit = self.find_by(path, |e| {
                e.hosts
                    .iter()
                    .find(|(h, _)| h.eq_ignore_ascii_case(host))
                    .map(|(_, i)| *i)
            });
            if hit.is_some() {
                return hit;
            }
        }
        self.find_by(path, |e| e.any_host)
    }

    /// Whether `host` (any case) has routes of its own; most requests' hosts don't, and skip
    /// the virtual-host pass.
    fn has_routes_for(&self, host: &str) -> bool {
        if self.hosts.is_empty() {
            return false;
        }
        if host.bytes().any(|b| b.is_ascii_uppercase()) {
            self.hosts.contains(&host.to_ascii_lowercase())
        } else {
            self.hosts.contains(host)
        }
    }

    fn find_by(&self, path: &str, pick: impl Fn(&Entry) -> Option<u32>) -> Option<&Arc<Route>> {
        let mut cand = path.trim_end_matches('/');
        loop {
            if cand.len() > self.longest {
                // Bytes, not chars: a multi-byte character may straddle `longest`; the '/'
                // found is ASCII, so the slice below stays on a char boundary.
                cand = match cand.as_bytes()[..=self.longest]
                    .iter()
                    .rposition(|&b| b == b'/')
                {
                    Some(i) => &cand[..i],
                    None => "",
                };
                continue;
            }
            let key = if cand.is_empty() { "/" } else { cand };
            if let Some(i) = self.by_prefix.get(key).and_then(&pick) {
                return self.routes.get(i as usize);
            }
            if cand.is_empty() {
                return None;
            }
            cand = match cand.rfind('/') {
                Some(i) => &cand[..i],
                None => "",
            };
        }
    }

    /// The name of every route the files under `path` define, well-formed or not, read
    /// without reporting anything; `None` when a file doesn't read or isn't TOML at all (its
    /// names are unknown). A file with unknown keys or values of the wrong type still names
    /// its routes (`name = "…"` of each `[[route]]`). When the table is refused, policy rules
    /// are still checked against these, so `check` reports a rule for an unknown route beside
    /// the routes' own errors.
    pub fn defined_names(path: &Path) -> Option<Vec<String>> {
        let mut scratch = Diagnostics::default();
        let mut names = Vec::new();
        let files = source::files_in(path, "toml", &mut scratch);
        if scratch.has_errors() {
            return None; // the directory can't be listed: its routes are unknown
        }
        for file in files {
            let src = SourceFile::read(&file, &mut scratch)?;
            match src.parse_toml_keeping_known::<RoutesFile>(&mut scratch) {
                Some(parsed) => names.extend(parsed.route.into_iter().map(|r| r.name.into_inner())),
                None => names.extend(loose_route_names(&src.text)?),
            }
        }
        Some(names)
    }

    /// Loads every route file under `path` (file or directory), collecting every error.
    pub fn load(path: &Path, guard: &Guard, diags: &mut Diagnostics) -> Option<RouteTable> {
        let errors_before = diags.errors().count();
        let mut table = RouteTable::default();
        let mut names: HashMap<String, String> = HashMap::new();
        let files = source::files_in(path, "toml", diags);
        for file in files {
            let Some(src) = SourceFile::read(&file, diags) else {
                continue;
            };
            // Past unknown keys (reported), so the file's routes are checked too.
            let Some(parsed) = src.parse_toml_keeping_known::<RoutesFile>(diags) else {
                continue;
            };
            for rf in parsed.route {
                if let Some(route) = build::build_route(&src, rf, guard, diags) {
                    if let Some(first) = names.get(&*route.name) {
                        diags.push(src.error(
                            span_of_def(&src, &route),
                            format!(
                                "duplicate route name \"{}\" (first defined at {first})",
                                route.name
                            ),
                        ));
                        continue;
                    }
                    table.longest = table.longest.max(route.prefix.len());
                    let entry = table.by_prefix.entry(route.prefix.clone()).or_default();
                    let idx = table.routes.len() as u32;
                    // Checked before the entry changes: a refused route leaves no index behind.
                    let clash = match &route.host {
                        None => entry.any_host.is_some(),
                        Some(h) => entry.hosts.iter().any(|(x, _)| x == h),
                    };
                    if clash {
                        diags.push(
                            src.error(span_of_def(&src, &route), format!("duplicate route prefix \"{}\"{}", route.prefix, route.host.as_ref().map(|h| format!(" for host \"{h}\"")).unwrap_or_default()))
                                .with_hint("two routes can't share a prefix (and host); merge them or change one"),
                        );
                        continue;
                    }
                    match &route.host {
                        None => entry.any_host = Some(idx),
                        Some(h) => {
                            entry.hosts.push((h.clone(), idx));
                            table.hosts.insert(h.clone());
                        }
                    }
                    names.insert(route.name.to_string(), route.defined_at.clone());
                    table.routes.push(Arc::new(route));
                }
            }
        }
        (diags.errors().count() == errors_before).then_some(table)
    }
}

fn span_of_def(src: &SourceFile, route: &Route) -> std::ops::Range<usize> {
    // defined_at is "file:line"; find the line's byte offset for the diagnostic.
    let line: usize = route
        .defined_at
        .rsplit(':')
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(1);
    let off = src
        .text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum::<usize>();
    off..off
}

#[cfg(test)]
mod tests;
