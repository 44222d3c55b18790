//! Authorization: NIST RBAC (core + hierarchical) policies per route and method; deny by default.
//!
//! Policy files are validated and flattened once per snapshot ([`PolicySet::load`]): every
//! role's inherited permissions are resolved and matched against every permission a rule
//! requires, so [`PolicySet::decide`] is a handful of hash and bit lookups with no allocation.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod explain;
mod file;
mod held;
mod load;
mod perm;
mod principals;
mod rule_route;

#[cfg(test)]
mod load_tests;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use perm::{Bits, SLOTS};
use portcullis_core::identity::Principal;

pub use explain::{AuthzExplanation, RoleGrant, RuleView};
pub use held::Held;

/// The `reason` values of a [`Decision`], stable for metrics labels, logs and `explain`.
pub mod reason {
    pub const ALLOWED: &str = "allowed";
    /// The route has no `[[allow]]` rule at all.
    pub const NO_RULE_FOR_ROUTE: &str = "no_rule_for_route";
    /// The route has rules, none for this method.
    pub const NO_RULE_FOR_METHOD: &str = "no_rule_for_method";
    /// The principal has roles, none holding a permission a rule requires.
    pub const MISSING_PERMISSION: &str = "missing_permission";
    /// Neither the principal's groups nor its token roles name a defined role.
    pub const NO_ROLES: &str = "no_roles";
}

/// The outcome of one authorization check: two words, copied freely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// One of the [`reason`] constants.
    pub reason: &'static str,
}

impl Decision {
    pub const ALLOW: Decision = Decision {
        allowed: true,
        reason: reason::ALLOWED,
    };

    const fn deny(reason: &'static str) -> Decision {
        Decision {
            allowed: false,
            reason,
        }
    }
}

type RoleId = u32;

#[derive(Debug)]
struct Role {
    name: Arc<str>,
    /// Direct juniors, in file order, for `explain`'s inheritance chains.
    inherits: Vec<RoleId>,
    /// Own and inherited permissions, sorted and deduplicated.
    permissions: Vec<Arc<str>>,
    /// Which required permissions (ids into `PolicySet::required`) this role satisfies.
    grants: Bits,
    defined_at: String,
}

#[derive(Debug)]
struct Group {
    roles: Vec<RoleId>,
    /// The union of its roles' grants, so a group costs one lookup per request.
    grants: Bits,
}

#[derive(Debug)]
struct Rule {
    route: Arc<str>,
    /// As written, `"*"` included.
    methods: Vec<String>,
    permission: Arc<str>,
    /// Index into `PolicySet::required`.
    perm: u32,
    defined_at: String,
}

#[derive(Debug)]
struct RouteRules {
    /// Per method slot: (required permission id, rule index), in file order.
    slots: [Vec<(u32, u32)>; SLOTS],
}

/// Every policy file of one snapshot, validated and flattened.
#[derive(Debug, Default)]
pub struct PolicySet {
    roles: Vec<Role>,
    role_ids: HashMap<Box<str>, RoleId>,
    groups: HashMap<Box<str>, Group>,
    /// `[principals]`: client-certificate identities → roles.
    principals: principals::Principals,
    rules: Vec<Rule>,
    routes: HashMap<Box<str>, RouteRules>,
    /// Names of routes with at least one rule, sorted.
    route_names: Vec<Arc<str>>,
    files: Vec<PathBuf>,
    /// How many distinct permissions rules require (the width of every grant set).
    required_len: usize,
    id: held::SetId,
}

impl PolicySet {
    /// No roles and no rules: every authenticated request is denied.
    pub fn empty() -> PolicySet {
        PolicySet::default()
    }

    pub fn role_count(&self) -> usize {
        self.roles.len()
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// How many `[principals]` entries (exact and prefix) the policies define.
    pub fn principal_count(&self) -> usize {
        self.principals.len()
    }

    /// The policy files this set was loaded from, in load order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Names of the routes that have at least one `[[allow]]` rule, sorted.
    pub fn routes_with_rules(&self) -> impl Iterator<Item = &str> + '_ {
        self.route_names.iter().map(|n| &**n)
    }

