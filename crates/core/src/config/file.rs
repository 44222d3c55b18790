//! The file schema of `portcullis.toml`: serde structs with spans, exactly as written by people.
//! Validation turns these into the runtime types of `config.rs`.

use std::fmt;

use serde::Deserialize;
use toml::Spanned;

/// A secret from the config file: usable, never printed (`Debug` shows `***`).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(secret: String) -> Self {
        SecretString(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub listen: ListenFile,
    #[serde(default)]
    pub runtime: RuntimeFile,
    pub tls: Option<TlsFile>,
    #[serde(default)]
    pub forwarded: ForwardedFile,
    #[serde(default)]
    pub guard: GuardFile,
    #[serde(default)]
    pub routing: RoutingFile,
    #[serde(default)]
    pub limits: LimitsFile,
    #[serde(default)]
    pub trust: Vec<TrustFile>,
    pub issuer: Option<IssuerFile>,
    #[serde(default)]
    pub rate_limit: RateLimitStoreFile,
    /// Browser sign-in at the gateway (DESIGN §10).
    pub session: Option<SessionFile>,
    /// OpenTelemetry spans over OTLP/HTTP (DESIGN §15); absent: off.
    pub tracing: Option<TracingFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenFile {
    pub public: Spanned<String>,
    pub http_redirect: Option<Spanned<String>>,
    pub internal: Option<Spanned<String>>,
    pub management: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RuntimeFile {
    /// 0 = one per core.
    pub worker_threads: Option<usize>,
    /// Upper bound of the SIGTERM drain; the process exits as soon as nothing is in flight.
    pub shutdown_drain_seconds: Option<u64>,
    /// Write the one-line-per-request audit log to stdout.
    pub audit_log: Option<bool>,
    /// The unix socket a gateway started with `run --upgrade` takes the listening sockets over
    /// on (relative to this file's directory).
    pub upgrade_sock: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    pub self_signed_if_missing: Option<bool>,
    pub min_version: Option<Spanned<String>>,
    /// PEM bundle of the CAs client certificates are verified against (DESIGN §11).
    pub client_ca: Option<Spanned<String>>,
    /// `"optional"` or `"required"`; only with `client_ca`.
    pub client_auth: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ForwardedFile {
    #[serde(default)]
    pub trusted_proxies: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GuardFile {
    pub internal_ports: Option<Vec<Spanned<u16>>>,
    pub blocked_prefixes: Option<Vec<Spanned<String>>>,
    pub allow_non_loopback_management: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RoutingFile {
    pub routes: Option<String>,
    pub policies: Option<String>,
    pub watch: Option<bool>,
}

/// Request limits of the public listener (extension of the contract; defaults are safe).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Largest request header block; larger gets 431.
    pub max_header_bytes: Option<usize>,
    /// Time a client may take to send its request header.
    pub header_read_timeout_seconds: Option<u64>,
    /// Longest pause between two reads of a request body.
    pub body_read_timeout_seconds: Option<u64>,
    /// Idle time of a downstream keep-alive connection.
    pub keepalive_timeout_seconds: Option<u64>,
    /// Idle time of a pooled upstream connection before it is closed instead of reused.
    pub upstream_idle_timeout_seconds: Option<u64>,
    /// Open client connections per listener; more are closed at once (0: no cap).
    pub max_connections: Option<usize>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct TrustFile {
    pub issuer: Spanned<String>,
    pub jwks_uri: Spanned<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub authorized_parties: Vec<String>,
    pub algorithms: Option<Vec<Spanned<String>>>,
    pub leeway_seconds: Option<u64>,
    pub groups_claim: Option<String>,
    pub roles_claims: Option<Vec<String>>,
    /// Shared secret for HS256/384/512; only then are HS algorithms accepted.
    pub hs_secret: Option<SecretString>,
    /// Largest accepted token in bytes (default 16 KiB).
    pub max_token_bytes: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerFile {
    pub enabled: Option<bool>,
    pub frontend_url: Option<Spanned<String>>,
    pub database: Option<Spanned<String>>,
    #[serde(default)]
    pub import: Vec<Spanned<String>>,
    /// Days login events are kept.
    pub login_event_retention_days: Option<u32>,
    /// Limit on POSTs to the token endpoint and the login form (DESIGN §12).
    pub rate_limit: Option<Spanned<RateLimitFile>>,
}

/// `[session]`: the gateway as an OpenID Connect relying party for `session` routes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionFile {
    /// `embedded:REALM`, or an issuer URL whose discovery document names the endpoints.
    pub provider: Spanned<String>,
    pub client_id: Spanned<String>,
    /// `${VAR}` (or `${VAR:default}`) is taken from the environment; absent: a public client.
    pub client_secret: Option<Spanned<SecretString>>,
    pub scopes: Option<Spanned<Vec<Spanned<String>>>>,
    pub cookie_name: Option<Spanned<String>>,
    /// A file of standard base64 32-byte keys, one a line: the first seals, all open.
    pub cookie_keys: Option<Spanned<String>>,
    pub idle_timeout_seconds: Option<Spanned<u64>>,
    pub max_lifetime_seconds: Option<Spanned<u64>>,
    /// `cookie` (sealed in the browser) or `database` (the issuer's store).
    pub store: Option<Spanned<String>>,
    /// PEM file of CAs trusted for the provider's TLS (added to the system roots).
    pub provider_ca: Option<Spanned<String>>,
}

/// `[tracing]`: where the gateway sends one span per request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingFile {
    /// The OTLP/HTTP collector's base URL; spans are posted to `{otlp_endpoint}/v1/traces`.
    pub otlp_endpoint: Spanned<String>,
    /// The `service.name` resource attribute (default "portcullis").
    pub service_name: Option<Spanned<String>>,
    /// Share of new traces recorded, 0.0 ..= 1.0 (default 1.0).
    pub sample_ratio: Option<Spanned<f64>>,
}

/// One route as written in `routes/*.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub name: Spanned<String>,
    pub prefix: Spanned<String>,
    pub host: Option<Spanned<String>>,
    pub upstreams: Spanned<Vec<Spanned<String>>>,
    pub auth: Option<Spanned<String>>,
    pub strip_prefix: Option<bool>,
    pub timeout_seconds: Option<Spanned<u64>>,
    pub rate_limit: Option<Spanned<RateLimitFile>>,
    /// Session routes: send the session's access token upstream as `Authorization: Bearer`.
    pub pass_access_token: Option<Spanned<bool>>,
    /// Send `X-Portcullis-Assertion`, a short-lived JWT signed by the gateway.
    pub identity_assertion: Option<Spanned<bool>>,
    /// TLS to `https://` upstreams: private CA, client certificate, SNI (DESIGN §11).
    pub upstream_tls: Option<Spanned<UpstreamTlsFile>>,
    /// `"http1"` (default), `"h2"` (HTTP/2 over TLS) or `"h2c"` (cleartext HTTP/2).
    pub upstream_protocol: Option<Spanned<String>>,
    /// On a `jwt` route: a verified client certificate is needed as well as the token.
    pub require_client_cert: Option<Spanned<bool>>,
}

/// `rate_limit = { requests, per_seconds, burst, key }` of a route or of `[issuer]`. Signed
/// and optional, so a negative or missing value gets its own message at its place.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RateLimitFile {
    pub requests: Option<Spanned<i64>>,
    pub per_seconds: Option<Spanned<i64>>,
    pub burst: Option<Spanned<i64>>,
    pub key: Option<Spanned<String>>,
}

/// `[rate_limit]`: where the buckets live.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RateLimitStoreFile {
    /// "local" (default) or "redis://host:port[/db]".
    pub store: Option<Spanned<String>>,
}

/// A route's `upstream_tls = { … }`; paths are relative to the route file's directory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsFile {
    pub ca: Option<Spanned<String>>,
    pub client_cert: Option<Spanned<String>>,
    pub client_key: Option<Spanned<String>>,
    pub server_name: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutesFile {
    #[serde(default)]
    pub route: Vec<RouteFile>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let t: TrustFile = toml::from_str(
            "issuer = \"https://i\"\njwks_uri = \"embedded\"\nhs_secret = \"hunter2hunter2hunter2hunter2hunter2\"\n",
        )
        .unwrap();
        assert!(!format!("{t:?}").contains("hunter2"));
        assert_eq!(
            t.hs_secret.unwrap().expose(),
            "hunter2hunter2hunter2hunter2hunter2"
        );
    }
}
