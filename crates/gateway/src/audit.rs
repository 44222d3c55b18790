//! The audit log: one JSON line per request on stdout (tracing target `audit`), and the
//! human-readable log on stderr, level from `RUST_LOG`.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use tracing_subscriber::filter::{EnvFilter, Targets, filter_fn};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{self, FmtContext};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

/// One request as the audit line records it. Holds no token and no secret.
pub struct RequestRecord<'a> {
    pub request_id: &'a str,
    pub listener: &'static str,
    pub client_ip: Option<IpAddr>,
    pub method: &'a str,
    pub path: &'a str,
    pub route: &'a str,
    pub status: u16,
    pub decision: &'a str,
    pub reason: &'a str,
    pub sub: Option<&'a str>,
    pub user: Option<&'a str>,
    pub groups: Option<&'a str>,
    pub upstream: Option<&'a str>,
    pub duration: Duration,
}

/// Emits the audit line. It is serialized here, once, and travels through `tracing` (target
/// `audit`) as a single field that the audit layer writes verbatim: tracing's own JSON
/// formatter cost ~10 µs per request in the load bench, and serde's field-by-field escaping
/// another ~4,000 instructions (callgrind); this writer copies clean strings whole.
pub fn request(r: &RequestRecord<'_>) {
    let line = to_json(r, SystemTime::now());
    tracing::info!(target: "audit", line = line.as_str());
}

/// The JSON object of DESIGN §8 for one request, keys in a fixed order.
fn to_json(r: &RequestRecord<'_>, now: SystemTime) -> String {
    use std::fmt::Write as _;
    let mut o = String::with_capacity(320 + r.path.len());
    o.push_str("{\"time\":\"");
    let _ = write!(o, "{}", humantime::format_rfc3339_millis(now));
    o.push_str("\",\"request_id\":");
    str_value(&mut o, r.request_id);
    o.push_str(",\"listener\":");
    str_value(&mut o, r.listener);
    o.push_str(",\"client_ip\":");
    match r.client_ip {
        Some(ip) => {
            o.push('"');
            crate::proxy::forwarded::push_ip(&mut o, ip);
            o.push('"');
        }
        None => o.push_str("null"),
    }
    o.push_str(",\"method\":");
    str_value(&mut o, r.method);
    o.push_str(",\"path\":");
    str_value(&mut o, r.path);
    o.push_str(",\"route\":");
    str_value(&mut o, r.route);
    o.push_str(",\"status\":");
    push_int(&mut o, u64::from(r.status));
    o.push_str(",\"decision\":");
    str_value(&mut o, r.decision);
    o.push_str(",\"reason\":");
    str_value(&mut o, r.reason);
    for (key, v) in [
        (",\"sub\":", r.sub),
        (",\"user\":", r.user),
        (",\"groups\":", r.groups),
        (",\"upstream\":", r.upstream),
    ] {
        o.push_str(key);
        match v {
            Some(v) => str_value(&mut o, v),
            None => o.push_str("null"),
        }
    }
    // Milliseconds with three decimals, from whole microseconds (no float formatting).
    let micros = u64::try_from(r.duration.as_micros()).unwrap_or(u64::MAX);
    o.push_str(",\"duration_ms\":");
    push_int(&mut o, micros / 1000);
    let frac = micros % 1000;
    o.push('.');
    o.push(char::from(b'0' + (frac / 100) as u8));
    o.push(char::from(b'0' + (frac / 10 % 10) as u8));
    o.push(char::from(b'0' + (frac % 10) as u8));
    o.push('}');
    o
}

/// Decimal digits of `n` (`fmt` costs ~400 instructions per call on this path).
fn push_int(o: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    o.extend(buf[i..].iter().map(|&b| char::from(b)));
}

/// A JSON string: clean text is copied as is, anything needing escapes goes through serde_json.
fn str_value(o: &mut String, s: &str) {
    if !needs_escape(s.as_bytes()) {
        o.push('"');
        o.push_str(s);
        o.push('"');
    } else if let Ok(quoted) = serde_json::to_string(s) {
        o.push_str(&quoted);
    }
}

/// Whether JSON needs any of `s` escaped. A byte-wise OR without early exit, which the
/// compiler turns into a vector loop (a short-circuiting `all` ran byte by byte: ~1,400
/// instructions per audit line).
fn needs_escape(s: &[u8]) -> bool {
    let mut bad = 0u8;
    for &b in s {
        bad |= u8::from(b < 0x20) | u8::from(b == b'"') | u8::from(b == b'\\');
    }
    bad != 0
}

