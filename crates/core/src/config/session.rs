//! `[session]` (DESIGN §10): the settings of browser sign-in at the gateway, validated from the
//! file schema with every problem at its `file:line:col`. The cookie keys themselves are read by
//! the gateway (they are re-read on every reload); here only their path is settled.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::{SecretString, SessionFile};
use super::{Diagnostics, SourceFile, resolve};

/// Where the gateway signs people in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionProvider {
    /// A realm of the embedded issuer (`embedded:REALM`), called in process.
    Embedded { realm: String },
    /// Any OpenID provider, by its discovery document at `{issuer}/.well-known/openid-configuration`.
    Discovery { issuer: String },
}

/// Where a session lives between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStore {
    /// Sealed into the browser's cookie (split into numbered cookies past ~4 KB).
    Cookie,
    /// In the issuer's database; the cookie only names it, so ending it ends it everywhere.
    Database,
}

/// The validated `[session]` section.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub provider: SessionProvider,
    pub client_id: String,
    /// With `${VAR}` substituted; `None`: a public client (PKCE alone).
    pub client_secret: Option<SecretString>,
    pub scopes: Vec<String>,
    pub cookie_name: String,
    /// The keys file, resolved against the config file's directory.
    pub cookie_keys: PathBuf,
    pub idle_timeout: Duration,
    pub max_lifetime: Duration,
    pub store: SessionStore,
    pub provider_ca: Option<PathBuf>,
}

pub const DEFAULT_COOKIE_NAME: &str = "__Host-portcullis";
pub const DEFAULT_COOKIE_KEYS: &str = "certs/session-keys";
const DEFAULT_IDLE: u64 = 1800;
const DEFAULT_MAX_LIFETIME: u64 = 43_200;
/// Shorter sessions would end while someone is still typing a password at the provider.
const MIN_SECONDS: u64 = 60;
/// Thirty days: longer-lived browser sessions belong to the provider's own SSO session.
const MAX_SECONDS: u64 = 30 * 86_400;
/// Room for the chunk and pre-auth suffixes within browsers' cookie-name limits.
const MAX_COOKIE_NAME: usize = 64;

/// Validates `[session]`. `issuer_enabled`: whether `embedded:REALM` and `store = "database"`
/// have an issuer to use.
pub(super) fn validate(
    src: &SourceFile,
    s: &SessionFile,
    issuer_enabled: bool,
    base_dir: &Path,
    diags: &mut Diagnostics,
) -> SessionSettings {
    let provider = provider(src, s, issuer_enabled, diags);
    let (idle_timeout, max_lifetime) = lifetimes(src, s, diags);
    let store = store(src, s, issuer_enabled, diags);
    SessionSettings {
        client_id: client_id(src, s, diags),
        client_secret: client_secret(src, s, &|v| std::env::var(v).ok(), diags),
        scopes: scopes(src, s, diags),
        cookie_name: cookie_name(src, s, diags),
        cookie_keys: resolve(
            base_dir,
            s.cookie_keys
                .as_ref()
                .map_or(DEFAULT_COOKIE_KEYS, |k| k.get_ref()),
        ),
        provider_ca: provider_ca(src, s, &provider, base_dir, diags),
        provider,
        idle_timeout,
        max_lifetime,
        store,
    }
}

fn provider(
    src: &SourceFile,
    s: &SessionFile,
    issuer_enabled: bool,
    diags: &mut Diagnostics,
) -> SessionProvider {
    let raw = s.provider.get_ref().trim();
    let span = s.provider.span();
    if let Some(realm) = raw.strip_prefix("embedded:") {
        let valid = !realm.is_empty()
            && realm
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid {
            diags.push(
                src.error(
                    span.clone(),
                    format!("session.provider = \"{raw}\": \"{realm}\" is not a realm name"),
                )
                .with_hint("write embedded:REALM, e.g. \"embedded:myrealm\""),
            );
        }
        if !issuer_enabled {
            diags.push(
                src.error(
                    span,
                    format!("session.provider = \"{raw}\" but the embedded issuer is not enabled"),
                )
                .with_hint("add an [issuer] section, or name an external provider's issuer URL"),
            );
        }
        return SessionProvider::Embedded {
            realm: realm.to_string(),
        };
    }
    if let Err(why) = check_issuer_url(raw) {
        diags.push(
            src.error(span, format!("session.provider = \"{raw}\": {why}"))
                .with_hint("write \"embedded:REALM\" or the provider's issuer URL, e.g. \"https://sso.example.com/realms/main\""),
        );
    }
    // Kept exactly as written: the ID token's `iss` must equal it (OpenID Connect Core §3.1.3.7).
    SessionProvider::Discovery {
        issuer: raw.to_string(),
    }
}

/// An issuer URL: https, or http to a loopback or private address (codes and tokens cross it).
fn check_issuer_url(raw: &str) -> Result<(), &'static str> {
    let url = url::Url::parse(raw).map_err(|_| "not a URL")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not allowed");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("an issuer URL has no query or fragment");
    }
    let local = match url.host() {
        None => return Err("the URL has no host"),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_private(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || (ip.segments()[0] & 0xfe00) == 0xfc00,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if local => Ok(()),
        "http" => Err("plain http is only allowed to loopback or private addresses"),
        _ => Err("the scheme must be https"),
    }
}

fn client_id(src: &SourceFile, s: &SessionFile, diags: &mut Diagnostics) -> String {
    let id = s.client_id.get_ref();
    if id.is_empty() || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        diags.push(src.error(
            s.client_id.span(),
            format!("session.client_id = \"{id}\" is not a client id"),
        ));
    }
    id.clone()
}

