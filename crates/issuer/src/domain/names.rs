//! Keycloak's names that the sign-in flow, credentials and realm files share: required actions
//! and credential types. A leaf module (imports nothing), so realm files can use them without
//! importing the flow.

pub const VERIFY_EMAIL: &str = "VERIFY_EMAIL";
pub const UPDATE_PASSWORD: &str = "UPDATE_PASSWORD";
pub const CONFIGURE_TOTP: &str = "CONFIGURE_TOTP";

/// The credential type the hashes of a user's past passwords are kept under.
pub const PASSWORD_HISTORY: &str = "password-history";
