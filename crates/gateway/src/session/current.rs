//! The session a request carries: its cookie opened (one AEAD open), its header checked
//! (idle and lifetime), then the live session found by id. Only a session this process has not
//! seen yet has its cookie body parsed. An access token near expiry is refreshed here, once per
//! session however many requests arrive at once; a refused refresh ends the session.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::HeaderValue;

use super::cache::{Entry, Live};
use super::provider::{Endpoints, Failure, TokenAnswer};
use super::state::{Body, Header, SESSION_PURPOSE};
use super::{Req, Runtime, SessionConfig, cookie, idtoken};
use portcullis_core::metrics::metrics;

/// A cookie is re-sealed (its idle clock restarted) at most this often.
const TOUCH_EVERY: u64 = 60;
/// `store = "database"`: a cached session is checked against its row this often.
const RECHECK_EVERY: u64 = 5;
/// After the provider failed a refresh, the next try waits this long.
const RETRY_REFRESH_AFTER: u64 = 5;

/// A request's live session.
pub struct Found {
    pub entry: Arc<Entry>,
    pub live: Arc<Live>,
    /// `Set-Cookie`s for the response: the cookie re-sealed after a refresh or to restart its
    /// idle clock.
    pub set_cookies: Vec<HeaderValue>,
}

/// The request's session, or none (with `Set-Cookie`s that clear a cookie of a session that
/// ended).
pub enum Lookup {
    Found(Found),
    None { clear: Vec<HeaderValue> },
}

impl Lookup {
    fn none() -> Lookup {
        Lookup::None { clear: Vec::new() }
    }

    fn ended(cfg: &SessionConfig, req: &Req<'_>) -> Lookup {
        Lookup::None {
            clear: cookie::clear_session(req.headers, &cfg.settings.cookie_name),
        }
    }
}

/// The request's session. A tampered cookie, one sealed with a key no longer listed, an
/// expired or ended session: all of them are simply no session.
pub async fn current(rt: &Runtime, cfg: &SessionConfig, req: &Req<'_>) -> Lookup {
    let s = &cfg.settings;
    let Some(value) = cookie::read(req.headers, &s.cookie_name) else {
        return Lookup::none();
    };
    // A value opened before needs no base64 decoding and no AEAD open: only its header is
    // read on a request whose session is cached. The body is opened when it is needed.
    let (head, mut plain) = match cfg.opened.get(&value) {
        Some(head) => (head, None),
        None => {
            let Some((head, plain)) = open(cfg, &value) else {
                return Lookup::none();
            };
            (head, Some(plain))
        }
    };
    let now = rt.now();
    if now >= head.created.saturating_add(s.max_lifetime.as_secs())
        || now >= head.seen.saturating_add(s.idle_timeout.as_secs())
    {
        return Lookup::ended(cfg, req);
    }
    let entry = match rt.sessions.get(&head.sid) {
        Some(e) if e.live.load().rev >= head.rev => e,
        _ => {
            // With `store = "database"` the session comes from its row, not the cookie's body.
            if plain.is_none() && cfg.database.is_none() {
                plain = open(cfg, &value).map(|(_, p)| p);
            }
            let body = plain.as_deref().and_then(Header::decode).map(|(_, b)| b);
            match restore(rt, cfg, &head, body, now).await {
                Some(e) => e,
                None => return Lookup::none(),
            }
        }
    };
    if plain.is_some() {
        cfg.opened.insert(&value, head);
    }
    if entry.is_ended() || !still_in_database(rt, cfg, &entry, now).await {
        return Lookup::ended(cfg, req);
    }
    let mut live = entry.live.load_full();
    if live.needs_refresh(now) {
        match refresh(rt, cfg, &entry, req, now).await {
            Some(l) => live = l,
            None => return Lookup::ended(cfg, req),
        }
    }
    if live.body.at_exp <= now {
        // Expired, and the provider could not refresh it: no session until it can.
        return Lookup::none();
    }
    let every = touch_every(cfg);
    let set_cookies = if (head.rev < live.rev || now.saturating_sub(head.seen) >= every)
        && entry.claim_reseal(live.rev, now, every)
    {
        seal_cookie(cfg, req, &entry.sid, &live, now)
    } else {
        Vec::new()
    };
    Lookup::Found(Found {
        entry,
        live,
        set_cookies,
    })
}

