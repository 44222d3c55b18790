//! The console's TOTP page (`B/account/totp`): the user's authenticator apps with a remove
//! button each, and enrollment of a new one (QR code as inline SVG, the key in text, the first
//! code to confirm), through the sign-in flow's TOTP functions (`domain::otp`). The secret
//! being enrolled travels in the form sealed to the session.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::HeaderMap;
use axum::response::Response;

use super::page::{self, base};
use super::{Q, Signed, frame, internal, posted, see_other, who};
use crate::domain::account;
use crate::domain::state::State;
use crate::http::login::escape;
use crate::http::pages::{code_field, display_name};
use crate::http::realm::{self, Realm};
use crate::http::urls::Listener;
use portcullis_store::CredentialRow;

fn when(t: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(t).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

fn content(realm: &str, csrf: &str, list: &[CredentialRow], start: &account::TotpStart) -> String {
    let b = base(realm);
    let csrf_field = page::csrf_field(csrf);
    let list = if list.is_empty() {
        "<p>You have no authenticator app set up.</p>\n".to_string()
    } else {
        let rows: String = list
            .iter()
            .map(|c| {
                let label = escape(c.label.as_deref().unwrap_or("Authenticator app"));
                format!(
                    "<tr><td>{label}</td><td>{added}</td><td>\
                     <form class=\"inline\" method=\"post\" action=\"{b}/totp/remove\">{csrf_field}\
                     <input type=\"hidden\" name=\"id\" value=\"{id}\">\
                     <button type=\"submit\" aria-label=\"Remove authenticator {label}\">Remove</button>\
                     </form></td></tr>\n",
                    added = when(c.created_at),
                    id = escape(&c.id),
                )
            })
            .collect();
        format!(
            "<table>\n<caption>Your authenticator apps</caption>\n<tr><th scope=\"col\">Name</th>\
             <th scope=\"col\">Added</th><th scope=\"col\">Action</th></tr>\n{rows}</table>\n"
        )
    };
    let e = &start.enrollment;
    format!(
        "{list}<h2>Add an authenticator app</h2>\n\
         <ol><li>Scan this QR code with the app (FreeOTP, Google Authenticator, …).</li>\
         <li>Or type the key instead: <code id=\"totp-secret\">{key}</code>.</li>\
         <li>Enter the code the app shows, to confirm.</li></ol>\n{svg}\n\
         <form method=\"post\" action=\"{b}/totp\">{csrf_field}\
         <input type=\"hidden\" name=\"pending\" value=\"{pending}\">\n{field}\
         <label for=\"userLabel\">Device name (optional)</label>\
         <input id=\"userLabel\" name=\"userLabel\" autocomplete=\"off\" maxlength=\"100\">\n\
         <button type=\"submit\">Add authenticator app</button>\n</form>\n",
        key = escape(&e.base32),
        svg = e.qr_svg,
        pending = escape(&start.pending),
        field = code_field("totp", "One-time code"),
    )
}

/// The TOTP page, with an error when a change was refused (`pending`: the enrollment to show
/// again).
async fn page_with(
    st: &State,
    realm: &Realm<realm::Page>,
    s: &Signed,
    q: &Q,
    error: Option<&str>,
    pending: Option<&str>,
) -> Response {
    let list = match account::totp_of(st, &realm.dir, &s.user.id).await {
        Ok(l) => l,
        Err(_) => return internal(),
    };
    let display = display_name(&realm.dir);
    let Ok(start) = account::totp_start(st, &realm.dir, &s.user, &s.session.id, display, pending)
    else {
        return internal();
    };
    let mut f = frame(realm, s, "totp", "Authenticator apps", q);
    f.error = error;
    page::render(&f, &content(&realm.name, &s.csrf, &list, &start))
}

/// `GET B/account/totp`.
pub async fn totp_page(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let q = Q::parse(query);
    match who(&st, &realm, &headers, ext).await {
        Ok(s) => page_with(&st, &realm, &s, &q, None, None).await,
        Err(r) => r,
    }
}

/// `POST B/account/totp`: `pending`, `totp` (the code), `userLabel`.
pub async fn add_totp(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (s, p) = match posted(&st, &realm, &headers, ext, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let pending = p.get("pending").unwrap_or_default();
    let code = p.get("totp").unwrap_or_default();
    let (dir, user, session) = (&realm.dir, &s.user.id, &s.session.id);
    let label = p.get("userLabel");
    let q = Q::default();
    match account::totp_finish(&st, dir, user, session, pending, code, label).await {
        Ok(Some(true)) => see_other(&format!("{}/totp?done=totp-added", base(&realm.name))),
        Ok(Some(false)) => {
            let message = Some("Invalid authenticator code.");
            page_with(&st, &realm, &s, &q, message, Some(pending)).await
        }
        Ok(None) => {
            let message = Some("The form expired. Scan the new QR code and try again.");
            page_with(&st, &realm, &s, &q, message, None).await
        }
        Err(_) => internal(),
    }
}

/// `POST B/account/totp/remove`: `id`, one of the user's authenticators.
pub async fn remove_totp(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (s, p) = match posted(&st, &realm, &headers, ext, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let id = p.get("id").unwrap_or_default();
    match account::remove_totp(&st, &realm.dir, &s.user.id, id).await {
        Ok(true) => see_other(&format!("{}/totp?done=totp-removed", base(&realm.name))),
        Ok(false) => {
            let message = Some("That authenticator does not exist.");
            page_with(&st, &realm, &s, &Q::default(), message, None).await
        }
        Err(_) => internal(),
    }
}
