//! The live sessions of this process, by session id: what a request with a valid cookie finds
//! after one AEAD open, without parsing the cookie's body or checking a signature. An entry's
//! current revision is swapped whole on a refresh; its refresh lock makes concurrent requests
//! wait for one refresh instead of each making their own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use dashmap::DashMap;
use http::HeaderValue;

use super::state::{Body, Sid};
use portcullis_core::identity::Principal;

/// Bound of the cache; past it, ended and expired entries go first, then any.
const MAX_ENTRIES: usize = 100_000;

/// One revision of a session: its tokens, and the principal they stand for.
pub struct Live {
    pub rev: u32,
    pub created: u64,
    pub body: Body,
    pub principal: Arc<Principal>,
    /// `Bearer {access token}`, for `pass_access_token` routes.
    pub bearer: Option<HeaderValue>,
}

impl Live {
    pub fn new(rev: u32, created: u64, body: Body, client_id: &str) -> Live {
        let who = &body.who;
        let principal = Arc::new(Principal {
            issuer: Arc::from(who.iss.as_str()),
            sub: who.sub.clone(),
            username: who.name.clone(),
            email: who.email.clone(),
            groups: who.groups.clone(),
            roles: who.roles.clone(),
            azp: Some(client_id.to_string()),
            exp: body.at_exp,
            memo: Default::default(),
        });
        let bearer = HeaderValue::from_str(&format!("Bearer {}", body.at))
            .ok()
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        Live {
            rev,
            created,
            body,
            principal,
            bearer,
        }
    }

    /// Whether the access token is due for a refresh: less than min(60 s, half its lifetime)
    /// left (DESIGN §10).
    pub fn needs_refresh(&self, now: u64) -> bool {
        let margin = (self.body.at_life / 2).min(60);
        self.body.at_exp.saturating_sub(now) < margin.max(1)
    }
}

/// A session in this process.
pub struct Entry {
    pub sid: Sid,
    pub live: ArcSwap<Live>,
    /// Held while a refresh runs: the waiters then find the refreshed revision.
    pub refresh: tokio::sync::Mutex<()>,
    /// Signed out, or its refresh was refused: it never comes back.
    pub ended: AtomicBool,
    /// No refresh is tried before this time (the provider was down).
    pub retry_refresh_at: AtomicU64,
    /// `store = "database"`: when the row was last seen to be live.
    pub checked_at: AtomicU64,
    /// The last cookie this process sealed for the session: its revision (high 32 bits) and
    /// when (low 32 bits, Unix seconds), so a stale cookie sent again and again (requests in
    /// flight when it was re-sealed, a client that ignores `Set-Cookie`) is re-sealed once per
    /// touch interval, not once per request.
    sealed: AtomicU64,
}

impl Entry {
    pub fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    pub fn end(&self) {
        self.ended.store(true, Ordering::Release);
    }

    /// Whether a request may re-seal the cookie as revision `rev` now: not when this process
    /// already sealed that revision less than `every` seconds ago (the browser has it, or gets
    /// it again after `every`; the idle clock allows that: `every` is at most a quarter of the
    /// idle timeout). Claims the re-seal when it answers yes.
    pub fn claim_reseal(&self, rev: u32, now: u64, every: u64) -> bool {
        let now32 = u32::try_from(now).unwrap_or(u32::MAX);
        let next = (u64::from(rev) << 32) | u64::from(now32);
        let mut last = self.sealed.load(Ordering::Acquire);
        loop {
            let (last_rev, at) = ((last >> 32) as u32, u64::from(last as u32));
            if last != 0 && last_rev == rev && now.saturating_sub(at) < every {
                return false;
            }
            match self
                .sealed
                .compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(seen) => last = seen,
            }
        }
    }
}

/// The live sessions by id.
#[derive(Default)]
pub struct Sessions {
    map: DashMap<Sid, Arc<Entry>>,
}

impl Sessions {
    pub fn get(&self, sid: &Sid) -> Option<Arc<Entry>> {
        self.map.get(sid).map(|e| Arc::clone(e.value()))
    }

