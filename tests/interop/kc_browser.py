"""Keycloak-compatible sign-in in a real browser (headless Chromium via Selenium).

usage: kc_browser.py MODE REALM_BASE_URL CA_PEM RP_BASE_URL
  code:  a public client on another origin (RP_BASE_URL/cb): the authorization-code flow with
         PKCE through the login form, SSO on a second visit (no form), logout.
  kcjs:  keycloak-js 26 (RP_BASE_URL/kc/app.html) with login-required and its defaults (the
         third-party-cookie check, the session status iframe, fragment response mode), then
         updateToken(-1) and logout, in a browser that allows third-party cookies: the status
         iframe is on and answers "unchanged".
  kcjs-no3p: the same where third-party cookies are blocked (a fresh headless profile):
         the check answers "unsupported" and keycloak-js goes on without the iframe.
Prints "... OK" on success; on failure, where the browser was, the page and its console.
"""
import sys
import traceback
from urllib.parse import parse_qs, urlencode, urlparse

import requests
from selenium.webdriver.common.by import By

from browser import chromium, pkce, wait

mode, base, ca, rp = sys.argv[1:5]
P = base + "/protocol/openid-connect"


def browser(allow_third_party_cookies):
    # Chromium's setting "Allow third-party cookies" (a fresh headless profile blocks them).
    prefs = {"profile.cookie_controls_mode": 0} if allow_third_party_cookies else None
    return chromium(console=True, prefs=prefs)


def sign_in(d, user, password):
    wait(d, "the login form", lambda d: d.find_elements(By.ID, "password"))
    name = d.find_element(By.ID, "username")
    name.clear()
    name.send_keys(user)
    d.find_element(By.ID, "password").send_keys(password)
    d.find_element(By.CSS_SELECTOR, "input[type=submit]").click()


def refresh_refused(client_id, refresh_token):
    r = requests.post(
        P + "/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id},
        verify=ca,
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", (r.status_code, r.text)


def code_flow(d):
    verifier, challenge = pkce()
    callback = rp + "/cb"

    def authorize(state):
        return P + "/auth?" + urlencode({
            "client_id": "webapp", "redirect_uri": callback, "response_type": "code",
            "scope": "openid", "state": state, "nonce": "n-" + state,
            "code_challenge": challenge, "code_challenge_method": "S256",
        })

    d.get(authorize("first"))
    sign_in(d, "alice", "password")
    # The form's POST answers with a 302 to another origin: the browser must follow it.
    wait(d, "the redirect to the client's origin", lambda d: d.current_url.startswith(callback))
    q = parse_qs(urlparse(d.current_url).query)
    assert q["state"] == ["first"], q
    tokens = requests.post(P + "/token", data={
        "grant_type": "authorization_code", "code": q["code"][0], "redirect_uri": callback,
        "client_id": "webapp", "code_verifier": verifier,
    }, verify=ca).json()
    assert tokens.get("access_token") and tokens.get("id_token"), tokens

    # SSO: the second visit goes straight back with a code, no form.
    d.get(authorize("second"))
    assert d.current_url.startswith(callback), ("a login form the second time", d.current_url)
    q = parse_qs(urlparse(d.current_url).query)
    assert q["state"] == ["second"] and q["code"], q

    # Logout, back to a registered page; then the session is gone.
    d.get(P + "/logout?" + urlencode({
        "id_token_hint": tokens["id_token"], "client_id": "webapp",
        "post_logout_redirect_uri": rp + "/bye", "state": "gone",
    }))
    wait(d, "the post-logout redirect", lambda d: d.current_url.startswith(rp + "/bye"))
    assert parse_qs(urlparse(d.current_url).query)["state"] == ["gone"]
    d.get(authorize("third"))
    wait(d, "the login form after logout", lambda d: d.find_elements(By.ID, "password"))
    refresh_refused("webapp", tokens["refresh_token"])
    print("browser code flow OK")


def keycloak_js(d, third_party_cookies):
    app = rp + "/kc/app.html"
    d.get(app)
    # The third-party-cookie check runs first, then login-required sends us to the form.
    sign_in(d, "alice", "password")
    wait(d, "keycloak-js init to settle", lambda d: d.execute_script("return window.kcStatus") not in (None, "loading"), 20)
    status = d.execute_script("return window.kcStatus")
    assert status == "authenticated", status
    assert d.current_url == app, ("callback parameters left in the URL", d.current_url)
    info = d.execute_script("""return {
        token: kc.token, user: kc.tokenParsed.preferred_username, sid: kc.sessionId,
        refreshTyp: kc.refreshTokenParsed.typ, refreshSid: kc.refreshTokenParsed.sid,
        iframe: !!document.querySelector('iframe[title="keycloak-session-iframe"]')}""")
    assert info["user"] == "alice", info
    assert info["iframe"] == third_party_cookies, ("the session status iframe", info)
    assert info["refreshTyp"] == "Refresh" and info["refreshSid"] == info["sid"], info

    # updateToken asks the status iframe first (when there is one) ("changed" would clear the tokens and log in
    # again), then refreshes across origins (CORS with credentials).
    res = d.execute_async_script("""const done = arguments[arguments.length - 1];
        kc.updateToken(-1).then(
          (r) => done({refreshed: r, token: kc.token, authenticated: kc.authenticated}),
          (e) => done({error: String(e && (e.message || e))}));""")
    assert res.get("refreshed") is True, res
    assert res["token"] != info["token"] and res["authenticated"], res
    # And an explicit status check by the next scheduled round stays signed in.
    unchanged = d.execute_async_script("""const done = arguments[arguments.length - 1];
        kc.updateToken(5).then(() => done(kc.authenticated), (e) => done(String(e)));""")
    assert unchanged is True, unchanged
    assert d.current_url == app, d.current_url

    rt = d.execute_script("return kc.refreshToken")
    d.execute_script("kc.logout({redirectUri: arguments[0]})", rp + "/kc/bye.html")
    wait(d, "the post-logout redirect", lambda d: d.current_url.startswith(rp + "/kc/bye.html"))
    refresh_refused("kcjs", rt)
    print("keycloak-js OK")


d = browser(mode == "kcjs")
try:
    {
        "code": code_flow,
        "kcjs": lambda d: keycloak_js(d, True),
        "kcjs-no3p": lambda d: keycloak_js(d, False),
    }[mode](d)
except Exception:
    traceback.print_exc()
    print("--- browser at:", d.current_url)
    print("--- page:", d.page_source[:3000])
    for entry in d.get_log("browser"):
        print("--- console:", entry.get("level"), entry.get("message"))
    sys.exit(1)
finally:
    d.quit()
