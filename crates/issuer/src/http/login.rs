//! The server-rendered login page: minimal HTML with every value escaped, a double-submit CSRF
//! token, and headers that keep it out of caches and frames; the issuer's cookies. `cookie` is
//! public for the fuzz targets.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// The authorization request parameters carried through the form as hidden fields.
pub(crate) const CARRIED: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "max_age",
    "prompt",
    "response_mode",
    "acr_values",
];

pub(crate) const CSRF_COOKIE: &str = "PORTCULLIS_CSRF";

/// The SSO session cookie; its value is the session's secret (the store keeps its hash).
pub(crate) const SESSION_COOKIE: &str = "PORTCULLIS_SESSION";

/// Keycloak's session-state cookie: `base64url(SHA-256(sid))`, no secret. The session status
/// iframe (`session_iframe`) reads it from script in a third-party frame, so it is neither
/// HttpOnly nor SameSite=Lax.
pub(crate) const SESSION_STATE_COOKIE: &str = "KEYCLOAK_SESSION";

/// HTML escaping for every page, the one the account mails use.
pub(crate) use crate::domain::mail::templates::escape;

pub(crate) struct Page<'a> {
    pub realm: &'a str,
    pub action: &'a str,
    pub hidden: Vec<(&'a str, &'a str)>,
    pub csrf: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
    /// "Forgot password?" (`resetPasswordAllowed`) and "Register" (`registrationAllowed`)
    /// links, carrying the authorization request.
    pub forgot: Option<String>,
    pub register: Option<String>,
    /// Offer passwordless sign-in with a passkey: the URL that starts the ceremony (the
    /// page then runs the one script, and works without it for passwords).
    pub passkey_options: Option<&'a str>,
    /// A passkey sign-in just failed: the page offers the button, not the autofill again (a
    /// browser that answers the autofill by itself would go round).
    pub passkey_failed: bool,
}

/// The one stylesheet of the issuer's pages: login, sign-in flow, account console (inline: the
/// CSP loads nothing).
pub(crate) const STYLE: &str = "body{font-family:sans-serif;max-width:26rem;margin:3rem auto;\
padding:0 1rem;line-height:1.4}label,input{display:block;width:100%;margin:.3rem 0}\
input{padding:.4rem;font-size:1rem;box-sizing:border-box}button{margin:.8rem 0;padding:.5rem 1rem;\
font-size:1rem}button:focus,input:focus{outline:3px solid #1a5fb4}.error{color:#a00}\
.info{color:#064}code{font-size:1.1rem;word-break:break-all}svg{display:block;margin:1rem 0}\
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.3rem .6rem;text-align:left;\
border-bottom:1px solid #ccc}nav a{margin-right:1rem}form.inline{display:inline}\
form.inline button,td button{margin:0}";

/// The script of the WebAuthn ceremonies (login page and account console), served by the
/// issuer itself: pages that run it allow `script-src 'self'`, no inline script.
pub(crate) const WEBAUTHN_JS_PATH: &str = "/auth/resources/portcullis/webauthn.js";

/// The passkey part of the login page: its own form (the script fills and submits it), the
/// button the script shows, and the script.
fn passkey_part(options: &str, action: &str, hidden: &str, csrf: &str, failed: bool) -> String {
    let conditional = if failed {
        " data-conditional=\"off\""
    } else {
        ""
    };
    format!(
        "<form method=\"post\" action=\"{action}\" id=\"passkey-login\" data-webauthn=\"login\" data-options=\"{options}\"{conditional}>\n{hidden}\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"webauthn_handle\" value=\"\">\
         <input type=\"hidden\" name=\"webauthn_credential\" value=\"\">\n\
         <p class=\"error\" role=\"alert\" id=\"webauthn-error\" hidden></p>\
         <button type=\"button\" id=\"passkey-button\" hidden>Sign in with a passkey</button>\n</form>\n\
         <script src=\"{script}\" defer></script>\n",
        options = escape(options),
        script = WEBAUTHN_JS_PATH,
    )
}

