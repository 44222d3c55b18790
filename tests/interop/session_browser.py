"""A real headless browser (Debian's chromium via chromedriver, driven by selenium) signs in at
the gateway: it opens a session route, lands on the login page, signs in, ends on the upstream's
answer, then signs out through the confirmation form and is asked to sign in again.

usage: session_browser.py START_URL USER PASSWORD
Prints one JSON object on stdout: what each step saw.
"""
import json
import sys
from urllib.parse import urlsplit

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from browser import chromium

start, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
origin = "{0.scheme}://{0.netloc}".format(urlsplit(start))

driver = chromium("--disable-gpu", "--no-first-run", window=None)
wait = WebDriverWait(driver, 20)
seen = {}
try:
    driver.get(start)
    wait.until(ec.presence_of_element_located((By.ID, "username")))
    seen["login_page"] = driver.current_url.split("?")[0]
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit],button[type=submit]").click()
    wait.until(lambda d: d.current_url.startswith(start.split("?")[0]))
    seen["landed_on"] = driver.current_url
    seen["upstream"] = json.loads(driver.find_element(By.TAG_NAME, "body").text)
    seen["cookie_names"] = sorted(c["name"] for c in driver.get_cookies())

    driver.get(origin + "/.portcullis/sign_out")
    seen["sign_out_page"] = driver.find_element(By.TAG_NAME, "body").text
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: "/.portcullis/sign_out" not in d.current_url)
    seen["after_sign_out"] = driver.current_url
    seen["cookie_names_after"] = sorted(c["name"] for c in driver.get_cookies())

    driver.get(start)
    wait.until(ec.presence_of_element_located((By.ID, "username")))
    seen["signed_out_asks_again"] = driver.current_url.split("?")[0]
finally:
    seen.setdefault("last_url", driver.current_url)
    driver.quit()
    print(json.dumps(seen))
