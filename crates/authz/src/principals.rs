//! `[principals]`: client-certificate identities mapped to roles (DESIGN §11). A key is a bare
//! identity as the gateway derives it from a verified certificate (its URI SAN, e.g. a SPIFFE
//! ID, else its first DNS SAN, else its subject CN), matched exactly, or a prefix written with
//! a trailing `/*` (`"spiffe://cluster.local/ns/shop/*"` matches every identity under
//! `spiffe://cluster.local/ns/shop/`). Every entry that matches contributes its roles, which
//! then work like a group's: through the same inheritance and rules.

use std::collections::{BTreeMap, HashMap};

use toml::Spanned;

use super::file::PolicyFile;
use super::perm::Bits;
use super::{Group, Role, RoleId};
use portcullis_core::config::{Diagnostics, SourceFile};

/// The flattened `[principals]` of one policy set.
#[derive(Debug, Default)]
pub(super) struct Principals {
    exact: HashMap<Box<str>, Group>,
    /// (prefix with its trailing '/', the key as written, roles).
    prefixes: Vec<(Box<str>, Box<str>, Group)>,
}

impl Principals {
    /// Every entry matching `identity`: (the key as written, its roles and grants).
    pub(super) fn matching<'a>(
        &'a self,
        identity: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Group)> + 'a {
        let exact = self.exact.get_key_value(identity).map(|(k, g)| (&**k, g));
        let prefixes = self
            .prefixes
            .iter()
            .filter(move |(p, _, _)| identity.starts_with(&**p))
            .map(|(_, written, g)| (&**written, g));
        exact.into_iter().chain(prefixes)
    }

    pub(super) fn len(&self) -> usize {
        self.exact.len() + self.prefixes.len()
    }
}

/// Every `[principals]` key of every file with the roles it names (unknown roles and bad keys
/// are reported at their place); a key in several files gets the union of their roles.
pub(super) fn collect<'a>(
    sources: &[SourceFile],
    parsed: &'a [PolicyFile],
    ids: &HashMap<&str, RoleId>,
    mut unknown_role: impl FnMut(
        &SourceFile,
        &Spanned<String>,
        &str,
    ) -> portcullis_core::config::Diagnostic,
    diags: &mut Diagnostics,
) -> BTreeMap<&'a str, Vec<RoleId>> {
    let mut out: BTreeMap<&str, Vec<RoleId>> = BTreeMap::new();
    for (src, file) in sources.iter().zip(parsed) {
        for (key, roles) in &file.principals {
            let k = key.get_ref().as_str();
            if let Some(why) = key_error(k) {
                diags.push(
                    src.error(key.span(), format!("bad principal \"{k}\": {why}"))
                        .with_hint("write a SPIFFE ID, DNS name or CN exactly, or a prefix ending in \"/*\", e.g. \"spiffe://cluster.local/ns/shop/*\""),
                );
                continue;
            }
            let entry = out.entry(k).or_default();
            for r in roles {
                match ids.get(r.get_ref().as_str()) {
                    Some(&id) if !entry.contains(&id) => entry.push(id),
                    Some(_) => {}
                    None => diags.push(unknown_role(src, r, &format!("in principal \"{k}\""))),
                }
            }
        }
    }
    out
}

/// Why a `[principals]` key can't be matched, if it can't.
fn key_error(k: &str) -> Option<&'static str> {
    if k.trim().is_empty() {
        return Some("it is empty");
    }
    if k.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Some("it has control characters");
    }
    let body = k.strip_suffix("/*").unwrap_or(k);
    if body.contains('*') {
        return Some("'*' is only allowed as a final \"/*\" (a prefix)");
    }
    if body.is_empty() {
        return Some("a prefix must name something before \"/*\"");
    }
    None
}

