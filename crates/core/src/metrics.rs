//! Every metric the gateway exports, in one place, registered in one Prometheus registry.

use std::sync::{LazyLock, OnceLock};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The process's metrics. Names all start `portcullis_`; labels are bounded sets
/// (route names, methods folded to a known list, status codes, fixed reason strings).
pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub in_flight: IntGauge,
    pub authn_failures: IntCounterVec,
    pub authz_allow: IntCounterVec,
    pub authz_deny: IntCounterVec,
    pub guard_refusals: IntCounterVec,
    pub upstream_failures: IntCounterVec,
    pub config_reloads: IntCounterVec,
    pub config_generation: IntGauge,
    pub jwks_refreshes: IntCounterVec,
    pub issuer_tokens_issued: IntCounterVec,
    pub issuer_logins: IntCounterVec,
    /// Second-factor checks at the embedded issuer, by kind (`otp`, …) and result.
    pub issuer_second_factor: IntCounterVec,
    /// Requests refused with 429 by a rate limit (DESIGN §12), by route.
    pub rate_limited: IntCounterVec,
    /// 1 while the rate-limit store answers (always, for `local`), 0 while limits fall back
    /// to this process.
    pub rate_limit_store_up: IntGauge,
    pub rate_limit_store_errors: IntCounter,
    pub session_sign_ins: IntCounterVec,
    pub session_refreshes: IntCounterVec,
    /// Unix time at which each certificate in use expires, by name (`server`, `client_ca`,
    /// `upstream/<route>/ca`, `upstream/<route>/client_cert`).
    pub tls_cert_expiry: IntGaugeVec,
    /// The embedded issuer's store, sampled by the gateway every few seconds (each only exported
    /// once the issuer runs: a gateway without one has no such series).
    pub issuer: IssuerStoreMetrics,
}

/// What the gateway samples of the embedded issuer's database (`lifecycle::StoreMetrics`).
pub struct IssuerStoreMetrics {
    /// 1 while the store answers, 0 while not, by backend (`sqlite`, `postgres`).
    pub up: IntGaugeVec,
    /// Live SSO sessions per realm.
    pub sessions_active: IntGaugeVec,
    /// Pool connections by backend and state (`in_use`, `idle`).
    pub pool_connections: IntGaugeVec,
    /// The pool's bound, by backend.
    pub pool_max: IntGaugeVec,
    /// How long taking a connection waits, by backend (a probe every few seconds).
    pub pool_acquire: HistogramVec,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable_metric(name, e));
    let _ = r.register(Box::new(c.clone()));
    c
}

fn plain_counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).unwrap_or_else(|e| unreachable_metric(name, e));
    let _ = r.register(Box::new(c.clone()));
    c
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable_metric(name, e));
    let _ = r.register(Box::new(g.clone()));
    g
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|e| unreachable_metric(name, e));
    let _ = r.register(Box::new(g.clone()));
    g
}

// Metric definitions are static strings checked by the unit test below; a failure here is a
// programming error caught before release, never input-dependent.
#[allow(clippy::panic)]
fn unreachable_metric<T>(name: &str, e: prometheus::Error) -> T {
    panic!("metric {name} is malformed: {e}")
}

/// `portcullis_http_request_duration_seconds{route}`.
fn duration_histogram(r: &Registry) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(
            "portcullis_http_request_duration_seconds",
            "Time from request header to the end of the response, by route.",
        )
        .buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0,
        ]),
        &["route"],
    )
    .unwrap_or_else(|e| unreachable_metric("portcullis_http_request_duration_seconds", e));
    let _ = r.register(Box::new(h.clone()));
    h
}

