//! A batching writer for the audit stream: request threads append lines to one shared buffer,
//! a flusher thread writes it out every [`FLUSH_EVERY`] or as soon as it holds
//! [`FLUSH_BYTES`]. Like nginx's `access_log … buffer= flush=`: one `write` per batch instead of
//! a write and a thread wake-up per request.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// A buffer this full is handed to the flusher at once.
pub const FLUSH_BYTES: usize = 32 * 1024;
/// Beyond this, appenders wait for the flusher (a stuck stdout slows requests rather than
/// losing audit lines or growing without bound).
pub const MAX_BYTES: usize = 4 * 1024 * 1024;

struct State {
    buf: Vec<u8>,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Signals the flusher (buffer full, or closing).
    full: Condvar,
    /// Signals appenders waiting for room.
    drained: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while appending cannot leave the Vec invalid; keep logging.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn append(&self, line: &[u8]) {
        let mut st = self.lock();
        while st.buf.len() >= MAX_BYTES && !st.closed {
            st = self
                .drained
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let was_below = st.buf.len() < FLUSH_BYTES;
        st.buf.extend_from_slice(line);
        if was_below && st.buf.len() >= FLUSH_BYTES {
            self.full.notify_one();
        }
    }
}

/// The `MakeWriter` given to the audit layer; cheap to clone.
#[derive(Clone)]
pub struct BatchWriter(Arc<Shared>);

/// Owns the flusher thread: dropping it flushes what is left and joins the thread.
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl BatchWriter {
    /// A writer batching into stdout.
    pub fn stdout() -> (Self, Flusher) {
        Self::new(Box::new(std::io::stdout()))
    }

    /// A writer batching into `out`.
    pub fn new(mut out: Box<dyn Write + Send>) -> (Self, Flusher) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buf: Vec::with_capacity(FLUSH_BYTES * 2),
                closed: false,
            }),
            full: Condvar::new(),
            drained: Condvar::new(),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("audit-flush".into())
            .spawn(move || flush_loop(&s, out.as_mut()))
            .ok();
        (BatchWriter(Arc::clone(&shared)), Flusher { shared, thread })
    }
}

fn flush_loop(shared: &Shared, out: &mut dyn Write) {
    let mut spare = Vec::with_capacity(FLUSH_BYTES * 2);
    loop {
        let closed = {
            let mut st = shared.lock();
            if st.buf.len() < FLUSH_BYTES && !st.closed {
                st = shared
                    .full
                    .wait_timeout(st, FLUSH_EVERY)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            std::mem::swap(&mut st.buf, &mut spare);
            st.closed
        };
        shared.drained.notify_all();
        if !spare.is_empty() {
            // Nowhere to report a failing stdout but stderr; the lines are gone either way.
            if let Err(e) = out.write_all(&spare).and_then(|()| out.flush()) {
                eprintln!("audit log write failed: {e}");
            }
            spare.clear();
        }
        if closed {
            return;
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.full.notify_one();
        self.shared.drained.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One event's bytes; the fmt layer writes a whole formatted line in one call.
pub struct LineWriter<'a>(&'a Shared);

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` whose bytes the test can read back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn drop_flushes_every_line_in_order() {
        let sink = Sink::default();
        let (w, flusher) = BatchWriter::new(Box::new(sink.clone()));
        for i in 0..10_000 {
            w.make_writer()
                .write_all(format!("line {i}\n").as_bytes())
                .unwrap();
        }
        drop(flusher);
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 10_000);
        assert!(
            lines
                .iter()
                .enumerate()
                .all(|(i, l)| *l == format!("line {i}"))
        );
    }

    #[test]
    fn a_quiet_buffer_is_written_within_the_flush_interval() {
        let sink = Sink::default();
        let (w, _flusher) = BatchWriter::new(Box::new(sink.clone()));
        w.make_writer().write_all(b"one\n").unwrap();
        let deadline = std::time::Instant::now() + FLUSH_EVERY * 20;
        while sink.0.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "line never flushed");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(&*sink.0.lock().unwrap(), b"one\n");
    }

    #[test]
    fn appenders_from_many_threads_never_interleave_lines() {
        let sink = Sink::default();
        let (w, flusher) = BatchWriter::new(Box::new(sink.clone()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let w = w.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        let line = format!("{t}:{i}:{}\n", "x".repeat(40));
                        w.make_writer().write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(flusher);
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.lines().count(), 20_000);
        assert!(out.lines().all(|l| l.ends_with(&"x".repeat(40))));
    }
}
