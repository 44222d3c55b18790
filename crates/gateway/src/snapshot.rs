//! The reloadable half of the configuration: routes, policies and trust, validated together
//! and swapped in as one immutable `Snapshot`.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use ipnet::IpNet;

use portcullis_authn::{Authenticator, AuthnEnv};
use portcullis_authz::PolicySet;
use portcullis_core::config::file::TrustFile;
use portcullis_core::config::{Config, Diagnostics, Guard, SourceFile};
use portcullis_core::route::{AuthMode, RouteTable};

/// Everything a request needs to be routed and checked, at one generation.
pub struct Snapshot {
    pub generation: u64,
    pub loaded_at: SystemTime,
    pub routes: RouteTable,
    pub policies: PolicySet,
    pub authn: Authenticator,
    /// `[session]` and its cookie keys (browser sign-in), when configured.
    pub session: Option<Arc<crate::session::SessionConfig>>,
    pub blocked_prefixes: Vec<String>,
    pub trusted_proxies: Vec<IpNet>,
    /// Load-time warnings (e.g. a jwt route without rules), printed by `check`.
    pub warnings: Vec<portcullis_core::config::Diagnostic>,
    /// The files this snapshot was built from (for `/admin/config` and the file watcher).
    pub sources: Vec<PathBuf>,
}

impl Snapshot {
    /// Reads portcullis.toml's reloadable parts, the routes and the policies, and validates
    /// them all. `static_cfg` is the configuration the process started with: its listeners
    /// (and so its guarded ports) stay in force whatever the file now says.
    pub fn load(
        static_cfg: &Config,
        env: &AuthnEnv,
        generation: u64,
    ) -> Result<Snapshot, Diagnostics> {
        let mut diags = Diagnostics::default();
        let Some(loaded) = Config::load(&static_cfg.path, &mut diags) else {
            // The file itself is refused; its routes and policies still get checked, so one
            // `check` or refused reload reports every error (DESIGN §3).
            check_tables_of_refused_config(
                &static_cfg.path,
                &static_cfg.guard.guarded_ports,
                &mut diags,
            );
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
        let (routes, policies) = load_tables(
            &cfg.routing.routes,
            loaded.file.routing.routes.is_some(),
            &cfg.routing.policies,
            &guard,
            &mut diags,
        );
        let trust = trust_this_build_serves(&loaded.source, &loaded.file.trust, &mut diags);
        let authn = Authenticator::build(&loaded.source, &trust, env, &mut diags);
        let session = crate::session::SessionConfig::load(&cfg, routes.as_ref(), &mut diags);
        if let Some(routes) = &routes {
            crate::tls::load_routes(static_cfg, routes, &mut diags);
            if (static_cfg.issuer.is_none() || !crate::embed::AVAILABLE)
                && let Some(r) = routes
                    .routes()
                    .iter()
                    .find(|r| matches!(r.target, portcullis_core::route::Target::EmbeddedIssuer))
            {
                let (why, hint) = if crate::embed::AVAILABLE {
                    ("[issuer] is not enabled", "add an [issuer] section")
                } else {
                    (
                        crate::embed::NOT_BUILT,
                        "run a build with the default features",
                    )
                };
                diags.push(
                    portcullis_core::config::Diagnostic::file_error(
                        &static_cfg.path,
                        format!(
                            "route \"{}\" ({}) uses \"embedded:issuer\" but {why}",
                            r.name, r.defined_at
                        ),
                    )
                    .with_hint(format!("{hint}, or point the route at a real upstream")),
                );
            }
            if let Some(r) = routes.routes().iter().find(|r| r.auth == AuthMode::Jwt)
                && loaded.file.trust.is_empty()
            {
                diags.push(portcullis_core::config::Diagnostic::file_error(
                        &static_cfg.path,
                        format!("route \"{}\" ({}) uses auth = \"jwt\" but no [[trust]] issuer is configured", r.name, r.defined_at),
                    ).with_hint("add a [[trust]] block for the issuer of your tokens"));
            }
        }
        if diags.has_errors() {
            return Err(diags);
        }
        let (Some(routes), Some(authn), Some(policies)) = (routes, authn, policies) else {
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
            policies,
            authn,
            session,
            warnings: diags.warnings().cloned().collect(),
            blocked_prefixes: guard.blocked_prefixes,
            trusted_proxies: cfg.trusted_proxies,
            sources,
        })
    }
}

