//! The gateway-owned paths (DESIGN §10), on every host, never routed upstream:
//! `callback`, `sign_in?rd=`, `sign_out` (GET: a confirmation form; POST: with its CSRF token
//! and a same-origin `Origin`, ends the session, revokes its refresh token, and goes through the
//! provider's end-session endpoint), `userinfo` and `jwks.json`. Forward auth (`auth`) decides
//! with the snapshot's routes and policies and lives in `forward`.

use std::borrow::Cow;

use http::{HeaderValue, header};
use serde_json::json;

use super::current::{Lookup, current};
use super::state::{Sid, ct_eq};
use super::{Reply, Req, Runtime, SessionConfig, cookie, flow, redirect};

/// The gateway-owned paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Callback,
    SignIn,
    SignOut,
    UserInfo,
    Auth,
    Jwks,
    Unknown,
}

/// Which gateway-owned path `path` (normalized) is, if it is one.
pub fn which(path: &str) -> Option<Endpoint> {
    let rest = path.strip_prefix(super::PREFIX)?;
    Some(match rest {
        "callback" => Endpoint::Callback,
        "sign_in" => Endpoint::SignIn,
        "sign_out" => Endpoint::SignOut,
        "userinfo" => Endpoint::UserInfo,
        "auth" => Endpoint::Auth,
        "jwks.json" => Endpoint::Jwks,
        _ => Endpoint::Unknown,
    })
}

/// Answers a gateway-owned path other than `auth`. `body`: a POST's form.
pub async fn serve(
    rt: &Runtime,
    cfg: Option<&SessionConfig>,
    ep: Endpoint,
    req: &Req<'_>,
    body: &[u8],
) -> Reply {
    let get = req.method == http::Method::GET || req.method == http::Method::HEAD;
    match (ep, cfg) {
        (Endpoint::Jwks, _) if get => jwks(rt),
        (Endpoint::Callback, Some(cfg)) if get => flow::callback(rt, cfg, req).await,
        (Endpoint::SignIn, Some(cfg)) if get => sign_in(rt, cfg, req).await,
        (Endpoint::SignOut, Some(cfg)) if get => sign_out_form(rt, cfg, req).await,
        (Endpoint::SignOut, Some(cfg)) if req.method == http::Method::POST => {
            sign_out(rt, cfg, req, body).await
        }
        (Endpoint::UserInfo, Some(cfg)) if get => userinfo(rt, cfg, req).await,
        (Endpoint::Unknown | Endpoint::Auth, _) | (_, None) => Reply::new(404, "no_route").json(
            &json!({"error": "not_found", "error_description": "no route for this path"}),
        ),
        _ => Reply::new(405, "method_not_allowed")
            .header(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"))
            .json(&json!({"error": "method_not_allowed", "error_description": "this method is not served here"})),
    }
}

fn jwks(rt: &Runtime) -> Reply {
    let Some(signer) = &rt.assertion else {
        return Reply::new(503, "no_assertion_key")
            .json(&json!({"error": "unavailable", "error_description": "no assertion key"}));
    };
    let mut r = Reply::new(200, "jwks");
    r.headers.clear();
    r.headers.push((
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    ));
    r.headers.push((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    ));
    r.body = signer.jwks();
    r
}

/// The `rd` query parameter, percent-decoded.
fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<Cow<'q, str>> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// `/.portcullis/sign_in?rd=URL`: straight back to `rd` when already signed in, else to the
/// provider. `rd` is only ever followed to this origin.
async fn sign_in(rt: &Runtime, cfg: &SessionConfig, req: &Req<'_>) -> Reply {
    let rd = query_param(req.query, "rd").unwrap_or(Cow::Borrowed("/"));
    match current(rt, cfg, req).await {
        Lookup::Found(f) => Reply::redirect(&redirect::same_origin(&req.origin, &rd), "signed_in")
            .cookies(f.set_cookies),
        Lookup::None { clear } => flow::start(rt, cfg, req, &rd).await.cookies(clear),
    }
}

/// The CSRF token of a session's sign-out form: derived from its id, which only the browser's
/// sealed cookie holds.
pub fn csrf_of(sid: &Sid) -> String {
    use base64::Engine;
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"portcullis sign-out csrf\0");
    ctx.update(sid);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ctx.finish().as_ref())
}

/// GET `/.portcullis/sign_out`: a form that POSTs back with the CSRF token. A GET never signs out.
async fn sign_out_form(rt: &Runtime, cfg: &SessionConfig, req: &Req<'_>) -> Reply {
    match current(rt, cfg, req).await {
        Lookup::Found(f) => {
            let who = escape(f.live.principal.user());
            let csrf = csrf_of(&f.entry.sid);
            Reply::new(200, "sign_out_form")
                .cookies(f.set_cookies)
                .html(page(
                    "Sign out",
                    &format!(
                        "<p>Signed in as <b>{who}</b>.</p>\
                     <form method=\"post\" action=\"/.portcullis/sign_out\">\
                     <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                     <button type=\"submit\">Sign out</button></form>"
                    ),
                ))
        }
        Lookup::None { clear } => Reply::new(200, "not_signed_in").cookies(clear).html(page(
            "Signed out",
            "<p>You are not signed in.</p><p><a href=\"/\">Continue</a></p>",
        )),
    }
}

