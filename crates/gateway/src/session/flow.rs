//! Signing in: the redirect to the provider (a fresh `state`, `nonce` and PKCE verifier sealed
//! into a short-lived pre-auth cookie in this browser), and the callback (the `state` checked
//! against that cookie and against replay, the code exchanged over the backchannel, the ID
//! token validated, the session cookie set, and back to the URL first asked for).

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::cache::Live;
use super::current::seal_cookie;
use super::idtoken;
use super::provider::Failure;
use super::state::{Body, PRE_AUTH_PURPOSE, PreAuth, ct_eq, new_sid, random_token};
use super::{Reply, Req, Runtime, SessionConfig, cookie, redirect};
use portcullis_core::metrics::metrics;

/// How long a sign-in may take, from the redirect to the callback.
const SIGN_IN_SECONDS: u64 = 600;
/// Pre-auth cookies kept per browser (sign-ins in several tabs); older ones are cleared.
const MAX_PRE_AUTH: usize = 4;
pub const CALLBACK: &str = "/.portcullis/callback";

/// The pre-auth cookie of the sign-in with this `state` (each sign-in has its own, so two
/// tabs signing in at once don't overwrite each other's).
fn pre_auth_name(cfg: &SessionConfig, state: &str) -> String {
    let tag: String = state.chars().take(8).collect();
    format!("{}.a.{tag}", cfg.settings.cookie_name)
}

/// 302 to the provider's authorization endpoint, for a browser that will come back to `rd`.
pub async fn start(rt: &Runtime, cfg: &SessionConfig, req: &Req<'_>, rd: &str) -> Reply {
    let html = req.is_navigation();
    let provider = rt.provider(cfg);
    let ep = match provider.endpoints(&req.origin).await {
        Ok(ep) => ep,
        Err(_) => {
            return Reply::error(
                502,
                "bad_gateway",
                "The sign-in provider cannot be reached. Try again later.",
                "provider_unreachable",
                html,
            );
        }
    };
    let (Some(state), Some(nonce), Some(verifier)) = (
        random_token::<32>(),
        random_token::<32>(),
        random_token::<32>(),
    ) else {
        return Reply::error(500, "server_error", "No randomness.", "no_randomness", html);
    };
    let challenge = URL_SAFE_NO_PAD.encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref(),
    );
    let redirect_uri = format!("{}{CALLBACK}", req.origin.url());
    let scope = cfg.settings.scopes.join(" ");
    let Ok(mut to) = url::Url::parse(&ep.authorization) else {
        return Reply::error(
            502,
            "bad_gateway",
            "The provider's authorization endpoint is not a URL.",
            "provider_malformed",
            html,
        );
    };
    to.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", provider.client_id())
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", &scope)
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let pre = PreAuth {
        rd: redirect::same_origin(&req.origin, rd),
        exp: rt.now() + SIGN_IN_SECONDS,
        state,
        nonce,
        verifier,
        redirect_uri,
    };
    let sealed = serde_json::to_vec(&pre)
        .ok()
        .and_then(|p| cfg.keys.seal(PRE_AUTH_PURPOSE, p));
    let Some(sealed) = sealed else {
        return Reply::error(
            500,
            "server_error",
            "The sign-in could not be started.",
            "seal_failed",
            html,
        );
    };
    let name = pre_auth_name(cfg, &pre.state);
    let mut set: Vec<_> = cookie::set(&name, &sealed, Some(SIGN_IN_SECONDS))
        .into_iter()
        .collect();
    let prefix = format!("{}.a.", cfg.settings.cookie_name);
    let others = cookie::names_with_prefix(req.headers, &prefix);
    let excess = others.len().saturating_sub(MAX_PRE_AUTH - 1);
    set.extend(others.iter().take(excess).filter_map(|n| cookie::clear(n)));
    Reply::redirect(to.as_str(), "sign_in").cookies(set)
}

