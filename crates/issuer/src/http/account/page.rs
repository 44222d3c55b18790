//! The account console's HTML: one frame (title, navigation, notice or error, sign-out) around
//! each section's content. Every value is escaped; forms carry the session's CSRF token; the
//! only script is the WebAuthn ceremony's, on the passkeys page.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::super::login::{self, WEBAUTHN_JS_PATH, escape};
use super::super::pages::STYLE;
use crate::domain::account::SessionView;
use portcullis_store::{UserRow, WebauthnCredentialRow};

/// The console's sections, in navigation order: (path under `B/account/`, name).
pub(super) const SECTIONS: &[(&str, &str)] = &[
    ("", "Account"),
    ("password", "Password"),
    ("passkeys", "Passkeys"),
    ("totp", "Authenticator apps"),
    ("sessions", "Sessions"),
];

pub(super) struct Frame<'a> {
    pub realm: &'a str,
    /// The realm's display name, as pages show it.
    pub display: &'a str,
    /// The section's path (a `SECTIONS` key).
    pub section: &'a str,
    pub title: &'a str,
    pub csrf: &'a str,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
    /// Runs the WebAuthn script (and allows it in the CSP).
    pub script: bool,
}

/// `B/account`.
pub(super) fn base(realm: &str) -> String {
    format!("/auth/realms/{realm}/account")
}

/// The hidden CSRF field of every form.
pub(super) fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(csrf)
    )
}

/// A console page around `content`: 400 when it shows an error (a change was refused), else 200.
pub(super) fn render(f: &Frame<'_>, content: &str) -> Response {
    let status = match f.error {
        Some(_) => StatusCode::BAD_REQUEST,
        None => StatusCode::OK,
    };
    let b = base(f.realm);
    let nav: String = SECTIONS
        .iter()
        .map(|(path, name)| {
            let current = if *path == f.section {
                " aria-current=\"page\""
            } else {
                ""
            };
            format!("<a href=\"{b}/{path}\"{current}>{name}</a>")
        })
        .collect();
    let notice = f
        .notice
        .map(|n| format!("<p class=\"notice\" role=\"status\">{}</p>\n", escape(n)))
        .unwrap_or_default();
    let error = f
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>\n", escape(e)))
        .unwrap_or_default();
    let script = if f.script {
        format!("<script src=\"{WEBAUTHN_JS_PATH}\" defer></script>\n")
    } else {
        String::new()
    };
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title} · {realm} account</title><style>{STYLE}</style></head><body>\n\
         <header><p>{realm} account</p><nav aria-label=\"Account\">{nav}</nav>\
         <form class=\"inline\" method=\"post\" action=\"{b}/sign-out\">{csrf}\
         <button type=\"submit\">Sign out</button></form></header>\n\
         <main>\n<h1>{title}</h1>\n{notice}{error}{content}</main>\n{script}</body></html>\n",
        title = escape(f.title),
        realm = escape(f.display),
        csrf = csrf_field(f.csrf),
    );
    let mut resp = (status, Html(html)).into_response();
    if f.script {
        login::secure_headers_with_script(resp.headers_mut());
    } else {
        login::secure_headers(resp.headers_mut());
    }
    resp
}

pub(super) fn overview(user: &UserRow) -> String {
    let row = |k: &str, v: Option<&str>| {
        format!(
            "<tr><th scope=\"row\">{k}</th><td>{}</td></tr>\n",
            escape(v.unwrap_or("—"))
        )
    };
    let verified = if user.email_verified {
        "verified"
    } else {
        "not verified"
    };
    format!(
        "<table>\n{}{}{}{}<tr><th scope=\"row\">Email status</th><td>{verified}</td></tr>\n</table>\n",
        row("Username", Some(&user.username)),
        row("Email", user.email.as_deref()),
        row("First name", user.first_name.as_deref()),
        row("Last name", user.last_name.as_deref()),
    )
}

pub(super) fn password_form(realm: &str, csrf: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{b}/password\">{csrf}\n\
         <label for=\"current\">Current password</label>\
         <input id=\"current\" name=\"current\" type=\"password\" autocomplete=\"current-password\" required>\n\
         <label for=\"new\">New password</label>\
         <input id=\"new\" name=\"new\" type=\"password\" autocomplete=\"new-password\" required>\n\
         <label for=\"confirm\">Confirm new password</label>\
         <input id=\"confirm\" name=\"confirm\" type=\"password\" autocomplete=\"new-password\" required>\n\
         <button type=\"submit\">Change password</button>\n</form>\n",
        b = base(realm),
        csrf = csrf_field(csrf),
    )
}

