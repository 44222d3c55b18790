//! The `embedded:issuer` upstream: the request is handed to the issuer's router in-process
//! (no socket hop), with the same guard, forwarded headers and request id as any upstream.

use http::header;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};

use super::forwarded::{self, Downstream, X_REQUEST_ID};
use super::guard;
use super::limit::{self, IssuerGate};
use crate::embed::{EmbeddedIssuer, Listener};

/// Largest request body the issuer accepts (forms and JSON).
const MAX_BODY: usize = 64 * 1024;

/// What became of a request for the issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The issuer answered with this status.
    Issuer(u16),
    /// `[issuer] rate_limit` refused it (429).
    RateLimited,
}

/// Serves the request from the embedded issuer, unless `[issuer] rate_limit` refuses it.
pub async fn serve(
    session: &mut Session,
    issuer: &EmbeddedIssuer,
    target: &str,
    d: &Downstream<'_>,
    request_id: &http::HeaderValue,
    gate: IssuerGate<'_>,
) -> Result<Served> {
    let mut body = Vec::new();
    while let Some(chunk) = session.read_request_body().await? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Error::explain(
                ErrorType::HTTPStatus(413),
                "issuer request body too large",
            ));
        }
        body.extend_from_slice(&chunk);
    }
    if limit::issuer_gate(gate, session, target, &body, d, request_id).await? {
        return Ok(Served::RateLimited);
    }
    let mut parts = session.req_header().as_owned_parts();
    forwarded::strip_hop_by_hop(&mut parts.headers, false);
    forwarded::apply(&mut parts.headers, d, None);
    guard::strip_identity_headers(&mut parts.headers);
    parts.headers.insert(X_REQUEST_ID, request_id.clone());
    parts.uri = target
        .parse::<http::Uri>()
        .map_err(|_| Error::explain(ErrorType::HTTPStatus(400), "bad target"))?;
    let req = http::Request::from_parts(parts, axum::body::Body::from(body));
    let resp = issuer
        .call(req, Listener::Public, d.client_ip, false)
        .await
        .map_err(|e| {
            Error::because(ErrorType::HTTPStatus(502), "embedded issuer", e.to_string())
        })?;
    let (mut parts, body) = resp.into_parts();
    let status = parts.status.as_u16();
    // Edited as a plain header map and handed over whole (see `super::headers`): Pingora's
    // `append_header` keeps a second, case-preserving map up to date on every call.
    for hop in [
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONNECTION,
    ] {
        parts.headers.remove(hop);
    }
    parts
        .headers
        .insert(header::CONTENT_LENGTH, http::HeaderValue::from(body.len()));
    parts.headers.insert(X_REQUEST_ID, request_id.clone());
    let out = ResponseHeader::from(parts);
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(out), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(Served::Issuer(status))
}
