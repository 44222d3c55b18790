//! The guard: what is refused before routing (framing, oversized headers, non-origin targets,
//! dangerous paths, blocked prefixes) and the refusal each error turns into.

use std::borrow::Cow;

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType};

use super::forwarded::X_REQUEST_ID;
use portcullis_core::normalize::{PathError, normalize_path};

/// A response the gateway gives instead of proxying.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    /// The JSON `error` code.
    pub error: &'static str,
    pub description: Cow<'static, str>,
    /// Reason for the audit line.
    pub reason: &'static str,
    /// Label for `portcullis_guard_refusals_total`, when the guard refused.
    pub guard_label: Option<&'static str>,
    /// `WWW-Authenticate` value for 401/403.
    pub www_authenticate: Option<String>,
}

impl Refusal {
    fn guard(
        status: u16,
        error: &'static str,
        reason: &'static str,
        description: &'static str,
    ) -> Self {
        Refusal {
            status,
            error,
            description: Cow::Borrowed(description),
            reason,
            guard_label: Some(reason),
            www_authenticate: None,
        }
    }

    pub fn bad_path(e: PathError) -> Self {
        Self::guard(400, "bad_request", e.reason(), e.description())
    }

    pub fn blocked() -> Self {
        Self::guard(404, "not_found", "blocked_prefix", "no route for this path")
    }

    pub fn no_route() -> Self {
        Refusal {
            guard_label: None,
            ..Self::guard(404, "not_found", "no_route", "no route for this path")
        }
    }

    /// 401: no valid token. RFC 6750 error code plus a short, internals-free description.
    /// A missing token gets the error code too: DESIGN §6 asks for one header format for every
    /// 401, and RFC 6750 §3.1 only advises (SHOULD NOT) against it.
    pub fn unauthorized(reason: &'static str, description: &'static str) -> Self {
        let www = format!(
            "Bearer realm=\"portcullis\", error=\"invalid_token\", error_description=\"{description}\""
        );
        Refusal {
            status: 401,
            error: "invalid_token",
            description: Cow::Borrowed(description),
            reason,
            guard_label: None,
            www_authenticate: Some(www),
        }
    }

    /// 403: a valid token, but no rule allows this route and method.
    pub fn forbidden(reason: &'static str) -> Self {
        let description = "the token does not grant access to this resource";
        Refusal {
            status: 403,
            error: "insufficient_scope",
            description: Cow::Borrowed(description),
            reason,
            guard_label: None,
            www_authenticate: Some(format!(
                "Bearer realm=\"portcullis\", error=\"insufficient_scope\", error_description=\"{description}\""
            )),
        }
    }

    pub fn upstream(status: u16, reason: &'static str, description: &'static str) -> Self {
        Refusal {
            status,
            error: match status {
                504 => "upstream_timeout",
                400 => "bad_request",
                408 => "request_timeout",
                413 => "payload_too_large",
                _ => "bad_gateway",
            },
            description: Cow::Borrowed(description),
            reason,
            guard_label: None,
            www_authenticate: None,
        }
    }
}

/// Refuses requests whose framing a back end could read differently than the gateway:
/// CONNECT, both Content-Length and Transfer-Encoding, and header blocks over the limit.
/// (Pingora itself answers 400 to an invalid Content-Length and to a header block over 1 MiB.)
pub fn check_framing(session: &Session, max_header_bytes: usize) -> Result<(), Refusal> {
    let req = session.req_header();
    if req.method == http::Method::CONNECT {
        return Err(Refusal::guard(
            400,
            "bad_request",
            "connect",
            "CONNECT is not supported",
        ));
    }
    if let Some(h1) = session.as_downstream().as_http1() {
        let raw = h1.get_headers_raw_bytes();
        if raw.len() > max_header_bytes {
            return Err(Refusal::guard(
                431,
                "request_header_fields_too_large",
                "header_too_large",
                "request header block is too large",
            ));
        }
        // Pingora drops Content-Length when Transfer-Encoding is present; the raw bytes still
        // show the smuggling attempt, which is refused rather than repaired.
        if req.headers.contains_key(TRANSFER_ENCODING)
            && raw_has_header(&raw, CONTENT_LENGTH.as_str())
        {
            return Err(Refusal::guard(
                400,
                "bad_request",
                "cl_and_te",
                "both Content-Length and Transfer-Encoding",
            ));
        }
    } else {
        let size: usize = req
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>()
            + req.uri.path().len();
        if size > max_header_bytes {
            return Err(Refusal::guard(
                431,
                "request_header_fields_too_large",
                "header_too_large",
                "request header block is too large",
            ));
        }
    }
    Ok(())
}

