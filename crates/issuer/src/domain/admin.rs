//! What the admin API (Keycloak's Admin REST API subset) reads and writes, in Keycloak's JSON
//! representations and never with a hash or a secret: who the caller is and what they may do
//! (`access`), the realms' built-in admin roles and the `master` realm's bootstrap
//! (`management`), users, groups, roles and their mappings, clients, sessions and events. Every
//! change is announced to the realm's directory; the HTTP layer's `http::admin` serves it.

/// The value of a `Result<T, Refused>`, or the refusal returned as the operation's outcome.
macro_rules! or_refuse {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return Ok(Err(r)),
        }
    };
}

pub mod access;
pub mod clients;
pub mod events;
pub mod groups;
pub mod mails;
pub mod management;
pub mod mappings;
pub mod reps;
pub mod roles;
pub mod sessions;
pub mod users;

/// Why an admin request is refused: a status class and its message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    BadRequest(String),
    NotFound(String),
    Conflict(String),
    /// The caller may not do this (e.g. hand out an admin role they do not hold).
    Forbidden(String),
}

impl Refused {
    pub fn bad(m: impl Into<String>) -> Self {
        Self::BadRequest(m.into())
    }

    pub fn not_found(m: impl Into<String>) -> Self {
        Self::NotFound(m.into())
    }

    pub fn conflict(m: impl Into<String>) -> Self {
        Self::Conflict(m.into())
    }
}

/// An admin operation's result: a failure of the store, or the answer (or the refusal).
pub type Outcome<T> = anyhow::Result<Result<T, Refused>>;

/// Keycloak's `first` / `max` paging: skip `first`, keep at most `max` (absent or negative:
/// no bound).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
    pub first: Option<i64>,
    pub max: Option<i64>,
}

impl Page {
    pub fn apply<T>(self, items: Vec<T>) -> Vec<T> {
        let skip = self
            .first
            .and_then(|f| usize::try_from(f).ok())
            .unwrap_or(0);
        let take = self
            .max
            .and_then(|m| usize::try_from(m).ok())
            .unwrap_or(usize::MAX);
        items.into_iter().skip(skip).take(take).collect()
    }

    /// Keycloak lists at most 100 users unless `max` says otherwise.
    pub fn or_max(self, default: i64) -> Self {
        Self {
            max: self.max.or(Some(default)),
            ..self
        }
    }
}

/// Keycloak's search strings: `"foo"` matches exactly, `*foo*` anywhere, `foo` and `foo*` as a
/// prefix (case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Exact(String),
    Infix(String),
    Prefix(String),
}

impl Pattern {
    pub fn parse(search: &str) -> Self {
        let s = search.trim();
        if let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            return Self::Exact(inner.to_lowercase());
        }
        match s.strip_prefix('*') {
            Some(rest) => Self::Infix(rest.trim_end_matches('*').to_lowercase()),
            None => Self::Prefix(s.trim_end_matches('*').to_lowercase()),
        }
    }

    /// A filter value matched anywhere, or exactly with `exact=true` (Keycloak's attribute
    /// filters: `username`, `email`, `clientId` with `search=true`, …).
    pub fn filter(value: &str, exact: bool) -> Self {
        if exact {
            Self::Exact(value.to_lowercase())
        } else {
            Self::Infix(value.to_lowercase())
        }
    }

    pub fn matches(&self, value: &str) -> bool {
        let v = value.to_lowercase();
        match self {
            Self::Exact(p) => v == *p,
            Self::Infix(p) => v.contains(p.as_str()),
            Self::Prefix(p) => v.starts_with(p.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_and_patterns() {
        let p = Page {
            first: Some(1),
            max: Some(2),
        };
        assert_eq!(p.apply(vec![1, 2, 3, 4]), vec![2, 3]);
        assert_eq!(Page::default().apply(vec![1, 2]), vec![1, 2]);
        let unbounded = Page {
            first: Some(-1),
            max: Some(-1),
        };
        assert_eq!(unbounded.apply(vec![1, 2]), vec![1, 2]);
        assert!(Pattern::parse("Al").matches("alice"));
        assert!(!Pattern::parse("li").matches("alice"));
        assert!(Pattern::parse("*li*").matches("alice"));
        assert!(Pattern::parse("\"alice\"").matches("ALICE"));
        assert!(!Pattern::parse("\"ali\"").matches("alice"));
        assert!(Pattern::filter("LIC", false).matches("alice"));
        assert!(!Pattern::filter("lic", true).matches("alice"));
    }
}
