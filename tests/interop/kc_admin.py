"""python-keycloak's KeycloakAdmin and KeycloakOpenID against portcullis, end to end.

Run by tests/it/keycloak_admin.rs:
    kc_admin.py MGMT_URL PUBLIC_AUTH_URL CA_FILE ADMIN_USER ADMIN_PASSWORD

The admin connects to the management listener with the bootstrap admin of the `master`
realm (user_realm_name="master", client admin-cli) and manages the dev realm `myrealm`: it
creates a user, sets their password, creates a group and adds the user, and the member's own
token (KeycloakOpenID, password grant over the public listener) shows the group. Then a
realm role, a client with a service account and a new secret, sessions, and deletes.
"""

import base64
import json
import sys

from keycloak import KeycloakAdmin, KeycloakOpenID
from keycloak.exceptions import KeycloakAuthenticationError, KeycloakGetError

mgmt, public, ca, admin_user, admin_pw = sys.argv[1:6]


def claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# A wrong admin password is python-keycloak's authentication error (Keycloak's 401).
bad = KeycloakAdmin(
    server_url=mgmt, username=admin_user, password="wrong", realm_name="myrealm",
    user_realm_name="master", client_id="admin-cli",
)
try:
    bad.get_users({"max": 1})
    raise AssertionError("a wrong admin password was accepted")
except KeycloakAuthenticationError as e:
    assert e.response_code == 401, e

kc = KeycloakAdmin(
    server_url=mgmt, username=admin_user, password=admin_pw, realm_name="myrealm",
    user_realm_name="master", client_id="admin-cli",
)

# A user with a password; python-keycloak reads the id from the Location header.
user_id = kc.create_user({
    "username": "kc-carol", "email": "carol@example.com", "emailVerified": True,
    "firstName": "Carol", "lastName": "Py", "enabled": True,
})
assert kc.create_user({"username": "kc-carol"}, exist_ok=True) == user_id
assert kc.get_user_id("kc-carol") == user_id
assert kc.get_user(user_id)["emailVerified"] is True
assert kc.users_count({"username": "kc-carol"}) == 1
kc.set_user_password(user_id, "carol-pw", temporary=False)
kc.update_user(user_id, {"firstName": "Caroline"})
assert kc.get_user(user_id)["firstName"] == "Caroline"
assert kc.get_user(user_id)["lastName"] == "Py", "an update changes only what it names"

# A group, the user in it, found by path and by membership.
group_id = kc.create_group({"name": "kc-team"})
kc.group_user_add(user_id, group_id)
assert kc.get_group_by_path("/kc-team")["id"] == group_id
assert [g["path"] for g in kc.get_user_groups(user_id)] == ["/kc-team"]
assert [m["username"] for m in kc.get_group_members(group_id)] == ["kc-carol"]
child = kc.create_group({"name": "kc-sub"}, parent=group_id)
assert kc.get_group(group_id)["subGroupCount"] == 1
assert any(g["id"] == group_id and g["subGroups"][0]["id"] == child for g in kc.get_groups())

# A realm role mapped to the user.
kc.create_realm_role({"name": "kc-role", "description": "from python"})
kc.assign_realm_roles(user_id, [kc.get_realm_role("kc-role")])
assert "kc-role" in [r["name"] for r in kc.get_realm_roles_of_user(user_id)]

# The member's own token shows the group, the role and the verified email.
oidc = KeycloakOpenID(
    server_url=public, realm_name="myrealm", client_id="myclient",
    client_secret_key="my-client-secret", verify=ca,
)
token = oidc.token("kc-carol", "carol-pw", scope="openid")
access = claims(token["access_token"])
assert access["groups"] == ["/kc-team"], access
assert "kc-role" in access["realm_access"]["roles"], access
assert access["email_verified"] is True, access
assert claims(token["id_token"])["email_verified"] is True
info = oidc.userinfo(token["access_token"])
assert info["email_verified"] is True and info["groups"] == ["/kc-team"], info
try:
    oidc.token("kc-carol", "wrong-pw")
    raise AssertionError("a wrong password was accepted")
except KeycloakAuthenticationError as e:
    assert e.response_code == 401, e

# The member's session, then signing them out everywhere.
sessions = kc.get_sessions(user_id)
assert len(sessions) == 1 and sessions[0]["userId"] == user_id, sessions
kc.user_logout(user_id)
assert kc.get_sessions(user_id) == []

# A confidential client with a service account; a new secret works at once.
client_id = kc.create_client({
    "clientId": "kc-app", "publicClient": False, "serviceAccountsEnabled": True,
    "redirectUris": ["https://kc-app.example/cb"],
})
assert kc.get_client_id("kc-app") == client_id
assert kc.get_client(client_id)["redirectUris"] == ["https://kc-app.example/cb"]
secret = kc.generate_client_secrets(client_id)["value"]
assert kc.get_client_service_account_user(client_id)["username"] == "service-account-kc-app"
app = KeycloakOpenID(
    server_url=public, realm_name="myrealm", client_id="kc-app", client_secret_key=secret,
    verify=ca,
)
assert app.token(grant_type="client_credentials")["access_token"]
kc.delete_client(client_id)
assert kc.get_client_id("kc-app") is None

# Deleting the user ends their sign-ins.
kc.delete_user(user_id)
assert kc.get_user_id("kc-carol") is None
try:
    kc.get_user(user_id)
    raise AssertionError("a deleted user is still there")
except KeycloakGetError as e:
    assert e.response_code == 404, e
try:
    oidc.token("kc-carol", "carol-pw")
    raise AssertionError("a deleted user signed in")
except KeycloakAuthenticationError:
    pass
kc.delete_group(group_id)
kc.delete_realm_role("kc-role")
print("python-keycloak admin OK")
