//! The TOTP pages: the second factor at sign-in, and enrollment (`CONFIGURE_TOTP`) with the QR
//! code as inline SVG (no image request, nothing for the CSP to allow) and the key in text.

use axum::response::Response;

use super::{Layout, code_field, form_start, render, step_path};
use crate::domain::otp::Enrollment;
use crate::http::login::escape;

/// The sign-in step asking for the current code.
pub(crate) fn login(realm: &str, display: &str, csrf: &str, error: Option<&str>) -> Response {
    let action = step_path(realm, "authenticate", "otp");
    let body = format!(
        "<p>Enter the one-time code your authenticator app shows.</p>\n{form}{field}\
         <button type=\"submit\" id=\"kc-login\">Sign In</button>\n</form>\n",
        form = form_start(&action, csrf),
        field = code_field("otp", "One-time code"),
    );
    render(
        &Layout {
            heading: "Enter your one-time code",
            realm: display,
            error,
            info: None,
        },
        &body,
    )
}

/// Groups a base32 key in fours, as apps print it.
fn grouped(key: &str) -> String {
    key.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The enrollment step: the QR code, the key, the policy, and the form for the first code.
pub(crate) fn enroll(
    realm: &str,
    display: &str,
    csrf: &str,
    e: &Enrollment,
    policy: (&str, i64, i64),
    error: Option<&str>,
) -> Response {
    let action = step_path(realm, "required-action", "CONFIGURE_TOTP");
    let (alg, digits, period) = policy;
    let body = format!(
        "<p>Your account needs a second factor. Set up an authenticator app \
         (FreeOTP, Google Authenticator, …):</p>\n\
         <ol><li>Scan this QR code with the app.</li>\
         <li>Or type the key instead: <code id=\"totp-secret\">{key}</code> \
         (time-based, {alg}, {digits} digits, every {period} seconds), or \
         <a href=\"{uri}\">open it in an authenticator app on this device</a>.</li>\
         <li>Enter the code the app shows, to confirm.</li></ol>\n{svg}\n{form}{field}\
         <label for=\"userLabel\">Device name (optional)</label>\
         <input id=\"userLabel\" name=\"userLabel\" autocomplete=\"off\" maxlength=\"100\">\n\
         <button type=\"submit\" id=\"saveTOTPBtn\">Submit</button>\n</form>\n",
        key = escape(&grouped(&e.base32)),
        alg = escape(alg),
        uri = escape(&e.uri),
        svg = e.qr_svg,
        form = form_start(&action, csrf),
        field = code_field("totp", "One-time code"),
    );
    render(
        &Layout {
            heading: "Set up an authenticator app",
            realm: display,
            error,
            info: None,
        },
        &body,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_grouped_in_fours() {
        assert_eq!(super::grouped("ABCDEFGHIJ"), "ABCD EFGH IJ");
    }
}
