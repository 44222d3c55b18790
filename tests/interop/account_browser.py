"""The account pages around the sign-in, walked as a person in a real browser (headless
Chromium via Selenium), with the mails read from the real SMTP sink (`smtp_sink.py`'s
directory) and their links clicked in the mail's HTML body.

usage: account_browser.py MODE REALM_BASE_URL CA_PEM RP_BASE_URL SINK_DIR [USER PASSWORD]
MODE
  reset     the client's login page → "Forgot password?" → the mail → the link → a new
            password (a mismatch and a policy refusal first, said in words) → signed in to the
            client with it; the old one is refused.
  register  the login page → "Register" → "check your mail" → signing in before the link is
            opened: the VERIFY_EMAIL step → the registration mail's link → "Email verified" →
            "continue" → signed in, `email_verified` true.
  actions   USER (required actions UPDATE_PASSWORD and CONFIGURE_TOTP) signs in with PASSWORD:
            the enrollment page (QR code, key in text; the code computed here from the key
            shown) → the new password → signed in; then again with the new password and a
            one-time code.
Every step ends at the public client `webapp` (RP_BASE_URL/cb) with a code, exchanged here for
tokens. No page may log a Content-Security-Policy violation in the browser console; a
deliberate violation at the end shows that such a log is seen. Prints "account browser MODE OK".
"""
import base64
import glob
import json
import os
import secrets
import sys
import time
import traceback
from urllib.parse import parse_qs, urlencode, urlparse

import requests
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from browser import chromium, claims, pkce, text, totp
from browser import wait as browser_wait

mode, base, ca, rp, sink = sys.argv[1:6]
extra = sys.argv[6:]
P = base + "/protocol/openid-connect"
CALLBACK = rp + "/cb"
console = []  # every browser console entry, gathered after each step


def wait(d, what, cond, seconds=20):
    browser_wait(d, what, cond, seconds)


def stale(element):
    """The page it was on has gone (a form post answered)."""
    try:
        element.is_enabled()
        return False
    except StaleElementReferenceException:
        return True


def gather(d):
    console.extend(d.get_log("browser"))


def csp_violations():
    return [e for e in console if "Content Security Policy" in e.get("message", "")]


def see(d, *phrases):
    """The page shows every phrase (as a person reads it: rendered text), in English, with the
    realm's name in its title."""
    gather(d)
    t = text(d)
    for p in phrases:
        assert p in t, f"{p!r} not on the page: {t!r}"
    assert d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert "Browser Realm" in d.title, d.title
    return t


def labelled(d, field_id):
    """The input `field_id`, after checking that a label names it."""
    assert d.find_element(By.CSS_SELECTOR, f"label[for='{field_id}']").text, field_id
    return d.find_element(By.ID, field_id)


def authorize(d):
    """Opens the client's authorization request (PKCE); returns the verifier and state."""
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(8)
    d.get(P + "/auth?" + urlencode({
        "client_id": "webapp", "redirect_uri": CALLBACK, "response_type": "code",
        "scope": "openid email", "state": state, "code_challenge": challenge,
        "code_challenge_method": "S256",
    }))
    wait(d, "the login form", lambda d: d.find_elements(By.ID, "password"))
    see(d, "Sign in")
    return verifier, state


def password_step(d, user, password):
    labelled(d, "username").clear()
    labelled(d, "username").send_keys(user)
    labelled(d, "password").send_keys(password + Keys.ENTER)


def back_at_client(d, verifier, state):
    """The browser landed at the client with a code; returns the tokens' ID-token claims."""
    wait(d, "the redirect to the client", lambda d: d.current_url.startswith(CALLBACK))
    q = parse_qs(urlparse(d.current_url).query)
    assert q["state"] == [state], q
    assert "error" not in q, q
    t = requests.post(P + "/token", data={
        "grant_type": "authorization_code", "code": q["code"][0], "redirect_uri": CALLBACK,
        "client_id": "webapp", "code_verifier": verifier,
    }, verify=ca, timeout=10)
    assert t.status_code == 200, t.text
    return claims(t.json()["id_token"])


def mails(n, seconds=15):
    """Waits until the sink holds `n` mails; returns them in order."""
    deadline = time.time() + seconds
    while True:
        files = sorted(glob.glob(os.path.join(sink, "*.json")),
                       key=lambda f: int(os.path.basename(f)[:-5]))
        if len(files) >= n:
            return [json.load(open(f, encoding="utf-8")) for f in files]
        assert time.time() < deadline, f"{len(files)} of {n} mails"
        time.sleep(0.1)