    pub fn has_rules_for(&self, route: &str) -> bool {
        self.routes.contains_key(route)
    }

    /// Whether `principal` may send `method` (its name, e.g. `"GET"`) to the route named
    /// `route`. Deny by default. Only for routes that authenticate: a public route has no
    /// principal to check.
    pub fn decide(&self, route: &str, method: &str, principal: &Principal) -> Decision {
        self.decide_held(route, method, &self.held(principal))
    }

    /// [`decide`](Self::decide) for a standing already derived (see [`PolicySet::held`]).
    /// A standing another set derived is denied (its grants mean nothing here): callers keep
    /// one per set.
    pub fn decide_held(&self, route: &str, method: &str, held: &Held) -> Decision {
        if !held.derived_by(self) {
            debug_assert!(false, "a standing of another policy set");
            return Decision::deny(reason::NO_ROLES);
        }
        let Some(rules) = self.routes.get(route) else {
            return Decision::deny(reason::NO_RULE_FOR_ROUTE);
        };
        match rules.slots.get(perm::slot_of(method)) {
            Some(s) if !s.is_empty() => {
                if s.iter().any(|(p, _)| held.grants.has(*p)) {
                    Decision::ALLOW
                } else if held.any_role {
                    Decision::deny(reason::MISSING_PERMISSION)
                } else {
                    Decision::deny(reason::NO_ROLES)
                }
            }
            _ => Decision::deny(reason::NO_RULE_FOR_METHOD),
        }
    }

    /// The decision and, when allowed, the index of the rule that allowed it (for `explain`:
    /// the first source in order that holds a rule's permission, as an on-call reader expects).
    fn decide_with_rule(
        &self,
        route: &str,
        method: &str,
        principal: &Principal,
    ) -> (Decision, Option<u32>) {
        let Some(rules) = self.routes.get(route) else {
            return (Decision::deny(reason::NO_RULE_FOR_ROUTE), None);
        };
        let slot = match rules.slots.get(perm::slot_of(method)) {
            Some(s) if !s.is_empty() => s,
            _ => return (Decision::deny(reason::NO_RULE_FOR_METHOD), None),
        };
        let mut any_role = false;
        for grants in self.grant_sources(principal) {
            any_role = true;
            if let Some(&(_, rule)) = slot.iter().find(|(p, _)| grants.has(*p)) {
                return (Decision::ALLOW, Some(rule));
            }
        }
        let why = if any_role {
            reason::MISSING_PERMISSION
        } else {
            reason::NO_ROLES
        };
        (Decision::deny(why), None)
    }

    /// The grant sets the principal holds: one per group that maps to roles, one per token role
    /// that names a defined role. Unknown groups and token roles are ignored, not errors: tokens
    /// carry many roles that mean nothing to this gateway (`offline_access`, …).
    fn grant_sources<'a>(&'a self, principal: &'a Principal) -> impl Iterator<Item = &'a Bits> {
        let from_groups = principal.groups.iter().filter_map(|g| {
            self.groups
                .get(g.as_str())
                .filter(|g| !g.roles.is_empty())
                .map(|g| &g.grants)
        });
        let from_token = principal
            .roles
            .iter()
            .filter_map(|r| self.role(r.as_str()).map(|r| &r.grants));
        from_groups
            .chain(from_token)
            .chain(self.certificate_grants(principal).map(|(_, g)| &g.grants))
    }

    /// The `[principals]` entries a certificate's principal matches (none for a token's).
    fn certificate_grants<'a>(
        &'a self,
        principal: &'a Principal,
    ) -> impl Iterator<Item = (&'a str, &'a Group)> + 'a {
        principal
            .is_certificate()
            .then(|| self.principals.matching(&principal.sub))
            .into_iter()
            .flatten()
            .filter(|(_, g)| !g.roles.is_empty())
    }

    fn role(&self, name: &str) -> Option<&Role> {
        self.role_ids
            .get(name)
            .and_then(|&id| self.roles.get(id as usize))
    }
}