pub(crate) fn render(p: &Page<'_>) -> Response {
    let hidden: String = p
        .hidden
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let error = p
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>\n", escape(e)))
        .unwrap_or_default();
    let links: String = [(&p.forgot, "Forgot password?"), (&p.register, "Register")]
        .into_iter()
        .filter_map(|(href, text)| {
            href.as_ref()
                .map(|h| format!("<p><a href=\"{}\">{text}</a></p>\n", escape(h)))
        })
        .collect();
    let action = escape(p.action);
    let csrf = escape(p.csrf);
    // Conditional UI: the browser offers the site's passkeys in the username field's autofill.
    let (autocomplete, passkey) = match p.passkey_options {
        Some(o) => (
            "username webauthn",
            passkey_part(o, &action, &hidden, &csrf, p.passkey_failed),
        ),
        None => ("username", String::new()),
    };
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>Sign in to {realm}</title>\
         <style>{STYLE}</style>\
         </head><body>\n<main>\n<h1>Sign in to {realm}</h1>\n{error}\
         <form method=\"post\" action=\"{action}\">\n{hidden}\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <label for=\"username\">Username or email</label>\
         <input id=\"username\" name=\"username\" value=\"{username}\" autocomplete=\"{autocomplete}\" autofocus required>\n\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\n\
         <input type=\"submit\" value=\"Sign In\">\n</form>\n{passkey}{links}</main>\n</body></html>\n",
        realm = escape(p.realm),
        username = escape(p.username),
    );
    let mut resp = (StatusCode::OK, Html(html)).into_response();
    if p.passkey_options.is_some() {
        secure_headers_with_script(resp.headers_mut());
    } else {
        secure_headers(resp.headers_mut());
    }
    resp
}

/// A plain error page, for requests that cannot be redirected back (unknown client, bad URI).
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Error</title></head>\
         <body><h1>We are sorry...</h1><p>{}</p></body></html>\n",
        escape(message)
    );
    let mut resp = (status, Html(html)).into_response();
    secure_headers(resp.headers_mut());
    resp
}

/// The page of a failure that is ours, not the request's: it says nothing more.
pub(crate) fn internal() -> Response {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "An internal error occurred.",
    )
}

/// Headers of every issuer page and redirect: never cached, never framed, nothing loaded.
///
/// No `form-action`, as Keycloak: Chromium applies it to every redirect that follows the
/// login form's POST, so `'self'` blocks the 302 to the client's `redirect_uri`, and even the
/// redirect's own origin would block a callback that redirects on to another origin (a proxy's
/// callback handing over to its app). The page runs no script and escapes every value, so no
/// injected form can exist to be limited.
pub(crate) fn secure_headers(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// `secure_headers` for a page that runs the WebAuthn ceremony: its one script and the
/// requests it makes go to the issuer itself; nothing inline runs.
pub(crate) fn secure_headers_with_script(h: &mut HeaderMap) {
    secure_headers(h);
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
}

/// The value of cookie `name` in the request's `Cookie` headers (the first one sent).
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for a cookie scoped to the realm: HttpOnly, Secure, SameSite=Lax.
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    realm: &str,
    max_age: Option<i64>,
) -> Option<HeaderValue> {
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/auth/realms/{realm}/; HttpOnly; Secure; SameSite=Lax{age}"
    ))
    .ok()
}

/// `Set-Cookie` for Keycloak's session-state cookie of session `sid` (`None` clears it):
/// readable by script, Secure, SameSite=None (the status iframe is a third-party frame).
pub(crate) fn session_state_cookie(realm: &str, sid: Option<&str>) -> Option<HeaderValue> {
    let (value, age) = match sid {
        Some(sid) => (crate::secrets::token_hash(sid), ""),
        None => (String::new(), "; Max-Age=0"),
    };
    HeaderValue::from_str(&format!(
        "{SESSION_STATE_COOKIE}={value}; Path=/auth/realms/{realm}/; Secure; SameSite=None{age}"
    ))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_is_escaped() {
        let r = render(&Page {
            realm: "<r>",
            action: "/a?x=\"1\"",
            hidden: vec![("state", "\"><script>alert(1)</script>")],
            csrf: "c",
            username: "a'b",
            error: Some("<b>"),
            forgot: Some("/f?a=\"b\"".into()),
            register: None,
            passkey_options: None,
            passkey_failed: false,
        });
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(
            !csp.contains("form-action"),
            "blocks the redirect to the client"
        );
        assert_eq!(
            escape("<a href='x'>&\""),
            "&lt;a href=&#x27;x&#x27;&gt;&amp;&quot;"
        );
    }

    #[test]
    fn cookies_parse() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; PORTCULLIS_CSRF=xyz"),
        );
        assert_eq!(cookie(&h, CSRF_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "b"), None);
    }
}
