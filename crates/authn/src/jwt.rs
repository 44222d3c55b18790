//! The token itself: the `Authorization` header, the JWS compact form, the header, the signature.
//!
//! Parsing is strict: exactly three base64url segments without padding, a JSON header whose
//! `alg` is a known signature algorithm (`none` never is), no `crit`. The header's `jku`,
//! `jwk`, `x5u` and `x5c` are noted for `explain` and otherwise ignored: keys only ever come
//! from the trust block's own key source.
//!
//! It imports only `error`: it knows nothing of keys, issuers or `explain`. The parsers are public
//! so the fuzz targets can feed them arbitrary bytes.

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

use super::error::AuthnError;

/// Longest accepted `kid`; real ones are short ids or thumbprints.
const MAX_KID_BYTES: usize = 256;

/// The bearer token of an `Authorization` header value. The scheme is case-insensitive;
/// the size (at most `max_token_bytes`) is checked before anything is decoded.
pub fn bearer_token(
    authorization: Option<&[u8]>,
    max_token_bytes: usize,
) -> Result<&str, AuthnError> {
    let value = authorization.ok_or(AuthnError::MISSING_TOKEN)?.trim_ascii();
    let split = value
        .iter()
        .position(|b| *b == b' ' || *b == b'\t')
        .ok_or(AuthnError::MISSING_TOKEN)?;
    let (scheme, rest) = value.split_at(split);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(AuthnError::MISSING_TOKEN);
    }
    let token = rest.trim_ascii_start();
    if token.is_empty() {
        return Err(AuthnError::MISSING_TOKEN);
    }
    if token.len() > max_token_bytes {
        return Err(AuthnError::TOO_LARGE);
    }
    let token = std::str::from_utf8(token).map_err(|_| AuthnError::MALFORMED)?;
    Ok(token)
}

/// Refuses anything but base64url segments and dots. Checked before any decoding, but after
/// the verified-token cache: an exact hit is a token that already passed this.
pub fn check_charset(token: &str) -> Result<(), AuthnError> {
    if token.bytes().all(|b| is_b64url(b) || b == b'.') {
        Ok(())
    } else {
        Err(AuthnError::MALFORMED)
    }
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// The header fields we act on.
#[derive(Debug, Clone)]
pub struct Header {
    /// The signature algorithm (never `none`).
    pub alg: Algorithm,
    /// The key id, at most 256 bytes.
    pub kid: Option<String>,
    /// Header fields that name keys or key locations; never used, listed by `explain`.
    pub ignored: Vec<&'static str>,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
    #[serde(default)]
    jku: Option<IgnoredAny>,
    #[serde(default)]
    jwk: Option<IgnoredAny>,
    #[serde(default)]
    x5u: Option<IgnoredAny>,
    #[serde(default)]
    x5c: Option<IgnoredAny>,
}

/// A token split and decoded, not yet verified.
pub struct Parsed<'a> {
    /// The decoded, checked header.
    pub header: Header,
    /// `header.payload`, the signed bytes.
    pub message: &'a str,
    /// The third segment, still base64url.
    pub signature: &'a str,
    /// The payload's claims, unverified.
    pub claims: Map<String, Value>,
}

impl Parsed<'_> {
    /// The unverified `iss`, only ever used to choose which trust block verifies the token.
    pub fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }
}

/// The three segments of a compact JWS (header and payload non-empty; the signature may be).
pub fn segments(token: &str) -> Result<(&str, &str, &str), AuthnError> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) if !h.is_empty() && !p.is_empty() => Ok((h, p, s)),
        _ => Err(AuthnError::MALFORMED),
    }
}

fn b64_json<T: for<'de> Deserialize<'de>>(segment: &str) -> Result<T, AuthnError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| AuthnError::MALFORMED)?;
    serde_json::from_slice(&bytes).map_err(|_| AuthnError::MALFORMED)
}

/// Decodes and checks the header: a known signature `alg`, a sane `kid`, no `crit`.
pub fn parse_header(segment: &str) -> Result<Header, AuthnError> {
    let raw: RawHeader = b64_json(segment)?;
    if raw.alg.eq_ignore_ascii_case("none") {
        return Err(AuthnError::ALG_NOT_ALLOWED);
    }
    let alg = Algorithm::from_str(&raw.alg).map_err(|_| AuthnError::ALG_NOT_ALLOWED)?;
    // RFC 7515 §4.1.11: a `crit` we don't understand makes the token invalid; we understand none.
    if raw.crit.is_some() {
        return Err(AuthnError::MALFORMED);
    }
    if raw.kid.as_ref().is_some_and(|k| k.len() > MAX_KID_BYTES) {
        return Err(AuthnError::MALFORMED);
    }
    let mut ignored = Vec::new();
    for (present, name) in [
        (raw.jku.is_some(), "jku"),
        (raw.jwk.is_some(), "jwk"),
        (raw.x5u.is_some(), "x5u"),
        (raw.x5c.is_some(), "x5c"),
    ] {
        if present {
            ignored.push(name);
        }
    }
    Ok(Header {
        alg,
        kid: raw.kid,
        ignored,
    })
}

/// Splits and decodes a token (header and claims), verifying nothing yet.
///
/// ```
/// use portcullis_authn::jwt;
///
/// let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2lkcC50ZXN0In0.c2ln";
/// let parsed = jwt::parse(token).unwrap();
/// assert_eq!(format!("{:?}", parsed.header.alg), "RS256");
/// assert_eq!(parsed.header.kid.as_deref(), Some("k1"));
/// assert_eq!(parsed.issuer(), Some("https://idp.test"));
/// assert_eq!(parsed.signature, "c2ln");
/// ```
pub fn parse(token: &str) -> Result<Parsed<'_>, AuthnError> {
    let (h, p, signature) = segments(token)?;
    let header = parse_header(h)?;
    let claims: Map<String, Value> = b64_json(p)?;
    let message = token
        .get(..h.len() + 1 + p.len())
        .ok_or(AuthnError::MALFORMED)?;
    Ok(Parsed {
        header,
        message,
        signature,
        claims,
    })
}

/// Verifies the signature over `header.payload` with the chosen key and the header's `alg`.
pub(crate) fn verify_signature(parsed: &Parsed<'_>, key: &DecodingKey) -> Result<(), AuthnError> {
    if parsed.signature.is_empty() {
        return Err(AuthnError::BAD_SIGNATURE);
    }
    // The key's family was matched to `alg` when it was chosen; the crypto provider checks again.
    match jsonwebtoken::crypto::verify(
        parsed.signature,
        parsed.message.as_bytes(),
        key,
        parsed.header.alg,
    ) {
        Ok(true) => Ok(()),
        Ok(false) => Err(AuthnError::BAD_SIGNATURE),
        Err(e) => match e.kind() {
            jsonwebtoken::errors::ErrorKind::Base64(_) => Err(AuthnError::MALFORMED),
            _ => Err(AuthnError::BAD_SIGNATURE),
        },
    }
}