impl Metrics {
    fn new() -> Self {
        let r = Registry::new();
        let rate_limits = rate_limit_metrics(&r);
        let sessions = session_metrics(&r);
        let http_duration = duration_histogram(&r);
        Self {
            http_requests: counter(
                &r,
                "portcullis_http_requests_total",
                "Requests answered on the public listener.",
                &["route", "method", "status"],
            ),
            http_duration,
            in_flight: gauge(
                &r,
                "portcullis_http_requests_in_flight",
                "Requests being served right now.",
            ),
            authn_failures: counter(
                &r,
                "portcullis_authn_failures_total",
                "Requests refused with 401, by reason.",
                &["reason"],
            ),
            authz_allow: counter(
                &r,
                "portcullis_authz_allow_total",
                "RBAC decisions that allowed, by route.",
                &["route"],
            ),
            authz_deny: counter(
                &r,
                "portcullis_authz_deny_total",
                "RBAC decisions that denied (403), by route.",
                &["route"],
            ),
            guard_refusals: counter(
                &r,
                "portcullis_guard_refusals_total",
                "Requests refused by the guard, by reason.",
                &["reason"],
            ),
            upstream_failures: counter(
                &r,
                "portcullis_upstream_failures_total",
                "Failed upstream attempts, by route and kind.",
                &["route", "kind"],
            ),
            config_reloads: counter(
                &r,
                "portcullis_config_reloads_total",
                "Reloads of routes, policies and trust, by result.",
                &["result"],
            ),
            config_generation: gauge(
                &r,
                "portcullis_config_generation",
                "Generation of the snapshot now serving.",
            ),
            jwks_refreshes: counter(
                &r,
                "portcullis_jwks_refreshes_total",
                "Remote JWKS fetches, by issuer and result.",
                &["issuer", "result"],
            ),
            issuer_tokens_issued: counter(
                &r,
                "portcullis_issuer_tokens_issued_total",
                "Tokens issued by the embedded issuer.",
                &["realm", "grant_type"],
            ),
            issuer_logins: counter(
                &r,
                "portcullis_issuer_logins_total",
                "Login attempts at the embedded issuer.",
                &["realm", "result"],
            ),
            issuer_second_factor: counter(
                &r,
                "portcullis_issuer_second_factor_total",
                "Second-factor checks at the embedded issuer (enrollments and sign-ins).",
                &["realm", "kind", "result"],
            ),
            rate_limited: rate_limits.0,
            rate_limit_store_up: rate_limits.1,
            rate_limit_store_errors: rate_limits.2,
            session_sign_ins: sessions.0,
            session_refreshes: sessions.1,
            tls_cert_expiry: gauge_vec(
                &r,
                "portcullis_tls_certificate_expiry_timestamp_seconds",
                "When each TLS certificate in use expires (Unix seconds), by name.",
                &["name"],
            ),
            issuer: IssuerStoreMetrics::new(&r),
            registry: r,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(8 * 1024);
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        buf
    }
}

/// Browser sign-in at the gateway (DESIGN §10): sign-ins and refreshes, by result.
fn session_metrics(r: &Registry) -> (IntCounterVec, IntCounterVec) {
    (
        counter(
            r,
            "portcullis_session_sign_ins_total",
            "Sign-ins at the gateway's callback, by result (success, failure, error).",
            &["result"],
        ),
        counter(
            r,
            "portcullis_session_refreshes_total",
            "Access-token refreshes of browser sessions, by result (success, failure, error).",
            &["result"],
        ),
    )
}

/// The rate limits' series (DESIGN §12): 429s by route, the store's health.
fn rate_limit_metrics(r: &Registry) -> (IntCounterVec, IntGauge, IntCounter) {
    (
        counter(
            r,
            "portcullis_rate_limited_total",
            "Requests refused with 429 by a rate limit, by route.",
            &["route"],
        ),
        gauge(
            r,
            "portcullis_rate_limit_store_up",
            "1 while the rate-limit store answers, 0 while limits are counted per process.",
        ),
        plain_counter(
            r,
            "portcullis_rate_limit_store_errors_total",
            "Rate-limit store calls that failed or timed out (each then counted per process).",
        ),
    )
}

impl IssuerStoreMetrics {
    fn new(r: &Registry) -> Self {
        let name = "portcullis_issuer_db_pool_acquire_seconds";
        let pool_acquire = HistogramVec::new(
            HistogramOpts::new(
                name,
                "Time a probe waited for a connection of the issuer's database pool, queued \
                 with the queries (one probe every 5 s): what a query waits at that moment.",
            )
            .buckets(vec![
                0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["backend"],
        )
        .unwrap_or_else(|e| unreachable_metric(name, e));
        let _ = r.register(Box::new(pool_acquire.clone()));
        Self {
            up: gauge_vec(
                r,
                "portcullis_issuer_store_up",
                "1 while the embedded issuer's database answers, 0 while it does not.",
                &["backend"],
            ),
            sessions_active: gauge_vec(
                r,
                "portcullis_issuer_sessions_active",
                "Live SSO sessions of the embedded issuer, by realm (sampled every 15 s).",
                &["realm"],
            ),
            pool_connections: gauge_vec(
                r,
                "portcullis_issuer_db_pool_connections",
                "Connections of the issuer's database pool, by state: in_use or idle.",
                &["backend", "state"],
            ),
            pool_max: gauge_vec(
                r,
                "portcullis_issuer_db_pool_max_connections",
                "The bound of the issuer's database pool.",
                &["backend"],
            ),
            pool_acquire,
        }
    }
}

/// The process-wide metrics. Metrics are the one global: they only count, never configure.
pub fn metrics() -> &'static Metrics {
    static M: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &M
}

/// One route's series, resolved once: `with_label_values` hashes the labels and takes a lock on
/// every call, which the request path would otherwise pay for each of them.
pub struct RouteMetrics {
    pub duration: Histogram,
    pub authz_allow: IntCounter,
    pub authz_deny: IntCounter,
    pub rate_limited: IntCounter,
}

/// A route's series, resolved on first use (so `check` and `explain` create none).
#[derive(Default)]
pub struct RouteMetricsCell(OnceLock<RouteMetrics>);

impl RouteMetricsCell {
    pub fn get(&self, route: &str) -> &RouteMetrics {
        self.0.get_or_init(|| {
            let m = metrics();
            RouteMetrics {
                duration: m.http_duration.with_label_values(&[route]),
                authz_allow: m.authz_allow.with_label_values(&[route]),
                authz_deny: m.authz_deny.with_label_values(&[route]),
                rate_limited: m.rate_limited.with_label_values(&[route]),
            }
        })
    }
}

impl std::fmt::Debug for RouteMetricsCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RouteMetricsCell")
    }
}

