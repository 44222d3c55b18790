//! `[[trust]]` blocks: validated from the file schema (every error at its `file:line:col`)
//! into the runtime settings one issuer's tokens are checked with.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, AlgorithmFamily};

use super::claims::{self, ClaimRules, Window};
use super::error::AuthnError;
use super::jwks::JwksRegistry;
use super::jwt::{self, Parsed};
use super::keys::{HS_GENERATION, HsSecret, ResolvedKey};
use super::source::{EmbeddedSource, KeySource};
use super::trace::Trace;
use portcullis_core::config::diag::did_you_mean;
use portcullis_core::config::file::TrustFile;
use portcullis_core::config::{Diagnostics, SourceFile};
use portcullis_core::identity::Principal;
use portcullis_core::keys::EmbeddedKeys;

pub(crate) const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;
const MIN_MAX_TOKEN_BYTES: usize = 1024;
const MAX_MAX_TOKEN_BYTES: usize = 64 * 1024;
const DEFAULT_LEEWAY: u64 = 30;
/// More leeway than this makes `exp` meaningless.
const MAX_LEEWAY: u64 = 300;
/// RFC 7518 §3.2: an HS256 key must be at least as long as the hash.
const MIN_HS_SECRET_BYTES: usize = 32;
const DEFAULT_ALGORITHMS: [&str; 3] = ["RS256", "ES256", "EdDSA"];
/// Every algorithm a trust block may name (HS* only together with `hs_secret`).
const KNOWN_ALGORITHMS: [&str; 12] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256",
    "HS384", "HS512",
];

/// One trusted issuer, ready to check tokens.
pub(crate) struct Trust {
    /// The issuer and what its tokens' claims must say.
    pub rules: ClaimRules,
    pub keys: KeySource,
    pub hs: Option<HsSecret>,
    pub algorithms: Vec<Algorithm>,
    pub max_token_bytes: usize,
}

impl fmt::Debug for Trust {
    /// One flat list of settings, as the block is written (the claim rules are not nested).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.rules;
        f.debug_struct("Trust")
            .field("issuer", &r.issuer)
            .field("keys", &self.keys)
            .field("hs", &self.hs)
            .field("algorithms", &self.algorithms)
            .field("audiences", &r.audiences)
            .field("authorized_parties", &r.authorized_parties)
            .field("leeway", &r.leeway)
            .field("groups_claim", &r.groups_claim)
            .field("roles_claims", &r.roles_claims)
            .field("max_token_bytes", &self.max_token_bytes)
            .finish()
    }
}

/// A token that passed every check.
pub(crate) struct Verified {
    pub principal: Principal,
    pub window: Window,
}

impl Trust {
    /// Checks that need no key: this issuer's size limit and algorithm allow-list.
    pub(crate) fn precheck(&self, token: &str, parsed: &Parsed<'_>) -> Result<(), AuthnError> {
        if token.len() > self.max_token_bytes {
            return Err(AuthnError::TOO_LARGE);
        }
        if !self.algorithms.contains(&parsed.header.alg) {
            return Err(AuthnError::ALG_NOT_ALLOWED);
        }
        Ok(())
    }

    /// Signature, then claims.
    pub(crate) fn verify(
        &self,
        parsed: &Parsed<'_>,
        key: &ResolvedKey<'_>,
        now: u64,
        trace: &mut Trace,
    ) -> Result<Verified, AuthnError> {
        let sig = key
            .key()
            .ok_or(AuthnError::UNKNOWN_KID)
            .and_then(|k| jwt::verify_signature(parsed, k));
        trace.record("signature", sig, || format!("{:?}", parsed.header.alg));
        sig?;
        let (principal, window) = claims::check(&self.rules, &parsed.claims, now, trace)?;
        Ok(Verified { principal, window })
    }

    /// Whether a cache entry made with keys of `generation` may still be trusted.
    pub(crate) fn generation_ok(&self, generation: u64) -> bool {
        generation == HS_GENERATION || generation == self.keys.current_generation()
    }
}

/// Validates every block; `None` when any has an error (all of them are reported).
/// Remote key sources are registered in `jwks`; `embedded` is the in-process issuer's keys.
pub(crate) fn build_all(
    src: &SourceFile,
    blocks: &[TrustFile],
    jwks: &JwksRegistry,
    embedded: Option<&Arc<dyn EmbeddedKeys>>,
    diags: &mut Diagnostics,
) -> Option<Vec<Trust>> {
    let errors_before = diags.errors().count();
    let mut out = Vec::with_capacity(blocks.len());
    for (i, b) in blocks.iter().enumerate() {
        let issuer = b.issuer.get_ref();
        if let Some(first) = blocks.iter().take(i).find(|o| o.issuer.get_ref() == issuer) {
            let (line, _) =
                portcullis_core::config::diag::line_col(&src.text, first.issuer.span().start);
            diags.push(
                src.error(
                    b.issuer.span(),
                    format!("duplicate [[trust]] issuer \"{issuer}\" (first at line {line})"),
                )
                .with_hint("merge the two blocks: one issuer has one trust block"),
            );
            continue;
        }
        if let Some(t) = build_one(src, b, jwks, embedded, diags) {
            out.push(t);
        }
    }
    if diags.errors().count() > errors_before {
        return None;
    }
    Some(out)
}

