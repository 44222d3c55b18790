//! OAuth 2.0 errors: `Display` is the RFC code; rendered as RFC 6749 §5.2 JSON in one place.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

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
}

impl OAuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidClient(_) | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Server(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

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
        }
    }
}

impl From<anyhow::Error> for OAuthError {
    fn from(e: anyhow::Error) -> Self {
        tracing::error!(error = %format!("{e:#}"), "issuer internal error");
        Self::Server(e.to_string())
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.to_string(), "error_description": self.description()});
        let mut resp = (self.status(), Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        match self {
            Self::InvalidClient(_) => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"portcullis\""),
                );
            }
            Self::InvalidToken(_) => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer realm=\"portcullis\", error=\"invalid_token\"",
                    ),
                );
            }
            _ => {}
        }
        resp
    }
}

pub type OAuthResult<T> = Result<T, OAuthError>;
