//! Accounts (issue 17) through the router: the sign-in flow's steps with a cookie jar, as a
//! browser drives them (password, second factor, required actions, code, tokens), on a realm
//! file of their own. Shared by `accounts_otp` and `accounts_actions`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;

use super::flow::{CB, VERIFIER, challenge};
use super::harness::*;
use crate::domain::totp::OtpData;

pub const REALM: &str = "acct";
pub const A: &str = "/auth/realms/acct/protocol/openid-connect";
/// The imported TOTP secret of `tina` and `win` (raw, Keycloak's form).
pub const SECRET: &str = "TinaSecretTinaSecret";

/// The test realm: a display name, a password policy, brute-force protection, conditional
/// second factor by group and role, users in every state the flow knows.
pub fn realm_text() -> String {
    let otp = |id: &str| {
        format!(
            r#"{{"id": "{id}", "type": "otp", "userLabel": "phone", "createdDate": 1700000000000,
              "secretData": "{{\"value\":\"{SECRET}\"}}",
              "credentialData": "{{\"subType\":\"totp\",\"digits\":6,\"counter\":0,\"period\":30,\"algorithm\":\"HmacSHA1\"}}"}}"#
        )
    };
    let pw = r#"{"type": "password", "value": "Passw0rd!"}"#;
    format!(
        r#"{{"realm": "acct", "displayName": "Acme <Accounts>",
        "passwordPolicy": "length(8) and digits(1) and notUsername(undefined) and passwordHistory(2)",
        "bruteForceProtected": true, "failureFactor": 3,
        "attributes": {{"portcullis.otp.requiredGroups": "/secure", "acr.loa.map": "{{\"silver\":1,\"gold\":2}}"}},
        "authenticatorConfig": [{{"alias": "cond", "config": {{"forceOtpRole": "app.admin", "skipOtpRole": "robot", "defaultOtpOutcome": "skip"}}}}],
        "roles": {{"realm": [{{"name": "robot"}}], "client": {{"app": [{{"name": "admin"}}]}}}},
        "groups": [{{"name": "secure", "subGroups": [{{"name": "inner"}}]}}],
        "users": [
          {{"username": "tina", "email": "tina@example.com", "emailVerified": true, "credentials": [{pw}, {tina}]}},
          {{"username": "win", "credentials": [{pw}, {win}]}},
          {{"username": "plain", "credentials": [{pw}]}},
          {{"username": "grp", "groups": ["/secure/inner"], "credentials": [{pw}]}},
          {{"username": "rol", "clientRoles": {{"app": ["admin"]}}, "credentials": [{pw}]}},
          {{"username": "bot", "realmRoles": ["robot"], "credentials": [{pw}, {bot}]}},
          {{"username": "ra", "email": "ra@example.com",
            "requiredActions": ["VERIFY_EMAIL", "UPDATE_PASSWORD", "CONFIGURE_TOTP"], "credentials": [{pw}]}},
          {{"username": "temp", "credentials": [{{"type": "password", "value": "Passw0rd!", "temporary": true}}]}}
        ],
        "clients": [
          {{"clientId": "app", "secret": "app-secret", "redirectUris": ["{CB}"], "directAccessGrantsEnabled": true}},
          {{"clientId": "strict", "secret": "strict-secret", "redirectUris": ["{CB}"],
            "attributes": {{"default.acr.values": "gold"}}}}
        ]}}"#,
        tina = otp("11111111-1111-4111-8111-111111111111"),
        win = otp("22222222-2222-4222-8222-222222222222"),
        bot = otp("33333333-3333-4333-8333-333333333333"),
    )
}

/// An issuer with the dev realm and the test realm.
pub async fn accounts_harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acct.json");
    std::fs::write(&file, realm_text()).unwrap();
    let mut settings = settings();
    settings.import = vec![dev_realm(), file];
    let clock = portcullis_core::clock::ManualClock::new(T0);
    let issuer = crate::Issuer::start(&settings, dir.path(), clock.clone())
        .await
        .unwrap();
    Harness {
        issuer,
        clock,
        settings,
        dir,
    }
}

/// The code `secret` (raw) gives at `t` with the realm's default policy.
pub fn code(secret: &str, t: u64) -> String {
    data(None).code_at(secret, t as i64).unwrap()
}

pub fn data(encoding: Option<&str>) -> OtpData {
    OtpData {
        sub_type: "totp".into(),
        digits: 6,
        counter: 0,
        period: 30,
        algorithm: "HmacSHA1".into(),
        secret_encoding: encoding.map(str::to_string),
    }
}

