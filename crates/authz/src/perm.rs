//! Permissions (`res:action`, `res:*`, `*`), HTTP method slots and the grant bitsets `decide` reads.

/// The methods a rule may name; anything else in a policy file is a typo worth refusing.
pub(super) const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

/// One slot per known method plus one for extension methods, which only `"*"` rules reach.
pub(super) const SLOTS: usize = METHODS.len() + 1;
pub(super) const OTHER_SLOT: usize = METHODS.len();

/// The rule slot of a request method's name (case-sensitive, as HTTP methods are). A `match`
/// rather than a map lookup, because this runs on every request: it compiles to a length
/// switch and one short comparison.
pub(super) fn slot_of(method: &str) -> usize {
    match method {
        "GET" => 0,
        "HEAD" => 1,
        "POST" => 2,
        "PUT" => 3,
        "PATCH" => 4,
        "DELETE" => 5,
        "OPTIONS" => 6,
        "TRACE" => 7,
        "CONNECT" => 8,
        _ => OTHER_SLOT,
    }
}

/// The slot of a method name as written in a policy file, `None` if it isn't one of [`METHODS`].
pub(super) fn slot_of_name(name: &str) -> Option<usize> {
    METHODS.iter().position(|m| *m == name)
}

fn valid_part(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Why a permission string is malformed, or `None` when it is `*`, `res:*` or `res:action`.
pub(super) fn syntax_error(p: &str) -> Option<&'static str> {
    if p == "*" {
        return None;
    }
    let Some((res, action)) = p.split_once(':') else {
        return Some("must be \"resource:action\", \"resource:*\" or \"*\"");
    };
    if !valid_part(res) {
        return Some("the resource must be non-empty letters, digits, '_', '.' or '-'");
    }
    if action != "*" && !valid_part(action) {
        return Some("the action must be \"*\" or non-empty letters, digits, '_', '.' or '-'");
    }
    None
}

/// Whether holding `held` satisfies a rule requiring `required` (both syntactically valid).
/// A rule that requires `res:*` is met only by `res:*` or `*`: a wildcard requirement asks for
/// the whole resource, which no single action grants.
pub(super) fn grants(held: &str, required: &str) -> bool {
    if held == "*" || held == required {
        return true;
    }
    match held.strip_suffix(":*") {
        Some(res) => required
            .strip_prefix(res)
            .is_some_and(|rest| rest.starts_with(':')),
        None => false,
    }
}

/// A fixed-size set of required-permission ids; one per role and per group, built at load time.
#[derive(Debug, Clone, Default)]
pub(super) struct Bits(Box<[u64]>);

impl Bits {
    pub fn new(len: usize) -> Self {
        Bits(vec![0; len.div_ceil(64)].into_boxed_slice())
    }

    pub fn set(&mut self, i: u32) {
        if let Some(w) = self.0.get_mut(i as usize / 64) {
            *w |= 1 << (i % 64);
        }
    }

    pub fn has(&self, i: u32) -> bool {
        self.0
            .get(i as usize / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub fn union_with(&mut self, other: &Bits) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a |= b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_grant_what_they_should_and_no_more() {
        assert!(grants("*", "orders:read"));
        assert!(grants("*", "orders:*"));
        assert!(grants("*", "*"));
        assert!(grants("orders:*", "orders:read"));
        assert!(grants("orders:*", "orders:*"));
        assert!(!grants("orders:*", "ordersx:read"));
        assert!(!grants("orders:*", "*"));
        assert!(!grants("orders:read", "orders:*"));
        assert!(!grants("orders:read", "orders:write"));
        assert!(!grants("orders:read", "*"));
    }

    #[test]
    fn permission_syntax() {
        for ok in ["*", "orders:*", "orders:read", "a.b-c_d:x.y-z_1"] {
            assert_eq!(syntax_error(ok), None, "{ok}");
        }
        for bad in [
            "",
            "orders",
            ":read",
            "orders:",
            "*:read",
            "orders:re ad",
            "a:b:c",
            "orders:**",
        ] {
            assert!(syntax_error(bad).is_some(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn method_slots() {
        assert_eq!(slot_of("GET"), slot_of_name("GET").unwrap_or(99));
        assert_eq!(slot_of("DELETE"), slot_of_name("DELETE").unwrap_or(99));
        assert_eq!(slot_of("PROPFIND"), OTHER_SLOT);
        assert_eq!(slot_of("get"), OTHER_SLOT, "methods are case-sensitive");
        assert_eq!(slot_of_name("get"), None);
    }

    #[test]
    fn bits() {
        let mut a = Bits::new(130);
        a.set(0);
        a.set(129);
        assert!(a.has(0) && a.has(129) && !a.has(64));
        let mut b = Bits::new(130);
        b.set(64);
        b.union_with(&a);
        assert!(b.has(0) && b.has(64) && b.has(129) && !b.has(1));
        assert!(!b.has(5000));
    }
}
