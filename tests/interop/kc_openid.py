"""python-keycloak's KeycloakOpenID against the gateway's embedded issuer, end to end.

usage: kc_openid.py AUTH_BASE_URL CA_PEM   (AUTH_BASE_URL ends in /auth)
Password grant, token decoding against the JWKS, userinfo, refresh, introspection of access
and refresh tokens, the realm's public key (verifying a token with it), logout with the refresh
token (204; the refresh token dies and the access token goes inactive).
"""
import base64
import json
import sys

from jwcrypto import jwk, jwt
from keycloak import KeycloakOpenID
from keycloak.exceptions import KeycloakPostError

auth, ca = sys.argv[1], sys.argv[2]
kc = KeycloakOpenID(
    server_url=auth + "/",
    realm_name="myrealm",
    client_id="myclient",
    client_secret_key="my-client-secret",
    verify=ca,
)

t = kc.token("alice", "password")
claims = kc.decode_token(t["access_token"])
assert claims["preferred_username"] == "alice", claims
assert claims["iss"] == auth + "/realms/myrealm", claims

# The refresh token is a JWT whose payload Keycloak tooling can read.
part = t["refresh_token"].split(".")[1]
refresh_claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
assert refresh_claims["typ"] == "Refresh" and refresh_claims["sid"] == claims["sid"], refresh_claims

info = kc.userinfo(t["access_token"])
assert info["preferred_username"] == "alice" and info["sub"] == claims["sub"], info

t2 = kc.refresh_token(t["refresh_token"])
assert t2["access_token"] != t["access_token"], t2

intro = kc.introspect(t2["access_token"])
assert intro["active"] is True and intro["client_id"] == "myclient", intro
intro = kc.introspect(t2["refresh_token"])
assert intro["active"] is True and intro["typ"] == "Refresh", intro
assert kc.introspect(t["refresh_token"])["active"] is False, "the rotated token is dead"

pem = "-----BEGIN PUBLIC KEY-----\n" + kc.public_key() + "\n-----END PUBLIC KEY-----\n"
key = jwk.JWK.from_pem(pem.encode())
verified = json.loads(jwt.JWT(jwt=t2["access_token"], key=key).claims)
assert verified["sub"] == claims["sub"], verified

assert kc.logout(t2["refresh_token"]) == {}
assert kc.introspect(t2["access_token"])["active"] is False, "access token still active"
try:
    kc.refresh_token(t2["refresh_token"])
    raise AssertionError("the refresh token still works after logout")
except KeycloakPostError as e:
    assert e.response_code == 400, e
print("python-keycloak OK")
