//! How the gateway reaches a route's upstreams and what a route asks of the client's connection
//! (DESIGN §11): `upstream_tls`, `upstream_protocol` and `require_client_cert`, each checked
//! with its place. The certificate files themselves are read by the gateway's TLS loader.

use std::path::{Path, PathBuf};

use super::{AuthMode, Target};
use crate::config::file::{RouteFile, UpstreamTlsFile};
use crate::config::{Diagnostics, SourceFile};
use crate::identity::Memo;

/// The wire protocol spoken to a route's upstreams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProtocol {
    /// HTTP/1.1 (the default).
    #[default]
    Http1,
    /// HTTP/2 over TLS (ALPN `h2`; an upstream that does not offer it is spoken to in HTTP/1.1).
    H2,
    /// HTTP/2 over cleartext TCP with prior knowledge (gRPC servers without TLS).
    H2c,
}

impl UpstreamProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamProtocol::Http1 => "http1",
            UpstreamProtocol::H2 => "h2",
            UpstreamProtocol::H2c => "h2c",
        }
    }
}

/// A route's `upstream_tls`: the files, resolved against the route file's directory.
#[derive(Debug)]
pub struct UpstreamTls {
    /// CA bundle the upstream's certificate must chain to (instead of the system roots).
    pub ca: Option<PathBuf>,
    /// Client certificate chain and key presented to the upstream (mutual TLS).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Name sent as SNI and verified in the upstream's certificate (instead of the URL's host).
    pub server_name: Option<String>,
    /// The certificates read from the files, as the gateway's connector uses them: filled
    /// once per snapshot by the gateway (core knows no TLS types).
    pub material: Memo,
}

/// What [`check`] made of a route's transport keys.
pub(super) struct Transport {
    pub tls: Option<UpstreamTls>,
    pub protocol: UpstreamProtocol,
    pub require_client_cert: bool,
}

/// Checks `upstream_tls`, `upstream_protocol` and `require_client_cert` against the route's
/// auth mode and upstreams; every problem is reported at its key.
pub(super) fn check(
    src: &SourceFile,
    rf: &RouteFile,
    auth: AuthMode,
    target: &Target,
    diags: &mut Diagnostics,
) -> Transport {
    // (any https upstream, any http upstream); the embedded issuer has neither.
    let (https, http) = match target {
        Target::Servers(ups) => (ups.iter().any(|u| u.tls), ups.iter().any(|u| !u.tls)),
        Target::EmbeddedIssuer => (false, false),
    };
    let embedded = matches!(target, Target::EmbeddedIssuer);
    Transport {
        protocol: protocol(src, rf, embedded, https, http, diags),
        tls: rf
            .upstream_tls
            .as_ref()
            .and_then(|t| upstream_tls(src, t, embedded, https, diags)),
        require_client_cert: require_client_cert(src, rf, auth, diags),
    }
}

fn protocol(
    src: &SourceFile,
    rf: &RouteFile,
    embedded: bool,
    https: bool,
    http: bool,
    diags: &mut Diagnostics,
) -> UpstreamProtocol {
    let Some(p) = &rf.upstream_protocol else {
        return UpstreamProtocol::Http1;
    };
    let protocol = match p.get_ref().as_str() {
        "http1" => UpstreamProtocol::Http1,
        "h2" => UpstreamProtocol::H2,
        "h2c" => UpstreamProtocol::H2c,
        other => {
            diags.push(
                src.error(p.span(), format!("unknown upstream_protocol \"{other}\""))
                    .with_hint(
                        "use \"http1\", \"h2\" (HTTP/2 over TLS) or \"h2c\" (cleartext HTTP/2)",
                    ),
            );
            return UpstreamProtocol::Http1;
        }
    };
    let clash = match protocol {
        _ if embedded => Some((
            "the embedded issuer is served in-process",
            "remove upstream_protocol from this route",
        )),
        UpstreamProtocol::H2 if http => Some((
            "\"h2\" is HTTP/2 over TLS, and this route has http:// upstreams",
            "use \"h2c\" for cleartext HTTP/2, or https:// upstreams",
        )),
        UpstreamProtocol::H2c if https => Some((
            "\"h2c\" is cleartext HTTP/2, and this route has https:// upstreams",
            "use \"h2\" for HTTP/2 over TLS, or http:// upstreams",
        )),
        _ => None,
    };
    if let Some((why, hint)) = clash {
        diags.push(
            src.error(p.span(), format!("upstream_protocol: {why}"))
                .with_hint(hint),
        );
    }
    protocol
}

