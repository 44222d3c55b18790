//! The reloadable half of the configuration: routes, policies and trust, validated together
//! and swapped in as one immutable `Snapshot`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use ipnet::IpNet;

use crate::config::{Config, Diagnostics, Guard};
use crate::proxy::route::{AuthMode, RouteTable};

/// Everything a request needs to be routed and checked, at one generation.
pub struct Snapshot {
    pub generation: u64,
    pub loaded_at: SystemTime,
    pub routes: RouteTable,
    pub blocked_prefixes: Vec<String>,
    pub trusted_proxies: Vec<IpNet>,
    /// The files this snapshot was built from (for `/admin/config` and the file watcher).
    pub sources: Vec<PathBuf>,
}

impl Snapshot {
    /// Reads portcullis.toml's reloadable parts, the routes and the policies, and validates
    /// them all. `static_cfg` is the configuration the process started with: its listeners
    /// (and so its guarded ports) stay in force whatever the file now says.
    pub fn load(static_cfg: &Config, generation: u64) -> Result<Snapshot, Diagnostics> {
        let mut diags = Diagnostics::default();
        let Some(loaded) = Config::load(&static_cfg.path, &mut diags) else {
            return Err(diags);
        };
        let cfg = loaded.config;
        let guard = Guard {
            guarded_ports: cfg
                .guard
                .guarded_ports
                .union(&static_cfg.guard.guarded_ports)
                .copied()
                .collect::<BTreeSet<u16>>(),
            ..cfg.guard.clone()
        };
        let routes = RouteTable::load(&cfg.routing.routes, &guard, &mut diags);
        if let Some(routes) = &routes {
            for r in routes.routes() {
                if r.auth == AuthMode::Jwt && loaded.file.trust.is_empty() {
                    diags.push(crate::config::Diagnostic::file_error(
                        &static_cfg.path,
                        format!("route \"{}\" ({}) uses auth = \"jwt\" but no [[trust]] issuer is configured", r.name, r.defined_at),
                    ));
                }
            }
        }
        if diags.has_errors() {
            return Err(diags);
        }
        let Some(routes) = routes else {
            return Err(diags);
        };
        let mut sources = vec![
            static_cfg.path.clone(),
            cfg.routing.routes.clone(),
            cfg.routing.policies.clone(),
        ];
        sources.dedup();
        Ok(Snapshot {
            generation,
            loaded_at: SystemTime::now(),
            routes,
            blocked_prefixes: guard.blocked_prefixes,
            trusted_proxies: cfg.trusted_proxies,
            sources,
        })
    }
}

/// A summary for `portcullis check` and logs.
pub fn summary(s: &Snapshot) -> String {
    let jwt = s
        .routes
        .routes()
        .iter()
        .filter(|r| r.auth == AuthMode::Jwt)
        .count();
    format!(
        "{} routes ({} jwt), {} blocked prefixes",
        s.routes.routes().len(),
        jwt,
        s.blocked_prefixes.len()
    )
}

pub type SharedSnapshot = Arc<Snapshot>;
