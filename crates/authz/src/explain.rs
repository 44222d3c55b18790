//! `explain`: why a principal is allowed or forbidden on a route, for people and for JSON.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use super::{PolicySet, RoleId, Rule, perm, reason};
use portcullis_core::identity::Principal;

/// Everything that went into one decision, in the order a person asks about it.
#[derive(Debug, Clone, Serialize)]
pub struct AuthzExplanation {
    pub route: String,
    pub method: String,
    pub user: String,
    pub allowed: bool,
    /// One of [`super::reason`].
    pub reason: &'static str,
    /// The answer in one line, e.g.
    /// `DENY: POST on route "orders" needs orders:write; you have roles viewer (via /staff) with orders:read`.
    pub summary: String,
    /// The roles the principal holds, each with where it came from and what it inherits.
    pub roles: Vec<RoleGrant>,
    /// Groups of the token that no `[groups]` entry maps to a role.
    pub unmapped_groups: Vec<String>,
    /// Token roles that are not defined roles, ignored by design.
    pub ignored_token_roles: Vec<String>,
    /// Every permission the principal holds, inherited ones included.
    pub permissions: Vec<String>,
    /// The rules for this route and method; any one satisfied allows.
    pub rules: Vec<RuleView>,
    /// Methods that some rule of this route covers, as written (`"*"` included).
    pub route_methods: Vec<String>,
    /// The rule that allowed the request; `None` when denied (deny is the default, not a rule).
    pub deciding_rule: Option<RuleView>,
}

/// One role the principal holds.
#[derive(Debug, Clone, Serialize)]
pub struct RoleGrant {
    pub role: String,
    /// The group path that maps to it, or `"token"` when it came from the token's roles claims.
    pub via: String,
    /// The role and what it inherits, e.g. `admin ⊃ editor ⊃ viewer`.
    pub chain: String,
    /// Its effective permissions, inherited ones included.
    pub permissions: Vec<String>,
    pub defined_at: String,
}

/// One `[[allow]]` rule as seen from a request.
#[derive(Debug, Clone, Serialize)]
pub struct RuleView {
    pub methods: Vec<String>,
    pub permission: String,
    /// `file:line` of the rule.
    pub at: String,
    /// Whether the principal holds a permission that satisfies it.
    pub satisfied: bool,
}

impl PolicySet {
    /// The same decision as [`PolicySet::decide`], with the reasoning behind it. Not for the hot
    /// path: it allocates freely.
    pub fn explain(&self, route: &str, method: &str, principal: &Principal) -> AuthzExplanation {
        let (decision, deciding) = self.decide_with_rule(route, method, principal);
        let (held, unmapped_groups, ignored_token_roles) = self.held_roles(principal);

        let roles: Vec<RoleGrant> = held
            .iter()
            .filter_map(|(id, via)| {
                let r = self.roles.get(*id as usize)?;
                Some(RoleGrant {
                    role: r.name.to_string(),
                    via: via.clone(),
                    chain: self.chain(*id),
                    permissions: r.permissions.iter().map(ToString::to_string).collect(),
                    defined_at: r.defined_at.clone(),
                })
            })
            .collect();
        let permissions: Vec<String> = roles
            .iter()
            .flat_map(|r| r.permissions.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();

        let route_rules: Vec<&Rule> = self.rules.iter().filter(|r| &*r.route == route).collect();
        let slot = perm::slot_of(method);
        let covers = |rule: &Rule| {
            rule.methods
                .iter()
                .any(|m| m == "*" || perm::slot_of_name(m) == Some(slot))
        };
        let view = |rule: &Rule| RuleView {
            methods: rule.methods.clone(),
            permission: rule.permission.to_string(),
            at: rule.defined_at.clone(),
            satisfied: held.iter().any(|(id, _)| {
                self.roles
                    .get(*id as usize)
                    .is_some_and(|r| r.grants.has(rule.perm))
            }),
        };
        let rules: Vec<RuleView> = route_rules
            .iter()
            .filter(|r| covers(r))
            .map(|r| view(r))
            .collect();
        let mut route_methods: Vec<String> = Vec::new();
        for m in route_rules.iter().flat_map(|r| r.methods.iter()) {
            if !route_methods.contains(m) {
                route_methods.push(m.clone());
            }
        }
        let deciding_rule = deciding.and_then(|i| self.rules.get(i as usize)).map(view);

        let mut e = AuthzExplanation {
            route: route.to_string(),
            method: method.to_string(),
            user: principal.user().to_string(),
            allowed: decision.allowed,
            reason: decision.reason,
            summary: String::new(),
            roles,
            unmapped_groups,
            ignored_token_roles,
            permissions,
            rules,
            route_methods,
            deciding_rule,
        };
        e.summary = summary(&e, principal);
        e
    }

    /// (role, where it came from) for every role the principal holds, plus the groups and
    /// token roles that gave nothing.
    #[allow(clippy::type_complexity)]
    fn held_roles(&self, p: &Principal) -> (Vec<(RoleId, String)>, Vec<String>, Vec<String>) {
        let mut held: Vec<(RoleId, String)> = Vec::new();
        let mut unmapped = Vec::new();
        for g in &p.groups {
            match self.groups.get(g.as_str()).filter(|g| !g.roles.is_empty()) {
                Some(group) => {
                    for &id in &group.roles {
                        if !held.iter().any(|(h, via)| *h == id && via == g) {
                            held.push((id, g.clone()));
                        }
                    }
                }
                None => unmapped.push(g.clone()),
            }
        }
        for (key, entry) in self.certificate_grants(p) {
            let via = format!("principal {key}");
            for &id in &entry.roles {
                if !held.iter().any(|(h, v)| *h == id && *v == via) {
                    held.push((id, via.clone()));
                }
            }
        }
        let mut ignored = Vec::new();
        for r in &p.roles {
            match self.role_ids.get(r.as_str()) {
                Some(&id) if !held.iter().any(|(h, via)| *h == id && via == "token") => {
                    held.push((id, "token".to_string()));
                }
                Some(_) => {}
                None => ignored.push(r.clone()),
            }
        }
        (held, unmapped, ignored)
    }

    /// `admin ⊃ editor ⊃ viewer`; several juniors in parentheses. A role met twice (a diamond)
    /// is named but not expanded again, so the text stays as small as the hierarchy.
    fn chain(&self, id: RoleId) -> String {
        let mut out = String::new();
        let mut seen = BTreeSet::new();
        self.write_chain(id, &mut out, &mut seen);
        out
    }

    fn write_chain(&self, id: RoleId, out: &mut String, seen: &mut BTreeSet<RoleId>) {
        let Some(role) = self.roles.get(id as usize) else {
            return;
        };
        out.push_str(&role.name);
        if !seen.insert(id) || role.inherits.is_empty() {
            return;
        }
        out.push_str(" ⊃ ");
        if let [only] = role.inherits.as_slice() {
            self.write_chain(*only, out, seen);
            return;
        }
        out.push('(');
        for (i, j) in role.inherits.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            self.write_chain(*j, out, seen);
        }
        out.push(')');
    }
}