/// One block, checked setting by setting (every error reported, in the order written).
fn build_one(
    src: &SourceFile,
    b: &TrustFile,
    jwks: &JwksRegistry,
    embedded: Option<&Arc<dyn EmbeddedKeys>>,
    diags: &mut Diagnostics,
) -> Option<Trust> {
    let errors_before = diags.errors().count();
    let issuer = b.issuer.get_ref();
    if issuer.trim().is_empty() || issuer.trim() != issuer {
        diags.push(src.error(
            b.issuer.span(),
            "trust.issuer must be the exact, non-empty `iss` of the tokens",
        ));
    }
    let hs_secret = b.hs_secret.as_ref().map(|s| s.expose());
    let algorithms = algorithms(src, b, hs_secret.is_some(), diags);
    let hs = hs_secret.and_then(|s| hs_key(src, b, s, &algorithms, diags));
    let keys = key_source(src, b, jwks, embedded, diags);
    let (leeway, max_token_bytes) = limits(src, b, diags);
    let (groups_claim, roles_claims) = role_claims(src, b, diags);
    if b.audiences.is_empty() {
        diags.push(src.warning(b.issuer.span(), format!("trust \"{issuer}\" has no audiences: tokens for any client of this issuer are accepted")));
    }

    if diags.errors().count() > errors_before {
        return None;
    }
    Some(Trust {
        rules: ClaimRules {
            issuer: Arc::from(issuer.as_str()),
            audiences: b.audiences.clone(),
            authorized_parties: b.authorized_parties.clone(),
            leeway,
            groups_claim,
            roles_claims,
        },
        keys: keys?,
        hs,
        algorithms,
        max_token_bytes,
    })
}

/// `trust.algorithms`, or the defaults; `none`, unknown names and HS without a secret are errors.
fn algorithms(
    src: &SourceFile,
    b: &TrustFile,
    has_hs_secret: bool,
    diags: &mut Diagnostics,
) -> Vec<Algorithm> {
    let mut algorithms = Vec::new();
    match &b.algorithms {
        Some(list) if list.is_empty() => diags.push(
            src.error(
                b.issuer.span(),
                "trust.algorithms is empty: no token could be accepted",
            )
            .with_hint("e.g. algorithms = [\"RS256\"], or leave it out for RS256, ES256, EdDSA"),
        ),
        Some(list) => {
            for a in list {
                let name = a.get_ref().as_str();
                if name.eq_ignore_ascii_case("none") {
                    diags.push(src.error(
                        a.span(),
                        "algorithm \"none\" is never accepted: unsigned tokens prove nothing",
                    ));
                    continue;
                }
                let Some(alg) = parse_alg(name) else {
                    let mut d = src.error(a.span(), format!("unknown algorithm \"{name}\""));
                    d = match did_you_mean(name, KNOWN_ALGORITHMS) {
                        Some(h) => d.with_hint(h),
                        None => d.with_hint(format!("use one of {}", KNOWN_ALGORITHMS.join(", "))),
                    };
                    diags.push(d);
                    continue;
                };
                if alg.family() == AlgorithmFamily::Hmac && !has_hs_secret {
                    diags.push(
                        src.error(a.span(), format!("algorithm \"{name}\" needs trust.hs_secret"))
                            .with_hint("HS algorithms are accepted only with an explicit shared secret; prefer RS256/ES256 with a JWKS"),
                    );
                    continue;
                }
                if !algorithms.contains(&alg) {
                    algorithms.push(alg);
                }
            }
        }
        None => algorithms.extend(DEFAULT_ALGORITHMS.iter().filter_map(|n| parse_alg(n))),
    }
    algorithms
}

/// The `hs_secret`'s key: an error when too short, a warning when no HS algorithm uses it.
fn hs_key(
    src: &SourceFile,
    b: &TrustFile,
    secret: &str,
    algorithms: &[Algorithm],
    diags: &mut Diagnostics,
) -> Option<HsSecret> {
    let issuer = b.issuer.get_ref();
    if secret.len() < MIN_HS_SECRET_BYTES {
        diags.push(src.error(
            b.issuer.span(),
            format!(
                "trust.hs_secret of issuer \"{issuer}\" is shorter than {MIN_HS_SECRET_BYTES} bytes"
            ),
        ));
        return None;
    }
    if !algorithms
        .iter()
        .any(|a| a.family() == AlgorithmFamily::Hmac)
    {
        diags.push(src.warning(
            b.issuer.span(),
            "trust.hs_secret is set but no HS algorithm is allowed; it is unused",
        ));
    }
    Some(HsSecret::new(secret))
}

