//! TLS beyond the basics (DESIGN §11): the public listener's certificate and client-certificate
//! verification, swappable by reloads; the identity of a verified client certificate; each
//! route's upstream TLS; and the expiry of every certificate in use.

pub mod client_cert;
pub mod pem;
pub mod server;
pub mod status;
pub mod upstream;

pub use client_cert::ClientCert;
pub use server::ServerTls;

use portcullis_core::config::{Config, Diagnostic, Diagnostics, Severity};
use portcullis_core::route::{AuthMode, Route, RouteTable};

/// The TLS side of loading a snapshot's routes: routes that need client certificates need a
/// listener that asks for them, and every route's upstream TLS files are read.
pub fn load_routes(static_cfg: &Config, routes: &RouteTable, diags: &mut Diagnostics) {
    let asks = static_cfg
        .tls
        .as_ref()
        .is_some_and(|t| t.client_ca.is_some());
    for r in routes.routes() {
        if !asks && (r.auth == AuthMode::Mtls || r.require_client_cert) {
            let what = if r.auth == AuthMode::Mtls {
                "auth = \"mtls\""
            } else {
                "require_client_cert"
            };
            diags.push(
                at_route(
                    r,
                    format!(
                        "route \"{}\" uses {what} but the public listener asks for no client certificate",
                        r.name
                    ),
                )
                .with_hint("set [tls] client_ca (and client_auth) in portcullis.toml"),
            );
        }
    }
    upstream::load(routes, diags);
}

/// An error at a route's definition (`defined_at` is its `file:line`).
fn at_route(route: &Route, message: String) -> Diagnostic {
    let (file, line) = match route.defined_at.rsplit_once(':') {
        Some((f, l)) => (std::path::PathBuf::from(f), l.parse().unwrap_or(1)),
        None => (std::path::PathBuf::from(&route.defined_at), 1),
    };
    Diagnostic {
        file,
        line,
        col: 1,
        severity: Severity::Error,
        message,
        hint: None,
    }
}
