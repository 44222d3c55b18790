//! portcullis patch: a keep-alive pool of idle upstream streams that needs no task per stream.
//!
//! Upstream pingora parks every released stream behind an `Arc<Mutex<_>>`, spawns a tokio task
//! that watches it (a 1-byte read raced against the idle timeout and a reuse signal), and on reuse
//! hands it back through that task and checks the socket's peer with `getpeername`. That is a
//! task spawn, two extra task wake-ups, a timer and a system call per proxied request.
//!
//! Here an idle stream just sits in a list with its deadline. Whether it is still usable is
//! decided when it is taken: past its deadline it is dropped, and a non-blocking read (the same
//! `test_reusable_stream` check upstream runs) drops it if the server closed it or sent bytes.
//! Streams are taken most recently used first, so the oldest ones age out at the front of each
//! list and are swept whenever a stream is put back. Entries remember the peer address they were
//! opened to, so a reuse-hash collision can never hand one peer's stream to another.

use super::{test_reusable_stream, PoolCallback};
use crate::protocols::l4::socket::SocketAddr;
use crate::protocols::Stream;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

struct Idle {
    stream: Stream,
    address: SocketAddr,
    since: Instant,
    deadline: Option<Instant>,
}

impl Idle {
    fn expired(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| d <= now)
    }
}

#[derive(Default)]
struct Lists {
    by_key: HashMap<u64, VecDeque<Idle>>,
    len: usize,
    /// When every list (not just the one being put to) is next swept of expired streams, so a
    /// peer no longer used (say, removed by a config reload) does not keep its sockets open.
    next_full_sweep: Option<Instant>,
}

/// How often `put` sweeps every list rather than only its own.
const FULL_SWEEP_EVERY: Duration = Duration::from_secs(5);

impl Lists {
    /// Moves every expired stream of every list into `dropped`.
    fn sweep_all(&mut self, now: Instant, dropped: &mut Vec<Idle>) {
        for list in self.by_key.values_mut() {
            while list.front().is_some_and(|i| i.expired(now)) {
                dropped.extend(list.pop_front());
                self.len -= 1;
            }
        }
        self.by_key.retain(|_, l| !l.is_empty());
        self.next_full_sweep = Some(now + FULL_SWEEP_EVERY);
    }

    /// Removes the stream idle longest, whatever its key (only runs with the pool full).
    fn evict_oldest(&mut self) -> Option<Idle> {
        let key = *self
            .by_key
            .iter()
            .filter_map(|(k, l)| Some((k, l.front()?.since)))
            .min_by_key(|&(_, since)| since)?
            .0;
        let list = self.by_key.get_mut(&key)?;
        let evicted = list.pop_front();
        if list.is_empty() {
            self.by_key.remove(&key);
        }
        if evicted.is_some() {
            self.len -= 1;
        }
        evicted
    }
}

/// Idle upstream streams by reuse hash, at most `capacity` in all.
pub(crate) struct IdlePool {
    lists: Mutex<Lists>,
    capacity: usize,
    /// Told how long a stream was idle when it is evicted for room, as upstream's pool does.
    on_evict: Option<PoolCallback>,
}

impl IdlePool {
    pub(crate) fn new(capacity: usize, on_evict: Option<PoolCallback>) -> Self {
        IdlePool {
            lists: Mutex::new(Lists::default()),
            capacity,
            on_evict,
        }
    }

    /// The most recently released usable stream to `address` under `key`, if any.
    pub(crate) fn take(
        &self,
        key: u64,
        address: &SocketAddr,
        unexpected_data: &AtomicU64,
    ) -> Option<Stream> {
        let now = Instant::now();
        loop {
            let idle = {
                let mut lists = self.lists.lock();
                let idle = lists.by_key.get_mut(&key)?.pop_back()?;
                lists.len -= 1;
                idle
            };
            // Dropping (closing) a stale stream happens outside the lock.
            let Idle {
                mut stream,
                address: opened_to,
                deadline,
                ..
            } = idle;
            if deadline.is_some_and(|d| d <= now) || opened_to != *address {
                continue;
            }
            if test_reusable_stream(&mut stream, unexpected_data) {
                return Some(stream);
            }
        }
    }

    /// Keeps `stream` for reuse under `key` for at most `idle_timeout`.
    pub(crate) fn put(
        &self,
        key: u64,
        address: SocketAddr,
        stream: Stream,
        idle_timeout: Option<Duration>,
    ) {
        if self.capacity == 0 {
            return;
        }
        let now = Instant::now();
        let idle = Idle {
            stream,
            address,
            since: now,
            // A timeout too large to add never expires (rather than panicking).
            deadline: idle_timeout.and_then(|t| now.checked_add(t)),
        };
        let mut dropped: Vec<Idle> = Vec::new();
        let evicted = {
            let mut lists = self.lists.lock();
            if lists.next_full_sweep.is_none_or(|at| at <= now) {
                lists.sweep_all(now, &mut dropped);
            }
            let before = dropped.len();
            let list = lists.by_key.entry(key).or_default();
            while list.front().is_some_and(|i| i.expired(now)) {
                dropped.extend(list.pop_front());
            }
            let swept = dropped.len() - before;
            list.push_back(idle);
            lists.len = lists.len + 1 - swept;
            let evicted = if lists.len > self.capacity {
                lists.evict_oldest()
            } else {
                None
            };
            // Lists emptied by `take` stay, so a busy key keeps its allocation; forget them
            // only once there are more keys than streams.
            if lists.by_key.len() > self.capacity {
                lists.by_key.retain(|_, l| !l.is_empty());
            }
            evicted
        };
        drop(dropped);
        if let Some(evicted) = evicted {
            if let Some(on_evict) = &self.on_evict {
                on_evict(evicted.since.elapsed());
            }
        }
    }
}