fn summary(e: &AuthzExplanation, p: &Principal) -> String {
    let needs = {
        let mut perms: Vec<&str> = Vec::new();
        for r in &e.rules {
            if !perms.contains(&r.permission.as_str()) {
                perms.push(&r.permission);
            }
        }
        perms.join(" or ")
    };
    let what = format!("{} on route \"{}\"", e.method, e.route);
    match e.reason {
        reason::ALLOWED => {
            let rule = e.deciding_rule.as_ref();
            let by = e
                .roles
                .iter()
                .find(|r| {
                    rule.is_some_and(|rule| {
                        r.permissions
                            .iter()
                            .any(|h| perm::grants(h, &rule.permission))
                    })
                })
                .map(|r| format!("{} (via {})", r.role, r.via))
                .unwrap_or_default();
            format!(
                "ALLOW: {what} needs {}; granted to {by} by the rule at {}",
                rule.map_or("", |r| r.permission.as_str()),
                rule.map_or("", |r| r.at.as_str())
            )
        }
        reason::NO_RULE_FOR_ROUTE => format!(
            "DENY: route \"{}\" has no [[allow]] rule, so every request is denied by default",
            e.route
        ),
        reason::NO_RULE_FOR_METHOD => format!(
            "DENY: no [[allow]] rule of route \"{}\" covers {} (rules cover {})",
            e.route,
            e.method,
            e.route_methods.join(", ")
        ),
        reason::NO_ROLES => {
            let mut parts = Vec::new();
            if !p.groups.is_empty() {
                parts.push(format!("groups {}", p.groups.join(", ")));
            }
            if !p.roles.is_empty() {
                parts.push(format!("token roles {}", p.roles.join(", ")));
            }
            let had = if parts.is_empty() {
                "your token carries no groups and no roles".to_string()
            } else {
                format!("{} map to no defined role", parts.join(" and "))
            };
            format!("DENY: {what} needs {needs}; you have no roles ({had})")
        }
        _ => {
            let roles: Vec<String> = e
                .roles
                .iter()
                .map(|r| format!("{} (via {})", r.role, r.via))
                .collect();
            let perms = if e.permissions.is_empty() {
                "no permissions".to_string()
            } else {
                shorten(&e.permissions, 8)
            };
            format!(
                "DENY: {what} needs {needs}; you have roles {} with {perms}",
                roles.join(", ")
            )
        }
    }
}

fn shorten(items: &[String], max: usize) -> String {
    let mut s = items
        .iter()
        .take(max)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > max {
        s.push_str(&format!(" (+{} more)", items.len() - max));
    }
    s
}

impl fmt::Display for AuthzExplanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary)?;
        writeln!(f, "  user:         {}", self.user)?;
        if self.roles.is_empty() {
            writeln!(f, "  roles:        (none)")?;
        }
        for (i, r) in self.roles.iter().enumerate() {
            let label = if i == 0 { "roles:" } else { "" };
            // The chain starts with the role itself; the source goes right after its name.
            let rest = r.chain.strip_prefix(r.role.as_str()).unwrap_or("");
            writeln!(f, "  {label:<13} {} (via {}){rest}", r.role, r.via)?;
        }
        if !self.unmapped_groups.is_empty() {
            writeln!(
                f,
                "  groups without roles: {}",
                self.unmapped_groups.join(", ")
            )?;
        }
        if !self.ignored_token_roles.is_empty() {
            writeln!(
                f,
                "  token roles ignored (not defined roles): {}",
                self.ignored_token_roles.join(", ")
            )?;
        }
        let perms = if self.permissions.is_empty() {
            "(none)".to_string()
        } else {
            self.permissions.join(", ")
        };
        writeln!(f, "  permissions:  {perms}")?;
        if self.rules.is_empty() {
            writeln!(
                f,
                "  rules for {} on \"{}\": (none)",
                self.method, self.route
            )?;
        } else {
            writeln!(f, "  rules for {} on \"{}\":", self.method, self.route)?;
        }
        for r in &self.rules {
            let mark = if r.satisfied { "held" } else { "missing" };
            writeln!(
                f,
                "    needs {} for [{}] at {} ({mark})",
                r.permission,
                r.methods.join(", "),
                r.at
            )?;
        }
        match &self.deciding_rule {
            Some(r) => write!(f, "  decided by:   the rule at {}", r.at),
            None => write!(f, "  decided by:   deny by default ({})", self.reason),
        }
    }
}
