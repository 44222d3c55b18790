//! A deadline on the whole HTTP/1 request head (slowloris defence).
//!
//! Pingora bounds each *read* of a request head (60 s, or the keep-alive timeout on a reused
//! connection), so a client that sends one byte a minute holds a connection and its task for
//! as long as it likes. HAProxy (`timeout http-request`) and nginx (`client_header_timeout`)
//! bound the head as a whole; so does this: the public listener's connections are wrapped in
//! [`HeadDeadline`], which starts a clock at the first byte of each request head and fails the
//! read (after a best-effort `408`) when the head is not complete within
//! `limits.header_read_timeout_seconds`.
//!
//! The wrapper cannot tell where a head ends without parsing, so the proxy tells it: the head is
//! complete when `request_filter` runs ([`head_done`]) and the next one may start when the
//! request has been logged with its body read ([`request_done`]). The wait for a next request on an idle
//! keep-alive connection stays under Pingora's keep-alive timeout. The fast path (a head that
//! arrives in one read) costs a clock read and never arms a timer.
//!
//! HTTP/2 connections are wrapped too: there the deadline runs while a request's header block
//! is incomplete, from a HEADERS frame to the end of its END_HEADERS frame, as
//! [`h2_frames::H2Frames`] reads from the frame headers. A client that opens a stream and
//! never finishes its headers (or trickles CONTINUATION frames) is cut off after
//! `limits.header_read_timeout_seconds` like an HTTP/1 slowloris, instead of holding the
//! connection (and up to a header list of buffer) until the HTTP/2 idle timeout. Its size and
//! CONTINUATION count are h2's to bound (`h2_options` in `app.rs`).
//!
//! It also bounds the bytes a head may take: Pingora buffers a request head of up to 1 MiB
//! before any app code sees it, so a few hundred clients sending endless header lines could
//! hold a gigabyte. A head read past twice `limits.max_header_bytes` (plus Pingora's first
//! buffer) gets a best-effort `431` and the connection is closed; heads under that bound are
//! measured exactly by the guard (`431` with the JSON body). Twice, because the bytes read
//! while a head is incomplete include what follows it in the last read, and Pingora's buffer
//! doubles as it fills: that read is at most the head's own size again.
//!
//! [`ConnectionCap`], the listener's Pingora `ConnectionFilter`, caps its open connections
//! (`limits.max_connections`): Pingora accepts without a limit, and each connection holds a
//! task, buffers and a file descriptor. Through the patched pingora-core's
//! `ConnectionFilter::admit` it counts a connection from its accept, TLS handshake included, and
//! bounds that handshake by `limits.header_read_timeout_seconds` (Pingora's own bound is 60 s).

use std::any::Any;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::listeners::ConnectionFilter;
use pingora::protocols::http::ServerSession;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::{
    ALPN, GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl,
    Stream, TimingDigest, UniqueID, UniqueIDType,
};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use portcullis_core::metrics::metrics;

mod h2_frames;

/// Waiting for the first byte of a request head (Pingora's keep-alive timeout applies).
const AWAIT_HEAD: u8 = 0;
/// Inside a request head: the deadline runs.
const IN_HEAD: u8 = 1;
/// The head was parsed; body, response or tunnel follow under their own timeouts.
const IN_REQUEST: u8 = 2;

