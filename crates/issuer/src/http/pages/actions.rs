//! The required actions' pages other than TOTP enrollment: `UPDATE_PASSWORD` (the new
//! password twice) and `VERIFY_EMAIL` ("we sent you a link", send again, continue).

use axum::response::Response;

use super::{Layout, form_start, render, step_path};
use crate::http::login::escape;

pub(crate) fn update_password(
    realm: &str,
    display: &str,
    csrf: &str,
    error: Option<&str>,
) -> Response {
    let action = step_path(realm, "required-action", "UPDATE_PASSWORD");
    let body = format!(
        "<p>You need to change your password to continue.</p>\n{form}\
         <label for=\"password-new\">New password</label>\
         <input id=\"password-new\" name=\"password-new\" type=\"password\" \
         autocomplete=\"new-password\" autofocus required>\n\
         <label for=\"password-confirm\">Confirm password</label>\
         <input id=\"password-confirm\" name=\"password-confirm\" type=\"password\" \
         autocomplete=\"new-password\" required>\n\
         <button type=\"submit\">Submit</button>\n</form>\n",
        form = form_start(&action, csrf),
    );
    render(
        &Layout {
            heading: "Update password",
            realm: display,
            error,
            info: None,
        },
        &body,
    )
}

pub(crate) fn verify_email(
    realm: &str,
    display: &str,
    csrf: &str,
    email: Option<&str>,
    info: Option<&str>,
) -> Response {
    let action = step_path(realm, "required-action", "VERIFY_EMAIL");
    let to = email.map_or_else(
        || "your address".to_string(),
        |e| format!("<strong>{}</strong>", escape(e)),
    );
    let body = format!(
        "<p>We sent an email to {to} with a link to verify it. Open the link, then continue \
         here.</p>\n{form}<button type=\"submit\" name=\"action\" value=\"continue\">\
         I have verified my address, continue</button>\n\
         <button type=\"submit\" name=\"action\" value=\"resend\">Send the email again</button>\n\
         </form>\n",
        form = form_start(&action, csrf),
    );
    render(
        &Layout {
            heading: "Verify your email address",
            realm: display,
            error: None,
            info,
        },
        &body,
    )
}
