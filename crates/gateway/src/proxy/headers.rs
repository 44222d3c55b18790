//! Editing the request sent upstream and the response sent back. Pingora's headers keep a
//! second map with each name's original case, and every `insert_header`/`remove_header`
//! re-parses the name and updates both maps (growing each): that was ~1,700 instructions per
//! header in the load profile. The gateway instead edits a plain `http::HeaderMap`, once, and
//! hands Pingora a header without the case map: names go upstream in their canonical form
//! (title case for standard headers, lower case otherwise), as Envoy and HAProxy send them.

use http::{HeaderMap, Uri};
use pingora::Result;
use pingora::http::{RequestHeader, ResponseHeader};

/// Headers the gateway may add (forwarded, identity, request id): reserved up front so the
/// map grows at most once.
const ADDED: usize = 12;

/// Rewrites `up` with `edit` applied to its headers, and `uri` (when given) as its target.
pub fn edit_request(
    up: &mut RequestHeader,
    uri: Option<Uri>,
    edit: impl FnOnce(&mut HeaderMap),
) -> Result<()> {
    // A request-target the URI does not reproduce (absolute-form, not UTF-8) is kept as sent;
    // the guard refuses those before routing, so this is belt and braces.
    let raw = (uri.is_none() && !round_trips(up)).then(|| up.raw_path().to_vec());
    let end_stream = up.send_end_stream();
    let mut parts: http::request::Parts = std::mem::replace(up, placeholder()).into();
    parts.headers.reserve(ADDED);
    if let Some(uri) = uri {
        parts.uri = uri;
    }
    edit(&mut parts.headers);
    let mut rebuilt = RequestHeader::from(parts);
    if let Some(raw) = raw {
        rebuilt.set_raw_path(&raw)?;
    }
    if let Some(e) = end_stream {
        rebuilt.set_send_end_stream(e);
    }
    *up = rebuilt;
    Ok(())
}

/// Whether the URI alone writes the request-target exactly as received.
fn round_trips(req: &RequestHeader) -> bool {
    req.raw_path_is_utf8()
        && req
            .uri
            .path_and_query()
            .is_some_and(|p| p.as_str().as_bytes() == req.raw_path())
}

fn placeholder() -> RequestHeader {
    RequestHeader::from(http::Request::new(()).into_parts().0)
}

/// Rewrites `resp` with `edit` applied to its headers; status, version and a non-standard
/// reason phrase are kept.
pub fn edit_response(resp: &mut ResponseHeader, edit: impl FnOnce(&mut HeaderMap)) -> Result<()> {
    let reason = resp
        .get_reason_phrase()
        .filter(|r| Some(*r) != resp.status.canonical_reason())
        .map(str::to_owned);
    let empty = ResponseHeader::from(http::Response::new(()).into_parts().0);
    let mut parts: http::response::Parts = std::mem::replace(resp, empty).into();
    // Pingora adds Date and Connection before writing.
    parts.headers.reserve(4);
    edit(&mut parts.headers);
    let mut rebuilt = ResponseHeader::from(parts);
    if reason.is_some() {
        rebuilt.set_reason_phrase(reason.as_deref())?;
    }
    *resp = rebuilt;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};

    fn wire(req: &RequestHeader) -> String {
        let mut buf = Vec::new();
        req.header_to_h1_wire(&mut buf);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn edits_apply_and_everything_else_survives() {
        let mut up = RequestHeader::build("POST", b"/a/b?x=1", None).unwrap();
        up.append_header("Host", "gw.example").unwrap();
        up.append_header("X-Custom", "1").unwrap();
        up.append_header("X-Custom", "2").unwrap();
        up.append_header("Content-Length", "3").unwrap();
        edit_request(&mut up, None, |h| {
            h.remove("x-custom");
            h.insert(
                HeaderName::from_static("x-request-id"),
                HeaderValue::from_static("abc"),
            );
        })
        .unwrap();
        assert_eq!(up.method, http::Method::POST);
        assert_eq!(up.raw_path(), b"/a/b?x=1");
        assert_eq!(up.headers.get("x-custom"), None);
        let w = wire(&up);
        assert!(w.contains("Host: gw.example\r\n"), "{w}");
        assert!(w.contains("Content-Length: 3\r\n"), "{w}");
        assert!(w.contains("x-request-id: abc\r\n"), "{w}");
    }

    #[test]
    fn a_new_target_replaces_the_path() {
        let mut up = RequestHeader::build("GET", b"/public/x?q=1", None).unwrap();
        edit_request(&mut up, Some("/x?q=1".parse().unwrap()), |_| {}).unwrap();
        assert_eq!(up.raw_path(), b"/x?q=1");
    }

    #[test]
    fn a_target_the_uri_cannot_reproduce_is_kept() {
        let mut up = RequestHeader::build("GET", b"/caf\xe9", None).unwrap();
        let before = up.raw_path().to_vec();
        edit_request(&mut up, None, |_| {}).unwrap();
        assert_eq!(up.raw_path(), &before[..]);
        assert!(!up.raw_path_is_utf8());
    }

    #[test]
    fn response_edits_keep_status_and_reason() {
        let mut resp = ResponseHeader::build(299, None).unwrap();
        resp.set_reason_phrase(Some("Odd")).unwrap();
        resp.append_header("X-Up", "1").unwrap();
        edit_response(&mut resp, |h| {
            h.insert(
                HeaderName::from_static("x-request-id"),
                HeaderValue::from_static("abc"),
            );
        })
        .unwrap();
        assert_eq!(resp.status.as_u16(), 299);
        assert_eq!(resp.get_reason_phrase(), Some("Odd"));
        assert_eq!(resp.headers.get("x-up").unwrap(), "1");
        assert_eq!(resp.headers.get("x-request-id").unwrap(), "abc");
    }

    #[test]
    fn h2_end_stream_flag_survives() {
        let mut up = RequestHeader::build("GET", b"/", None).unwrap();
        up.set_version(http::Version::HTTP_2);
        up.set_send_end_stream(false);
        edit_request(&mut up, None, |_| {}).unwrap();
        assert_eq!(up.send_end_stream(), Some(false));
    }
}
