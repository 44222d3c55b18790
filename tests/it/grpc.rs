//! gRPC through the gateway (DESIGN §11): a real tonic server behind `upstream_protocol = "h2c"`
//! and `"h2"` (HTTP/2 over TLS with a private CA), a real tonic client over the gateway's TLS
//! listener; unary and server-streaming calls, `grpc-status` and trailers passed through.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio_stream::Stream;
use tonic::codegen::http;
use tonic::{Request, Response, Status};

use crate::harness::{Gateway, Opts, route};
use crate::mtls_pki::{Ca, Leaf};

#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoRequest {
    #[prost(string, tag = "1")]
    pub message: String,
    #[prost(uint32, tag = "2")]
    pub count: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoReply {
    #[prost(string, tag = "1")]
    pub message: String,
    #[prost(uint32, tag = "2")]
    pub index: u32,
    /// What the upstream received: its `te` header, its identity headers.
    #[prost(string, tag = "3")]
    pub te: String,
    #[prost(string, tag = "4")]
    pub user: String,
}

type ReplyStream = Pin<Box<dyn Stream<Item = Result<EchoReply, Status>> + Send>>;

fn header(req: &Request<EchoRequest>, name: &str) -> String {
    req.metadata()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn unary(req: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
    let (te, user) = (header(&req, "te"), header(&req, "x-auth-request-user"));
    let m = req.into_inner();
    if m.message == "deny" {
        return Err(Status::permission_denied("the upstream says no"));
    }
    Ok(Response::new(EchoReply {
        message: m.message,
        index: 0,
        te,
        user,
    }))
}

/// `count` replies, then (for the message "abort") an error in the trailers.
async fn stream(req: Request<EchoRequest>) -> Result<Response<ReplyStream>, Status> {
    let m = req.into_inner();
    let mut items: Vec<Result<EchoReply, Status>> = (0..m.count)
        .map(|i| {
            Ok(EchoReply {
                message: format!("{} {i}", m.message),
                index: i,
                ..Default::default()
            })
        })
        .collect();
    if m.message == "abort" {
        items.push(Err(Status::aborted("stopped after the replies")));
    }
    Ok(Response::new(Box::pin(tokio_stream::iter(items))))
}

/// The echo service, as tonic's generated code would write it; `TLS` only changes its name, so
/// one gateway can route to a cleartext and a TLS instance by path.
#[derive(Clone)]
struct Echo<const TLS: bool>;

impl<const TLS: bool> tonic::server::NamedService for Echo<TLS> {
    const NAME: &'static str = if TLS { "test.EchoTls" } else { "test.Echo" };
}

impl<const TLS: bool> tower::Service<http::Request<tonic::body::Body>> for Echo<TLS> {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<
                EchoReply,
                EchoRequest,
            >::default());
            let path = req.uri().path().to_string();
            Ok(if path.ends_with("/Unary") {
                grpc.unary(tower::service_fn(unary), req).await
            } else if path.ends_with("/Stream") {
                grpc.server_streaming(tower::service_fn(stream), req).await
            } else {
                Status::unimplemented(path).into_http()
            })
        })
    }
}

/// A TLS stream tonic's server accepts (it wants connection info of each).
struct TlsIo(tokio_rustls::server::TlsStream<tokio::net::TcpStream>);

impl tonic::transport::server::Connected for TlsIo {
    type ConnectInfo = ();
    fn connect_info(&self) {}
}

impl tokio::io::AsyncRead for TlsIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// A tonic server on a free port: cleartext HTTP/2, or TLS with `leaf` (ALPN h2).
async fn grpc_server(leaf: Option<&Leaf>) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = match leaf {
        None => tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(Echo::<false>)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
                .unwrap();
        }),
        Some(leaf) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(
                crate::mtls_pki::server_config(leaf, None, &[b"h2"]),
            ));
            let incoming = async_stream(listener, acceptor);
            tokio::spawn(async move {
                tonic::transport::Server::builder()
                    .add_service(Echo::<true>)
                    .serve_with_incoming(incoming)
                    .await
                    .unwrap();
            })
        }
    };
    (addr, task)
}