/// Methods as a bounded label set.
pub fn method_label(m: &http::Method) -> &'static str {
    match *m {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    #[test]
    fn every_metric_registers_and_renders() {
        let m = super::metrics();
        m.http_requests
            .with_label_values(&["r", "GET", "200"])
            .inc();
        m.config_generation.set(3);
        let text = String::from_utf8(m.render()).unwrap();
        assert!(text.contains(
            "portcullis_http_requests_total{method=\"GET\",route=\"r\",status=\"200\"} 1"
        ));
        assert!(text.contains("portcullis_config_generation 3"));
    }

    /// Every metric exported once each vector has a child (labels of this test only).
    fn exported() -> BTreeSet<String> {
        let m = super::metrics();
        let l = "dashboard-test";
        m.http_duration.with_label_values(&[l]).observe(0.1);
        for (c, n) in [
            (&m.http_requests, 3),
            (&m.authn_failures, 1),
            (&m.authz_allow, 1),
            (&m.authz_deny, 1),
            (&m.guard_refusals, 1),
            (&m.upstream_failures, 2),
            (&m.config_reloads, 1),
            (&m.jwks_refreshes, 2),
            (&m.issuer_tokens_issued, 2),
            (&m.issuer_logins, 2),
            (&m.issuer_second_factor, 3),
            (&m.rate_limited, 1),
            (&m.session_sign_ins, 1),
            (&m.session_refreshes, 1),
        ] {
            c.with_label_values(&vec![l; n]).inc();
        }
        m.tls_cert_expiry.with_label_values(&[l]).set(1);
        let i = &m.issuer;
        for (g, n) in [
            (&i.up, 1),
            (&i.sessions_active, 1),
            (&i.pool_connections, 2),
            (&i.pool_max, 1),
        ] {
            g.with_label_values(&vec![l; n]).set(0);
        }
        i.pool_acquire.with_label_values(&[l]).observe(0.001);
        m.registry
            .gather()
            .iter()
            .map(|f| f.name().to_string())
            .collect()
    }

    /// The `portcullis_*` names in `text`, histogram series (`_bucket`, `_sum`, `_count`) as
    /// their metric's name.
    fn names_in(text: &str, exported: &BTreeSet<String>) -> BTreeSet<String> {
        let mut used = BTreeSet::new();
        for (i, _) in text.match_indices("portcullis_") {
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if name.ends_with('_') {
                continue; // prose: "every portcullis_* metric"
            }
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|b| exported.contains(*b))
                .map_or(name.clone(), str::to_string);
            used.insert(base);
        }
        used
    }

    /// The Grafana dashboard in deploy/ queries only metrics that exist, and shows them all.
    #[test]
    fn the_dashboard_names_every_metric_and_only_real_ones() {
        let exported = exported();
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../../deploy/dashboards/portcullis.json"))
                .unwrap();
        let mut used = BTreeSet::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap();
                for name in names_in(expr, &exported) {
                    assert!(exported.contains(&name), "{name} is not a metric");
                    used.insert(name);
                }
            }
        }
        assert_eq!(used, exported, "every metric on the dashboard");
    }

    /// Metrics the alert rules name before the gateway exports them, with who adds them. Each
    /// must still be missing: once it exists, it leaves this list.
    const PENDING: &[(&str, &str)] = &[];

    /// Every `portcullis_*` name in deploy/prometheus/alerts.yaml (expressions and the
    /// annotations that send a reader to a metric) is a metric, or pending.
    #[test]
    fn the_alert_rules_name_only_real_metrics() {
        let exported = exported();
        let rules = include_str!("../../../deploy/prometheus/alerts.yaml");
        let used = names_in(rules, &exported);
        assert!(used.len() >= 8, "{used:?}");
        for name in &used {
            assert!(
                exported.contains(name) || PENDING.iter().any(|(p, _)| p == name),
                "alerts.yaml names {name}, which is not a metric"
            );
        }
        for (name, who) in PENDING {
            assert!(
                !exported.contains(*name),
                "{name} exists now ({who}): take it off PENDING"
            );
            assert!(
                used.contains(*name),
                "{name} is pending but no alert names it"
            );
        }
    }
}
