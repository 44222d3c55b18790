//! The role names a principal holds, for the `X-Auth-Request-Roles` header.

use std::sync::Arc;

use super::{PolicySet, RoleId};
use crate::authn::Principal;

impl PolicySet {
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
