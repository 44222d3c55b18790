//! Client credentials of a request to the token, introspection and revocation endpoints:
//! `client_secret_basic` or `client_secret_post`, never both; `domain::clients` checks them.
//! `basic_credentials` is public for the `client_auth` fuzz target.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::params::Params;
use crate::domain::clients;
use crate::domain::directory::Directory;
use crate::domain::error::{OAuthError, OAuthResult};
use portcullis_store::ClientRow;

/// Identifies and authenticates the calling client. Public clients present only `client_id`.
pub(crate) fn authenticate<'d>(
    dir: &'d Directory,
    headers: &HeaderMap,
    params: &Params,
) -> OAuthResult<&'d ClientRow> {
    let basic = basic_credentials(headers)?;
    if basic.is_some() && (params.get("client_secret").is_some()) {
        return Err(OAuthError::InvalidRequest(
            "more than one client authentication method".into(),
        ));
    }
    let (client_id, secret) = match basic {
        Some((id, secret)) => {
            if params.get("client_id").is_some_and(|p| p != id) {
                return Err(OAuthError::InvalidRequest("client_id mismatch".into()));
            }
            (id, Some(secret))
        }
        None => (
            params
                .get("client_id")
                .ok_or_else(|| OAuthError::InvalidClient("client authentication required".into()))?
                .to_string(),
            params.get("client_secret").map(str::to_string),
        ),
    };
    clients::authenticate(dir, &client_id, secret.as_deref())
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1): the
/// decoded id and secret, `None` without Basic credentials, `invalid_client` when malformed.
pub fn basic_credentials(headers: &HeaderMap) -> OAuthResult<Option<(String, String)>> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::InvalidClient("malformed Basic credentials".into());
    let v = v.to_str().map_err(|_| bad())?;
    let Some(b64) = v
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, rest)| rest.trim())
    else {
        return Ok(None);
    };
    let raw = STANDARD.decode(b64).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = raw.split_once(':').ok_or_else(bad)?;
    let decode = |s: &str| form_value(s).ok_or_else(bad);
    Ok(Some((decode(id)?, decode(secret)?)))
}

/// One `application/x-www-form-urlencoded` value, decoded whole as Keycloak's
/// `URLDecoder.decode` does: `+` is a space and `%XX` a byte, while `&` and `=` are literal (a
/// secret may hold them unencoded; they separate nothing here). `None` when the bytes are not
/// UTF-8.
fn form_value(s: &str) -> Option<String> {
    let plus_as_space;
    let s = if s.contains('+') {
        plus_as_space = s.replace('+', " ");
        plus_as_space.as_str()
    } else {
        s
    };
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn basic(raw: &str) -> OAuthResult<Option<(String, String)>> {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", STANDARD.encode(raw));
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&v).unwrap());
        basic_credentials(&h)
    }

    fn pair(id: &str, secret: &str) -> Option<(String, String)> {
        Some((id.to_string(), secret.to_string()))
    }

    #[test]
    fn form_encoded_credentials_decode() {
        assert_eq!(
            basic("my%20app:s%2Bc%3Ar%26t").unwrap(),
            pair("my app", "s+c:r&t")
        );
        assert_eq!(basic("app:a+b").unwrap(), pair("app", "a b"));
        assert_eq!(basic("app:%C3%A9t%C3%A9").unwrap(), pair("app", "été"));
    }

    #[test]
    fn what_a_client_encodes_decodes_back() {
        // The `client_auth` fuzz target's property, on the awkward characters.
        let enc =
            |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
        for (id, secret) in [
            ("a b", "+ %2B %zz %"),
            ("x:y", "&=;,/?#[]@!$'()*"),
            ("été", "秘密 \u{1f511}\t\n"),
            ("", ""),
        ] {
            let got = basic(&format!("{}:{}", enc(id), enc(secret))).unwrap();
            assert_eq!(got, pair(id, secret), "{id:?}:{secret:?}");
        }
    }

    #[test]
    fn unencoded_separators_stay_in_the_secret() {
        // Clients that send the secret as is (no form encoding): `&` and `=` are not pair
        // separators here, and the first `:` ends the id.
        assert_eq!(basic("app:a&b=c").unwrap(), pair("app", "a&b=c"));
        assert_eq!(basic("app:x:y").unwrap(), pair("app", "x:y"));
        assert_eq!(basic("app:").unwrap(), pair("app", ""));
    }

    #[test]
    fn malformed_credentials_are_invalid_client() {
        for raw in ["no-colon", "app:%FF%FE"] {
            let err = basic(raw).unwrap_err();
            assert!(
                matches!(err, OAuthError::InvalidClient(_)),
                "{raw}: {err:?}"
            );
        }
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(matches!(
            basic_credentials(&h),
            Err(OAuthError::InvalidClient(_))
        ));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(basic_credentials(&h).unwrap(), None);
    }
}