/// Accepted TLS connections as the stream tonic serves (failed handshakes skipped).
fn async_stream(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
) -> impl Stream<Item = Result<TlsIo, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = tx.send(Ok(TlsIo(tls))).await;
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// A tonic channel to the gateway's TLS listener (ALPN h2, trusting `ca_pem`).
async fn channel(port: u16, ca_pem: &[u8]) -> tonic::transport::Channel {
    let mut roots = rustls::RootCertStore::empty();
    for c in crate::harness::rustls_pemfile_certs(ca_pem) {
        roots.add(c).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let cfg = Arc::new(cfg);
    let connector = tower::service_fn(move |_: http::Uri| {
        let cfg = Arc::clone(&cfg);
        async move {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let tls = tokio_rustls::TlsConnector::from(cfg)
                .connect(name, tcp)
                .await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    tonic::transport::Endpoint::from_shared(format!("http://localhost:{port}"))
        .unwrap()
        .connect_with_connector(connector)
        .await
        .unwrap()
}

type Client = tonic::client::Grpc<tonic::transport::Channel>;

async fn call_unary(c: &mut Client, service: &str, message: &str) -> Result<EchoReply, Status> {
    c.ready().await.unwrap();
    let path = format!("/{service}/Unary").parse().unwrap();
    let req = Request::new(EchoRequest {
        message: message.into(),
        count: 0,
    });
    c.unary(
        req,
        path,
        tonic_prost::ProstCodec::<EchoRequest, EchoReply>::default(),
    )
    .await
    .map(Response::into_inner)
}

/// Every reply of a streaming call, then how the call ended.
async fn call_stream(
    c: &mut Client,
    service: &str,
    message: &str,
    count: u32,
) -> (Vec<EchoReply>, Result<(), Status>) {
    c.ready().await.unwrap();
    let path = format!("/{service}/Stream").parse().unwrap();
    let req = Request::new(EchoRequest {
        message: message.into(),
        count,
    });
    let mut s = c
        .server_streaming(
            req,
            path,
            tonic_prost::ProstCodec::<EchoRequest, EchoReply>::default(),
        )
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    loop {
        match s.message().await {
            Ok(Some(m)) => got.push(m),
            Ok(None) => return (got, Ok(())),
            Err(e) => return (got, Err(e)),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_unary_and_streaming_through_the_gateway() {
    portcullis_gateway::app::install_crypto_provider();
    let pki = tempfile::tempdir().unwrap();
    let up_ca = Ca::new("grpc upstream CA");
    let ca_path = pki.path().join("up-ca.pem");
    std::fs::write(&ca_path, up_ca.pem()).unwrap();
    let (plain, _t1) = grpc_server(None).await;
    let (tls, _t2) = grpc_server(Some(&up_ca.server())).await;
    let routes = route(
        "grpc",
        "/test.Echo",
        &[format!("http://{plain}")],
        "upstream_protocol = \"h2c\"",
    ) + &route(
        "grpcs",
        "/test.EchoTls",
        &[format!("https://127.0.0.1:{}", tls.port())],
        &format!(
            "upstream_protocol = \"h2\"\nupstream_tls = {{ ca = \"{}\" }}",
            ca_path.display()
        ),
    );
    let gw = Gateway::start(Opts::new(routes)).await;
    let mut c = tonic::client::Grpc::new(channel(gw.public, &gw.cert_pem()).await);
    for service in ["test.Echo", "test.EchoTls"] {
        let r = call_unary(&mut c, service, "hello").await.unwrap();
        assert_eq!(r.message, "hello", "{service}");
        // The client's `te: trailers` reached the HTTP/2 upstream (it is hop-by-hop otherwise).
        assert_eq!(r.te, "trailers", "{service}");
        // An error status comes back as the upstream set it (a trailers-only response).
        let e = call_unary(&mut c, service, "deny").await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied, "{service}: {e:?}");
        assert_eq!(e.message(), "the upstream says no");
        // Streaming: every message, then the trailers' grpc-status.
        let (got, end) = call_stream(&mut c, service, "tick", 5).await;
        assert_eq!(end.map_err(|e| e.code()), Ok(()), "{service}");
        let idx: Vec<u32> = got.iter().map(|m| m.index).collect();
        assert_eq!(idx, [0, 1, 2, 3, 4], "{service}");
        assert_eq!(got[4].message, "tick 4");
        let (got, end) = call_stream(&mut c, service, "abort", 3).await;
        assert_eq!(got.len(), 3, "{service}");
        let e = end.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Aborted, "{service}: {e:?}");
        assert_eq!(e.message(), "stopped after the replies");
    }
    // Several calls at once share the gateway's HTTP/2 connection to each upstream.
    let calls = (0..20).map(|i| {
        let mut c = c.clone();
        async move { call_unary(&mut c, "test.Echo", &format!("m{i}")).await }
    });
    for (i, r) in futures_join(calls).await.into_iter().enumerate() {
        assert_eq!(r.unwrap().message, format!("m{i}"));
    }
    let m = gw.metrics().await;
    assert!(
        m.contains(
            "portcullis_http_requests_total{method=\"POST\",route=\"grpcs\",status=\"200\"} 4"
        ),
        "{m}"
    );
}

/// Runs the futures concurrently and collects their outputs in order.
async fn futures_join<F>(fs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
