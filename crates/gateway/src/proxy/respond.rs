//! Responses the gateway writes itself: JSON error bodies with the request id, never internals.

use bytes::Bytes;
use http::header;
use pingora::Result;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use serde::Serialize;

use super::forwarded::X_REQUEST_ID;
use super::guard::Refusal;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
    request_id: &'a str,
}

/// The JSON body of an error response.
pub fn error_body(error: &str, description: &str, request_id: &str) -> Vec<u8> {
    serde_json::to_vec(&ErrorBody {
        error,
        error_description: description,
        request_id,
    })
    .unwrap_or_default()
}

/// Writes a refusal as a complete JSON response.
pub async fn refusal(session: &mut Session, r: &Refusal, request_id: &str) -> Result<()> {
    let body = error_body(r.error, &r.description, request_id);
    let mut resp = ResponseHeader::build(r.status, Some(6))?;
    resp.insert_header(header::CONTENT_TYPE, "application/json")?;
    resp.insert_header(header::CONTENT_LENGTH, body.len().to_string())?;
    resp.insert_header(header::CACHE_CONTROL, "no-store")?;
    resp.insert_header(X_REQUEST_ID, request_id)?;
    if let Some(w) = &r.www_authenticate {
        resp.insert_header(header::WWW_AUTHENTICATE, w.as_str())?;
    }
    if r.status >= 400 && r.status != 401 && r.status != 403 && r.status != 404 {
        // After a framing or timeout error the connection's state is unknown.
        resp.insert_header(header::CONNECTION, "close")?;
        session.set_keepalive(None);
    }
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::from(body)), true)
        .await?;
    Ok(())
}

/// Status codes as static label strings (no allocation per request); specific codes first,
/// then their class.
#[allow(clippy::match_overlapping_arm)]
pub fn status_label(status: u16) -> &'static str {
    match status {
        0 => "0",
        101 => "101",
        200 => "200",
        201 => "201",
        204 => "204",
        206 => "206",
        301 => "301",
        302 => "302",
        303 => "303",
        304 => "304",
        307 => "307",
        308 => "308",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        409 => "409",
        413 => "413",
        422 => "422",
        429 => "429",
        431 => "431",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}
