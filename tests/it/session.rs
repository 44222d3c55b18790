//! Browser sign-in at the gateway (DESIGN §10), end to end over TLS with the real binary: the
//! embedded provider driven through its real login form with a cookie jar, the session route's
//! upstream view (identity headers, access token, identity assertion), then in the submodules
//! the cookie and sign-out rules, every callback attack, external providers (a second
//! portcullis, the certified oidc-provider), forward auth behind a real nginx, and one real
//! headless browser.

mod attacks;
mod browser;
mod config;
mod cookies;
mod database;
mod external;
mod nginx;
mod upgrade;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::harness::{Gateway, Opts, Upstream, free_port, route};
use portcullis_gateway::session::keys::Keys;
use portcullis_gateway::session::state::{Body, Header, SESSION_PURPOSE};

pub const REALM_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/realms/myrealm-realm.json");
pub const CLIENT_SECRET: &str = "gw-test-secret";
/// The cookie keys the tests' gateways start with (tests forge cookies with them).
pub const KEY_A: [u8; 32] = [0xa1; 32];
pub const KEY_B: [u8; 32] = [0xb2; 32];

pub const POLICY: &str = r#"
[groups]
"/staff" = ["editor"]
"/admins" = ["admin"]
[roles.editor]
permissions = ["app:use"]
[roles.admin]
inherits = ["editor"]
permissions = ["app:*"]
[[allow]]
route = "app"
methods = ["GET", "HEAD", "POST"]
permission = "app:use"
[[allow]]
route = "both"
methods = ["GET"]
permission = "app:use"
"#;

/// A minimal browser cookie store: one jar per host (browsers don't separate ports), values
/// replaced by later `Set-Cookie`s and removed by `Max-Age=0`.
#[derive(Default, Clone, Debug)]
pub struct Jar {
    pub cookies: BTreeMap<String, String>,
}

impl Jar {
    pub fn absorb(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            let gone = attrs
                .split(';')
                .any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            if gone {
                self.cookies.remove(k.trim());
            } else {
                self.cookies
                    .insert(k.trim().to_string(), val.trim().to_string());
            }
        }
    }

    pub fn header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The session cookie's value (joined from its chunks).
    pub fn session(&self) -> Option<String> {
        if let Some(v) = self.cookies.get("__Host-portcullis") {
            return Some(v.clone());
        }
        let mut out = String::new();
        for i in 0.. {
            match self.cookies.get(&format!("__Host-portcullis.{i}")) {
                Some(v) => out.push_str(v),
                None if i == 0 => return None,
                None => break,
            }
        }
        Some(out)
    }
}

