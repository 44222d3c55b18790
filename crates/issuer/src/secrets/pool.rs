//! The threads password hashes run on: at most `threads` of them (the issuer's worker count),
//! started on demand and ended after `IDLE` without work, fed from one FIFO queue.
//!
//! Each argon2 hash at Keycloak's parameters holds 7 MiB of block memory, kept per thread
//! between hashes (crates/blamka). On tokio's blocking pool a login burst started a thread
//! per concurrent login (up to 512), each with its 7 MiB: eight concurrent logins took the
//! gateway from 27 to 98 MiB and it stayed there (issue 21). Here the memory is bounded by the
//! thread count and given back when an idle thread ends. Hashing more at once than there are
//! cores buys no throughput; what does not fit waits in the queue, as it waited in tokio's
//! queue once its pool was full (no request is refused for load, as before: the brute-force
//! lockout and the gateway's connection cap are what bound a login flood).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

/// How long a hashing thread waits for work before it ends (and its block memory with it):
/// tokio's keep-alive for blocking threads, so sparse logins still find a warm thread.
const IDLE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    state: Mutex<State>,
    work: Condvar,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// Threads alive, and of those the ones waiting for work.
    threads: usize,
    idle: usize,
}

static POOL: Pool = Pool {
    state: Mutex::new(State {
        queue: VecDeque::new(),
        threads: 0,
        idle: 0,
    }),
    work: Condvar::new(),
};

/// 0: one per core.
static MAX_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets how many hashes run at once (the issuer's worker threads); 0 means one per core.
pub fn set_hashing_threads(n: usize) {
    MAX_THREADS.store(n, Ordering::Relaxed);
}

fn max_threads() -> usize {
    match MAX_THREADS.load(Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Runs `f` (password hashing: CPU-heavy, blocking) on a hashing thread and waits for it
/// without blocking the caller's runtime. When the caller stops waiting before `f` has
/// started (its request was dropped), `f` is skipped.
pub async fn on_hashing_thread<T, F>(f: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    submit(Box::new(move || {
        if !tx.is_closed() {
            let _ = tx.send(f());
        }
    }))?;
    rx.await
        .map_err(|_| anyhow::anyhow!("the password hashing thread ended"))
}

fn submit(job: Job) -> anyhow::Result<()> {
    let mut st = POOL.state.lock().unwrap_or_else(PoisonError::into_inner);
    st.queue.push_back(job);
    // A waiting thread takes it; else a new thread, while under the limit; else it waits in
    // the queue for the first thread to finish.
    if st.idle > st.queue.len().saturating_sub(1) {
        POOL.work.notify_one();
        return Ok(());
    }
    if st.threads >= max_threads() {
        return Ok(());
    }
    match spawn_worker() {
        Ok(_) => {
            st.threads += 1;
            Ok(())
        }
        // No thread for it, and none running that would take it: drop it (the caller's
        // receiver then reports the failure).
        Err(e) if st.threads == 0 => {
            st.queue.clear();
            Err(anyhow::anyhow!("starting a password hashing thread: {e}"))
        }
        Err(_) => Ok(()),
    }
}

/// Counts the thread out if it ends by unwinding out of a job (tests; release builds abort),
/// and starts another for what is queued.
struct Alive {
    counted: bool,
}

impl Drop for Alive {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        let mut st = POOL.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.threads -= 1;
        if !st.queue.is_empty() && spawn_worker().is_ok() {
            st.threads += 1;
        }
    }
}

fn spawn_worker() -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("hashing".into())
        .spawn(worker)
        .map(drop)
}

fn worker() {
    let mut alive = Alive { counted: true };
    let mut st = POOL.state.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            job();
            st = POOL.state.lock().unwrap_or_else(PoisonError::into_inner);
            continue;
        }
        st.idle += 1;
        let (next, waited) = POOL
            .work
            .wait_timeout(st, IDLE)
            .unwrap_or_else(PoisonError::into_inner);
        st = next;
        st.idle -= 1;
        if waited.timed_out() && st.queue.is_empty() {
            // Counted out under the same lock that saw the queue empty, so a job queued after
            // this starts a thread of its own; the block memory is unmapped as the thread exits.
            st.threads -= 1;
            alive.counted = false;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashes_run_at_most_threads_at_once_and_every_one_answers() {
        let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let jobs: Vec<_> = (0..24u64)
            .map(|i| {
                let (now, peak) = (Arc::clone(&now), Arc::clone(&peak));
                tokio::spawn(on_hashing_thread(move || {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    now.fetch_sub(1, Ordering::SeqCst);
                    (i, std::thread::current().name().map(str::to_string))
                }))
            })
            .collect();
        for (i, job) in jobs.into_iter().enumerate() {
            let (j, name) = job.await.unwrap().unwrap();
            assert_eq!(j, i as u64);
            assert_eq!(name.as_deref(), Some("hashing"));
        }
        // Other tests hash at the same time, so only the bound is certain, not the count.
        let (peak, max) = (peak.load(Ordering::SeqCst), max_threads());
        assert!((1..=max).contains(&peak), "{peak} at once, {max} threads");
        assert!(POOL.state.lock().unwrap().threads <= max);
    }

    #[tokio::test]
    async fn a_job_whose_caller_left_is_skipped() {
        // The caller is dropped before its job runs: one that holds every thread is queued
        // first, so the second job is still waiting when its future goes away.
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let holders: Vec<_> = (0..max_threads())
            .map(|_| {
                let gate = Arc::clone(&gate);
                tokio::spawn(on_hashing_thread(move || {
                    let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(5));
                }))
            })
            .collect();
        // The holders queue their jobs when first polled: let them run first (this test's
        // runtime has one thread, and a yielded task goes to the back of its queue).
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        let ran = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&ran);
        let left = on_hashing_thread(move || r.fetch_add(1, Ordering::SeqCst));
        // Polled (so queued), then dropped.
        let waited = tokio::time::timeout(Duration::from_millis(50), left).await;
        assert!(waited.is_err(), "it ran while every thread was held");
        for _ in 0..max_threads() {
            let _ = release.send(());
        }
        for h in holders {
            h.await.unwrap().unwrap();
        }
        // A job queued after it has run, so the skipped one was taken (and skipped) before.
        let after = Arc::clone(&ran);
        on_hashing_thread(move || after.load(Ordering::SeqCst))
            .await
            .unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }
}
