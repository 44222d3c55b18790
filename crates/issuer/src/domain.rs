//! The issuer's domain, under the HTTP layer: shared state, realm directories and keys, the
//! grants and what they mint, credentials, sessions, codes, admin writes and realm files.
//! The only code that touches the `Store`; it imports nothing from `http`.

pub mod admin;
pub mod bruteforce;
pub mod clients;
pub mod codes;
pub mod credentials;
pub mod directory;
pub mod error;
pub mod follow;
pub mod grants;
pub mod introspection;
pub mod keys;
pub mod offline;
pub mod realm_file;
pub mod realm_import;
pub mod refresh_tokens;
pub mod revocation;
pub mod rotations;
pub mod sessions;
pub mod signing;
pub mod state;
pub mod tokens;
pub mod userinfo;
pub mod verify;