/// The header of a session cookie's value and its whole plaintext, when it opens.
fn open(cfg: &SessionConfig, value: &str) -> Option<(Header, Vec<u8>)> {
    let plain = cfg.keys.open(SESSION_PURPOSE, value).ok()?;
    let (head, _) = Header::decode(&plain)?;
    Some((head, plain))
}

/// How stale a cookie's last-seen time may get before it is re-sealed.
fn touch_every(cfg: &SessionConfig) -> u64 {
    TOUCH_EVERY
        .min(cfg.settings.idle_timeout.as_secs() / 4)
        .max(1)
}

/// A session this process has not seen (or only an older revision of): from the cookie's
/// body, or with `store = "database"` from its row.
async fn restore(
    rt: &Runtime,
    cfg: &SessionConfig,
    head: &Header,
    body: Option<&[u8]>,
    now: u64,
) -> Option<Arc<Entry>> {
    let max = cfg.settings.max_lifetime.as_secs();
    let client = &cfg.settings.client_id;
    let live = match rt.db(cfg) {
        None => Live::new(
            head.rev,
            head.created,
            serde_json::from_slice(body?).ok()?,
            client,
        ),
        Some(db) => {
            let row = db.ok()?.get(&cfg.keys, &head.sid, now).await.ok()??;
            Live::new(row.rev, row.created, row.body, client)
        }
    };
    Some(rt.sessions.insert(head.sid, live, now, max))
}

/// `store = "database"`: whether the session's row still exists, checked at most every few
/// seconds (a sign-out on another replica ends the session here within that time), and at
/// once when PostgreSQL announced that it may have ended (`heard.rs`). A newer
/// revision there (a refresh elsewhere) replaces the cached one. While the database is down
/// the cached session goes on.
async fn still_in_database(rt: &Runtime, cfg: &SessionConfig, entry: &Entry, now: u64) -> bool {
    let Some(Ok(db)) = rt.db(cfg) else {
        return true;
    };
    let checked_at = entry.checked_at.load(Ordering::Acquire);
    if now < checked_at.saturating_add(RECHECK_EVERY)
        && !db
            .heard
            .may_have_ended(&entry.sid, &entry.live.load().body.who.sub, checked_at)
    {
        return true;
    }
    match db.get(&cfg.keys, &entry.sid, now).await {
        Ok(None) => {
            entry.end();
            false
        }
        Ok(Some(row)) => {
            if row.rev > entry.live.load().rev {
                let live = Live::new(row.rev, row.created, row.body, &cfg.settings.client_id);
                entry.live.store(Arc::new(live));
            }
            entry.checked_at.store(now, Ordering::Release);
            true
        }
        Err(_) => true,
    }
}

/// The `Set-Cookie`s that store `live` in the browser, seen now.
pub fn seal_cookie(
    cfg: &SessionConfig,
    req: &Req<'_>,
    sid: &super::state::Sid,
    live: &Live,
    now: u64,
) -> Vec<HeaderValue> {
    let s = &cfg.settings;
    let head = Header {
        sid: *sid,
        rev: live.rev,
        created: live.created,
        seen: now,
    };
    // With `store = "database"` the cookie only names the session. Without, it holds the
    // tokens but not the ID token: that keeps it in one cookie (no chunks to join on every
    // request); sign-out names the client instead (`client_id`, as RP-initiated logout allows).
    let body = if cfg.database.is_some() {
        Vec::new()
    } else {
        let b = Body {
            it: None,
            ..live.body.clone()
        };
        match serde_json::to_vec(&b) {
            Ok(b) => b,
            Err(_) => return Vec::new(),
        }
    };
    let Some(sealed) = cfg.keys.seal(SESSION_PURPOSE, head.encode(&body)) else {
        return Vec::new();
    };
    let max_age = live
        .created
        .saturating_add(s.max_lifetime.as_secs())
        .saturating_sub(now);
    cookie::write_session(req.headers, &s.cookie_name, &sealed, max_age)
}