    /// The entry for `live`'s session: a new one, or the existing one brought up to `live`
    /// when that is a newer revision (another replica refreshed it).
    pub fn insert(&self, sid: Sid, live: Live, now: u64, max_lifetime: u64) -> Arc<Entry> {
        if self.map.len() >= MAX_ENTRIES {
            self.prune(now, max_lifetime);
        }
        match self.map.entry(sid) {
            dashmap::Entry::Occupied(o) => {
                let e = Arc::clone(o.get());
                drop(o);
                if e.live.load().rev <= live.rev {
                    e.live.store(Arc::new(live));
                }
                e
            }
            dashmap::Entry::Vacant(v) => {
                let e = Arc::new(Entry {
                    sid,
                    live: ArcSwap::from_pointee(live),
                    refresh: tokio::sync::Mutex::new(()),
                    ended: AtomicBool::new(false),
                    retry_refresh_at: AtomicU64::new(0),
                    checked_at: AtomicU64::new(now),
                    sealed: AtomicU64::new(0),
                });
                v.insert(Arc::clone(&e));
                e
            }
        }
    }

    pub fn remove(&self, sid: &Sid) {
        self.map.remove(sid);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Drops ended and expired sessions; when that frees too little, half of the rest.
    fn prune(&self, now: u64, max_lifetime: u64) {
        self.map.retain(|_, e| {
            let live = e.live.load();
            !e.is_ended() && live.created.saturating_add(max_lifetime) > now
        });
        if self.map.len() >= MAX_ENTRIES {
            let mut keep = false;
            self.map.retain(|_, _| {
                keep = !keep;
                keep
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::state::Who;

    fn body(at_exp: u64, at_life: u64) -> Body {
        Body {
            at: "a.b.c".into(),
            at_exp,
            at_life,
            rt: None,
            it: None,
            who: Who {
                iss: "https://i".into(),
                sub: "u1".into(),
                name: Some("alice".into()),
                email: None,
                groups: vec!["/staff".into()],
                roles: vec![],
            },
        }
    }

    #[test]
    fn refresh_is_due_at_min_60s_or_half_the_lifetime() {
        let l = Live::new(0, 0, body(1000, 300), "gw");
        assert!(!l.needs_refresh(939));
        assert!(l.needs_refresh(941));
        let short = Live::new(0, 0, body(1000, 40), "gw");
        assert!(!short.needs_refresh(979));
        assert!(short.needs_refresh(981));
        assert_eq!(l.principal.user(), "alice");
        assert_eq!(l.principal.azp.as_deref(), Some("gw"));
        assert_eq!(l.bearer.as_ref().unwrap().to_str().unwrap(), "Bearer a.b.c");
    }

    #[test]
    fn a_stale_cookie_is_resealed_once_per_interval_and_revision() {
        let s = Sessions::default();
        let e = s.insert([2u8; 16], Live::new(0, 0, body(10, 10), "gw"), 0, 100);
        assert!(e.claim_reseal(0, 1000, 60), "the first re-seal");
        assert!(!e.claim_reseal(0, 1000, 60), "the same second");
        assert!(!e.claim_reseal(0, 1059, 60), "within the interval");
        assert!(e.claim_reseal(1, 1059, 60), "a new revision");
        assert!(!e.claim_reseal(1, 1100, 60));
        assert!(e.claim_reseal(1, 1119, 60), "the interval passed");
    }

    #[test]
    fn newer_revisions_replace_older_ones_only() {
        let s = Sessions::default();
        let sid = [1u8; 16];
        let e = s.insert(sid, Live::new(2, 0, body(10, 10), "gw"), 0, 100);
        s.insert(sid, Live::new(1, 0, body(20, 10), "gw"), 0, 100);
        assert_eq!(e.live.load().rev, 2);
        s.insert(sid, Live::new(3, 0, body(30, 10), "gw"), 0, 100);
        assert_eq!(s.get(&sid).unwrap().live.load().body.at_exp, 30);
        assert!(Arc::ptr_eq(&e, &s.get(&sid).unwrap()));
    }
}
