//! Authentication: bearer JWTs checked against the `[[trust]]` issuers, yielding a `Principal`.

pub mod principal;

pub use principal::Principal;