/// `leeway_seconds` and `max_token_bytes`, defaulted and bounds-checked.
fn limits(src: &SourceFile, b: &TrustFile, diags: &mut Diagnostics) -> (u64, usize) {
    let leeway = b.leeway_seconds.unwrap_or(DEFAULT_LEEWAY);
    if leeway > MAX_LEEWAY {
        diags.push(
            src.error(
                b.issuer.span(),
                format!("trust.leeway_seconds = {leeway} is more than {MAX_LEEWAY}"),
            )
            .with_hint("clock skew needs seconds, not minutes; 30 is usual"),
        );
    }
    let max_token_bytes = b.max_token_bytes.unwrap_or(DEFAULT_MAX_TOKEN_BYTES);
    if !(MIN_MAX_TOKEN_BYTES..=MAX_MAX_TOKEN_BYTES).contains(&max_token_bytes) {
        diags.push(src.error(b.issuer.span(), format!("trust.max_token_bytes = {max_token_bytes} is outside {MIN_MAX_TOKEN_BYTES}..={MAX_MAX_TOKEN_BYTES}")));
    }
    (leeway, max_token_bytes)
}

/// `groups_claim` and `roles_claims`, defaulted; each must be a claim name or a dotted path.
fn role_claims(src: &SourceFile, b: &TrustFile, diags: &mut Diagnostics) -> (String, Vec<String>) {
    let groups_claim = b
        .groups_claim
        .clone()
        .unwrap_or_else(|| "groups".to_string());
    let roles_claims = b
        .roles_claims
        .clone()
        .unwrap_or_else(|| vec!["realm_access.roles".to_string()]);
    if groups_claim.is_empty()
        || roles_claims
            .iter()
            .any(|r| r.is_empty() || r.starts_with('.') || r.ends_with('.'))
    {
        diags.push(src.error(b.issuer.span(), "trust.groups_claim and trust.roles_claims must be claim names or dotted paths like \"realm_access.roles\""));
    }
    (groups_claim, roles_claims)
}

fn parse_alg(name: &str) -> Option<Algorithm> {
    if !KNOWN_ALGORITHMS.contains(&name) {
        return None;
    }
    name.parse().ok()
}

fn key_source(
    src: &SourceFile,
    b: &TrustFile,
    jwks: &JwksRegistry,
    embedded: Option<&Arc<dyn EmbeddedKeys>>,
    diags: &mut Diagnostics,
) -> Option<KeySource> {
    let uri = b.jwks_uri.get_ref();
    let span = b.jwks_uri.span();
    if uri == "embedded" {
        return match embedded {
            Some(p) => Some(KeySource::Embedded(EmbeddedSource::new(Arc::clone(p)))),
            None => {
                diags.push(
                    src.error(
                        span,
                        "jwks_uri = \"embedded\" but the embedded issuer is not enabled",
                    )
                    .with_hint("enable [issuer], or give the issuer's https JWKS URL"),
                );
                None
            }
        };
    }
    match check_jwks_uri(uri) {
        Ok(()) => Some(KeySource::Remote(jwks.source(uri, b.issuer.get_ref()))),
        Err((msg, hint)) => {
            diags.push(
                src.error(span, format!("jwks_uri \"{uri}\": {msg}"))
                    .with_hint(hint),
            );
            None
        }
    }
}

/// `https://` anywhere; `http://` only to loopback or private addresses (keys fetched in the
/// clear from the internet could be swapped by anyone on the path).
pub(crate) fn check_jwks_uri(uri: &str) -> Result<(), (&'static str, &'static str)> {
    let hint = "use \"embedded\", an https:// URL, or http:// to a loopback or private address";
    let url = url::Url::parse(uri).map_err(|_| ("not a URL", hint))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(("credentials in the URL are not allowed", hint));
    }
    let host = url.host().ok_or(("the URL has no host", hint))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let local = match host {
                url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
                url::Host::Ipv4(ip) => is_local(IpAddr::V4(ip)),
                url::Host::Ipv6(ip) => is_local(IpAddr::V6(ip)),
            };
            if local {
                Ok(())
            } else {
                Err((
                    "plain http is only allowed to loopback or private addresses",
                    hint,
                ))
            }
        }
        _ => Err((
            "the scheme must be https (or http on a private network)",
            hint,
        )),
    }
}

fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|m| m.is_loopback() || m.is_private())
        }
    }
}
