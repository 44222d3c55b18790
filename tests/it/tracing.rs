//! OpenTelemetry tracing (DESIGN §15): the real gateway exports one span per request over
//! OTLP/HTTP to a receiver in this test (protobuf decoded with `opentelemetry-proto`), and the
//! real upstream (the echo app, which answers with the headers it got) receives a
//! `traceparent` in the exported span's trace. Without `[tracing]` nothing is sent and no
//! header is added.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use serde_json::Value;

use crate::harness::{Gateway, Opts, Upstream, eventually, route};

/// One exported span, flattened: ids in hex, attributes as text.
#[derive(Debug, Clone)]
struct Got {
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    kind: i32,
    service: String,
    attrs: HashMap<String, String>,
}

/// An OTLP/HTTP receiver on 127.0.0.1:0: `POST /v1/traces` with a protobuf body is decoded;
/// every request, on any path, is counted.
struct Receiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Got>>>,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        Self::start_on("127.0.0.1:0").await
    }

    async fn start_on(addr: &str) -> Receiver {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (spans.clone(), requests.clone());
        let app = axum::Router::new().fallback(
            move |method: http::Method, uri: http::Uri, headers: http::HeaderMap, body: Bytes| {
                let (s, r) = (s.clone(), r.clone());
                async move {
                    let ct = headers
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    r.lock().unwrap().push(format!("{method} {uri} {ct}"));
                    if method != http::Method::POST
                        || uri.path() != "/v1/traces"
                        || ct != "application/x-protobuf"
                    {
                        return http::StatusCode::NOT_FOUND;
                    }
                    let Ok(req) = ExportTraceServiceRequest::decode(body) else {
                        return http::StatusCode::BAD_REQUEST;
                    };
                    s.lock().unwrap().extend(flatten(req));
                    http::StatusCode::OK
                }
            },
        );
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("{addr} is taken ({e}); the receiver listens on a free port");
                tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()
            }
        };
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            addr,
            spans,
            requests,
            task,
        }
    }

    fn spans(&self) -> Vec<Got> {
        self.spans.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn flatten(req: ExportTraceServiceRequest) -> Vec<Got> {
    let mut out = Vec::new();
    for rs in req.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.as_ref().and_then(|v| v.value.as_ref())))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                out.push(Got {
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: hex(&s.parent_span_id),
                    name: s.name,
                    kind: s.kind,
                    service: service.clone(),
                    attrs: s
                        .attributes
                        .iter()
                        .map(|kv| {
                            let v = kv.value.as_ref().and_then(|v| v.value.as_ref());
                            (kv.key.clone(), text(v))
                        })
                        .collect(),
                });
            }
        }
    }
    out
}

