//! Integration tests: the real `portcullis` binary on free loopback ports, real TLS clients,
//! real upstream HTTP servers. One test binary (link time dominates).

mod account_browser;
mod auth;
mod bench_gate;
mod check_all;
mod cli;
mod dataplane;
mod deploy;
mod grpc;
mod h2_limits;
mod harness;
mod idp;
mod issuer;
mod keycloak_admin;
mod keycloak_browser;
mod lifecycle;
mod mtls;
mod mtls_pki;
mod mtls_reload;
mod mtls_upstream;
mod passkeys;
mod rate_limit;
mod replicas;
mod session;
mod sidecar_mesh;
mod text_order;
mod tracing;
mod upgrade;
mod upstream_pool;
