//! The embedded OpenID Connect issuer (Keycloak-compatible URLs and realm files).