fn upstream_tls(
    src: &SourceFile,
    t: &toml::Spanned<UpstreamTlsFile>,
    embedded: bool,
    https: bool,
    diags: &mut Diagnostics,
) -> Option<UpstreamTls> {
    if embedded || !https {
        diags.push(
            src.error(
                t.span(),
                "upstream_tls applies to https:// upstreams, and this route has none",
            )
            .with_hint("write the upstreams as https://…, or remove upstream_tls"),
        );
        return None;
    }
    let f = t.get_ref();
    let base = src.path.parent().unwrap_or(Path::new("."));
    let file = |key: &Option<toml::Spanned<String>>, name: &str, diags: &mut Diagnostics| {
        let k = key.as_ref()?;
        let path = crate::config::resolve(base, k.get_ref());
        if !path.is_file() {
            diags.push(
                src.error(
                    k.span(),
                    format!("upstream_tls.{name}: {} does not exist", path.display()),
                )
                .with_hint("a PEM file; relative paths start at this route file's directory"),
            );
        }
        Some(path)
    };
    let ca = file(&f.ca, "ca", diags);
    let cert = file(&f.client_cert, "client_cert", diags);
    let key = file(&f.client_key, "client_key", diags);
    let client_cert = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            diags.push(
                src.error(
                    t.span(),
                    "upstream_tls: client_cert and client_key go together",
                )
                .with_hint("give both the certificate chain and its private key, or neither"),
            );
            None
        }
    };
    let server_name = f
        .server_name
        .as_ref()
        .map(|s| s.get_ref().trim().to_string());
    if let (Some(name), Some(s)) = (&server_name, &f.server_name)
        && (name.is_empty() || name.contains(['/', ' ', ':']) && !name.starts_with('['))
    {
        diags.push(
            src.error(s.span(), format!("upstream_tls.server_name \"{name}\" is not a host name"))
                .with_hint("the DNS name (or IP address) in the upstream's certificate, e.g. \"orders.internal\""),
        );
    }
    Some(UpstreamTls {
        ca,
        client_cert,
        server_name,
        material: Memo::default(),
    })
}

fn require_client_cert(
    src: &SourceFile,
    rf: &RouteFile,
    auth: AuthMode,
    diags: &mut Diagnostics,
) -> bool {
    let Some(r) = &rf.require_client_cert else {
        return false;
    };
    let on = *r.get_ref();
    if on && auth != AuthMode::Jwt {
        let why = match auth {
            AuthMode::Mtls => "an mtls route always needs a client certificate",
            _ => "only a jwt route can ask for a client certificate on top of its token",
        };
        diags.push(
            src.error(r.span(), format!("require_client_cert: {why}"))
                .with_hint("remove require_client_cert, or use auth = \"jwt\" (token and certificate) or \"mtls\" (certificate alone)"),
        );
    }
    on
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::config::{Diagnostics, Guard};
    use crate::route::{AuthMode, RouteTable, UpstreamProtocol};

    fn load(text: &str) -> Result<RouteTable, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("r.toml"), text).unwrap();
        std::fs::write(dir.path().join("ca.pem"), "x").unwrap();
        let guard = Guard {
            guarded_ports: BTreeSet::new(),
            blocked_prefixes: vec![],
            allow_non_loopback_management: false,
        };
        let mut d = Diagnostics::default();
        RouteTable::load(dir.path(), &guard, &mut d)
            .ok_or_else(|| d.errors().map(|e| e.message.clone()).collect())
    }

    #[test]
    fn the_keys_load_into_the_route() {
        let t = load(
            "[[route]]\nname = \"g\"\nprefix = \"/g\"\nupstreams = [\"https://127.0.0.1:1\"]\n\
             upstream_protocol = \"h2\"\nupstream_tls = { ca = \"ca.pem\", server_name = \"g.internal\" }\n\
             [[route]]\nname = \"m\"\nprefix = \"/m\"\nupstreams = [\"http://127.0.0.1:1\"]\n\
             auth = \"mtls\"\nupstream_protocol = \"h2c\"\n\
             [[route]]\nname = \"j\"\nprefix = \"/j\"\nupstreams = [\"http://127.0.0.1:1\"]\n\
             auth = \"jwt\"\nrequire_client_cert = true\n",
        )
        .unwrap();
        let g = t.get("g").unwrap();
        assert_eq!(g.upstream_protocol, UpstreamProtocol::H2);
        let tls = g.upstream_tls.as_ref().unwrap();
        assert!(tls.ca.as_ref().unwrap().ends_with("ca.pem"));
        assert_eq!(tls.server_name.as_deref(), Some("g.internal"));
        let m = t.get("m").unwrap();
        assert_eq!(
            (m.auth, m.upstream_protocol),
            (AuthMode::Mtls, UpstreamProtocol::H2c)
        );
        assert!(t.get("j").unwrap().require_client_cert);
    }

    #[test]
    fn require_client_cert_belongs_to_jwt_routes() {
        for auth in ["public", "mtls"] {
            let errors = load(&format!(
                "[[route]]\nname = \"a\"\nprefix = \"/a\"\nupstreams = [\"http://127.0.0.1:1\"]\n\
                 auth = \"{auth}\"\nrequire_client_cert = true\n"
            ))
            .unwrap_err();
            assert!(errors[0].starts_with("require_client_cert: "), "{errors:?}");
        }
        let errors = load(
            "[[route]]\nname = \"a\"\nprefix = \"/a\"\nupstreams = [\"http://127.0.0.1:1\"]\n\
             upstream_protocol = \"h3\"\n",
        )
        .unwrap_err();
        assert_eq!(errors, ["unknown upstream_protocol \"h3\""]);
    }
}