fn when(t: Option<i64>) -> String {
    match t.and_then(|t| u64::try_from(t).ok()) {
        Some(t) => {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t);
            humantime::format_rfc3339_seconds(at).to_string()
        }
        None => "never".into(),
    }
}

/// The passkeys page: the list with a remove button each, and the form that registers a new
/// one (`available`: the host can be a relying party).
pub(super) fn passkeys(
    realm: &str,
    csrf: &str,
    keys: &[WebauthnCredentialRow],
    available: bool,
) -> String {
    let b = base(realm);
    let list = if keys.is_empty() {
        "<p>You have no passkeys.</p>\n".to_string()
    } else {
        let rows: String = keys
            .iter()
            .map(|k| {
                format!(
                    "<tr><td>{label}</td><td>{created}</td><td>{used}</td><td>\
                     <form class=\"inline\" method=\"post\" action=\"{b}/passkeys/remove\">{csrf}\
                     <input type=\"hidden\" name=\"id\" value=\"{id}\">\
                     <button type=\"submit\" aria-label=\"Remove passkey {label}\">Remove</button></form></td></tr>\n",
                    label = escape(&k.label),
                    created = when(Some(k.created_at)),
                    used = when(k.last_used_at),
                    id = escape(&k.id),
                    csrf = csrf_field(csrf),
                )
            })
            .collect();
        format!(
            "<table>\n<caption>Your passkeys</caption>\n<tr><th scope=\"col\">Name</th>\
             <th scope=\"col\">Added</th><th scope=\"col\">Last used</th><th scope=\"col\">Action</th></tr>\n{rows}</table>\n"
        )
    };
    let add = if available {
        format!(
            "<h2>Add a passkey</h2>\n\
             <form method=\"post\" action=\"{b}/passkeys\" data-webauthn=\"register\" data-options=\"{b}/passkeys/options\">{csrf}\n\
             <input type=\"hidden\" name=\"webauthn_handle\" value=\"\">\
             <input type=\"hidden\" name=\"webauthn_credential\" value=\"\">\n\
             <label for=\"label\">Name for the passkey</label>\
             <input id=\"label\" name=\"label\" maxlength=\"{max}\" required>\n\
             <p class=\"error\" role=\"alert\" id=\"webauthn-error\" hidden></p>\
             <button type=\"submit\">Add passkey</button>\n</form>\n\
             <noscript><p>Adding a passkey needs JavaScript.</p></noscript>\n",
            csrf = csrf_field(csrf),
            max = crate::domain::passkeys::MAX_LABEL,
        )
    } else {
        format!(
            "<p>{}</p>\n",
            crate::domain::passkeys::Failure::Unavailable.user_message()
        )
    };
    list + &add
}

/// The sessions page: each live session with its times and clients; a button ends it (the
/// current one is marked, and ended with "Sign out"), another ends all the others.
pub(super) fn sessions(realm: &str, csrf: &str, list: &[SessionView], current: &str) -> String {
    let b = base(realm);
    let rows: String = list
        .iter()
        .map(|v| {
            let s = &v.session;
            let clients = if v.clients.is_empty() {
                "—".to_string()
            } else {
                escape(&v.clients.join(", "))
            };
            let action = if s.id == current {
                "This session".to_string()
            } else {
                format!(
                    "<form class=\"inline\" method=\"post\" action=\"{b}/sessions/end\">{csrf}\
                     <input type=\"hidden\" name=\"id\" value=\"{id}\">\
                     <button type=\"submit\" aria-label=\"End the session started {started}\">End</button></form>",
                    csrf = csrf_field(csrf),
                    id = escape(&s.id),
                    started = when(Some(s.created_at)),
                )
            };
            format!(
                "<tr><td>{}</td><td>{}</td><td>{clients}</td><td>{action}</td></tr>\n",
                when(Some(s.created_at)),
                when(Some(s.last_seen)),
            )
        })
        .collect();
    let others = if list.len() > 1 {
        format!(
            "<form method=\"post\" action=\"{b}/sessions/end-others\">{}\
             <button type=\"submit\">End all other sessions</button></form>\n",
            csrf_field(csrf)
        )
    } else {
        String::new()
    };
    format!(
        "<table>\n<caption>Your sessions</caption>\n<tr><th scope=\"col\">Started</th>\
         <th scope=\"col\">Last access</th><th scope=\"col\">Clients</th><th scope=\"col\">Action</th></tr>\n\
         {rows}</table>\n{others}"
    )
}
