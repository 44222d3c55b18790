"""A password + TOTP sign-in in a real browser (headless Chromium via Selenium).

usage: totp_browser.py REALM_BASE_URL CA_PEM RP_BASE_URL USER PASSWORD SECRET
The public client `webapp` (RP_BASE_URL/cb) signs USER in through the login form, then the
one-time-code page (the code computed here, RFC 6238 with HMAC-SHA1 from the raw SECRET, as
Keycloak stores it), keyboard only; the code comes back to the client's origin and its tokens
say two factors (`acr` "2", `amr` ["pwd", "otp"]). Prints "totp browser OK".
"""
import sys
import time
import traceback
from urllib.parse import parse_qs, urlencode, urlparse

import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from browser import chromium, claims, pkce, totp, wait

base, ca, rp, user, password, secret = sys.argv[1:7]
P = base + "/protocol/openid-connect"


def run(d):
    verifier, challenge = pkce()
    callback = rp + "/cb"
    d.get(P + "/auth?" + urlencode({
        "client_id": "webapp", "redirect_uri": callback, "response_type": "code",
        "scope": "openid", "state": "s", "code_challenge": challenge,
        "code_challenge_method": "S256",
    }))
    wait(d, "the login form", lambda d: d.find_elements(By.ID, "password"))
    d.find_element(By.ID, "username").send_keys(user)
    d.find_element(By.ID, "password").send_keys(password + Keys.ENTER)

    wait(d, "the one-time-code page", lambda d: d.find_elements(By.ID, "otp"))
    field = d.find_element(By.ID, "otp")
    assert "login-actions/authenticate" in d.current_url, d.current_url
    assert field.get_attribute("autocomplete") == "one-time-code"
    assert field.get_attribute("inputmode") == "numeric"
    assert d.find_element(By.CSS_SELECTOR, "label[for=otp]").text, "a label"
    assert d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert d.switch_to.active_element == field, "the code field has the focus"
    # A wrong code first: an error in words, announced, and the field again.
    field.send_keys("000000" + Keys.ENTER)
    wait(d, "the error", lambda d: d.find_elements(By.CSS_SELECTOR, "[role=alert]"))
    assert "Invalid authenticator code" in d.find_element(By.CSS_SELECTOR, "[role=alert]").text
    # Then the right one, typed and sent with the keyboard.
    d.find_element(By.ID, "otp").send_keys(totp(secret.encode(), time.time()) + Keys.ENTER)
    wait(d, "the redirect to the client", lambda d: d.current_url.startswith(callback))
    q = parse_qs(urlparse(d.current_url).query)
    assert q["state"] == ["s"], q
    t = requests.post(P + "/token", data={
        "grant_type": "authorization_code", "code": q["code"][0], "redirect_uri": callback,
        "client_id": "webapp", "code_verifier": verifier,
    }, verify=ca).json()
    c = claims(t["id_token"])
    assert c["acr"] == "2" and c["amr"] == ["pwd", "otp"], c
    print("totp browser OK")


d = chromium()
try:
    run(d)
except Exception:
    traceback.print_exc()
    print("--- browser at:", d.current_url)
    print("--- page:", d.page_source[:3000])
    sys.exit(1)
finally:
    d.quit()
