#!/usr/bin/env python3
"""CPU per browser sign-in with a passkey beside one with a password (issue 17), in headless
Chromium with its WebAuthn virtual authenticator, driven like tests/interop/passkey_browser.py.

usage: passkey_login.py REALM_BASE_URL USER PASSWORD PID N
  Signs in to the account console N times with the password (sign out, the login form, the
  password), then registers a passkey and signs in N times with it alone (sign out; the login
  page's autofill request, which the virtual authenticator answers, signs in). Both loops pay
  the same pages around the sign-in (sign-out, login page, authorization redirect, console);
  the issuer process's CPU (utime+stime of PID) per sign-in is printed for each, as JSON.
Loopback only: REALM_BASE_URL must be on localhost.
"""
import json
import os
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

base, user, password, pid, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
assert base.startswith("https://localhost:"), "loopback only"
account = base + "/account/"
CLK = os.sysconf("SC_CLK_TCK")


def cpu_us():
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) * 1_000_000 // CLK


def wait(d, what, cond, seconds=20):
    gone = (StaleElementReferenceException, NoSuchElementException)
    WebDriverWait(d, seconds, poll_frequency=0.02, ignored_exceptions=gone).until(cond, message=what)


o = webdriver.ChromeOptions()
o.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--ignore-certificate-errors"):
    o.add_argument(a)
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
try:
    d.execute_cdp_cmd("WebAuthn.enable", {"enableUI": False})
    auth = d.execute_cdp_cmd("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": False,
    }})["authenticatorId"]

    def sign_out():
        d.find_element(By.XPATH, "//button[normalize-space()='Sign out']").click()

    def password_sign_in():
        wait(d, "the login form", lambda d: d.find_elements(By.ID, "password"))
        d.find_element(By.ID, "username").send_keys(user)
        d.find_element(By.ID, "password").send_keys(password)
        d.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        wait(d, "the console", lambda d: d.current_url == account)

    d.get(account)
    password_sign_in()
    rows = {}
    t0, c0 = time.time(), cpu_us()
    for _ in range(n):
        sign_out()
        password_sign_in()
    rows["password"] = {"sign_ins": n, "cpu_us_per_sign_in": (cpu_us() - c0) // n,
                        "wall_ms": round((time.time() - t0) * 1000 / n)}

    d.find_element(By.LINK_TEXT, "Passkeys").click()
    wait(d, "the passkeys page", lambda d: d.find_elements(By.ID, "label"))
    d.execute_cdp_cmd("WebAuthn.setAutomaticPresenceSimulation", {"authenticatorId": auth, "enabled": True})
    d.find_element(By.ID, "label").send_keys("bench key")
    d.find_element(By.XPATH, "//button[normalize-space()='Add passkey']").click()
    wait(d, "the passkey to be added", lambda d: "The passkey was added." in d.find_element(By.TAG_NAME, "body").text)
    t0, c0 = time.time(), cpu_us()
    for _ in range(n):
        sign_out()
        # The login page's autofill request is answered at once by the authenticator.
        wait(d, "the passkey sign-in", lambda d: d.current_url == account and
             d.find_elements(By.XPATH, "//button[normalize-space()='Sign out']"))
    rows["passkey"] = {"sign_ins": n, "cpu_us_per_sign_in": (cpu_us() - c0) // n,
                       "wall_ms": round((time.time() - t0) * 1000 / n)}
    rows["ratio"] = round(rows["passkey"]["cpu_us_per_sign_in"] / rows["password"]["cpu_us_per_sign_in"], 3)
    print(json.dumps(rows))
finally:
    d.quit()
