//! Integration tests: the real `portcullis` binary on free loopback ports, real TLS clients,
//! real upstream HTTP servers. One test binary (link time dominates).

mod auth;
mod cli;
mod dataplane;
mod deploy;
mod harness;
mod idp;
mod issuer;
mod lifecycle;
mod upgrade;
mod upstream_pool;