/// POST `/.portcullis/sign_out`: needs a same-origin `Origin` and the form's `csrf` (or
/// `X-CSRF-Token`). Ends the session here, revokes its refresh token at the provider, clears
/// the cookie, and sends the browser through the provider's end-session endpoint.
async fn sign_out(rt: &Runtime, cfg: &SessionConfig, req: &Req<'_>, body: &[u8]) -> Reply {
    let html = req.is_navigation() || req.headers.get(header::CONTENT_TYPE).is_some();
    let origin_ok = req
        .headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_some_and(|o| o == req.origin.url());
    if !origin_ok {
        return Reply::error(
            403,
            "forbidden",
            "Sign-out must come from this site's own page.",
            "csrf_origin",
            html,
        );
    }
    let found = match current(rt, cfg, req).await {
        Lookup::Found(f) => f,
        Lookup::None { clear } => {
            return Reply::redirect("/", "not_signed_in")
                .cookies(clear)
                .cookies(cookie::clear_session(
                    req.headers,
                    &cfg.settings.cookie_name,
                ));
        }
    };
    let sent = req
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(Cow::Borrowed)
        .or_else(|| {
            url::form_urlencoded::parse(body)
                .find(|(k, _)| k == "csrf")
                .map(|(_, v)| v)
        });
    if !sent.is_some_and(|s| ct_eq(&s, &csrf_of(&found.entry.sid))) {
        return Reply::error(
            403,
            "forbidden",
            "The sign-out form has expired. Open it again.",
            "csrf_token",
            html,
        );
    }
    found.entry.end();
    if let Some(db) = rt.db(cfg) {
        let ended = match db {
            Ok(d) => d.end(&found.entry.sid).await,
            Err(e) => Err(e),
        };
        if ended.is_err() {
            tracing::warn!(
                "sign-out: the session database is unavailable; the session ends here only"
            );
        }
    }
    let live = found.live;
    let provider = rt.provider(cfg);
    let mut to = "/".to_string();
    if let Ok(ep) = provider.endpoints(&req.origin).await {
        if let Some(rt_token) = &live.body.rt
            && let Err(e) = provider.revoke(&ep, rt_token, &req.call()).await
        {
            tracing::warn!(error = ?e, "sign-out: the refresh token could not be revoked");
        }
        if let Some(end) = end_session_url(&ep, provider.client_id(), &live.body.it, req) {
            to = end;
        }
    }
    tracing::info!(user = %live.principal.user(), "signed out");
    Reply::redirect(&to, "signed_out").cookies(cookie::clear_session(
        req.headers,
        &cfg.settings.cookie_name,
    ))
}

/// The provider's end-session URL (OpenID Connect RP-Initiated Logout), back to this origin.
fn end_session_url(
    ep: &super::provider::Endpoints,
    client_id: &str,
    id_token: &Option<String>,
    req: &Req<'_>,
) -> Option<String> {
    let mut url = url::Url::parse(ep.end_session.as_deref()?).ok()?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", client_id);
        q.append_pair(
            "post_logout_redirect_uri",
            &format!("{}/", req.origin.url()),
        );
        if let Some(it) = id_token {
            q.append_pair("id_token_hint", it);
        }
    }
    Some(url.into())
}

/// `/.portcullis/userinfo`: the session's principal as JSON, or 401.
async fn userinfo(rt: &Runtime, cfg: &SessionConfig, req: &Req<'_>) -> Reply {
    match current(rt, cfg, req).await {
        Lookup::Found(f) => {
            let p = &f.live.principal;
            let max = cfg.settings.max_lifetime.as_secs();
            Reply::new(200, "userinfo")
                .cookies(f.set_cookies)
                .json(&json!({
                    "iss": &*p.issuer,
                    "sub": p.sub,
                    "preferred_username": p.username,
                    "email": p.email,
                    "groups": p.groups,
                    "roles": p.roles,
                    "session_expires_at": f.live.created.saturating_add(max),
                    "access_token_expires_at": f.live.body.at_exp,
                }))
        }
        Lookup::None { clear } => Reply::new(401, "no_session")
            .cookies(clear)
            .json(&json!({"error": "unauthorized", "error_description": "not signed in"})),
    }
}

/// A small page of the gateway's own (no script, no external resources).
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head>\
         <body style=\"font-family:sans-serif;max-width:32em;margin:4em auto\"><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    )
}

/// HTML-escapes text.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
