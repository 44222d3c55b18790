//! A route's `upstream_tls` (DESIGN §11), read into what Pingora's connector takes: the CA
//! bundle the upstream's certificate must chain to, the client certificate and key it is
//! shown, and the name sent as SNI and verified. Read once per snapshot (every reload reads
//! the files again), so a rotated file is used by the next new upstream connection; pooled
//! connections made with the old files are reused until they close.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use pingora::protocols::tls::CaType;
use pingora::utils::tls::{CertKey, WrappedX509};
use rustls::pki_types::{PrivateKeyDer, ServerName};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::pem;
use super::status::Expiry;
use portcullis_core::config::Diagnostics;
use portcullis_core::route::{Route, RouteTable, UpstreamTls};

/// What a route's new upstream connections are made with.
pub struct Material {
    pub ca: Option<Arc<CaType>>,
    pub client: Option<Arc<CertKey>>,
    pub server_name: Option<String>,
    /// Keeps connections made under other TLS settings (another CA, route or name) out of
    /// this route's keep-alive pool: Pingora's reuse key does not cover the CA.
    pub group_key: u64,
    pub expiry: Vec<Expiry>,
}

/// Reads every route's `upstream_tls` files into its `material` slot; each problem becomes an
/// error at the route's definition.
pub fn load(routes: &RouteTable, diags: &mut Diagnostics) {
    for route in routes.routes() {
        let Some(t) = &route.upstream_tls else {
            continue;
        };
        match read(t, &route.name) {
            Ok(m) => t.material.set(Arc::new(m)),
            Err(errors) => {
                for e in errors {
                    diags.push(super::at_route(
                        route,
                        format!("route \"{}\": upstream_tls: {e}", route.name),
                    ));
                }
            }
        }
    }
}

/// The material of a route with `upstream_tls` (none until [`load`] read it).
pub fn material(route: &Route) -> Option<Arc<Material>> {
    route.upstream_tls.as_ref()?.material.get::<Material>()
}

/// The expiry of every upstream certificate in use.
pub fn expiry(routes: &RouteTable) -> Vec<Expiry> {
    routes
        .routes()
        .iter()
        .filter_map(|r| material(r))
        .flat_map(|m| m.expiry.clone())
        .collect()
}

/// Every file the routes' `upstream_tls` names, for the file watcher.
pub fn paths(routes: &RouteTable) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for t in routes
        .routes()
        .iter()
        .filter_map(|r| r.upstream_tls.as_ref())
    {
        out.extend(t.ca.iter().cloned());
        if let Some((c, k)) = &t.client_cert {
            out.push(c.clone());
            out.push(k.clone());
        }
    }
    out
}

fn read(t: &UpstreamTls, route: &str) -> Result<Material, Vec<String>> {
    let mut errors = Vec::new();
    let mut expiry = Vec::new();
    let mut key = DefaultHasher::new();
    route.hash(&mut key);
    t.server_name.hash(&mut key);
    let ca = match &t.ca {
        Some(path) => match ca_bundle(path) {
            Ok((ca, not_after)) => {
                expiry.push(Expiry::new(format!("upstream/{route}/ca"), path, not_after));
                for c in ca.iter() {
                    c.borrow_raw_cert().hash(&mut key);
                }
                Some(ca)
            }
            Err(e) => {
                errors.push(e);
                None
            }
        },
        None => None,
    };
    let client = match &t.client_cert {
        Some((cert, k)) => match client_cert(cert, k) {
            Ok((ck, not_after)) => {
                expiry.push(Expiry::new(
                    format!("upstream/{route}/client_cert"),
                    cert,
                    not_after,
                ));
                Some(ck)
            }
            Err(e) => {
                errors.push(e);
                None
            }
        },
        None => None,
    };
    if let Some(name) = &t.server_name
        && ServerName::try_from(name.as_str()).is_err()
    {
        errors.push(format!(
            "server_name \"{name}\" is not a DNS name or IP address"
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Material {
        ca,
        client,
        server_name: t.server_name.clone(),
        group_key: key.finish(),
        expiry,
    })
}

/// The CAs of `path` as Pingora's per-peer CA list.
fn ca_bundle(path: &std::path::Path) -> Result<(Arc<CaType>, i64), String> {
    let certs = pem::certificates(path)?;
    let not_after = pem::earliest_not_after(&certs);
    let mut list = Vec::with_capacity(certs.len());
    for c in certs {
        let w = WrappedX509::try_new(c.to_vec(), |raw| {
            X509Certificate::from_der(raw).map(|(_, cert)| cert)
        })
        .map_err(|e| format!("{}: not X.509: {e}", path.display()))?;
        list.push(w);
    }
    let ca: Arc<CaType> = Arc::from(list);
    Ok((ca, not_after))
}

/// The client chain and key as Pingora's `CertKey`, checked so that Pingora can use them
/// without failing (it unwraps the key's format, and panics on a certificate it can't parse).
fn client_cert(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<(Arc<CertKey>, i64), String> {
    let chain = pem::certificates(cert)?;
    let k = pem::private_key(key)?;
    let der = k.secret_der().to_vec();
    if PrivateKeyDer::try_from(der.clone()).is_err() {
        return Err(format!("{}: key format not recognised", key.display()));
    }
    let provider = rustls::crypto::CryptoProvider::get_default()
        .map(|p| (**p).clone())
        .unwrap_or_else(rustls::crypto::aws_lc_rs::default_provider);
    rustls::sign::CertifiedKey::from_der(chain.clone(), k, &provider).map_err(|e| {
        format!(
            "{} / {}: the key does not fit the certificate: {e}",
            cert.display(),
            key.display()
        )
    })?;
    let not_after = pem::not_after(&chain[0]);
    let ck = CertKey::new(chain.into_iter().map(|c| c.to_vec()).collect(), der);
    Ok((Arc::new(ck), not_after))
}
