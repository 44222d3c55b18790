"""A real third-party relying party (Authlib) against the gateway's embedded issuer.

Discovery, login (the HTML form, like a browser), code exchange with PKCE, id_token signature
and claims validated against the JWKS, userinfo, a protected API call, refresh, logout.
usage: authlib_rp.py REALM_BASE_URL CA_PEM API_URL
"""
import html
import re
import sys
from urllib.parse import urljoin

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken

base, ca, api = sys.argv[1], sys.argv[2], sys.argv[3]
browser = requests.Session()
browser.verify = ca

disco = browser.get(base + "/.well-known/openid-configuration").json()
assert disco["issuer"] == base, disco["issuer"]

client = OAuth2Session(
    "myclient",
    "my-client-secret",
    scope="openid profile email",
    redirect_uri="http://localhost:8000/oidc/callback/",
    code_challenge_method="S256",
    token_endpoint_auth_method="client_secret_basic",
)
client.verify = ca
verifier = generate_token(48)
nonce = generate_token(20)
uri, state = client.create_authorization_url(
    disco["authorization_endpoint"], code_verifier=verifier, nonce=nonce
)

# The login page, filled in as a browser would.
page = browser.get(uri)
assert page.status_code == 200, page.status_code
action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
fields = {
    html.unescape(n): html.unescape(v)
    for n, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', page.text)
}
fields.update(username="alice", password="password")
done = browser.post(urljoin(uri, action), data=fields, allow_redirects=False)
assert done.status_code == 302, (done.status_code, done.text[:300])
callback = done.headers["Location"]
assert callback.startswith("http://localhost:8000/oidc/callback/"), callback

token = client.fetch_token(
    disco["token_endpoint"], authorization_response=callback, code_verifier=verifier
)

keys = JsonWebKey.import_key_set(browser.get(disco["jwks_uri"]).json())
claims = jwt.decode(
    token["id_token"],
    keys,
    claims_cls=CodeIDToken,
    claims_options={
        "iss": {"essential": True, "value": disco["issuer"]},
        "aud": {"essential": True, "value": "myclient"},
    },
    claims_params={"nonce": nonce, "client_id": "myclient"},
)
claims.validate(leeway=30)
assert claims["preferred_username"] == "alice", dict(claims)

info = client.get(disco["userinfo_endpoint"]).json()
assert info["sub"] == claims["sub"], info

resp = client.get(api)
assert resp.status_code == 200, (resp.status_code, resp.text)
assert resp.json()["headers"]["x-auth-request-user"] == ["alice"]

old_access = token["access_token"]
new = client.refresh_token(disco["token_endpoint"])
assert new["access_token"] != old_access

out = browser.get(
    disco["end_session_endpoint"],
    params={"id_token_hint": new.get("id_token", token["id_token"]), "client_id": "myclient"},
    allow_redirects=False,
)
assert out.status_code in (200, 302), (out.status_code, out.text[:300])

# Logout ended the session: its refresh token no longer works.
after = requests.post(
    disco["token_endpoint"],
    data={"grant_type": "refresh_token", "refresh_token": new["refresh_token"]},
    auth=("myclient", "my-client-secret"),
    verify=ca,
)
assert after.status_code == 400, (after.status_code, after.text)
print("authlib interop OK")