/// True when a raw HTTP/1 header block has a line starting with `name:` (any case).
fn raw_has_header(raw: &[u8], name: &str) -> bool {
    raw.split(|&b| b == b'\n').skip(1).any(|line| {
        line.len() > name.len()
            && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
            && matches!(line[name.len()], b':' | b' ' | b'\t')
    })
}

/// The normalized path of an origin-form target, and whether it differs from what was sent.
pub fn normalized_target(
    req: &RequestHeader,
    is_h2: bool,
) -> Result<(Cow<'_, str>, bool), Refusal> {
    // HTTP/2 always carries :scheme and :authority; in HTTP/1 they mean absolute-form.
    if !is_h2 && (req.uri.scheme().is_some() || req.uri.authority().is_some()) {
        return Err(Refusal::guard(
            400,
            "bad_request",
            "absolute_form",
            "absolute-form request targets are not accepted",
        ));
    }
    let path = req.uri.path();
    // The http crate turns "*" or an empty path into "/"; the raw target tells the truth.
    let raw = req.raw_path();
    if raw.first() != Some(&b'/') {
        return Err(Refusal::bad_path(PathError::NotOriginForm));
    }
    let n = normalize_path(path).map_err(Refusal::bad_path)?;
    let changed = matches!(n, Cow::Owned(_));
    Ok((n, changed))
}

/// Removes client-sent identity headers: the four the gateway sets and every other
/// `X-Auth-Request-*` (oauth2-proxy also sends `-Access-Token` and `-Preferred-Username`, and
/// back ends written for it trust them), `X-Forwarded-Client-Cert` (the verified client
/// certificate, `mtls::forward`) and `X-Portcullis-Assertion` (the signed identity assertion,
/// `session::edit_upstream`). One pass over the names present, not a hashed removal per name:
/// this runs on every request and the headers are almost never there.
pub fn strip_identity_headers(req: &mut http::HeaderMap) {
    super::forwarded::remove_matching(req, is_identity_header);
}

fn is_identity_header(name: &str) -> bool {
    name.starts_with("x-auth-request-")
        || name == portcullis_core::forwarded::X_FORWARDED_CLIENT_CERT.as_str()
        || name == crate::session::assertion::HEADER
}

/// The request id, made once per request as the header value it is sent as (upstream, to the
/// client) and read back as text (audit line, error bodies): a trusted proxy's
/// `X-Request-Id` is kept, otherwise a new random one.
pub fn request_id(session: &Session, from_trusted_proxy: bool) -> http::HeaderValue {
    if from_trusted_proxy
        && let Some(v) = session.req_header().headers.get(&X_REQUEST_ID)
        && !v.is_empty()
        && v.len() <= 128
        && v.as_bytes().iter().all(|b| b.is_ascii_graphic())
    {
        return v.clone();
    }
    // Hex digits are always a valid header value; made from the digits on the stack (one
    // allocation, not a `String` and then the value's copy of it).
    http::HeaderValue::from_bytes(&request_id_digits())
        .unwrap_or(http::HeaderValue::from_static("-"))
}

