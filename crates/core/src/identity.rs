//! The identity a validated token stands for, as RBAC and the identity headers see it.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, OnceLock};

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
    /// What the gateway derived from this principal on its first request (its standing under
    /// the policy set, its identity header values); empty until then, not part of its identity.
    pub memo: Memo,
}

/// The `issuer` of a principal that a verified client certificate stands for (DESIGN §11).
/// Such a principal's `sub` is the certificate's identity, and policies map it to roles with
/// `[principals]` instead of groups.
pub const CERTIFICATE_ISSUER: &str = "urn:portcullis:client-certificate";

impl Principal {
    /// The principal of a verified client certificate whose identity (URI SAN, else DNS SAN,
    /// else subject CN) is `identity`. It has no groups, roles, email or expiry of its own.
    pub fn from_certificate(identity: String) -> Principal {
        Principal {
            issuer: Arc::from(CERTIFICATE_ISSUER),
            sub: identity,
            username: None,
            email: None,
            groups: Vec::new(),
            roles: Vec::new(),
            azp: None,
            exp: 0,
            memo: Memo::default(),
        }
    }

    /// Whether a client certificate, not a token, stands behind this principal.
    pub fn is_certificate(&self) -> bool {
        &*self.issuer == CERTIFICATE_ISSUER
    }

    /// The user name for logs and `X-Auth-Request-User`: preferred_username, else sub.
    pub fn user(&self) -> &str {
        self.username.as_deref().unwrap_or(&self.sub)
    }
}

/// A write-once slot a [`Principal`] carries for its consumer's derived data. The verified-token
/// cache keeps principals, so what is derived on the first request is reused by every repeat
/// of the token. Typed by the consumer (`core` knows no policy or header type); not part of the
/// principal's identity: clones start empty and every memo compares equal.
#[derive(Default)]
pub struct Memo(OnceLock<Arc<dyn Any + Send + Sync>>);

impl Memo {
    /// The value stored, when one of type `T` is.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let v = self.0.get()?;
        Arc::clone(v).downcast::<T>().ok()
    }

    /// Stores `value` unless a value is already there (the first writer wins).
    pub fn set<T: Any + Send + Sync>(&self, value: Arc<T>) {
        let _ = self.0.set(value);
    }
}

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
