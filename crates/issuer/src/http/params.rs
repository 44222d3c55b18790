//! Form and query parameters as OAuth reads them: each at most once (RFC 6749 §3.1, §3.2).
//! Public for the `oauth_params` fuzz target.

use std::collections::HashMap;

use crate::domain::error::{OAuthError, OAuthResult};

/// The parameters of one `application/x-www-form-urlencoded` body or query string.
#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Decodes `raw`. A malformed body, or a parameter sent twice, is `invalid_request`
    /// (`OAuthError::description` says which).
    pub fn parse(raw: &[u8]) -> OAuthResult<Self> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(raw)
            .map_err(|_| OAuthError::InvalidRequest("malformed form body".into()))?;
        let mut map = HashMap::with_capacity(pairs.len());
        for (k, v) in pairs {
            if map.insert(k.clone(), v).is_some() {
                return Err(OAuthError::InvalidRequest(format!(
                    "duplicate parameter: {k}"
                )));
            }
        }
        Ok(Self(map))
    }

    /// Parameters already decoded once (the sign-in flow carries its request's).
    pub(crate) fn from_pairs(pairs: &[(String, String)]) -> Self {
        Self(pairs.iter().cloned().collect())
    }

    /// The value if present and non-empty (OAuth treats empty parameters as omitted).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The value, or `invalid_request` naming the missing parameter.
    pub fn require(&self, key: &str) -> OAuthResult<&str> {
        self.get(key)
            .ok_or_else(|| OAuthError::missing_parameter(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_empties() {
        let p = Params::parse(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
        assert!(p.require("b").is_err());
        assert!(Params::parse(b"a=1&a=2").is_err());
    }
}
