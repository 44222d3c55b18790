//! The pages keycloak-js frames from the issuer, with Keycloak's behaviour (our own scripts):
//! - `P/3p-cookies/step1.html` → `step2.html`: can this third-party frame keep a cookie? It
//!   posts `supported` or `unsupported` to its parent, which turns the status iframe off when
//!   not;
//! - `P/login-status-iframe.html`: answers the parent's `"{client_id} {session_state}"` message
//!   with `unchanged`, `changed` or `error`, comparing the hash of the session state with the
//!   `KEYCLOAK_SESSION` cookie, once `…/init` has said the client may ask from that origin.
//!
//! The pages may be framed by any origin (that is their use) and run only their own inline
//! script, pinned by its hash in the CSP.

use std::sync::{Arc, LazyLock};

use axum::Extension;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::cors;
use super::params::Params;
use super::realm::{self, Realm};
use super::urls::{Listener, bases, listener};
use crate::domain::state::State;

/// `step1.html`: with storage access, set two test cookies (one SameSite=None) and go on to
/// `step2.html`, which reads them; without, answer `unsupported` at once.
const STEP1: &str = r#"
(async () => {
  let access = true;
  if ("hasStorageAccess" in document && !(await document.hasStorageAccess())) {
    // Without a user gesture this may be refused: then there is no access.
    access = await document.requestStorageAccess().then(() => true, () => false);
  }
  if (!access) {
    window.parent.postMessage("unsupported", "*");
    return;
  }
  document.cookie = "KEYCLOAK_3P_COOKIE_SAMESITE=supported; Max-Age=60; SameSite=None; Secure";
  document.cookie = "KEYCLOAK_3P_COOKIE=supported; Max-Age=60";
  window.location.replace("step2.html");
})();
"#;

/// `step2.html`: whether either test cookie came back; both are removed again.
const STEP2: &str = r#"
const supported = document.cookie.includes("KEYCLOAK_3P_COOKIE");
if (supported) {
  document.cookie = "KEYCLOAK_3P_COOKIE_SAMESITE=; Max-Age=0; SameSite=None; Secure";
  document.cookie = "KEYCLOAK_3P_COOKIE=; Max-Age=0";
}
window.parent.postMessage(supported ? "supported" : "unsupported", "*");
"#;

/// `login-status-iframe.html`. The first message asks the server (`…/init`) whether the client
/// may ask from the sender's origin, once: a refusal makes every later answer `error`, and
/// another client or origin than the verified one gets `error` too.
const STATUS: &str = r#"
let verified = null;
let asked = false;

window.addEventListener("message", async (event) => {
  if (typeof event.data !== "string") return;
  const parts = event.data.split(" ");
  if (parts.length !== 2) return;
  let status;
  try {
    status = await check(parts[0], event.origin, parts[1]);
  } catch (e) {
    status = "error";
  }
  event.source.postMessage(status, event.origin);
});

async function storageAccess() {
  if (!("hasStorageAccess" in document) || (await document.hasStorageAccess())) return true;
  return document.requestStorageAccess().then(() => true, () => false);
}

async function check(clientId, origin, sessionState) {
  if (!(await storageAccess())) return "error";
  if (!verified) {
    if (asked) return "error";
    asked = true;
    const url = new URL(location.origin + location.pathname + "/init");
    url.searchParams.set("client_id", clientId);
    url.searchParams.set("origin", origin);
    const response = await fetch(url);
    if (!response.ok) return "error";
    verified = { clientId, origin };
  }
  const cookie = sessionCookie();
  if (!cookie) return sessionState !== "" ? "changed" : "unchanged";
  if (clientId !== verified.clientId || origin !== verified.origin) return "error";
  return (await sha256url(sessionState)) === cookie ? "unchanged" : "changed";
}

function sessionCookie() {
  for (const pair of document.cookie.split(";")) {
    const at = pair.indexOf("=");
    if (at > 0 && pair.slice(0, at).trim() === "KEYCLOAK_SESSION") {
      const value = pair.slice(at + 1).trim();
      return value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
    }
  }
  return null;
}

async function sha256url(text) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return btoa(String.fromCharCode(...digest)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
"#;

/// A page running `script`, and its CSP: that script (by hash) and same-origin fetches only.
struct FramePage {
    html: String,
    csp: HeaderValue,
}

impl FramePage {
    fn new(script: &str) -> FramePage {
        let hash = STANDARD.encode(Sha256::digest(script.as_bytes()));
        let csp = format!(
            "default-src 'none'; script-src 'sha256-{hash}'; connect-src 'self'; base-uri 'none'"
        );
        FramePage {
            html: format!(
                "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\
                 <script type=\"module\">{script}</script></body></html>\n"
            ),
            csp: HeaderValue::from_str(&csp)
                .unwrap_or(HeaderValue::from_static("default-src 'none'")),
        }
    }

    fn response(&self) -> Response {
        let mut resp = Html(self.html.clone()).into_response();
        let h = resp.headers_mut();
        // Keycloak serves these uncached unless a resource version is asked for.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        resp
    }
}

static PAGES: LazyLock<[FramePage; 3]> = LazyLock::new(|| {
    [
        FramePage::new(STEP1),
        FramePage::new(STEP2),
        FramePage::new(STATUS),
    ]
});

pub async fn step1(_realm: Realm<realm::Page>) -> Response {
    PAGES[0].response()
}

pub async fn step2(_realm: Realm<realm::Page>) -> Response {
    PAGES[1].response()
}

pub async fn status(_realm: Realm<realm::Page>) -> Response {
    PAGES[2].response()
}

/// `…/login-status-iframe.html/init`: 204 when the enabled client may ask from `origin` (one
/// of its web origins, or the issuer's own), else 403 and nothing more.
pub async fn init(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> StatusCode {
    let Ok(p) = Params::parse(query.unwrap_or_default().as_bytes()) else {
        return StatusCode::FORBIDDEN;
    };
    let (Some(client_id), Some(origin)) = (p.get("client_id"), p.get("origin")) else {
        return StatusCode::FORBIDDEN;
    };
    let Some(client) = realm.dir.clients.get(client_id) else {
        return StatusCode::FORBIDDEN;
    };
    let own = bases(st.frontend_url.as_deref(), &headers, listener(ext)).frontend;
    let own_origin = url::Url::parse(&own)
        .ok()
        .map(|u| u.origin().ascii_serialization());
    let ok = client.config.enabled
        && (cors::client_allows(client, origin) || own_origin.as_deref() == Some(origin));
    if ok {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::FORBIDDEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_page_allows_exactly_its_own_script() {
        for (page, script) in PAGES.iter().zip([STEP1, STEP2, STATUS]) {
            let hash = STANDARD.encode(Sha256::digest(script.as_bytes()));
            let csp = page.csp.to_str().unwrap();
            assert!(csp.contains(&format!("'sha256-{hash}'")), "{csp}");
            assert!(!csp.contains("frame-ancestors"), "framed by any origin");
            assert!(
                page.html
                    .contains(&format!("<script type=\"module\">{script}</script>"))
            );
        }
    }
}
