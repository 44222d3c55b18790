//! What a principal holds under one policy set: the union of its grants and the names of every
//! role it holds, derived once. The gateway keeps it with the principal (its memo), so a repeat
//! token costs no role lookup or sort; this crate knows nothing of that cache or of headers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::perm::Bits;
use super::{PolicySet, RoleId};
use portcullis_core::identity::Principal;

/// Tells policy sets apart, so a standing derived under one is never read under another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SetId(u64);

impl Default for SetId {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        SetId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// A principal's standing under one policy set.
#[derive(Debug)]
pub struct Held {
    set: SetId,
    /// Union of the grants of every group and token role that names a defined role.
    pub(super) grants: Bits,
    /// Whether any group or token role named a defined role (`no_roles` otherwise).
    pub(super) any_role: bool,
    /// Every defined role held, juniors of an inheritance included, sorted by name.
    pub roles: Vec<Arc<str>>,
}

impl Held {
    /// Whether `set` derived this standing (only then do its grants mean anything to it).
    pub fn derived_by(&self, set: &PolicySet) -> bool {
        self.set == set.id
    }
}

impl PolicySet {
    /// The principal's standing under this set. Callers that see the same principal again
    /// keep it (see [`Held::derived_by`]) rather than derive it afresh.
    pub fn held(&self, principal: &Principal) -> Held {
        let mut grants = Bits::new(self.required_len);
        let mut any_role = false;
        for g in self.grant_sources(principal) {
            any_role = true;
            grants.union_with(g);
        }
        Held {
            set: self.id,
            grants,
            any_role,
            roles: self.role_names(principal),
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
        for (_, entry) in self.certificate_grants(principal) {
            stack.extend(entry.roles.iter().copied());
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