/// A page or redirect as the browser sees it.
pub struct Seen {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
}

impl Seen {
    /// The value of the form's hidden `csrf` field.
    pub fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a form");
        let rest = &self.body[at + 19..];
        rest[..rest.find('"').unwrap()].to_string()
    }

    /// The redirect's query parameter `k`.
    pub fn param(&self, k: &str) -> Option<String> {
        let loc = self.location.as_deref()?;
        let u = url::Url::parse(loc).ok()?;
        u.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    }
}

/// A browser: a cookie jar over the router.
pub struct Browser<'h> {
    pub h: &'h Harness,
    pub cookies: BTreeMap<String, String>,
}

impl<'h> Browser<'h> {
    pub fn new(h: &'h Harness) -> Self {
        Browser {
            h,
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, req: axum::http::request::Builder, body: Body) -> Seen {
        let jar: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let req = if jar.is_empty() {
            req
        } else {
            req.header(header::COOKIE, jar.join("; "))
        };
        let r = self.h.send(req.body(body).unwrap()).await;
        for v in r.headers().get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (kv, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = kv.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), val.to_string());
            }
        }
        let status = r.status();
        let location = r
            .headers()
            .get(header::LOCATION)
            .map(|l| l.to_str().unwrap().to_string());
        let body = String::from_utf8(body_bytes(r).await).unwrap();
        Seen {
            status,
            location,
            body,
        }
    }

    pub async fn get(&mut self, uri: &str) -> Seen {
        self.send(Request::get(uri), Body::empty()).await
    }

    pub async fn post(&mut self, uri: &str, form: &[(&str, &str)]) -> Seen {
        let req =
            Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(req, Body::from(serde_urlencoded::to_string(form).unwrap()))
            .await
    }

    /// The authorization request of `client` with `extra` parameters, and its password form
    /// posted: the response to the password.
    pub async fn sign_in(
        &mut self,
        client: &str,
        extra: &[(&str, &str)],
        user: &str,
        pw: &str,
    ) -> Seen {
        let ch = challenge(VERIFIER);
        let mut params = vec![
            ("client_id", client),
            ("redirect_uri", CB),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s1"),
            ("code_challenge", ch.as_str()),
            ("code_challenge_method", "S256"),
        ];
        params.extend_from_slice(extra);
        let q = serde_urlencoded::to_string(&params).unwrap();
        let page = self.get(&format!("{A}/auth?{q}")).await;
        if page.status != StatusCode::OK {
            return page;
        }
        let csrf = page.csrf();
        let mut form = params.clone();
        form.extend([
            ("username", user),
            ("password", pw),
            ("csrf", csrf.as_str()),
        ]);
        self.post(&format!("{A}/auth"), &form).await
    }

    /// Follows a step redirect (303 to `P/login-actions/…`): the step's page.
    pub async fn follow(&mut self, s: &Seen) -> Seen {
        assert_eq!(s.status, StatusCode::SEE_OTHER, "{}", s.body);
        let to = s.location.clone().unwrap();
        assert!(to.starts_with("/auth/realms/acct/login-actions/"), "{to}");
        self.get(&to).await
    }
}

/// The tokens for a code redirect of `client`.
pub async fn tokens(h: &Harness, s: &Seen, client: (&str, &str)) -> Value {
    assert_eq!(s.status, StatusCode::FOUND, "{}", s.body);
    let code = s.param("code").expect("a code");
    let r = h
        .post_form(
            &format!("{A}/token"),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", VERIFIER),
            ],
            Some(client),
        )
        .await;
    assert_eq!(r.status(), 200);
    json(r).await
}

/// The claims of a JWT of the test realm (signature checked).
pub async fn claims(h: &Harness, token: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(json(h.get(&format!("{A}/certs")).await).await).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap())
            .unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .unwrap()
        .claims
}

pub const APP: (&str, &str) = ("app", "app-secret");

/// The `acr` and `amr` of a code redirect's ID and access tokens (they agree).
pub async fn acr_amr(h: &Harness, s: &Seen, client: (&str, &str)) -> (Value, Value) {
    let t = tokens(h, s, client).await;
    let id = claims(h, t["id_token"].as_str().unwrap()).await;
    let at = claims(h, t["access_token"].as_str().unwrap()).await;
    assert_eq!((&id["acr"], &id["amr"]), (&at["acr"], &at["amr"]));
    (id["acr"].clone(), id["amr"].clone())
}
