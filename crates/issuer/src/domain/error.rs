//! OAuth 2.0 errors as the domain raises them: `Display` is the RFC code, `description` the
//! text for the client. The HTTP layer renders them (RFC 6749 §5.2 JSON) in one place.

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request")]
    InvalidRequest(String),
    #[error("invalid_client")]
    InvalidClient(String),
    #[error("invalid_grant")]
    InvalidGrant(String),
    #[error("unauthorized_client")]
    UnauthorizedClient(String),
    #[error("unsupported_grant_type")]
    UnsupportedGrantType(String),
    #[error("invalid_scope")]
    InvalidScope(String),
    #[error("invalid_token")]
    InvalidToken(String),
    #[error("unsupported_token_type")]
    UnsupportedTokenType(String),
    #[error("not_found")]
    NotFound(String),
    /// Internal failure; the cause is logged, the client sees only the code.
    #[error("server_error")]
    Server(String),
    /// The database could not be reached (RFC 6749 §4.1.2.1's `temporarily_unavailable`,
    /// answered with 503): the client may retry, nothing was changed.
    #[error("temporarily_unavailable")]
    Unavailable,
}

impl OAuthError {
    /// The `error_description` sent to the client (never an internal cause).
    pub fn description(&self) -> &str {
        match self {
            Self::InvalidRequest(d)
            | Self::InvalidClient(d)
            | Self::InvalidGrant(d)
            | Self::UnauthorizedClient(d)
            | Self::UnsupportedGrantType(d)
            | Self::InvalidScope(d)
            | Self::InvalidToken(d)
            | Self::UnsupportedTokenType(d)
            | Self::NotFound(d) => d,
            Self::Server(_) => "internal error",
            Self::Unavailable => "the issuer's database is unreachable; try again shortly",
        }
    }

    /// A required parameter was absent or empty (`missing parameter: {key}`).
    pub fn missing_parameter(key: &str) -> Self {
        Self::InvalidRequest(format!("missing parameter: {key}"))
    }
}

impl From<anyhow::Error> for OAuthError {
    fn from(e: anyhow::Error) -> Self {
        if portcullis_store::replicas::is_unavailable(&e) {
            tracing::warn!(error = %format!("{e:#}"), "issuer store unreachable");
            return Self::Unavailable;
        }
        tracing::error!(error = %format!("{e:#}"), "issuer internal error");
        Self::Server(e.to_string())
    }
}

pub type OAuthResult<T> = Result<T, OAuthError>;