/// The entries with their roles' grants.
pub(super) fn flatten(
    entries: BTreeMap<&str, Vec<RoleId>>,
    roles: &[Role],
    required_len: usize,
) -> Principals {
    let mut out = Principals::default();
    for (key, ids) in entries {
        let mut grants = Bits::new(required_len);
        for &id in &ids {
            if let Some(r) = roles.get(id as usize) {
                grants.union_with(&r.grants);
            }
        }
        let group = Group { roles: ids, grants };
        match key.strip_suffix('*') {
            // key_error allowed '*' only as the final "/*": the prefix keeps its '/'.
            Some(prefix) => out
                .prefixes
                .push((Box::from(prefix), Box::from(key), group)),
            None => {
                out.exact.insert(Box::from(key), group);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::key_error;
    use crate::tests::{POLICY, load, who};
    use crate::{Decision, PolicySet, reason};
    use portcullis_core::identity::Principal;

    const SHOP: &str = r#"
[principals]
"spiffe://cluster.local/ns/shop/sa/orders" = ["editor"]
"spiffe://cluster.local/ns/shop/*" = ["reporter"]
"billing.internal" = ["viewer"]
"#;

    fn set() -> PolicySet {
        let (set, diags) = load(&[("orders.toml", POLICY), ("shop.toml", SHOP)]);
        assert!(diags.is_empty(), "{diags:?}");
        set.unwrap()
    }

    fn cert(id: &str) -> Principal {
        Principal::from_certificate(id.to_string())
    }

    #[test]
    fn exact_identities_get_their_roles_through_inheritance() {
        let set = set();
        let orders = cert("spiffe://cluster.local/ns/shop/sa/orders");
        // editor ⊃ viewer: write from editor, read inherited from viewer.
        assert_eq!(set.decide("orders", "GET", &orders), Decision::ALLOW);
        assert_eq!(set.decide("orders", "POST", &orders), Decision::ALLOW);
        // The prefix entry matches it too: reporter's rules apply as well.
        assert_eq!(set.decide("reports", "GET", &orders), Decision::ALLOW);
        let held = set.held(&orders);
        let names: Vec<&str> = held.roles.iter().map(|r| &**r).collect();
        assert_eq!(names, ["editor", "reporter", "viewer"]);
        let e = set.explain("orders", "POST", &orders);
        assert!(e.allowed, "{e}");
        assert!(
            e.roles.iter().any(|r| r.role == "editor"
                && r.via == "principal spiffe://cluster.local/ns/shop/sa/orders"),
            "{e}"
        );
        let dns = cert("billing.internal");
        assert_eq!(set.decide("orders", "GET", &dns), Decision::ALLOW);
        assert!(!set.decide("orders", "PUT", &dns).allowed);
    }

    #[test]
    fn prefixes_match_whole_segments_and_nothing_else_is_granted() {
        let set = set();
        let cart = cert("spiffe://cluster.local/ns/shop/sa/cart");
        assert_eq!(set.decide("reports", "GET", &cart), Decision::ALLOW);
        assert_eq!(
            set.decide("orders", "GET", &cart),
            Decision {
                allowed: false,
                reason: reason::MISSING_PERMISSION
            }
        );
        for outsider in [
            "spiffe://cluster.local/ns/shopping/sa/cart",
            "spiffe://cluster.local/ns/shop",
            "spiffe://cluster.local/ns/other/sa/orders",
            "SPIFFE://cluster.local/ns/shop/sa/orders",
        ] {
            let d = set.decide("reports", "GET", &cert(outsider));
            assert_eq!(d.reason, reason::NO_ROLES, "{outsider}");
        }
    }

    #[test]
    fn a_token_whose_subject_looks_like_an_identity_gets_nothing() {
        let set = set();
        let mut token = who(&[], &[]);
        token.sub = "spiffe://cluster.local/ns/shop/sa/orders".into();
        token.username = None;
        assert_eq!(set.decide("orders", "GET", &token).reason, reason::NO_ROLES);
    }

    #[test]
    fn unknown_roles_and_bad_keys_are_reported_at_their_place() {
        let bad =
            "[principals]\n\"spiffe://x/*/y\" = [\"viewer\"]\n\"spiffe://x/a\" = [\"editr\"]\n";
        let (set, diags) = load(&[("orders.toml", POLICY), ("bad.toml", bad)]);
        assert!(set.is_none());
        assert!(
            diags
                .iter()
                .any(|d| d.starts_with("policies/bad.toml:2:1: bad principal")),
            "{diags:?}"
        );
        assert!(
            diags.iter().any(|d| d.contains("policies/bad.toml:3:")
                && d.contains("unknown role \"editr\" in principal \"spiffe://x/a\"")),
            "{diags:?}"
        );
    }

    #[test]
    fn keys_are_exact_names_or_slash_star_prefixes() {
        assert_eq!(key_error("spiffe://cluster.local/ns/shop/sa/orders"), None);
        assert_eq!(key_error("spiffe://cluster.local/ns/shop/*"), None);
        assert_eq!(key_error("orders.internal"), None);
        assert!(key_error("spiffe://cluster.local/*/sa/orders").is_some());
        assert!(key_error("spiffe://cluster.local/ns/shop*").is_some());
        assert!(key_error("*").is_some());
        assert!(key_error("/*").is_some());
        assert!(key_error(" ").is_some());
        assert!(key_error("a\nb").is_some());
    }
}
