//! `store = "database"` on PostgreSQL: what the database announced about sessions (a
//! sign-out or an admin's ending on any replica), so a cached session is checked against its
//! row at its next request rather than at its next periodic re-check (`current.rs`). Nothing
//! here ends a session by itself: the row decides.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use base64::Engine;

use super::state::Sid;
use portcullis_core::clock::SharedClock;

/// The row id of a session: a digest, so the table alone names no cookie.
pub fn row_id(sid: &Sid) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"portcullis gateway session\0");
    ctx.update(sid);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ctx.finish().as_ref())
}

/// How long an announcement is kept: past it, the periodic re-check has seen the row anyway.
const KEEP_SECONDS: u64 = 60;
/// Announcements kept before old ones are dropped.
const PRUNE_AT: usize = 1024;

pub struct Heard {
    clock: SharedClock,
    /// Ended sessions by row id, with when it was heard.
    ended: DashMap<String, u64>,
    /// Subjects whose sessions were all ended, with when.
    subjects: DashMap<String, u64>,
    /// When the listener last reconnected (announcements may have been lost); 0 never.
    resynced_at: AtomicU64,
}

impl Heard {
    pub fn new(clock: SharedClock) -> Heard {
        Heard {
            clock,
            ended: DashMap::new(),
            subjects: DashMap::new(),
            resynced_at: AtomicU64::new(0),
        }
    }

    fn keep(map: &DashMap<String, u64>, key: String, now: u64) {
        if map.len() >= PRUNE_AT {
            map.retain(|_, t| now.saturating_sub(*t) < KEEP_SECONDS);
        }
        map.insert(key, now);
    }

    /// The session with this row id was ended.
    pub fn ended(&self, row: String) {
        Self::keep(&self.ended, row, self.clock.now_unix());
    }

    /// Every session of `sub` was ended.
    pub fn ended_all_of(&self, sub: String) {
        Self::keep(&self.subjects, sub, self.clock.now_unix());
    }

    /// Announcements may have been lost: every cached session is checked again.
    pub fn resync(&self) {
        self.resynced_at
            .store(self.clock.now_unix(), Ordering::Release);
    }

    /// Whether something heard since `checked_at` (seconds) may have ended the session `sid`
    /// of `sub`.
    pub fn may_have_ended(&self, sid: &Sid, sub: &str, checked_at: u64) -> bool {
        let resynced = self.resynced_at.load(Ordering::Acquire);
        (resynced != 0 && resynced >= checked_at)
            || self.subjects.get(sub).is_some_and(|t| *t >= checked_at)
            || (!self.ended.is_empty() && self.ended.contains_key(&row_id(sid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_heard_concerns_the_sessions_it_names() {
        let clock = portcullis_core::clock::ManualClock::new(1000);
        let h = Heard::new(clock.clone());
        let (a, b) = ([1u8; 16], [2u8; 16]);
        assert!(!h.may_have_ended(&a, "u1", 1000));
        h.ended(row_id(&a));
        assert!(h.may_have_ended(&a, "u1", 1000));
        assert!(!h.may_have_ended(&b, "u1", 1000));
        h.ended_all_of("u2".into());
        assert!(h.may_have_ended(&b, "u2", 999));
        assert!(
            !h.may_have_ended(&b, "u2", 1001),
            "checked after it was heard"
        );
        clock.advance(10);
        h.resync();
        assert!(h.may_have_ended(&b, "u1", 1005));
        assert!(!h.may_have_ended(&b, "u1", 1011));
    }
}