/// `/.portcullis/callback`: ends a sign-in. Any problem with the `state` is 400 with no
/// session cookie; a provider that can't be reached is 502.
pub async fn callback(rt: &Runtime, cfg: &SessionConfig, req: &Req<'_>) -> Reply {
    let q: Vec<(Cow<'_, str>, Cow<'_, str>)> =
        url::form_urlencoded::parse(req.query.unwrap_or("").as_bytes()).collect();
    let param = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_ref());
    let html = req.is_navigation();
    let fail = |status, reason, words: &str| failed(status, reason, words, html);
    let Some(state) = param("state").filter(|s| !s.is_empty()) else {
        return fail(400, "missing_state", "The sign-in response has no state.");
    };
    let name = pre_auth_name(cfg, state);
    let pre = cookie::read(req.headers, &name)
        .and_then(|v| cfg.keys.open(PRE_AUTH_PURPOSE, &v).ok())
        .and_then(|p| serde_json::from_slice::<PreAuth>(&p).ok());
    let Some(pre) = pre else {
        return fail(
            400,
            "unknown_state",
            "No sign-in with this state was started in this browser, or it has expired.",
        );
    };
    let clear_pre = cookie::clear(&name);
    let now = rt.now();
    if !ct_eq(&pre.state, state) {
        return fail(
            400,
            "state_mismatch",
            "The sign-in response does not match the sign-in started in this browser.",
        );
    }
    if now > pre.exp {
        return fail(
            400,
            "state_expired",
            "The sign-in took too long. Start again.",
        )
        .cookies(clear_pre);
    }
    if !rt.first_use_of_state(state, pre.exp) {
        return fail(
            400,
            "state_reused",
            "This sign-in response was already used.",
        )
        .cookies(clear_pre);
    }
    if let Some(error) = param("error") {
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_lowercase() || *c == '_')
            .take(64)
            .collect();
        return fail(
            400,
            "provider_error",
            &format!("The provider did not sign you in ({code})."),
        )
        .cookies(clear_pre);
    }
    let Some(code) = param("code").filter(|c| !c.is_empty()) else {
        return fail(400, "missing_code", "The sign-in response has no code.").cookies(clear_pre);
    };
    match exchange(rt, cfg, req, &pre, code, now).await {
        Ok(body) => match new_sid() {
            Some(sid) => match signed_in(rt, cfg, req, sid, body, &pre.rd, now).await {
                Some(reply) => reply.cookies(clear_pre),
                None => fail(
                    502,
                    "store_unavailable",
                    "The session could not be stored. Try again later.",
                ),
            },
            None => fail(500, "no_randomness", "The session could not be made."),
        },
        Err(Exchange::Down) => fail(
            502,
            "provider_unreachable",
            "The sign-in provider cannot be reached. Try again later.",
        ),
        Err(Exchange::Refused(words)) => fail(400, "code_refused", &words).cookies(clear_pre),
    }
}

/// A refused callback, counted (`failure` for 4xx, `error` when the provider is down).
fn failed(status: u16, reason: &'static str, words: &str, html: bool) -> Reply {
    let result = if status >= 500 { "error" } else { "failure" };
    metrics()
        .session_sign_ins
        .with_label_values(&[result])
        .inc();
    tracing::info!(reason, "sign-in refused at the callback");
    let error = if status >= 500 {
        "bad_gateway"
    } else {
        "invalid_request"
    };
    Reply::error(status, error, words, reason, html)
}

/// The new session stored (with `store = "database"` in its row) and its cookie set; back to
/// where the browser first went. `None` when the database could not take it.
async fn signed_in(
    rt: &Runtime,
    cfg: &SessionConfig,
    req: &Req<'_>,
    sid: super::state::Sid,
    body: Body,
    rd: &str,
    now: u64,
) -> Option<Reply> {
    let max = cfg.settings.max_lifetime.as_secs();
    if let Some(db) = rt.db(cfg) {
        db.ok()?
            .create(&cfg.keys, &sid, &body, now, now.saturating_add(max))
            .await
            .ok()?;
    }
    let live = Live::new(0, now, body, &cfg.settings.client_id);
    let entry = rt.sessions.insert(sid, live, now, max);
    let live = entry.live.load_full();
    metrics()
        .session_sign_ins
        .with_label_values(&["success"])
        .inc();
    tracing::info!(user = %live.principal.user(), "signed in");
    Some(Reply::redirect(rd, "signed_in").cookies(seal_cookie(cfg, req, &sid, &live, now)))
}

/// Why the code did not turn into a session.
enum Exchange {
    Down,
    Refused(String),
}

/// The code exchanged for tokens, the ID token validated: the new session's body.
async fn exchange(
    rt: &Runtime,
    cfg: &SessionConfig,
    req: &Req<'_>,
    pre: &PreAuth,
    code: &str,
    now: u64,
) -> Result<Body, Exchange> {
    let provider = rt.provider(cfg);
    let ep = provider
        .endpoints(&req.origin)
        .await
        .map_err(|_| Exchange::Down)?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", pre.redirect_uri.as_str()),
        ("code_verifier", pre.verifier.as_str()),
    ];
    let a = match provider.token(&ep, &form, &req.call()).await {
        Ok(a) => a,
        Err(Failure::Refused(e)) => {
            return Err(Exchange::Refused(format!(
                "The provider refused the sign-in code ({e})."
            )));
        }
        Err(Failure::Unreachable | Failure::Malformed) => return Err(Exchange::Down),
    };
    let Some(id) = a.id_token.as_deref() else {
        return Err(Exchange::Refused("The provider sent no ID token.".into()));
    };
    let claims = provider
        .verify_id_token(&ep, id, Some(&pre.nonce), now)
        .await
        .map_err(|r| Exchange::Refused(format!("The ID token was refused: {}.", r.0)))?;
    let who = idtoken::who(&claims, &a.access_token);
    let life = a.expires_in();
    Ok(Body {
        at_exp: now + life,
        at_life: life,
        rt: a.refresh_token,
        it: a.id_token,
        at: a.access_token,
        who,
    })
}
