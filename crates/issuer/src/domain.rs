//! The issuer's domain, under the HTTP layer: shared state, realm directories and keys, the
//! grants and what they mint, credentials, sessions, codes, admin writes and realm files.
//! The only code that touches the `Store`; it imports nothing from `http`.

pub mod account;
pub mod accounts;
pub mod action_tokens;
pub mod admin;
pub mod bruteforce;
pub mod clients;
pub mod codes;
pub mod credentials;
pub mod directory;
pub mod error;
pub mod flow;
pub mod follow;
pub mod grants;
pub mod introspection;
pub mod keys;
pub mod mail;
pub mod names;
pub mod offline;
pub mod otp;
pub mod passkeys;
pub mod password_policy;
pub mod realm_accounts;
pub mod realm_file;
pub mod realm_import;
pub mod realm_mail;
pub mod refresh_tokens;
pub mod registration;
pub mod revocation;
pub mod rotations;
pub mod seal;
pub mod sessions;
pub mod signing;
pub mod state;
pub mod tokens;
pub mod totp;
pub mod userinfo;
pub mod verify;