/// Sent, best effort, before a connection whose head took too long is closed.
const TIMEOUT_RESPONSE: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// Sent, best effort, before a connection whose head grew past its bound is closed.
const TOO_LARGE_RESPONSE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
Connection: close\r\nContent-Type: application/json\r\nContent-Length: 99\r\n\r\n\
{\"error\":\"request_header_fields_too_large\",\"error_description\":\"request header block is too large\"}";

/// Pingora's first read buffer for a request head.
const FIRST_READ: usize = 4096;

/// A downstream connection whose request heads must each arrive within `timeout`.
pub struct HeadDeadline {
    inner: Stream,
    timeout: Duration,
    /// Most bytes read while one head is incomplete.
    max_head_read: usize,
    /// Bytes read since the current head's first byte.
    head_read: usize,
    phase: AtomicU8,
    deadline: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    /// On an HTTP/2 connection: where its header blocks are (the HTTP/1 phases are unused).
    h2: Option<h2_frames::H2Frames>,
}

impl std::fmt::Debug for HeadDeadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadDeadline")
            .field("inner", &self.inner)
            .field("timeout", &self.timeout)
            .field("phase", &self.phase.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl HeadDeadline {
    /// Heads must arrive within `timeout`; `max_header_bytes` is the guard's exact limit.
    pub fn new(inner: Stream, timeout: Duration, max_header_bytes: usize) -> Self {
        Self {
            inner,
            timeout,
            max_head_read: max_header_bytes
                .saturating_mul(2)
                .saturating_add(FIRST_READ),
            head_read: 0,
            phase: AtomicU8::new(AWAIT_HEAD),
            deadline: None,
            timer: None,
            h2: None,
        }
    }

    /// An HTTP/2 connection whose request header blocks must each complete within `timeout`.
    pub fn new_h2(inner: Stream, timeout: Duration) -> Self {
        Self {
            h2: Some(h2_frames::H2Frames::default()),
            ..Self::new(inner, timeout, 0)
        }
    }

    /// After the bytes `filled` were read on an HTTP/2 connection: the deadline starts when a
    /// header block does, and ends with it.
    fn h2_read(&mut self, filled: &[u8]) {
        let Some(frames) = self.h2.as_mut() else {
            return;
        };
        if frames.advance(filled) {
            if self.deadline.is_none() {
                self.deadline = Some(Instant::now() + self.timeout);
                self.timer = None;
            }
        } else {
            self.deadline = None;
            self.timer = None;
        }
    }

    fn set_phase(&self, phase: u8) {
        self.phase.store(phase, Ordering::Relaxed);
    }

    /// Whether the head's deadline has passed; arms the timer that wakes this task at it.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.deadline else {
            return false;
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        timer.as_mut().poll(cx).is_ready()
    }

    /// Tells the client why the connection ends, if its socket takes the bytes at once.
    fn answer(&mut self, cx: &mut Context<'_>, response: &[u8]) {
        let mut inner = Pin::new(&mut self.inner);
        if let Poll::Ready(Ok(_)) = inner.as_mut().poll_write(cx, response) {
            let _ = inner.poll_flush(cx);
        }
    }
}

fn of(session: &ServerSession) -> Option<&HeadDeadline> {
    session.stream()?.as_any().downcast_ref::<HeadDeadline>()
}

/// The request head has been parsed: stop its clock.
pub fn head_done(session: &ServerSession) {
    if let Some(d) = of(session) {
        d.set_phase(IN_REQUEST);
    }
}

/// The request is over: the next bytes on this connection start a new head.
///
/// A request answered before its body was read must not have that body drained into the next
/// head's clock: such a connection is closed after the response. (Pingora 0.9 closes it anyway,
/// `close_on_response_before_downstream_finish`; this keeps the deadline right if that changes.)
pub fn request_done(session: &mut ServerSession) {
    if of(session).is_none() {
        return;
    }
    if !session.is_body_done() {
        session.set_keepalive(None);
    } else if let Some(d) = of(session) {
        d.set_phase(AWAIT_HEAD);
    }
}

impl AsyncRead for HeadDeadline {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len() - before;
                if n == 0 {
                    return Poll::Ready(Ok(()));
                }
                if this.h2.is_some() {
                    this.h2_read(&buf.filled()[before..]);
                    return Poll::Ready(Ok(()));
                }
                match this.phase.load(Ordering::Relaxed) {
                    AWAIT_HEAD => {
                        this.set_phase(IN_HEAD);
                        this.deadline = Some(Instant::now() + this.timeout);
                        this.timer = None;
                        this.head_read = n;
                    }
                    IN_HEAD => this.head_read = this.head_read.saturating_add(n),
                    _ => return Poll::Ready(Ok(())),
                }
                if this.head_read > this.max_head_read {
                    metrics()
                        .guard_refusals
                        .with_label_values(&["header_too_large"])
                        .inc();
                    this.answer(cx, TOO_LARGE_RESPONSE);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "request head larger than limits.max_header_bytes",
                    )));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if this.h2.is_some() {
                    if this.expired(cx) {
                        metrics()
                            .guard_refusals
                            .with_label_values(&["header_timeout"])
                            .inc();
                        // No bytes of our own: the h2 codec owns the connection's framing.
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "HTTP/2 header block not complete within header_read_timeout",
                        )));
                    }
                    return Poll::Pending;
                }
                if this.phase.load(Ordering::Relaxed) == IN_HEAD && this.expired(cx) {
                    metrics()
                        .guard_refusals
                        .with_label_values(&["header_timeout"])
                        .inc();
                    this.answer(cx, TIMEOUT_RESPONSE);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "request head not complete within header_read_timeout",
                    )));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl AsyncWrite for HeadDeadline {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for HeadDeadline {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for HeadDeadline {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for HeadDeadline {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for HeadDeadline {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for HeadDeadline {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for HeadDeadline {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for HeadDeadline {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

/// A [`ServerApp`] that wraps each connection in a [`HeadDeadline`] before `inner` sees it.
pub struct Guarded<A> {
    inner: Arc<A>,
    timeout: Duration,
    max_header_bytes: usize,
}

impl<A> Guarded<A> {
    pub fn new(inner: A, timeout: Duration, max_header_bytes: usize) -> Self {
        Self {
            inner: Arc::new(inner),
            timeout,
            max_header_bytes,
        }
    }
}

/// A listener's [`ConnectionFilter`]: counts each connection from its accept (before TLS) until
/// it is done, closes those over `limits.max_connections` unanswered, and bounds the TLS
/// handshake by `limits.header_read_timeout_seconds`.
#[derive(Debug)]
pub struct ConnectionCap {
    slots: Arc<Slots>,
    handshake_timeout: Duration,
}

impl ConnectionCap {
    /// `max_connections` of 0 means no cap.
    pub fn new(max_connections: usize, handshake_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Slots {
                open: AtomicUsize::new(0),
                max: max_connections,
            }),
            handshake_timeout,
        })
    }
}

impl ConnectionFilter for ConnectionCap {
    /// The patched pingora-core holds the slot until the connection is done, handshake
    /// included; over the cap the connection is closed before TLS.
    fn admit(&self) -> Option<(Box<dyn Any + Send>, Option<Duration>)> {
        match self.slots.take() {
            Some(slot) => Some((Box::new(slot), Some(self.handshake_timeout))),
            None => {
                metrics()
                    .guard_refusals
                    .with_label_values(&["connection_limit"])
                    .inc();
                None
            }
        }
    }
}

/// Open connections of one listener (Pingora accepts without a limit).
#[derive(Debug)]
struct Slots {
    open: AtomicUsize,
    max: usize,
}

/// One open connection, counted until dropped.
struct Slot(Arc<Slots>);

impl Slots {
    fn take(self: &Arc<Self>) -> Option<Slot> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if self.max != 0 && before >= self.max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(Arc::clone(self)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Guarded<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let stream: Stream = if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            Box::new(HeadDeadline::new_h2(stream, self.timeout))
        } else {
            Box::new(HeadDeadline::new(
                stream,
                self.timeout,
                self.max_header_bytes,
            ))
        };
        self.inner.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}
