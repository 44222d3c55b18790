//! Buckets in this process: `governor`'s GCRA, one atomic compare-and-swap per request on a
//! route-wide bucket, a sharded concurrent map of them for keyed limits. Full buckets are
//! forgotten by [`LocalLimiter::sweep`], which bounds memory by the keys active in one refill.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use super::{Decision, Key};
use portcullis_core::config::rate_limit::{RateKey, RateLimit};

type Direct<C> = RateLimiter<NotKeyed, InMemoryState, C, StateInformationMiddleware>;
type Keyed<K, C> = RateLimiter<K, DefaultKeyedStateStore<K>, C, StateInformationMiddleware>;

enum Buckets<C: Clock> {
    Route(Direct<C>),
    Text(Keyed<String, C>),
    Ip(Keyed<IpAddr, C>),
}

/// One limit's buckets in this process. `C` is the clock (a fake one in tests).
pub struct LocalLimiter<C: Clock = DefaultClock> {
    buckets: Buckets<C>,
    clock: C,
    capacity: u32,
    interval: std::time::Duration,
}

/// A governor quota of `requests + burst` cells, one back every `per_seconds / requests`.
pub fn quota(spec: &RateLimit) -> Quota {
    let burst = NonZeroU32::new(spec.capacity()).unwrap_or(NonZeroU32::MIN);
    // The interval is never zero (at least a nanosecond); the fallback is never taken.
    Quota::with_period(spec.emission_interval())
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
        .allow_burst(burst)
}

impl LocalLimiter<DefaultClock> {
    pub fn new(spec: &RateLimit) -> Self {
        Self::with_clock(spec, DefaultClock::default())
    }
}

impl<C: Clock + Clone> LocalLimiter<C> {
    pub fn with_clock(spec: &RateLimit, clock: C) -> Self {
        let q = quota(spec);
        let buckets = match spec.key {
            RateKey::Route => Buckets::Route(
                RateLimiter::direct_with_clock(q, clock.clone())
                    .with_middleware::<StateInformationMiddleware>(),
            ),
            RateKey::Ip => Buckets::Ip(
                RateLimiter::dashmap_with_clock(q, clock.clone())
                    .with_middleware::<StateInformationMiddleware>(),
            ),
            RateKey::Principal | RateKey::Client => Buckets::Text(
                RateLimiter::dashmap_with_clock(q, clock.clone())
                    .with_middleware::<StateInformationMiddleware>(),
            ),
        };
        LocalLimiter {
            buckets,
            clock,
            capacity: spec.capacity(),
            interval: spec.emission_interval(),
        }
    }

    /// Counts one request against `key`'s bucket. A key of the wrong kind (a programming
    /// error) lands in the limit's shared bucket: limited, never let through unchecked.
    pub fn check(&self, key: Key<'_>) -> Decision {
        let outcome = match (&self.buckets, key) {
            (Buckets::Route(l), _) => l.check(),
            (Buckets::Text(l), Key::Text(k)) => l.check_key(k),
            (Buckets::Text(l), _) => l.check_key(&super::NO_KEY),
            (Buckets::Ip(l), Key::Ip(ip)) => l.check_key(&bucket_ip(ip)),
            (Buckets::Ip(l), _) => l.check_key(&IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        };
        match outcome {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                Decision {
                    allowed: true,
                    remaining,
                    // governor keeps the exact time private; this is at most one interval more.
                    reset: self.interval * self.capacity.saturating_sub(remaining),
                }
            }
            Err(not_until) => Decision {
                allowed: false,
                remaining: 0,
                reset: not_until.wait_time_from(self.clock.now()),
            },
        }
    }

    /// Forgets the buckets that are full again (indistinguishable from new ones).
    pub fn sweep(&self) {
        match &self.buckets {
            Buckets::Route(_) => {}
            Buckets::Text(l) => {
                l.retain_recent();
                l.shrink_to_fit();
            }
            Buckets::Ip(l) => {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
    }

    /// Buckets held (for tests and the sweep's log).
    pub fn len(&self) -> usize {
        match &self.buckets {
            Buckets::Route(_) => 1,
            Buckets::Text(l) => l.len(),
            Buckets::Ip(l) => l.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The bucket of an address: IPv4 as is (also when mapped into IPv6), IPv6 by its /64, the
/// smallest network a site is given.
pub fn bucket_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(
                u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            )),
        },
    }
}
