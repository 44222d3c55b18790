//! OpenTelemetry on the request path (DESIGN §15): one server span per request, its W3C
//! `traceparent` sent upstream, exported over OTLP/HTTP in batches from a thread of its own.
//! Built only when `[tracing]` is set: without it the proxy holds `None` and each hook is one
//! `if let` on that, so a gateway without tracing builds no span and touches no header.
//!
//! An incoming `traceparent` is continued only from a trusted peer (`forwarded.trusted_proxies`),
//! as the request id is: from anyone else its trace id is attacker-chosen, could splice the
//! request into someone else's trace, and its sampled flag would override `sample_ratio`. Such a
//! request starts a new trace, and the client's `traceparent`/`tracestate` are replaced.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Injector, TextMapPropagator};
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{BatchConfigBuilder, Sampler, SdkTracer, SdkTracerProvider, Span};
use portcullis_core::config::TracingSettings;

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Longest one export may take (request and retries); a collector that hangs costs no more.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The process's tracer and the provider that batches and exports its spans.
pub struct Tracing {
    tracer: SdkTracer,
    provider: SdkTracerProvider,
}

impl Tracing {
    /// Starts the exporter: a thread with a one-thread tokio runtime that runs the batch
    /// processor and its HTTP client, apart from Pingora's runtimes (which end with their
    /// services, before the final flush).
    pub fn start(settings: &TracingSettings) -> anyhow::Result<Arc<Tracing>> {
        let settings = settings.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("otel-export".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let rt = match rt {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(anyhow::Error::from(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    let provider = provider(&settings);
                    let built = provider.is_ok();
                    let _ = tx.send(provider);
                    if built {
                        // The batch processor's task lives on this runtime until the process ends.
                        std::future::pending::<()>().await;
                    }
                });
            })
            .context("[tracing]: starting the export thread")?;
        let provider = rx.recv().context("[tracing]: the export thread ended")??;
        Ok(Arc::new(Tracing {
            tracer: provider.tracer("portcullis"),
            provider,
        }))
    }

    /// Starts the span of a request: a child of the caller's `traceparent` when `trusted_peer`,
    /// the root of a new trace otherwise.
    pub fn begin(
        &self,
        headers: &HeaderMap,
        method: &'static str,
        trusted_peer: bool,
    ) -> Box<RequestSpan> {
        let parent = if trusted_peer && headers.contains_key(TRACEPARENT) {
            TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers))
        } else {
            Context::new()
        };
        let span = self
            .tracer
            .span_builder(method)
            .with_kind(SpanKind::Server)
            .start_with_context(&self.tracer, &parent);
        Box::new(RequestSpan { span })
    }

    /// Exports what is buffered and stops the exporter, waiting at most `within` (the graceful
    /// shutdown must stay bounded even when the collector hangs).
    pub fn shutdown(&self, within: Duration) {
        let provider = self.provider.clone();
        let (tx, rx) = mpsc::channel();
        // `shutdown` blocks on the export thread's answer: off the caller's runtime.
        let spawned = std::thread::Builder::new()
            .name("otel-shutdown".into())
            .spawn(move || {
                let _ = tx.send(provider.shutdown());
            });
        if spawned.is_err() {
            tracing::warn!("tracing: cannot start the shutdown thread; buffered spans are lost");
            return;
        }
        match rx.recv_timeout(within) {
            Ok(Ok(())) => tracing::info!("tracing: spans flushed"),
            Ok(Err(e)) => tracing::warn!("tracing: flushing spans failed: {e}"),
            Err(_) => tracing::warn!(
                within_ms = within.as_millis() as u64,
                "tracing: flushing spans timed out"
            ),
        }
    }
}

/// The tracer provider: OTLP/HTTP protobuf to `traces_url`, batched by the tokio batch
/// processor, sampled by trace id for new traces and as the parent says for continued ones.
fn provider(settings: &TracingSettings) -> anyhow::Result<SdkTracerProvider> {
    let client = reqwest::Client::builder()
        .timeout(EXPORT_TIMEOUT)
        .build()
        .context("[tracing]: the HTTP client")?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(settings.traces_url.as_str())
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(client)
        .build()
        .context("[tracing]: the OTLP exporter")?;
    let batch = BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_export_timeout(EXPORT_TIMEOUT)
                .build(),
        )
        .build();
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(settings.sample_ratio)));
    Ok(SdkTracerProvider::builder()
        .with_span_processor(batch)
        .with_sampler(sampler)
        .with_resource(
            Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .build())
}

/// The span of one request, from `request_filter` to `logging`.
pub struct RequestSpan {
    span: Span,
}

/// What the request came to, for the span's attributes.
pub struct Outcome<'a> {
    pub method: &'static str,
    pub route: Option<&'a Arc<str>>,
    pub decision: &'static str,
    pub reason: &'static str,
    pub upstream: Option<&'a str>,
    /// 0 when no response was written (the client went away first).
    pub status: u16,
    pub request_id: &'a str,
}

impl RequestSpan {
    /// Sets the upstream request's `traceparent` (and `tracestate`, when the trace carries
    /// one) to this span; whatever the client sent under those names is dropped.
    pub fn inject(&self, h: &mut HeaderMap) {
        h.remove(TRACEPARENT);
        h.remove(TRACESTATE);
        let cx = Context::new().with_remote_span_context(self.span.span_context().clone());
        TraceContextPropagator::new().inject_context(&cx, &mut Headers(h));
    }

    /// Records the outcome and ends the span (queued for export; never blocks).
    pub fn finish(mut self: Box<Self>, o: Outcome<'_>) {
        let span = &mut self.span;
        if span.is_recording() {
            let route: opentelemetry::Value = match o.route {
                Some(r) => Arc::clone(r).into(),
                None => "none".into(),
            };
            // Low-cardinality name, as the semantic conventions ask: method and route.
            span.update_name(Cow::Owned(format!("{} {}", o.method, route.as_str())));
            span.set_attributes([
                KeyValue::new("http.request.method", o.method),
                KeyValue::new("http.response.status_code", i64::from(o.status)),
                KeyValue::new("portcullis.route", route),
                KeyValue::new("portcullis.decision", o.decision),
                KeyValue::new("portcullis.request_id", o.request_id.to_owned()),
            ]);
            if let Some(u) = o.upstream {
                span.set_attribute(KeyValue::new("portcullis.upstream", u.to_owned()));
            }
            if !o.reason.is_empty() {
                span.set_attribute(KeyValue::new("portcullis.reason", o.reason));
            }
            // Server spans: 5xx is an error of ours, 4xx the client's (semantic conventions).
            if o.status >= 500 {
                span.set_status(Status::error(respond_label(o.status)));
            } else if o.status == 0 {
                span.set_status(Status::error("no response written"));
            }
        }
        span.end();
    }
}

fn respond_label(status: u16) -> &'static str {
    match status {
        502 => "bad gateway",
        503 => "service unavailable",
        504 => "gateway timeout",
        _ => "server error",
    }
}

/// Writes the propagator's fields as headers; an empty `tracestate` is left out.
struct Headers<'a>(&'a mut HeaderMap);

impl Injector for Headers<'_> {
    fn set(&mut self, key: &str, value: String) {
        if value.is_empty() {
            return;
        }
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(k, v);
        }
    }
}
