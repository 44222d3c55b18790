//! The identity a validated token stands for, as RBAC and the identity headers see it.

use std::sync::Arc;

/// Who made the request, from a validated token. Holds no token and no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub issuer: Arc<str>,
    pub sub: String,
    /// `preferred_username`, when the token has one.
    pub username: Option<String>,
    pub email: Option<String>,
    /// Group paths from the trust block's `groups_claim` (e.g. `/staff/support`).
    pub groups: Vec<String>,
    /// Role names from the trust block's `roles_claims` (e.g. `realm_access.roles`).
    pub roles: Vec<String>,
    /// `azp`: the client the token was issued to.
    pub azp: Option<String>,
    /// `exp` in Unix seconds.
    pub exp: u64,
    /// What the policy set derived from this principal on its first request (grants, identity
    /// header values); empty until then, and not part of its identity.
    pub memo: crate::authz::Memo,
}

impl Principal {
    /// The user name for logs and `X-Auth-Request-User`: preferred_username, else sub.
    pub fn user(&self) -> &str {
        self.username.as_deref().unwrap_or(&self.sub)
    }
}