/// 128 random bits as 32 lowercase hex digits (without `fmt`: this runs on every request).
pub fn new_request_id() -> String {
    std::str::from_utf8(&request_id_digits())
        .map(str::to_owned)
        .unwrap_or_default()
}

fn request_id_digits() -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = rand::random::<u128>();
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = HEX[((n >> (124 - 4 * i)) & 0xf) as usize];
    }
    out
}

/// The status and body for an error Pingora raised while proxying.
pub fn refusal_for_error(e: &Error) -> Refusal {
    match e.etype() {
        ErrorType::HTTPStatus(code) => match *code {
            404 => Refusal::no_route(),
            502 => Refusal::upstream(502, "no_upstream", "no upstream answered"),
            c => Refusal::upstream(c, "error", "request failed"),
        },
        ErrorType::ConnectTimedout
        | ErrorType::ReadTimedout
        | ErrorType::WriteTimedout
        | ErrorType::TLSHandshakeTimedout
            if e.esource() == &ErrorSource::Upstream =>
        {
            Refusal::upstream(504, "upstream_timeout", "upstream did not answer in time")
        }
        _ => match e.esource() {
            ErrorSource::Upstream => {
                Refusal::upstream(502, "upstream_error", "no upstream answered")
            }
            ErrorSource::Downstream => match e.etype() {
                ErrorType::ReadTimedout => {
                    Refusal::upstream(408, "client_timeout", "request body not received in time")
                }
                ErrorType::WriteError
                | ErrorType::ReadError
                | ErrorType::ConnectionClosed
                | ErrorType::WriteTimedout => Refusal {
                    status: 0,
                    ..Refusal::upstream(400, "client_gone", "connection closed")
                },
                _ => Refusal::upstream(400, "bad_request", "malformed request"),
            },
            _ => Refusal::upstream(502, "internal_error", "request failed"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_401_names_the_error_in_www_authenticate() {
        for e in [
            portcullis_authn::AuthnError::MISSING_TOKEN,
            portcullis_authn::AuthnError::EXPIRED,
        ] {
            let r = Refusal::unauthorized(e.reason, e.description);
            assert_eq!(
                r.www_authenticate.as_deref(),
                Some(
                    format!(
                        "Bearer realm=\"portcullis\", error=\"invalid_token\", error_description=\"{}\"",
                        e.description
                    )
                    .as_str()
                )
            );
        }
    }

    #[test]
    fn raw_header_scan_finds_content_length_in_any_case() {
        let raw = b"POST / HTTP/1.1\r\nHost: a\r\ncOnTeNt-LeNgTh: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(raw_has_header(raw, "content-length"));
        let raw = b"POST /content-length: HTTP/1.1\r\nX-Content-Length: 5\r\n\r\n";
        assert!(!raw_has_header(raw, "content-length"));
    }

    /// Found by the `forwarded_headers` fuzz target: a client's `X-Auth-Request-Access-Token`
    /// reached the upstream (only the four headers the gateway sets were removed).
    #[test]
    fn every_client_x_auth_request_header_is_removed() {
        let mut h = http::HeaderMap::new();
        for (k, v) in [
            ("x-auth-request-access-token", "tok"),
            ("X-Auth-Request-Preferred-Username", "root"),
            ("x-auth-request-user", "root"),
            ("x-auth-request", "kept: not the family"),
            ("x-custom", "kept"),
            ("X-Forwarded-Client-Cert", "Hash=forged"),
            ("x-portcullis-assertion", "forged"),
            ("x-forwarded-client-cert-extra", "kept: another name"),
        ] {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_static(v),
            );
        }
        strip_identity_headers(&mut h);
        let mut left: Vec<&str> = h.keys().map(http::HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(
            left,
            [
                "x-auth-request",
                "x-custom",
                "x-forwarded-client-cert-extra"
            ]
        );
    }

    #[test]
    fn request_ids_are_32_hex_digits_and_differ() {
        let a = new_request_id();
        let b = new_request_id();
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }
}