/// A client that follows no redirect and trusts only the given CA certificates.
pub fn browser_client(cas: &[Vec<u8>]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only(
            cas.iter()
                .map(|c| reqwest::Certificate::from_pem(c).unwrap()),
        )
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// A navigation (what a browser sends for a page), with the jar's cookies; the answer's
/// cookies go back into the jar.
pub async fn navigate(c: &reqwest::Client, jar: &mut Jar, url: &str) -> reqwest::Response {
    let r = c
        .get(url)
        .header("accept", "text/html,application/xhtml+xml")
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    jar.absorb(&r);
    r
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location in a {} answer", r.status()))
        .to_str()
        .unwrap()
        .to_string()
}

/// `location` made absolute against `base` (`https://host:port`).
pub fn absolute(base: &str, location: &str) -> String {
    url::Url::parse(base)
        .unwrap()
        .join(location)
        .unwrap()
        .to_string()
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// alice signed in at the embedded gateway's `/app/`: her jar and her session cookie's value.
pub async fn alice(e: &Embedded) -> (Jar, String) {
    let mut jar = Jar::default();
    let r = sign_in(
        &e.client,
        &mut jar,
        &format!("{}/app/", e.origin()),
        "alice",
        "password",
    )
    .await;
    assert_eq!(r.status(), 200);
    let cookie = jar.session().unwrap();
    (jar, cookie)
}

/// The gateway's client (`portcullis`, [`CLIENT_SECRET`]) redeeming refresh token `rt` at the
/// token endpoint of the realm at `realm_url`.
pub async fn refresh_grant(c: &reqwest::Client, realm_url: &str, rt: &str) -> reqwest::Response {
    c.post(format!("{realm_url}/protocol/openid-connect/token"))
        .basic_auth("portcullis", Some(CLIENT_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .unwrap()
}

/// The first form of a page: its action and its hidden inputs.
pub fn form_of(html: &str) -> (String, Vec<(String, String)>) {
    let form = html.split("<form").nth(1).expect("a form on the page");
    let action = form
        .split("action=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .map(html_unescape)
        .unwrap();
    let mut fields = Vec::new();
    for input in form.split("<input").skip(1) {
        let attr = |name: &str| {
            input
                .split(&format!("{name}=\""))
                .nth(1)
                .and_then(|s| s.split('"').next())
                .map(html_unescape)
        };
        if attr("type").as_deref() == Some("hidden") {
            fields.push((attr("name").unwrap(), attr("value").unwrap_or_default()));
        }
    }
    (action, fields)
}

/// Signs in through the provider's login page, starting from a navigation to `start`, and
/// returns the final answer (the page first asked for). Each hop is checked.
pub async fn sign_in(
    c: &reqwest::Client,
    jar: &mut Jar,
    start: &str,
    user: &str,
    password: &str,
) -> reqwest::Response {
    let r = navigate(c, jar, start).await;
    assert_eq!(
        r.status(),
        302,
        "a navigation without a session goes to sign in"
    );
    let mut page_url = absolute(start, &location(&r));
    // To the provider's login page (oidc-provider redirects once more to its own).
    let mut r = navigate(c, jar, &page_url).await;
    for _ in 0..4 {
        if !r.status().is_redirection() {
            break;
        }
        page_url = absolute(&page_url, &location(&r));
        r = navigate(c, jar, &page_url).await;
    }
    assert_eq!(r.status(), 200, "the provider's login page");
    let (action, mut fields) = form_of(&r.text().await.unwrap());
    fields.push(("username".into(), user.into()));
    fields.push(("password".into(), password.into()));
    let r = c
        .post(absolute(&page_url, &action))
        .header("cookie", jar.header())
        .form(&fields)
        .send()
        .await
        .unwrap();
    jar.absorb(&r);
    assert!(
        r.status() == 302 || r.status() == 303,
        "login answered {}",
        r.status()
    );
    let mut next = absolute(&page_url, &location(&r));
    // oidc-provider goes back through its authorization endpoint once more.
    for _ in 0..4 {
        if next.contains("/.portcullis/callback") {
            break;
        }
        let r = navigate(c, jar, &next).await;
        assert!(r.status().is_redirection(), "{next}: {}", r.status());
        next = absolute(&next, &location(&r));
    }
    assert!(next.contains("/.portcullis/callback"), "{next}");
    let r = navigate(c, jar, &next).await;
    assert_eq!(
        r.status(),
        302,
        "the callback: {}",
        r.text().await.unwrap_or_default()
    );
    let back = absolute(&next, &location(&r));
    navigate(c, jar, &back).await
}

/// The test realm: the dev realm plus the gateway's client `portcullis` for these callback
/// and post-logout URLs, with an access token lifetime of `access_lifespan` seconds.
pub fn realm_with_gateway_client(dir: &Path, origins: &[String], access_lifespan: u64) -> PathBuf {
    let mut realm: Value =
        serde_json::from_str(&std::fs::read_to_string(REALM_FILE).unwrap()).unwrap();
    realm["accessTokenLifespan"] = json!(access_lifespan);
    let callbacks: Vec<String> = origins
        .iter()
        .map(|o| format!("{o}/.portcullis/callback"))
        .collect();
    let logouts: Vec<String> = origins.iter().map(|o| format!("{o}/*")).collect();
    let clients = realm["clients"].as_array_mut().unwrap();
    // The dev realm has one for https://localhost:8443; this one is for the test's origins.
    clients.retain(|c| c["clientId"] != "portcullis");
    clients.push(json!({
        "clientId": "portcullis",
        "enabled": true,
        "publicClient": false,
        "secret": CLIENT_SECRET,
        "redirectUris": callbacks,
        "standardFlowEnabled": true,
        "directAccessGrantsEnabled": true,
        "attributes": {"pkce.code.challenge.method": "S256", "post.logout.redirect.uris": logouts.join("##")},
        "protocolMappers": [{
            "name": "groups", "protocol": "openid-connect",
            "protocolMapper": "oidc-group-membership-mapper",
            "config": {"full.path": "true", "claim.name": "groups", "id.token.claim": "true", "access.token.claim": "true"}
        }]
    }));
    let path = dir.join("realm.json");
    std::fs::write(&path, serde_json::to_string_pretty(&realm).unwrap()).unwrap();
    path
}

/// Writes a cookie keys file (standard base64, one key a line).
pub fn write_keys(path: &Path, keys: &[[u8; 32]]) {
    let text: String = keys
        .iter()
        .map(|k| format!("{}\n", base64::engine::general_purpose::STANDARD.encode(k)))
        .collect();
    std::fs::write(path, text).unwrap();
}

/// A gateway signing people in with its embedded issuer.
pub struct Embedded {
    pub gw: Gateway,
    /// Kept alive for as long as the gateway uses them.
    pub _up: Upstream,
    pub _dir: tempfile::TempDir,
    pub keys: PathBuf,
    pub client: reqwest::Client,
}

impl Embedded {
    pub fn origin(&self) -> String {
        format!("https://localhost:{}", self.gw.public)
    }
}

/// How to start an [`Embedded`] gateway.
pub struct EmbeddedOpts<'a> {
    /// The realm's access token lifetime, seconds.
    pub access_lifespan: u64,
    /// Other origins that may sign in (e.g. an nginx in front, another replica).
    pub more_origins: &'a [String],
    /// Appended to the config.
    pub extra: &'a str,
    /// `store = "database"` with the realm, the cookie keys and a SQLite database in this
    /// directory (replicas given the same one share them).
    pub shared: Option<&'a Path>,
    pub public: Option<u16>,
}

impl Default for EmbeddedOpts<'_> {
    fn default() -> Self {
        EmbeddedOpts {
            access_lifespan: 300,
            more_origins: &[],
            extra: "",
            shared: None,
            public: None,
        }
    }
}

/// Starts it with routes `app` (session, access token and assertion upstream), `both`
/// (session_or_jwt), `auth` and a jwt route `api`; `more_origins` may also sign in
/// (e.g. an nginx in front), `extra` is appended to the config.
pub async fn embedded(access_lifespan: u64, more_origins: &[String], extra: &str) -> Embedded {
    embedded_with(EmbeddedOpts {
        access_lifespan,
        more_origins,
        extra,
        ..Default::default()
    })
    .await
}

pub async fn embedded_with(o: EmbeddedOpts<'_>) -> Embedded {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let files = o.shared.unwrap_or(dir.path());
    let public = o.public.unwrap_or_else(free_port);
    let origin = format!("https://localhost:{public}");
    let mut origins = vec![origin.clone()];
    origins.extend(o.more_origins.iter().cloned());
    let realm = realm_with_gateway_client(files, &origins, o.access_lifespan);
    let keys = files.join("session-keys");
    if !keys.exists() {
        write_keys(&keys, &[KEY_A]);
    }
    let (database, store) = match o.shared {
        Some(d) => (
            format!("sqlite://{}/sessions.db", d.display()),
            "store = \"database\"\n",
        ),
        None => ("sqlite://data/portcullis.db".to_string(), ""),
    };
    let routes = route("auth", "/auth", &["embedded:issuer".into()], "")
        + &route(
            "app",
            "/app",
            &[up.url()],
            "auth = \"session\"\npass_access_token = true\nidentity_assertion = true",
        )
        + &route("both", "/both", &[up.url()], "auth = \"session_or_jwt\"")
        + &route("api", "/api", &[up.url()], "auth = \"jwt\"");
    let base = format!("{origin}/auth");
    let mut opts = Opts::new(routes).extra(&format!(
        "[[trust]]\nissuer = \"{base}/realms/myrealm\"\njwks_uri = \"embedded\"\n\
         audiences = [\"portcullis\", \"myclient\"]\n\
         [issuer]\nfrontend_url = \"{base}\"\ndatabase = \"{database}\"\n\
         import = [\"{}\"]\n\
         [session]\nprovider = \"embedded:myrealm\"\nclient_id = \"portcullis\"\n\
         client_secret = \"${{PORTCULLIS_TEST_UNSET:{CLIENT_SECRET}}}\"\n\
         cookie_keys = \"{}\"\n{store}{}",
        realm.display(),
        keys.display(),
        o.extra
    ));
    opts.policies = POLICY.to_string();
    opts.public_port = Some(public);
    let gw = Gateway::start(opts).await;
    let client = browser_client(&[gw.cert_pem()]);
    Embedded {
        gw,
        _up: up,
        _dir: dir,
        keys,
        client,
    }
}

/// Opens a session cookie with `keys`: its header and body.
pub fn open_cookie(keys: &[[u8; 32]], value: &str) -> Option<(Header, Body)> {
    let plain = Keys::from_raw(keys)?.open(SESSION_PURPOSE, value).ok()?;
    let (h, body) = Header::decode(&plain)?;
    Some((h, serde_json::from_slice(body).ok()?))
}

/// Seals a session cookie with `key`, as the gateway would.
pub fn seal_cookie(key: [u8; 32], h: &Header, body: &Body) -> String {
    Keys::from_raw(&[key])
        .unwrap()
        .seal(
            SESSION_PURPOSE,
            h.encode(&serde_json::to_vec(body).unwrap()),
        )
        .unwrap()
}

/// A metric's value in the Prometheus text, 0 when absent.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The echo upstream's answer: the headers it saw (name → values).
pub async fn echoed(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_sign_in_over_tls_reaches_the_upstream_as_alice() {
    let e = embedded(300, &[], "").await;
    let c = &e.client;
    let origin = e.origin();
    let start = format!("{origin}/app/page?y=1&z=%2F");

    // An API call without a session: 401 JSON, no redirect.
    let r = c.get(&start).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    assert!(body["request_id"].is_string());

    // A navigation goes to the provider with PKCE S256, state and nonce.
    let mut jar = Jar::default();
    let r = navigate(c, &mut jar, &start).await;
    assert_eq!(r.status(), 302);
    let to = url::Url::parse(&location(&r)).unwrap();
    assert_eq!(
        to.as_str().split('?').next().unwrap(),
        format!("{origin}/auth/realms/myrealm/protocol/openid-connect/auth")
    );
    let q: BTreeMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["client_id"], "portcullis");
    assert_eq!(q["redirect_uri"], format!("{origin}/.portcullis/callback"));
    assert!(q["state"].len() >= 43 && q["nonce"].len() >= 43 && q["code_challenge"].len() == 43);
    let pre = r.headers()["set-cookie"].to_str().unwrap();
    assert!(pre.starts_with("__Host-portcullis.a."), "{pre}");
    assert!(
        pre.ends_with("; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=600"),
        "{pre}"
    );

    // Signing in ends on the page first asked for, query intact.
    let mut jar = Jar::default();
    let r = sign_in(c, &mut jar, &start, "alice", "password").await;
    let seen = echoed(r).await;
    assert_eq!(seen["path"], "/app/page");
    assert_eq!(seen["query"], "y=1&z=%2F", "{seen}");
    let h = &seen["headers"];
    assert_eq!(h["x-auth-request-user"], json!(["alice"]));
    assert_eq!(h["x-auth-request-email"], json!(["alice@example.com"]));
    assert_eq!(h["x-auth-request-groups"], json!(["/staff"]));
    assert_eq!(h["x-auth-request-roles"], json!(["editor"]));
    let bearer = h["authorization"][0].as_str().unwrap();
    assert!(
        bearer.starts_with("Bearer ey"),
        "pass_access_token: {bearer}"
    );
    let cookies_upstream = h["cookie"].to_string();
    assert!(
        !cookies_upstream.contains("__Host-portcullis"),
        "{cookies_upstream}"
    );
    assert!(jar.session().is_some(), "{jar:?}");
    assert!(
        !jar.cookies.keys().any(|k| k.contains(".a.")),
        "the pre-auth cookie is gone"
    );

    // The identity assertion verifies with /.portcullis/jwks.json.
    let assertion = h["x-portcullis-assertion"][0].as_str().unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = c
        .get(format!("{origin}/.portcullis/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&["app"]);
    v.set_issuer(&[origin.as_str()]);
    let claims = jsonwebtoken::decode::<Value>(assertion, &key, &v)
        .unwrap()
        .claims;
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["groups"], json!(["/staff"]));
    assert_eq!(claims["roles"], json!(["editor"]));
    assert!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap() <= 60);

    // The session works for API calls too, and /.portcullis/userinfo says who it is.
    let r = c
        .post(format!("{origin}/app/x"))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let info: Value = c
        .get(format!("{origin}/.portcullis/userinfo"))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["preferred_username"], "alice");
    assert_eq!(info["groups"], json!(["/staff"]));
    // A session_or_jwt route takes the session; a jwt route does not.
    let r = c
        .get(format!("{origin}/both"))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(
        echoed(r).await["headers"]["x-auth-request-user"],
        json!(["alice"])
    );
    let r = c
        .get(format!("{origin}/api"))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(format!("{origin}/.portcullis/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // bob is in no group: signed in, but RBAC says no.
    let mut bob = Jar::default();
    let r = sign_in(c, &mut bob, &format!("{origin}/app/"), "bob", "password").await;
    assert_eq!(r.status(), 403);

    let m = e.gw.metrics().await;
    assert_eq!(
        metric(&m, "portcullis_session_sign_ins_total{result=\"success\"}"),
        2.0
    );
    // No cookie, code, state or token in the logs.
    let logs = e.gw.stdout() + &e.gw.stderr();
    assert!(
        logs.contains("\"user\":\"alice\""),
        "the audit line names the user"
    );
    assert!(!logs.contains(&jar.session().unwrap()[..40]));
    assert!(!logs.contains(&bearer[7..47]));
    assert!(!logs.contains(&q["state"]));
}
