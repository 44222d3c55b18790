//! Session cookies already opened under this snapshot's keys: a request that repeats one (every
//! request of a browser between two re-seals) finds the cookie's header here, without decoding
//! base64 or opening the AEAD again. Only a value that opened is ever stored, and a request's
//! value must equal it whole (compared in constant time), so the cache never accepts a cookie
//! the keys would refuse. It belongs to one `SessionConfig`: a reload (a removed key) starts
//! an empty one. Bounded; past the bound an eighth of the entries go.

use dashmap::DashMap;

use super::state::Header;

/// The index of a sealed value: its first 22 characters, the base64url of the key id and the
/// random nonce (16 bytes), unique per seal. A value that shares them but differs elsewhere
/// misses (and is opened, and refused, as without the cache).
const INDEX_LEN: usize = 22;
/// Entries kept: a value is ~3 KB, so at most ~25 MB.
const MAX_ENTRIES: usize = 8192;

/// A value that opened, and its header.
struct Seen {
    value: Box<[u8]>,
    head: Header,
}

/// The opened session cookies of one snapshot.
#[derive(Default)]
pub struct Opened {
    map: DashMap<[u8; INDEX_LEN], Seen>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Opened({} cookies)", self.map.len())
    }
}

fn index(value: &str) -> Option<[u8; INDEX_LEN]> {
    value.as_bytes().get(..INDEX_LEN)?.try_into().ok()
}

impl Opened {
    /// The header of `value` when it is a value this cache saw open.
    pub fn get(&self, value: &str) -> Option<Header> {
        let seen = self.map.get(&index(value)?)?;
        let same = seen.value.len() == value.len()
            && aws_lc_rs::constant_time::verify_slices_are_equal(&seen.value, value.as_bytes())
                .is_ok();
        same.then_some(seen.head)
    }

    /// Remembers that `value` opened to `head`.
    pub fn insert(&self, value: &str, head: Header) {
        let Some(i) = index(value) else { return };
        if self.map.len() >= MAX_ENTRIES {
            let mut n = 0u8;
            self.map.retain(|_, _| {
                n = n.wrapping_add(1);
                !n.is_multiple_of(8)
            });
        }
        self.map.insert(
            i,
            Seen {
                value: value.as_bytes().into(),
                head,
            },
        );
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::state::SID_LEN;

    fn head(rev: u32) -> Header {
        Header {
            sid: [1; SID_LEN],
            rev,
            created: 10,
            seen: 20,
        }
    }

    #[test]
    fn only_the_whole_value_that_opened_hits() {
        let o = Opened::default();
        let v = "A".repeat(40) + "tail";
        assert_eq!(o.get(&v), None);
        o.insert(&v, head(1));
        assert_eq!(o.get(&v), Some(head(1)));
        // Same index, another value: a miss (the caller opens it, and the keys refuse it).
        let other = "A".repeat(40) + "tale";
        assert_eq!(o.get(&other), None);
        assert_eq!(o.get(&v[..v.len() - 1]), None);
        assert_eq!(o.get(&(v.clone() + "x")), None);
        assert_eq!(o.get("short"), None);
        o.insert("short", head(2));
        assert!(o.get("short").is_none() && o.len() == 1);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let o = Opened::default();
        for i in 0..MAX_ENTRIES + 100 {
            o.insert(&format!("{i:0>22}-value"), head(0));
        }
        assert!(o.len() <= MAX_ENTRIES, "{}", o.len());
        let last = format!("{:0>22}-value", MAX_ENTRIES + 99);
        assert_eq!(o.get(&last), Some(head(0)));
    }
}
