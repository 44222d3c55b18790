//! The names of the headers the gateway sets on what it forwards and the issuer reads back
//! ("Forwarded headers" in DESIGN): one definition for both sides. As `HeaderName` constants, since a `&str` name
//! is parsed and hashed again on every lookup.

use http::HeaderName;

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
pub const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
/// The verified client certificate of an mTLS connection (Envoy's format).
pub const X_FORWARDED_CLIENT_CERT: HeaderName = HeaderName::from_static("x-forwarded-client-cert");
