//! `portcullis sidecar`: the gateway beside one workload. The flags become a generated
//! config (one route named `sidecar`, the given policies), so the sidecar runs exactly the
//! gateway's code paths, reload included.
//!
//! How the route authenticates follows from the flags (DESIGN §11):
//! - `--issuer` (with `--jwks-uri`, `--audience`): bearer tokens (`jwt`), checked by RBAC.
//! - `--tls-cert --tls-key --client-ca`: a mesh endpoint. The listener speaks TLS and requires a
//!   client certificate from `--client-ca`; the route is `mtls` (the caller's SPIFFE ID is the
//!   principal, `[principals]` map it to roles), or `jwt` with `require_client_cert` when an
//!   issuer is given too (mTLS in, JWT+RBAC on top). The workload gets `X-Forwarded-Client-Cert`.
//! - Neither: an egress sidecar for the local workload (`public`), allowed on loopback only.
//!
//! `--upstream-ca --upstream-cert --upstream-key [--upstream-server-name]` make the route's
//! `https://` upstream another mesh endpoint, called with this workload's certificate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The flags of `portcullis sidecar` (each also as a `PORTCULLIS_*` variable).
#[derive(clap::Args, Debug)]
pub struct SidecarArgs {
    /// Where the sidecar listens (plain HTTP, or TLS with `--tls-cert`).
    #[arg(long, env = "PORTCULLIS_LISTEN")]
    pub listen: SocketAddr,
    /// The workload, e.g. http://127.0.0.1:8080 (or, for an egress sidecar, the mesh endpoint
    /// it calls: https://…).
    #[arg(long, env = "PORTCULLIS_UPSTREAM")]
    pub upstream: String,
    /// The trusted token issuer (`iss`); with `--jwks-uri` and `--audience`.
    #[arg(long, env = "PORTCULLIS_ISSUER", requires_all = ["jwks_uri", "audience"])]
    pub issuer: Option<String>,
    #[arg(long, env = "PORTCULLIS_JWKS_URI", requires = "issuer")]
    pub jwks_uri: Option<String>,
    #[arg(long, env = "PORTCULLIS_AUDIENCE", requires = "issuer")]
    pub audience: Option<String>,
    /// RBAC policies; rules name the route `sidecar`. Without: every authenticated request is
    /// denied.
    #[arg(long, env = "PORTCULLIS_POLICIES")]
    pub policies: Option<PathBuf>,
    #[arg(long, env = "PORTCULLIS_MANAGEMENT", default_value = "127.0.0.1:9000")]
    pub management: SocketAddr,
    #[arg(long, env = "PORTCULLIS_ALLOW_NON_LOOPBACK_MANAGEMENT")]
    pub allow_non_loopback_management: bool,
    #[command(flatten)]
    pub mesh: MeshArgs,
}

/// Mutual TLS in (`--tls-cert --tls-key --client-ca`) and out (`--upstream-*`).
#[derive(clap::Args, Debug, Default)]
pub struct MeshArgs {
    /// This workload's certificate chain (PEM), served to callers; with `--tls-key`.
    #[arg(long, env = "PORTCULLIS_TLS_CERT", requires_all = ["tls_key", "client_ca"])]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, env = "PORTCULLIS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CAs (PEM) whose client certificates callers must present.
    #[arg(long, env = "PORTCULLIS_CLIENT_CA", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// CAs (PEM) the `https://` upstream's certificate must chain to (default: system roots).
    #[arg(long, env = "PORTCULLIS_UPSTREAM_CA")]
    pub upstream_ca: Option<PathBuf>,
    /// The certificate (PEM) presented to the upstream; with `--upstream-key`.
    #[arg(long, env = "PORTCULLIS_UPSTREAM_CERT", requires = "upstream_key")]
    pub upstream_cert: Option<PathBuf>,
    #[arg(long, env = "PORTCULLIS_UPSTREAM_KEY", requires = "upstream_cert")]
    pub upstream_key: Option<PathBuf>,
    /// The name the upstream's certificate is verified for, and sent as SNI.
    #[arg(long, env = "PORTCULLIS_UPSTREAM_SERVER_NAME")]
    pub upstream_server_name: Option<String>,
}