/// The secret with `${VAR}` and `${VAR:default}` taken from `env`; an unset variable without a
/// default is an error (a secret silently left as the text `${VAR}` would fail every sign-in).
fn client_secret(
    src: &SourceFile,
    s: &SessionFile,
    env: &dyn Fn(&str) -> Option<String>,
    diags: &mut Diagnostics,
) -> Option<SecretString> {
    let raw = s.client_secret.as_ref()?;
    match substitute_env(raw.get_ref().expose(), env) {
        Ok(v) if v.is_empty() => {
            diags.push(
                src.error(raw.span(), "session.client_secret is empty")
                    .with_hint("leave it out for a public client, or set the secret"),
            );
            None
        }
        Ok(v) => Some(SecretString::new(v)),
        Err(var) => {
            diags.push(
                src.error(
                    raw.span(),
                    format!("session.client_secret: environment variable {var} is not set"),
                )
                .with_hint(format!("export {var}, or write ${{{var}:default}}")),
            );
            None
        }
    }
}

/// `s` with every `${VAR}` / `${VAR:default}` replaced; `Err(VAR)` names an unset variable.
pub fn substitute_env(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(':') {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match env(name).or_else(|| default.map(str::to_string)) {
            Some(v) => out.push_str(&v),
            None => return Err(name.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn scopes(src: &SourceFile, s: &SessionFile, diags: &mut Diagnostics) -> Vec<String> {
    let Some(list) = &s.scopes else {
        return ["openid", "profile", "email"].map(String::from).to_vec();
    };
    let mut out = Vec::new();
    for scope in list.get_ref() {
        let v = scope.get_ref();
        if v.is_empty()
            || !v
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        {
            diags.push(src.error(
                scope.span(),
                format!("session.scopes: \"{v}\" is not a scope"),
            ));
        } else if !out.contains(v) {
            out.push(v.clone());
        }
    }
    if !out.iter().any(|s| s == "openid") {
        diags.push(
            src.error(list.span(), "session.scopes must include \"openid\"")
                .with_hint("without it the provider issues no ID token to sign in with"),
        );
    }
    out
}

fn cookie_name(src: &SourceFile, s: &SessionFile, diags: &mut Diagnostics) -> String {
    let Some(name) = &s.cookie_name else {
        return DEFAULT_COOKIE_NAME.to_string();
    };
    let n = name.get_ref();
    // RFC 6265's cookie-name is an RFC 2616 token.
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if n.is_empty() || n.len() > MAX_COOKIE_NAME || !n.bytes().all(token) {
        diags.push(
            src.error(name.span(), format!("session.cookie_name = \"{n}\" is not a cookie name"))
                .with_hint(format!("up to {MAX_COOKIE_NAME} letters, digits and -_.!#$%&'*+^`|~, e.g. \"{DEFAULT_COOKIE_NAME}\"")),
        );
    }
    n.clone()
}

fn lifetimes(src: &SourceFile, s: &SessionFile, diags: &mut Diagnostics) -> (Duration, Duration) {
    let mut seconds = |v: &Option<toml::Spanned<u64>>, default: u64, key: &str| match v {
        None => default,
        Some(v) if !(MIN_SECONDS..=MAX_SECONDS).contains(v.get_ref()) => {
            diags.push(src.error(
                v.span(),
                format!("session.{key} must be between {MIN_SECONDS} and {MAX_SECONDS} (30 days)"),
            ));
            default
        }
        Some(v) => *v.get_ref(),
    };
    let idle = seconds(
        &s.idle_timeout_seconds,
        DEFAULT_IDLE,
        "idle_timeout_seconds",
    );
    let max = seconds(
        &s.max_lifetime_seconds,
        DEFAULT_MAX_LIFETIME,
        "max_lifetime_seconds",
    );
    if idle > max {
        let span = s
            .idle_timeout_seconds
            .as_ref()
            .or(s.max_lifetime_seconds.as_ref())
            .map_or(0..0, |v| v.span());
        diags.push(src.error(
            span,
            format!(
                "session.idle_timeout_seconds = {idle} is longer than max_lifetime_seconds = {max}"
            ),
        ));
    }
    (Duration::from_secs(idle), Duration::from_secs(max))
}

fn store(
    src: &SourceFile,
    s: &SessionFile,
    issuer_enabled: bool,
    diags: &mut Diagnostics,
) -> SessionStore {
    let Some(v) = &s.store else {
        return SessionStore::Cookie;
    };
    match v.get_ref().as_str() {
        "cookie" => SessionStore::Cookie,
        "database" => {
            if !issuer_enabled {
                diags.push(
                    src.error(v.span(), "session.store = \"database\" keeps sessions in the issuer's database, and [issuer] is not enabled")
                        .with_hint("add an [issuer] section, or use store = \"cookie\""),
                );
            }
            SessionStore::Database
        }
        other => {
            diags.push(
                src.error(
                    v.span(),
                    format!("session.store = \"{other}\" is not a session store"),
                )
                .with_hint("use \"cookie\" or \"database\""),
            );
            SessionStore::Cookie
        }
    }
}

fn provider_ca(
    src: &SourceFile,
    s: &SessionFile,
    provider: &SessionProvider,
    base_dir: &Path,
    diags: &mut Diagnostics,
) -> Option<PathBuf> {
    let ca = s.provider_ca.as_ref()?;
    let path = resolve(base_dir, ca.get_ref());
    if matches!(provider, SessionProvider::Embedded { .. }) {
        diags.push(src.warning(
            ca.span(),
            "session.provider_ca is unused: the embedded issuer is called in process",
        ));
    } else if !path.is_file() {
        diags.push(
            src.error(
                ca.span(),
                format!("session.provider_ca: {} does not exist", path.display()),
            )
            .with_hint("point it at a PEM file of the CA certificates that sign the provider's"),
        );
    }
    Some(path)
}

#[cfg(test)]
mod tests;
