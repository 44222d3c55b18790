//! The sign-in flow's pages: one layout (`lang`, a title naming the realm by its display name,
//! one inline stylesheet, errors in words in `role=alert`), no script, nothing loaded from
//! elsewhere, every value escaped, the login page's secure headers. One module per page.

pub mod actions;
pub mod otp;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::login::{escape, secure_headers};
use crate::domain::directory::Directory;

/// The one stylesheet of the issuer's pages (defined beside the login page, which uses it too).
pub(crate) use super::login::STYLE;

/// The realm as pages name it: its `displayName`, else its name.
pub(crate) fn display_name(dir: &Directory) -> &str {
    dir.settings
        .accounts
        .display_name
        .as_deref()
        .filter(|d| !d.trim().is_empty())
        .unwrap_or(&dir.realm)
}

/// A page of the flow.
pub(crate) struct Layout<'a> {
    /// What the page asks, `<h1>` and the start of `<title>`.
    pub heading: &'a str,
    pub realm: &'a str,
    pub error: Option<&'a str>,
    pub info: Option<&'a str>,
}

/// The page around `body` (already escaped HTML), with the secure headers.
pub(crate) fn render(l: &Layout<'_>, body: &str) -> Response {
    let error = l
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>\n", escape(e)))
        .unwrap_or_default();
    let info = l
        .info
        .map(|e| format!("<p class=\"info\" role=\"status\">{}</p>\n", escape(e)))
        .unwrap_or_default();
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{heading} · {realm}</title><style>{STYLE}</style></head><body>\n\
         <main>\n<p>{realm}</p>\n<h1>{heading}</h1>\n{error}{info}{body}</main>\n</body></html>\n",
        heading = escape(l.heading),
        realm = escape(l.realm),
    );
    let mut resp = (StatusCode::OK, Html(html)).into_response();
    secure_headers(resp.headers_mut());
    resp
}

/// `<form method="post">` to `action` with the flow's CSRF token.
pub(crate) fn form_start(action: &str, csrf: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\">\n<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n",
        escape(action),
        escape(csrf)
    )
}

/// The `P/login-actions/{endpoint}?execution={execution}` path of a step.
pub(crate) fn step_path(realm: &str, endpoint: &str, execution: &str) -> String {
    format!("/auth/realms/{realm}/login-actions/{endpoint}?execution={execution}")
}

/// A labelled one-time-code field.
pub(crate) fn code_field(id: &str, label: &str) -> String {
    format!(
        "<label for=\"{id}\">{label}</label>\
         <input id=\"{id}\" name=\"{id}\" autocomplete=\"one-time-code\" inputmode=\"numeric\" \
         pattern=\"[0-9]*\" maxlength=\"8\" autofocus required>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_escapes_and_keeps_the_headers() {
        let r = render(
            &Layout {
                heading: "<h>",
                realm: "R&D",
                error: Some("<bad>"),
                info: None,
            },
            "<p>ok</p>",
        );
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        assert!(
            r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'")
        );
        assert!(form_start("/a?b=\"c\"", "t").contains("/a?b=&quot;c&quot;"));
    }
}