/// Writes an audit event's `line` field as is, one per line.
struct RawLine;

impl<S, N> FormatEvent<S, N> for RawLine
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        struct Visitor<'w, 'a> {
            out: &'a mut Writer<'w>,
            result: std::fmt::Result,
        }
        impl tracing::field::Visit for Visitor<'_, '_> {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "line" {
                    self.result = self.out.write_str(value);
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut v = Visitor {
            out: &mut writer,
            result: Ok(()),
        };
        event.record(&mut v);
        v.result?;
        writeln!(writer)
    }
}

/// Keeps the audit writer's flusher thread alive; dropping it writes what is buffered.
pub struct LogGuard(#[allow(dead_code)] Option<batch::Flusher>);

/// Installs the two log streams. `audit` = false leaves stdout silent.
/// Pingora logs every failed TLS handshake (port scanners, health probes) at ERROR; that is
/// noise at the edge, so it is off unless `RUST_LOG` asks for it.
pub const DEFAULT_FILTER: &str = "info,pingora_core::services::listening=off";

pub fn init(audit: bool) -> LogGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // Every layer states its most verbose level: `try_init` hands the loosest of them to the
    // `log` crate, and Pingora's per-request `debug!`/`trace!` calls are only free when `log`
    // knows they are off (a filter without a hint counts as TRACE: ~10,000 instructions per
    // request went into dispatching them, measured with callgrind).
    let hint = filter.max_level_hint();
    let not_audit = filter_fn(|m| m.target() != "audit");
    let not_audit = match hint {
        Some(h) => not_audit.with_max_level_hint(h),
        None => not_audit,
    };
    let human = fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(not_audit)
        .with_filter(filter);
    let (audit_layer, flusher) = if audit {
        let (writer, flusher) = batch::BatchWriter::stdout();
        let layer = fmt::layer()
            .event_format(RawLine)
            .with_writer(writer)
            .with_filter(Targets::new().with_target("audit", tracing::Level::INFO));
        (Some(layer), Some(flusher))
    } else {
        (None, None)
    };
    let _ = tracing_subscriber::registry()
        .with(human)
        .with(audit_layer)
        .try_init();
    LogGuard(flusher)
}

pub mod batch;

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(path: &'a str, user: Option<&'a str>) -> RequestRecord<'a> {
        RequestRecord {
            request_id: "abc",
            listener: "public",
            client_ip: "203.0.113.9".parse().ok(),
            method: "GET",
            path,
            route: "orders",
            status: 403,
            decision: "deny",
            reason: "missing_permission",
            sub: Some("u-1"),
            user,
            groups: None,
            upstream: None,
            duration: Duration::from_micros(12_345),
        }
    }

    #[test]
    fn the_line_is_one_json_object_with_every_field() {
        let line = to_json(
            &record("/api/orders", Some("alice")),
            SystemTime::UNIX_EPOCH,
        );
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["time"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["request_id"], "abc");
        assert_eq!(v["client_ip"], "203.0.113.9");
        assert_eq!(v["path"], "/api/orders");
        assert_eq!(v["status"], 403);
        assert_eq!(v["decision"], "deny");
        assert_eq!(v["user"], "alice");
        assert_eq!(v["groups"], serde_json::Value::Null);
        assert_eq!(v["duration_ms"], 12.345);
    }

    #[test]
    fn integers_and_durations_are_exact() {
        for (n, text) in [
            (0u64, "0"),
            (7, "7"),
            (10, "10"),
            (65_535, "65535"),
            (u64::MAX, "18446744073709551615"),
        ] {
            let mut o = String::new();
            push_int(&mut o, n);
            assert_eq!(o, text);
        }
        let mut r = record("/", None);
        for (micros, ms) in [(0u64, 0.0), (5, 0.005), (1_000, 1.0), (1_234_567, 1234.567)] {
            r.duration = Duration::from_micros(micros);
            let v: serde_json::Value =
                serde_json::from_str(&to_json(&r, SystemTime::UNIX_EPOCH)).unwrap();
            assert_eq!(v["duration_ms"].as_f64(), Some(ms), "{micros}");
        }
    }

    #[test]
    fn hostile_strings_are_escaped() {
        let path = "/a\"b\\c\u{1}\n\u{e9}";
        let user = "x\",\"status\":200,\"y\":\"";
        let line = to_json(&record(path, Some(user)), SystemTime::UNIX_EPOCH);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["path"], path);
        assert_eq!(v["user"], user);
        assert_eq!(v["status"], 403);
    }
}
