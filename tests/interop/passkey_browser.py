"""Passkeys in a real browser: headless Chromium (Selenium) with Chromium's WebAuthn virtual
authenticator (DevTools protocol: a CTAP2 platform authenticator that keeps resident keys and
verifies the user).

usage: passkey_browser.py REALM_BASE_URL USER PASSWORD
  Opens the account console (REALM_BASE_URL/account/), is sent to the realm's login, signs in
  with the password, registers a passkey on the passkeys page (a second registration of the
  same authenticator is refused), signs out, signs in with the password and the passkey as
  second factor, signs out and is signed in by the login page's passkey autofill (conditional
  UI: the virtual authenticator answers it at once), removes the passkey, signs out, and the
  autofill's answer is refused (and not offered again on that page).
Prints "passkey browser OK" on success; on failure, where the browser was, the page and its
console.
"""
import sys
import traceback

from selenium.webdriver.common.by import By

from browser import chromium, text, wait

base, user, password = sys.argv[1:4]
account = base + "/account/"


def sign_out(d):
    d.find_element(By.XPATH, "//button[normalize-space()='Sign out']").click()
    wait(d, "the login form after signing out", lambda d: d.find_elements(By.ID, "password"))


def passkey_sign_in(d):
    button = d.find_element(By.ID, "passkey-button")
    wait(d, "the script to show the passkey button", lambda d: button.is_displayed())
    button.click()
    wait(d, "the console after the passkey", lambda d: d.current_url.rstrip("/").endswith("/account"))


d = chromium(console=True)
try:
    d.execute_cdp_cmd("WebAuthn.enable", {"enableUI": False})
    auth = d.execute_cdp_cmd("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }})["authenticatorId"]

    # Signed out, the console sends us to the realm's login; the password signs in.
    d.get(account)
    wait(d, "the login form", lambda d: d.find_elements(By.ID, "password"))
    field = d.find_element(By.ID, "username")
    assert field.get_attribute("autocomplete") == "username webauthn", field.get_attribute("autocomplete")
    field.send_keys(user)
    d.find_element(By.ID, "password").send_keys(password)
    d.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait(d, "the console", lambda d: d.current_url == account)
    assert user in text(d), text(d)

    # Register a passkey.
    d.find_element(By.LINK_TEXT, "Passkeys").click()
    wait(d, "the passkeys page", lambda d: d.find_elements(By.ID, "label"))
    assert "You have no passkeys." in text(d), text(d)
    d.find_element(By.ID, "label").send_keys("Virtual key")
    d.find_element(By.XPATH, "//button[normalize-space()='Add passkey']").click()
    wait(d, "the passkey to be added", lambda d: "The passkey was added." in text(d))
    assert "Virtual key" in text(d), text(d)
    creds = d.execute_cdp_cmd("WebAuthn.getCredentials", {"authenticatorId": auth})["credentials"]
    assert len(creds) == 1 and creds[0]["isResidentCredential"], creds
    # Registering the same authenticator again is refused (it is excluded).
    d.find_element(By.ID, "label").send_keys("Again")
    d.find_element(By.XPATH, "//button[normalize-space()='Add passkey']").click()
    wait(d, "the duplicate to be refused",
         lambda d: d.find_element(By.ID, "webauthn-error").text.strip() != "")

    def presence(on):
        d.execute_cdp_cmd("WebAuthn.setAutomaticPresenceSimulation",
                          {"authenticatorId": auth, "enabled": on})

    # Sign out; now the password alone is not enough: the passkey is asked as second factor.
    # (The authenticator waits meanwhile: it would answer the login page's autofill request.)
    presence(False)
    sign_out(d)
    d.find_element(By.ID, "username").send_keys(user)
    d.find_element(By.ID, "password").send_keys(password)
    d.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait(d, "the passkey step", lambda d: "execution=webauthn" in d.current_url)
    presence(True)
    passkey_sign_in(d)
    assert user in text(d), text(d)

    # Sign out; the login page's autofill request (conditional UI), which the virtual
    # authenticator answers at once, signs in with the passkey alone.
    d.find_element(By.XPATH, "//button[normalize-space()='Sign out']").click()
    wait(d, "the passkey autofill to sign in", lambda d: d.current_url == account, 20)
    assert user in text(d), text(d)
    d.find_element(By.LINK_TEXT, "Passkeys").click()
    wait(d, "the passkeys page", lambda d: d.find_elements(By.ID, "label"))
    assert "never" not in d.find_element(By.TAG_NAME, "table").text, "last use recorded"

    # Remove it: the authenticator still has it, but it no longer signs in.
    d.find_element(By.XPATH, "//button[starts-with(@aria-label, 'Remove passkey')]").click()
    wait(d, "the passkey to be removed", lambda d: "The passkey was removed." in text(d))
    assert "You have no passkeys." in text(d), text(d)
    d.find_element(By.XPATH, "//button[normalize-space()='Sign out']").click()
    wait(d, "the refusal", lambda d: "Passkey sign-in failed." in text(d), 20)
    assert d.find_elements(By.ID, "password"), "still the login form"
    form = d.find_element(By.ID, "passkey-login")
    assert form.get_attribute("data-conditional") == "off", "no autofill round after a failure"
    print("passkey browser OK")
except Exception:
    traceback.print_exc()
    print("--- at", d.current_url)
    print(d.page_source[:4000])
    for entry in d.get_log("browser"):
        print("console:", entry)
    sys.exit(1)
finally:
    d.quit()