def open_link_in_mail(d, mail, subject):
    """Shows the mail's HTML body in the browser and clicks its link, as a person would."""
    headers = dict(mail["headers"])
    assert headers["Subject"] == subject, headers
    page = os.path.join(sink, "mail-%s.html" % secrets.token_hex(4))
    with open(page, "w", encoding="utf-8") as f:
        f.write(mail["html"])
    d.get("file://" + page)
    link = d.find_element(By.CSS_SELECTOR, "a[href*='/login-actions/action-token?key=']")
    assert link.get_attribute("href").startswith(base + "/login-actions/"), \
        link.get_attribute("href")
    link.click()
    wait(d, "the link's page", lambda d: d.current_url.startswith(base))


def sign_out(d):
    """A fresh person at the same browser: every cookie goes (the issuer's are Secure cookies
    of another origin than the page the browser is on)."""
    d.execute_cdp_cmd("Network.clearBrowserCookies", {})


def reset(d):
    user, email = "rita", "rita@example.com"
    verifier, state = authorize(d)
    d.find_element(By.LINK_TEXT, "Forgot password?").click()
    wait(d, "the reset form", lambda d: d.find_elements(By.ID, "username"))
    see(d, "Forgot your password?")
    labelled(d, "username").send_keys(email + Keys.ENTER)
    wait(d, "the confirmation", lambda d: "You should receive an email shortly" in text(d))
    see(d, "You should receive an email shortly with further instructions.")

    [m] = mails(1)
    assert m["rcpt_tos"] == [email], m["rcpt_tos"]
    open_link_in_mail(d, m, "Reset password for Browser Realm")
    wait(d, "the new-password form", lambda d: d.find_elements(By.ID, "password-new"))
    see(d, "Update password", "You need to change your password.")
    # A mismatch, then a password the realm's policy refuses: errors in words, the form again.
    labelled(d, "password-new").send_keys("Brandnew1")
    labelled(d, "password-confirm").send_keys("Brandnew2" + Keys.ENTER)
    wait(d, "the mismatch", lambda d: "Passwords don't match." in text(d))
    assert d.find_element(By.CSS_SELECTOR, "[role=alert]").text == "Passwords don't match."
    labelled(d, "password-new").send_keys("short1")
    labelled(d, "password-confirm").send_keys("short1" + Keys.ENTER)
    wait(d, "the policy", lambda d: "Invalid password: minimum length 8." in text(d))
    labelled(d, "password-new").send_keys("Brandnew1")
    labelled(d, "password-confirm").send_keys("Brandnew1" + Keys.ENTER)
    wait(d, "the update", lambda d: "Your password has been updated." in text(d))
    see(d, "Sign in with the new password.")

    # Back to the client: the old password is refused, the new one signs in.
    verifier, state = authorize(d)
    password_step(d, user, "Oldpass1")
    wait(d, "the refusal", lambda d: d.find_elements(By.CSS_SELECTOR, "[role=alert]"))
    see(d, "Invalid username or password.")
    password_step(d, user, "Brandnew1")
    c = back_at_client(d, verifier, state)
    assert c["preferred_username"] == user, c
    # The link works once.
    d.get(base + "/login-actions/action-token?" + urlparse(
        [w for w in m["text"].split() if "action-token?key=" in w][0]).query)
    see(d, "Link not valid")