/// The `[[trust]]` blocks this build can serve: all of them, or (without the feature
/// `issuer`) those not keyed by `jwks_uri = "embedded"`, each of which is refused here at its
/// place, once, instead of authn's "enable [issuer]" that such a build could not follow.
fn trust_this_build_serves<'a>(
    src: &SourceFile,
    trust: &'a [TrustFile],
    diags: &mut Diagnostics,
) -> Cow<'a, [TrustFile]> {
    if crate::embed::AVAILABLE {
        return Cow::Borrowed(trust);
    }
    let (embedded, others): (Vec<&TrustFile>, Vec<&TrustFile>) = trust
        .iter()
        .partition(|t| t.jwks_uri.get_ref() == "embedded");
    for t in embedded {
        diags.push(
            src.error(
                t.jwks_uri.span(),
                format!("jwks_uri = \"embedded\": {}", crate::embed::NOT_BUILT),
            )
            .with_hint(
                "give the issuer's https JWKS URL, or run a build with the default features",
            ),
        );
    }
    Cow::Owned(others.into_iter().cloned().collect())
}

/// Routes, then policies checked against them (or alone, when the routes did not load, so
/// their errors are reported too).
fn load_tables(
    routes_path: &Path,
    routes_named: bool,
    policies_path: &Path,
    guard: &Guard,
    diags: &mut Diagnostics,
) -> (Option<RouteTable>, Option<PolicySet>) {
    // DESIGN §4: only `listen.public` is required, so the default `routes` directory may be
    // absent (no routes, every request 404). A path the file names must exist: a typo there
    // would otherwise take every route away silently.
    let routes = if !routes_named && !routes_path.exists() {
        diags.push(
            portcullis_core::config::Diagnostic::file_warning(
                routes_path,
                "no routes directory: every request answers 404",
            )
            .with_hint("create it, or set routing.routes to a routes file or directory"),
        );
        Some(RouteTable::default())
    } else {
        RouteTable::load(routes_path, guard, diags)
    };
    let policies = match (&routes, policies_path.exists()) {
        (Some(routes), true) => PolicySet::load(policies_path, routes, diags),
        (Some(_), false) => Some(PolicySet::empty()),
        (None, true) => {
            let names = RouteTable::defined_names(routes_path);
            PolicySet::check_without_routes(policies_path, names.as_deref(), diags);
            None
        }
        (None, false) => None,
    };
    (routes, policies)
}

/// Checks the routes and policies a refused `portcullis.toml` names, when the file at least
/// parses. Guarded ports: `also_guarded` plus what the file's listeners and
/// `guard.internal_ports` say, as far as they parse.
pub fn check_tables_of_refused_config(
    path: &Path,
    also_guarded: &BTreeSet<u16>,
    diags: &mut Diagnostics,
) {
    // The file's own errors are already reported; this read must not repeat them.
    let mut scratch = Diagnostics::default();
    let Some(src) = portcullis_core::config::SourceFile::read(path, &mut scratch) else {
        return;
    };
    let Some(file) = src.parse_toml::<portcullis_core::config::file::ConfigFile>(&mut scratch)
    else {
        return;
    };
    let (routes, policies) =
        portcullis_core::config::table_paths(&file, path.parent().unwrap_or(Path::new(".")));
    let mut guarded_ports = portcullis_core::config::guarded_ports_named(&file);
    guarded_ports.extend(also_guarded);
    let guard = Guard {
        guarded_ports,
        blocked_prefixes: Vec::new(),
        allow_non_loopback_management: false,
    };
    let _ = load_tables(
        &routes,
        file.routing.routes.is_some(),
        &policies,
        &guard,
        diags,
    );
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
        "{} routes ({} jwt), {} roles, {} rules, {} trusted issuers, {} blocked prefixes",
        s.routes.routes().len(),
        jwt,
        s.policies.role_count(),
        s.policies.rule_count(),
        s.authn.issuers().count(),
        s.blocked_prefixes.len()
    )
}

pub type SharedSnapshot = Arc<Snapshot>;
