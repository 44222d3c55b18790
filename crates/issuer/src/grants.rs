//! One module per OAuth grant type; each turns a `Ctx` into a token response.

pub mod authorization_code;
pub mod client_credentials;
pub mod password;
pub mod refresh_token;