/// TOML string literal (quotes and escapes), so flag values can't inject config.
fn lit(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A path flag as an absolute TOML literal (the config lives in another directory).
fn path_lit(p: &Path) -> String {
    lit(&std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string())
}

/// Writes the generated config into a private directory and returns its path.
///
/// The directory gets a random name and mode 0700 and must not exist yet: a predictable path
/// in a shared temp dir could be created first by another local user, who could then swap the
/// watched route file. It is kept for the process's life (reloads re-read it).
pub fn write_config(a: &SidecarArgs) -> Result<PathBuf> {
    let (config, route) = generate(a)?;
    let dir = tempfile::Builder::new()
        .prefix("portcullis-sidecar-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .context("creating the sidecar's config directory")?
        .keep();
    std::fs::create_dir(dir.join("routes"))
        .with_context(|| format!("creating {}", dir.join("routes").display()))?;
    std::fs::write(dir.join("portcullis.toml"), config)?;
    std::fs::write(dir.join("routes/sidecar.toml"), route)?;
    Ok(dir.join("portcullis.toml"))
}

/// The text of `portcullis.toml` and of the route file.
fn generate(a: &SidecarArgs) -> Result<(String, String)> {
    let m = &a.mesh;
    let mesh_in = m.tls_cert.is_some();
    let auth = match (&a.issuer, mesh_in) {
        (Some(_), true) => "auth = \"jwt\"\nrequire_client_cert = true\n",
        (Some(_), false) => "auth = \"jwt\"\n",
        (None, true) => "auth = \"mtls\"\n",
        (None, false) if a.listen.ip().is_loopback() => "auth = \"public\"\n",
        (None, false) => bail!(
            "a sidecar without --issuer or --tls-cert/--client-ca authenticates nobody: it may \
             only listen on loopback (an egress sidecar for its workload), not {}",
            a.listen
        ),
    };
    let policies = a
        .policies
        .as_deref()
        .map_or_else(|| lit("policies"), path_lit);
    let mut config = format!(
        "# generated by `portcullis sidecar`\n[listen]\npublic = {}\nmanagement = {}\n\n\
         [guard]\nallow_non_loopback_management = {}\n\n\
         [routing]\nroutes = \"routes\"\npolicies = {policies}\nwatch = true\n",
        lit(&a.listen.to_string()),
        lit(&a.management.to_string()),
        a.allow_non_loopback_management,
    );
    if let (Some(cert), Some(key), Some(ca)) = (&m.tls_cert, &m.tls_key, &m.client_ca) {
        config.push_str(&format!(
            "\n[tls]\ncert = {}\nkey = {}\nself_signed_if_missing = false\n\
             client_ca = {}\nclient_auth = \"required\"\n",
            path_lit(cert),
            path_lit(key),
            path_lit(ca)
        ));
    }
    if let (Some(iss), Some(jwks), Some(aud)) = (&a.issuer, &a.jwks_uri, &a.audience) {
        config.push_str(&format!(
            "\n[[trust]]\nissuer = {}\njwks_uri = {}\naudiences = [{}]\n",
            lit(iss),
            lit(jwks),
            lit(aud)
        ));
    }
    let mut route = format!(
        "[[route]]\nname = \"sidecar\"\nprefix = \"/\"\nupstreams = [{}]\n{auth}",
        lit(&a.upstream)
    );
    let mut tls: Vec<String> = Vec::new();
    if let Some(ca) = &m.upstream_ca {
        tls.push(format!("ca = {}", path_lit(ca)));
    }
    if let (Some(c), Some(k)) = (&m.upstream_cert, &m.upstream_key) {
        tls.push(format!("client_cert = {}", path_lit(c)));
        tls.push(format!("client_key = {}", path_lit(k)));
    }
    if let Some(n) = &m.upstream_server_name {
        tls.push(format!("server_name = {}", lit(n)));
    }
    if !tls.is_empty() {
        route.push_str(&format!("upstream_tls = {{ {} }}\n", tls.join(", ")));
    }
    Ok((config, route))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn each_config_gets_its_own_private_directory() {
        let args = SidecarArgs {
            listen: "127.0.0.1:8443".parse().unwrap(),
            upstream: "http://127.0.0.1:8080".into(),
            issuer: Some("https://idp.example/realms/r".into()),
            jwks_uri: Some("https://idp.example/realms/r/certs".into()),
            audience: Some("app\"\n[evil]".into()),
            policies: Some("policies".into()),
            management: "127.0.0.1:9000".parse().unwrap(),
            allow_non_loopback_management: false,
            mesh: MeshArgs::default(),
        };
        let a = write_config(&args).unwrap();
        let b = write_config(&args).unwrap();
        let (da, db) = (a.parent().unwrap(), b.parent().unwrap());
        assert_ne!(
            da, db,
            "a predictable directory could be planted by someone else"
        );
        let mode = std::fs::metadata(da).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
        let text = std::fs::read_to_string(&a).unwrap();
        let parsed: toml::Table = text.parse().unwrap();
        assert!(
            parsed.get("evil").is_none(),
            "a flag value became config: {text}"
        );
        std::fs::remove_dir_all(da).unwrap();
        std::fs::remove_dir_all(db).unwrap();
    }

    fn args(listen: &str) -> SidecarArgs {
        SidecarArgs {
            listen: listen.parse().unwrap(),
            upstream: "http://127.0.0.1:8080".into(),
            issuer: None,
            jwks_uri: None,
            audience: None,
            policies: None,
            management: "127.0.0.1:9000".parse().unwrap(),
            allow_non_loopback_management: false,
            mesh: MeshArgs::default(),
        }
    }

    #[test]
    fn the_flags_pick_the_route_s_authentication() {
        let mut a = args("0.0.0.0:8443");
        a.mesh.tls_cert = Some("/m/b.crt".into());
        a.mesh.tls_key = Some("/m/b.key".into());
        a.mesh.client_ca = Some("/m/ca.pem".into());
        let (config, route) = generate(&a).unwrap();
        let c: toml::Table = config.parse().unwrap();
        assert_eq!(c["tls"]["client_auth"].as_str(), Some("required"));
        assert_eq!(c["tls"]["client_ca"].as_str(), Some("/m/ca.pem"));
        let r: toml::Table = route.parse().unwrap();
        assert_eq!(r["route"][0]["auth"].as_str(), Some("mtls"));
        // A token issuer on top: both are needed.
        a.issuer = Some("https://idp".into());
        a.jwks_uri = Some("https://idp/certs".into());
        a.audience = Some("app".into());
        let (_, route) = generate(&a).unwrap();
        let r: toml::Table = route.parse().unwrap();
        assert_eq!(r["route"][0]["auth"].as_str(), Some("jwt"));
        assert_eq!(r["route"][0]["require_client_cert"].as_bool(), Some(true));
        // Nothing to authenticate with: loopback only.
        assert!(generate(&args("0.0.0.0:8080")).is_err());
        let mut egress = args("127.0.0.1:15001");
        egress.upstream = "https://b.mesh:8443".into();
        egress.mesh.upstream_ca = Some("/m/ca.pem".into());
        egress.mesh.upstream_cert = Some("/m/a.crt".into());
        egress.mesh.upstream_key = Some("/m/a.key".into());
        egress.mesh.upstream_server_name = Some("b.mesh".into());
        let (_, route) = generate(&egress).unwrap();
        let r: toml::Table = route.parse().unwrap();
        assert_eq!(r["route"][0]["auth"].as_str(), Some("public"));
        assert_eq!(
            r["route"][0]["upstream_tls"]["client_cert"].as_str(),
            Some("/m/a.crt")
        );
        assert_eq!(
            r["route"][0]["upstream_tls"]["server_name"].as_str(),
            Some("b.mesh")
        );
    }
}