/// Refreshes `entry`'s access token, unless the request this one waited for already did.
/// `None`: the session has ended (the provider refused the refresh token).
async fn refresh(
    rt: &Runtime,
    cfg: &SessionConfig,
    entry: &Entry,
    req: &Req<'_>,
    now: u64,
) -> Option<Arc<Live>> {
    let _one = entry.refresh.lock().await;
    let live = entry.live.load_full();
    if entry.is_ended() {
        return None;
    }
    if !live.needs_refresh(now) || now < entry.retry_refresh_at.load(Ordering::Acquire) {
        return Some(live);
    }
    let Some(refresh_token) = live.body.rt.as_deref() else {
        // Nothing to refresh with: the session lasts as long as its access token.
        return Some(live);
    };
    let provider = rt.provider(cfg);
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let answer = match provider.endpoints(&req.origin).await {
        Ok(ep) => provider
            .token(&ep, &form, &req.call())
            .await
            .map(|a| (ep, a)),
        Err(e) => Err(e),
    };
    let result = match answer {
        Ok((ep, a)) => refreshed_body(rt, cfg, &ep, &live, a, now).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(body) => {
            count("success");
            let rev = live.rev.wrapping_add(1);
            if let Some(Ok(db)) = rt.db(cfg)
                && let Ok(false) = db.update(&cfg.keys, &entry.sid, rev, &body, now).await
            {
                // Signed out elsewhere while this refresh ran.
                entry.end();
                return None;
            }
            let next = Arc::new(Live::new(rev, live.created, body, &cfg.settings.client_id));
            entry.live.store(Arc::clone(&next));
            Some(next)
        }
        Err(Failure::Unreachable | Failure::Malformed) => {
            count("error");
            tracing::warn!(
                "session refresh: the provider is unreachable; the session goes on until its access token expires"
            );
            entry
                .retry_refresh_at
                .store(now + RETRY_REFRESH_AFTER, Ordering::Release);
            Some(live)
        }
        Err(Failure::Refused(error)) => {
            count("failure");
            tracing::info!(error = %error, "session refresh refused: the session ends");
            entry.end();
            None
        }
    }
}

fn count(result: &str) {
    metrics()
        .session_refreshes
        .with_label_values(&[result])
        .inc();
}

/// The session's tokens after a refresh grant. A new ID token must pass every check but the
/// nonce and name the same subject; without one, groups and roles come from the new access
/// token when it carries them.
async fn refreshed_body(
    rt: &Runtime,
    cfg: &SessionConfig,
    ep: &Endpoints,
    old: &Live,
    a: TokenAnswer,
    now: u64,
) -> Result<Body, Failure> {
    let provider = rt.provider(cfg);
    let mut who = old.body.who.clone();
    if let Some(id) = &a.id_token {
        let claims = provider
            .verify_id_token(ep, id, None, now)
            .await
            .map_err(|r| Failure::Refused(r.0.to_string()))?;
        let fresh = idtoken::who(&claims, &a.access_token);
        if fresh.sub != who.sub || fresh.iss != who.iss {
            return Err(Failure::Refused(
                "the refreshed ID token is for another user".into(),
            ));
        }
        who = fresh;
    } else {
        let fresh = idtoken::who(&serde_json::Map::new(), &a.access_token);
        if !fresh.groups.is_empty() || !fresh.roles.is_empty() {
            who.groups = fresh.groups;
            who.roles = fresh.roles;
        }
    }
    let life = a.expires_in();
    Ok(Body {
        at_exp: now + life,
        at_life: life,
        rt: a.refresh_token.or_else(|| old.body.rt.clone()),
        it: a.id_token.or_else(|| old.body.it.clone()),
        at: a.access_token,
        who,
    })
}