fn text(v: Option<&AnyValue>) -> String {
    match v {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The `traceparent` the upstream received (the echo app answers with its request headers).
fn upstream_header(echo: &Value, name: &str) -> Option<String> {
    echo["headers"][name][0].as_str().map(str::to_owned)
}

/// `00-TRACEID-SPANID-FLAGS` → (trace id, span id, flags).
fn parts(traceparent: &str) -> (String, String, String) {
    let p: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(p.len(), 4, "{traceparent}");
    assert_eq!(p[0], "00", "{traceparent}");
    (p[1].into(), p[2].into(), p[3].into())
}

/// SIGTERM, then waits for the process to exit (the drain flushes the exporter first).
async fn stop(gw: &mut Gateway) {
    gw.signal("TERM");
    let child = &mut gw.child;
    let mut exited = false;
    for _ in 0..200 {
        if child.try_wait().unwrap().is_some() {
            exited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(exited, "gateway did not exit after SIGTERM");
}

const CLIENT_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_SPAN: &str = "b7ad6b7169203331";

#[tokio::test(flavor = "multi_thread")]
async fn spans_reach_the_collector_and_the_upstream_joins_the_trace() {
    let rx = Receiver::start().await;
    let up = Upstream::start().await;
    let mut gw = Gateway::start(
        Opts::new(route("api", "/api", &[up.url()], "")).extra(&format!(
            "[tracing]\notlp_endpoint = \"http://{}/\"\nservice_name = \"gw-under-test\"\n",
            rx.addr
        )),
    )
    .await;
    let c = gw.client();

    // An untrusted client's traceparent and tracestate are not continued.
    let r = c
        .get(gw.url("/api/hello?x=1"))
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .header("tracestate", "evil=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let echo: Value = r.json().await.unwrap();
    let tp = upstream_header(&echo, "traceparent").expect("upstream got a traceparent");
    let (trace_id, parent_id, flags) = parts(&tp);
    assert_ne!(trace_id, CLIENT_TRACE, "a client's trace was continued");
    assert_eq!(flags, "01", "sample_ratio 1.0 samples every new trace");
    assert_eq!(upstream_header(&echo, "tracestate"), None, "{echo}");

    let r = c.get(gw.url("/nowhere")).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // The drain on SIGTERM exports what the batch still holds.
    stop(&mut gw).await;
    let spans = rx.spans();
    assert_eq!(spans.len(), 2, "{spans:#?}\n{}", gw.stderr());
    let s = spans
        .iter()
        .find(|s| s.span_id == parent_id)
        .unwrap_or_else(|| panic!("no exported span is the upstream's parent: {spans:#?}"));
    assert_eq!(s.trace_id, trace_id);
    assert_eq!(s.parent_span_id, "", "a new trace starts at the gateway");
    assert_eq!(s.kind, SpanKind::Server as i32);
    assert_eq!(s.name, "GET api");
    assert_eq!(s.service, "gw-under-test");
    assert_eq!(s.attrs["portcullis.route"], "api");
    assert_eq!(s.attrs["portcullis.decision"], "allow");
    assert_eq!(s.attrs["portcullis.upstream"], up.url());
    assert_eq!(s.attrs["http.response.status_code"], "200");
    assert_eq!(s.attrs["http.request.method"], "GET");
    assert_eq!(s.attrs["portcullis.request_id"], request_id);

    let denied = spans.iter().find(|s| s.span_id != parent_id).unwrap();
    assert_ne!(denied.trace_id, trace_id);
    assert_eq!(denied.attrs["portcullis.route"], "none");
    assert_eq!(denied.attrs["portcullis.decision"], "deny");
    assert_eq!(denied.attrs["portcullis.reason"], "no_route");
    assert_eq!(denied.attrs["http.response.status_code"], "404");
    assert!(!denied.attrs.contains_key("portcullis.upstream"));
    let reqs = rx.requests.lock().unwrap().clone();
    assert!(
        reqs.iter().all(|r| r.starts_with("POST /v1/traces ")),
        "{reqs:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trusted_peer_continues_its_trace_and_sampling_follows_it() {
    let rx = Receiver::start().await;
    let up = Upstream::start().await;
    let mut gw = Gateway::start(
        Opts::new(route("api", "/api", &[up.url()], "")).extra(&format!(
            "[forwarded]\ntrusted_proxies = [\"127.0.0.1\"]\n\
             [tracing]\notlp_endpoint = \"http://{}\"\nsample_ratio = 0.0\n",
            rx.addr
        )),
    )
    .await;
    let c = gw.client();

    // A sampled parent from a trusted peer is continued (and recorded, whatever the ratio).
    let r = c
        .get(gw.url("/api/a"))
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .header("tracestate", "vendor=abc")
        .send()
        .await
        .unwrap();
    let echo: Value = r.json().await.unwrap();
    let (trace_id, parent_id, flags) = parts(&upstream_header(&echo, "traceparent").unwrap());
    assert_eq!(trace_id, CLIENT_TRACE);
    assert_ne!(
        parent_id, CLIENT_SPAN,
        "the gateway's own span is the upstream's parent"
    );
    assert_eq!(flags, "01");
    assert_eq!(
        upstream_header(&echo, "tracestate").as_deref(),
        Some("vendor=abc")
    );

    // A new trace at ratio 0.0 is not recorded, yet the upstream still gets its context.
    let r = c.get(gw.url("/api/b")).send().await.unwrap();
    let echo: Value = r.json().await.unwrap();
    let (unsampled_trace, _, flags) = parts(&upstream_header(&echo, "traceparent").unwrap());
    assert_eq!(flags, "00");

    stop(&mut gw).await;
    let spans = rx.spans();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert_eq!(spans[0].trace_id, CLIENT_TRACE);
    assert_eq!(spans[0].span_id, parent_id);
    assert_eq!(spans[0].parent_span_id, CLIENT_SPAN);
    assert_eq!(spans[0].service, "portcullis");
    assert!(spans.iter().all(|s| s.trace_id != unsampled_trace));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_tracing_section_nothing_is_exported_or_added() {
    // On the OTLP/HTTP default port, where an exporter started by mistake with the SDK's
    // defaults would send.
    let rx = Receiver::start_on("127.0.0.1:4318").await;
    let up = Upstream::start().await;
    let mut gw = Gateway::start(Opts::new(route("api", "/api", &[up.url()], ""))).await;
    let c = gw.client();
    let r = c.get(gw.url("/api/plain")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let echo: Value = r.json().await.unwrap();
    assert_eq!(upstream_header(&echo, "traceparent"), None, "{echo}");
    assert_eq!(upstream_header(&echo, "tracestate"), None, "{echo}");

    // A client's own trace context passes through untouched.
    let tp = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let r = c
        .get(gw.url("/api/theirs"))
        .header("traceparent", &tp)
        .send()
        .await
        .unwrap();
    let echo: Value = r.json().await.unwrap();
    assert_eq!(upstream_header(&echo, "traceparent"), Some(tp));

    stop(&mut gw).await;
    // The drain would have flushed any exporter; give a stray one a moment more anyway.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.requests.lock().unwrap().is_empty());
    assert!(rx.spans().is_empty());
    eventually(
        "the upstream to have seen both",
        Duration::from_secs(1),
        || async { up.hits() == 2 },
    )
    .await;
}