def register(d):
    user, email, password = "cyd", "cyd@example.com", "Register1"
    verifier, state = authorize(d)
    d.find_element(By.LINK_TEXT, "Register").click()
    wait(d, "the registration form", lambda d: d.find_elements(By.ID, "password-confirm"))
    see(d, "Register")
    for field, value in (("firstName", "Cyd"), ("lastName", "Doe"), ("email", email),
                         ("username", user), ("password", password)):
        labelled(d, field).send_keys(value)
    labelled(d, "password-confirm").send_keys(password + Keys.ENTER)
    wait(d, "check your mail", lambda d: "verify your email address" in text(d))
    see(d, "An email with instructions to verify your email address has been sent to you.")
    [first] = mails(1)
    assert first["rcpt_tos"] == [email], first["rcpt_tos"]

    # Signing in before the link is opened: the VERIFY_EMAIL step, which mails again.
    verifier, state = authorize(d)
    password_step(d, user, password)
    wait(d, "the verify-email step", lambda d: "required-action" in d.current_url)
    see(d, "Verify your email address", email)
    continue_button = "//button[normalize-space()='I have verified my address, continue']"
    old = d.find_element(By.XPATH, continue_button)
    old.click()
    wait(d, "the step again", lambda d: stale(old) and d.find_elements(By.XPATH, continue_button))
    assert "required-action" in d.current_url, d.current_url
    step = d.current_window_handle
    mails(2)

    # The registration's link, opened in another tab as from a mail client.
    d.switch_to.new_window("tab")
    open_link_in_mail(d, first, "Verify email for Browser Realm")
    wait(d, "verified", lambda d: "Your email address has been verified." in text(d))
    see(d, "Email verified")
    gather(d)
    d.close()
    d.switch_to.window(step)
    d.find_element(By.XPATH, continue_button).click()
    c = back_at_client(d, verifier, state)
    assert c["preferred_username"] == user and c["email"] == email, c
    assert c["email_verified"] is True, c


def actions(d):
    user, password = extra
    verifier, state = authorize(d)
    password_step(d, user, password)
    wait(d, "the enrollment page", lambda d: d.find_elements(By.ID, "totp-secret"))
    see(d, "Set up an authenticator app", "Scan this QR code")
    assert d.find_elements(By.CSS_SELECTOR, "svg[role=img]"), "the QR code"
    key = d.find_element(By.ID, "totp-secret").text.replace(" ", "")
    secret = base64.b32decode(key + "=" * (-len(key) % 8))
    code = labelled(d, "totp")
    assert code.get_attribute("autocomplete") == "one-time-code"
    code.send_keys("000000" if totp(secret, time.time()) != "000000" else "111111")
    labelled(d, "userLabel").send_keys("phone" + Keys.ENTER)
    wait(d, "the wrong code", lambda d: d.find_elements(By.CSS_SELECTOR, "[role=alert]"))
    see(d, "Invalid authenticator code.")
    assert d.find_element(By.ID, "totp-secret").text.replace(" ", "") == key, "the same key"
    labelled(d, "totp").send_keys(totp(secret, time.time()) + Keys.ENTER)

    wait(d, "the update-password step", lambda d: d.find_elements(By.ID, "password-new"))
    see(d, "Update password", "You need to change your password to continue.")
    labelled(d, "password-new").send_keys("Changed1x")
    labelled(d, "password-confirm").send_keys("Changed1y" + Keys.ENTER)
    wait(d, "the mismatch", lambda d: "Passwords don't match." in text(d))
    labelled(d, "password-new").send_keys("Changed1x")
    labelled(d, "password-confirm").send_keys("Changed1x" + Keys.ENTER)
    c = back_at_client(d, verifier, state)
    assert c["preferred_username"] == user, c

    # Both stuck: a new sign-in takes the new password and a code from the enrolled key (the
    # next period's, inside the look-around window: the last one was used).
    sign_out(d)
    verifier, state = authorize(d)
    password_step(d, user, "Changed1x")
    wait(d, "the one-time-code page", lambda d: d.find_elements(By.ID, "otp"))
    see(d, "Enter your one-time code")
    labelled(d, "otp").send_keys(totp(secret, time.time() + 30) + Keys.ENTER)
    c = back_at_client(d, verifier, state)
    assert c["amr"] == ["pwd", "otp"], c


def csp_is_watched(d):
    """A deliberate violation on an issuer page is logged: the check above can fail."""
    sign_out(d)
    authorize(d)
    gather(d)
    before = len(csp_violations())
    d.execute_script("var i = document.createElement('img'); i.src = '/csp-probe.png';"
                     "document.body.appendChild(i);")
    deadline = time.time() + 10
    while len(csp_violations()) == before:
        assert time.time() < deadline, "a CSP violation was not logged"
        time.sleep(0.2)
        gather(d)


d = chromium("--allow-file-access-from-files", console=True)
try:
    {"reset": reset, "register": register, "actions": actions}[mode](d)
    gather(d)
    assert not csp_violations(), csp_violations()
    csp_is_watched(d)
    print(f"account browser {mode} OK")
except Exception:
    traceback.print_exc()
    print("--- browser at:", d.current_url)
    print("--- page:", d.page_source[:3000])
    for entry in console:
        print("console:", entry)
    sys.exit(1)
finally:
    d.quit()
