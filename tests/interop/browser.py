"""What the browser interop scripts (account_browser.py, kc_browser.py, passkey_browser.py,
session_browser.py, totp_browser.py) share: headless Debian Chromium driven by Selenium through
Debian's chromedriver, a bounded wait, and the TOTP and JWT arithmetic they check tokens with.
Imported from the scripts' own directory (Python puts a script's directory first on its path).
"""
import base64
import hashlib
import hmac
import json
import secrets
import struct

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

# Every script's Chromium: no display, no sandbox (root in a container), /tmp not /dev/shm, and
# the gateway's test certificates accepted.
ARGS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--ignore-certificate-errors")


def chromium(*extra, window="1000,800", console=False, prefs=None):
    """A new headless Chromium with ARGS and `extra` arguments; `window` WxH (None: Chromium's
    default), `console` keeps the browser console's entries for `get_log("browser")`, `prefs`
    are profile preferences."""
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ARGS + ((f"--window-size={window}",) if window else ()) + extra:
        o.add_argument(a)
    if console:
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if prefs:
        o.add_experimental_option("prefs", prefs)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def wait(d, what, cond, seconds=15):
    """Polls `cond(d)` each 0.1 s until it is true; after `seconds`, fails saying `what` it
    waited for. Pages change under the condition while the browser navigates (a form post
    answered): an element gone stale or not there yet counts as "not yet"."""
    gone = (StaleElementReferenceException, NoSuchElementException)
    WebDriverWait(d, seconds, poll_frequency=0.1, ignored_exceptions=gone).until(
        cond, message=what)


def text(d):
    """The page's rendered text. One script call reads it atomically: a body element found
    before a navigation and read after it fails, and Chromium 156 reports that as a generic
    inspector error ("Node with given id does not belong to the document"), not as a stale
    element that `wait` would let pass."""
    return d.execute_script("return document.body ? document.body.innerText : ''")


def pkce():
    """A fresh PKCE code verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def totp(key, at, period=30, digits=6):
    """RFC 6238 with HMAC-SHA1: the code for raw `key` at Unix time `at`."""
    mac = hmac.new(key, struct.pack(">Q", int(at) // period), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    n = struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF
    return str(n % 10**digits).zfill(digits)


def claims(jwt):
    """A JWT's payload (not verified: the scripts read what the issuer put in)."""
    body = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
