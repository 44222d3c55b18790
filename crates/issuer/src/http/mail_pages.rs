//! The account pages around the login form (reset password, choose a new password,
//! registration, confirmations): one small renderer, every value escaped, labels on every
//! field, errors and notices in words, the realm's display name, and the login page's headers.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::login::{CARRIED, escape, secure_headers};
use super::params::Params;

/// One input with its label.
pub(crate) struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    /// `text`, `email` or `password`.
    pub kind: &'a str,
    pub value: &'a str,
    pub autocomplete: &'a str,
    pub required: bool,
}

pub(crate) struct Form<'a> {
    pub action: &'a str,
    pub hidden: Vec<(&'a str, &'a str)>,
    pub fields: Vec<Field<'a>>,
    pub submit: &'a str,
}

/// A page: heading `title` (after the realm's name in `<title>`), an error or a notice, an
/// optional form, and links (href, text) below it.
pub(crate) struct Page<'a> {
    pub realm: &'a str,
    pub title: &'a str,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
    pub form: Option<Form<'a>>,
    pub links: Vec<(String, &'a str)>,
}

fn form_html(f: &Form<'_>) -> String {
    let mut out = format!("<form method=\"post\" action=\"{}\">\n", escape(f.action));
    for (k, v) in &f.hidden {
        out.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
            escape(k),
            escape(v)
        ));
    }
    for (i, field) in f.fields.iter().enumerate() {
        // Passwords are never echoed back.
        let value = if field.kind == "password" {
            String::new()
        } else {
            format!(" value=\"{}\"", escape(field.value))
        };
        out.push_str(&format!(
            "<label for=\"{n}\">{label}</label><input id=\"{n}\" name=\"{n}\" type=\"{kind}\"{value} \
             autocomplete=\"{ac}\"{req}{focus}>\n",
            n = escape(field.name),
            label = escape(field.label),
            kind = escape(field.kind),
            ac = escape(field.autocomplete),
            req = if field.required { " required" } else { "" },
            focus = if i == 0 { " autofocus" } else { "" },
        ));
    }
    out.push_str(&format!(
        "<input type=\"submit\" value=\"{}\">\n</form>\n",
        escape(f.submit)
    ));
    out
}

pub(crate) fn render(status: StatusCode, p: &Page<'_>) -> Response {
    let error = p
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>\n", escape(e)))
        .unwrap_or_default();
    let notice = p
        .notice
        .map(|n| format!("<p class=\"notice\" role=\"status\">{}</p>\n", escape(n)))
        .unwrap_or_default();
    let form = p.form.as_ref().map(form_html).unwrap_or_default();
    let links: String = p
        .links
        .iter()
        .map(|(href, text)| format!("<p><a href=\"{}\">{}</a></p>\n", escape(href), escape(text)))
        .collect();
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title} · {realm}</title>\
         <style>body{{font-family:sans-serif;max-width:22rem;margin:4rem auto}}\
         label,input{{display:block;width:100%;margin:.3rem 0}}.error{{color:#b00}}</style>\
         </head><body>\n<h1>{title}</h1>\n<p>{realm}</p>\n{error}{notice}{form}{links}</body></html>\n",
        title = escape(p.title),
        realm = escape(p.realm),
    );
    let mut resp = (status, Html(html)).into_response();
    secure_headers(resp.headers_mut());
    resp
}

/// The authorization request's parameters a page carries on (to get back to the login form).
pub(crate) fn carried(p: &Params) -> Vec<(&'static str, &str)> {
    CARRIED
        .iter()
        .filter_map(|k| p.get(k).map(|v| (*k, v)))
        .collect()
}

/// `{base}?{carried}` (just `base` when nothing is carried).
pub(crate) fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    match serde_urlencoded::to_string(pairs) {
        Ok(q) if !q.is_empty() => format!("{base}?{q}"),
        _ => base.to_string(),
    }
}

/// "Back to login", when the page came from an authorization request.
pub(crate) fn back_to_login(realm: &str, pairs: &[(&str, &str)]) -> Option<String> {
    pairs.iter().any(|(k, _)| *k == "client_id").then(|| {
        with_query(
            &format!("/auth/realms/{realm}/protocol/openid-connect/auth"),
            pairs,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_is_escaped_and_passwords_never_echo() {
        let r = render(
            StatusCode::OK,
            &Page {
                realm: "<R>",
                title: "T\"",
                error: Some("<e>"),
                notice: None,
                form: Some(Form {
                    action: "/a?b=\"c\"",
                    hidden: vec![("k", "\"><script>")],
                    fields: vec![Field {
                        name: "password",
                        label: "Password",
                        kind: "password",
                        value: "secret",
                        autocomplete: "new-password",
                        required: true,
                    }],
                    submit: "Go",
                }),
                links: vec![("/x?a=<b>".into(), "<back>")],
            },
        );
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let body = futures_body(r);
        assert!(!body.contains("<script>") && !body.contains("<e>") && !body.contains("<R>"));
        assert!(!body.contains("secret"));
        assert!(body.contains("<label for=\"password\">Password</label>"));
        assert!(body.contains("lang=\"en\""));
    }

    fn futures_body(r: Response) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let b = rt
            .block_on(axum::body::to_bytes(r.into_body(), 1 << 20))
            .unwrap();
        String::from_utf8(b.to_vec()).unwrap()
    }
}
