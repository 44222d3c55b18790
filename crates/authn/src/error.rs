//! Why a token was refused: a bounded metric label plus a short, internals-free description.

use std::fmt;

/// A refused token. `reason` is a fixed label for `portcullis_authn_failures_total{reason}`;
/// `description` is fit for the `error_description` of a 401 (it names no key, URL or claim value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct AuthnError {
    pub reason: &'static str,
    pub description: &'static str,
}

const fn e(reason: &'static str, description: &'static str) -> AuthnError {
    AuthnError {
        reason,
        description,
    }
}

impl AuthnError {
    pub const MISSING_TOKEN: Self = e("missing_token", "bearer token required");
    pub const MALFORMED: Self = e("malformed", "token is malformed");
    pub const TOO_LARGE: Self = e("too_large", "token is too large");
    pub const BAD_SIGNATURE: Self = e("bad_signature", "token signature is invalid");
    pub const UNKNOWN_KID: Self = e("unknown_kid", "token signing key is unknown");
    pub const ALG_NOT_ALLOWED: Self = e("alg_not_allowed", "token algorithm is not accepted");
    pub const KEY_MISMATCH: Self = e("alg_not_allowed", "token algorithm does not match its key");
    pub const EXPIRED: Self = e("expired", "token has expired");
    pub const NOT_YET_VALID: Self = e("not_yet_valid", "token is not yet valid");
    pub const ISSUED_IN_FUTURE: Self = e("not_yet_valid", "token was issued in the future");
    pub const WRONG_ISSUER: Self = e("wrong_issuer", "token issuer is not trusted");
    pub const WRONG_AUDIENCE: Self = e("wrong_audience", "token audience is not accepted");
    pub const WRONG_AZP: Self = e("wrong_azp", "token authorized party is not accepted");
    pub const WRONG_TOKEN_TYPE: Self = e("wrong_token_type", "token is not an access token");
    pub const MISSING_EXP: Self = e("missing_exp", "token has no expiry");
    pub const MISSING_SUB: Self = e("malformed", "token has no subject");
    pub const BAD_CLAIM: Self = e("malformed", "token has a malformed claim");
    pub const JWKS_UNAVAILABLE: Self = e(
        "jwks_unavailable",
        "token signing keys are unavailable, try again later",
    );

    /// Every reason label, for dashboards and tests.
    pub const REASONS: &'static [&'static str] = &[
        "missing_token",
        "malformed",
        "too_large",
        "bad_signature",
        "unknown_kid",
        "alg_not_allowed",
        "expired",
        "not_yet_valid",
        "wrong_issuer",
        "wrong_audience",
        "wrong_azp",
        "wrong_token_type",
        "missing_exp",
        "jwks_unavailable",
    ];
}

impl fmt::Display for AuthnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.description)
    }
}

impl std::error::Error for AuthnError {}
