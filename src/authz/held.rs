//! What a principal holds under one policy set: the union of its grants and its identity header
//! values, derived on its first request and kept with the principal for as long as the
//! verified-token cache keeps it, so a repeat token costs no role lookup, sort or allocation.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use http::HeaderValue;

use super::perm::Bits;
use super::{PolicySet, RoleId};
use crate::authn::Principal;
use crate::proxy::identity;

/// Tells policy sets apart, so a memo derived under one is never read under another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SetId(u64);

impl Default for SetId {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        SetId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// Where `X-Auth-Request-Groups` is in [`Held::identity`] (the order of `IDENTITY_HEADERS`).
const GROUPS: usize = 2;

/// A principal's standing under one policy set.
#[derive(Debug)]
pub struct Held {
    set: SetId,
    /// Union of the grants of every group and token role that names a defined role.
    pub(super) grants: Bits,
    /// Whether any group or token role named a defined role (`no_roles` otherwise).
    pub(super) any_role: bool,
    /// `X-Auth-Request-User`, `-Email`, `-Groups` and `-Roles`, each when known and a valid
    /// header value.
    pub identity: [Option<HeaderValue>; 4],
}

impl Held {
    /// The groups as `X-Auth-Request-Groups` carries them (comma-joined), when it does.
    pub fn groups_header(&self) -> Option<&str> {
        self.identity[GROUPS].as_ref().and_then(|v| v.to_str().ok())
    }
}

/// The memo a [`Principal`] carries. Not part of its identity: clones start empty and every
/// memo compares equal.
#[derive(Default)]
pub struct Memo(OnceLock<Arc<Held>>);

impl Clone for Memo {
    fn clone(&self) -> Self {
        Memo::default()
    }
}

impl PartialEq for Memo {
    fn eq(&self, _: &Memo) -> bool {
        true
    }
}

impl Eq for Memo {}

impl fmt::Debug for Memo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Memo")
    }
}

impl PolicySet {
    /// The principal's standing under this set, from its memo when this set derived it.
    pub fn held(&self, principal: &Principal) -> Arc<Held> {
        if let Some(h) = principal.memo.0.get().filter(|h| h.set == self.id) {
            return Arc::clone(h);
        }
        let held = Arc::new(self.derive(principal));
        // Principals are cached per snapshot, so the first set to see one is the set that keeps
        // asking; another set (explain, a test) derives afresh each time.
        let _ = principal.memo.0.set(Arc::clone(&held));
        held
    }

    fn derive(&self, principal: &Principal) -> Held {
        let mut grants = Bits::new(self.required_len);
        let mut any_role = false;
        for g in self.grant_sources(principal) {
            any_role = true;
            grants.union_with(g);
        }
        let joined = |list: String| (!list.is_empty()).then_some(list);
        Held {
            set: self.id,
            grants,
            any_role,
            identity: [
                identity::header_value(principal.user()),
                principal.email.as_deref().and_then(identity::header_value),
                joined(principal.groups.join(",")).and_then(|g| identity::header_value(&g)),
                joined(self.role_names(principal).join(","))
                    .and_then(|r| identity::header_value(&r)),
            ],
        }
    }

    /// Every defined role the principal holds through its groups or token roles, juniors of
    /// an inheritance included (an `admin` is also an `editor` and a `viewer`), sorted by name.
    pub fn role_names(&self, principal: &Principal) -> Vec<Arc<str>> {
        let mut seen: Vec<RoleId> = Vec::new();
        let mut stack: Vec<RoleId> = Vec::new();
        for g in &principal.groups {
            if let Some(group) = self.groups.get(g.as_str()) {
                stack.extend(group.roles.iter().copied());
            }
        }
        for r in &principal.roles {
            if let Some(id) = self.role_ids.get(r.as_str()) {
                stack.push(*id);
            }
        }
        while let Some(id) = stack.pop() {
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            if let Some(role) = self.roles.get(id as usize) {
                stack.extend(role.inherits.iter().copied());
            }
        }
        let mut names: Vec<Arc<str>> = seen
            .iter()
            .filter_map(|id| self.roles.get(*id as usize).map(|r| Arc::clone(&r.name)))
            .collect();
        names.sort_unstable();
        names
    }
}
