//! Replicas (DESIGN §15): three real gateway processes on one PostgreSQL database (a fresh one
//! per test, dropped at its end) behave as one issuer and one session store. A code made on one
//! is redeemed on another once; a refresh token is spent once however many replicas it is
//! sent to at once; the SSO cookie and a gateway session work everywhere; brute-force counters
//! are shared; a new key is made once and every replica serves it within seconds, as admin
//! changes, by `LISTEN`/`NOTIFY`. `faults` kills a replica mid-load and cuts the database.

mod faults;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Gateway, Opts, Upstream, eventually, free_port, route, run_in, set_cookies};
use crate::session::{CLIENT_SECRET, KEY_A, realm_with_gateway_client, write_keys};
use portcullis_store::testing::PgTestDb;

const ROOT: &str = "root";
const ROOT_PW: &str = "root-pw";
/// How soon a change on one replica must be seen on the others (the notification's path).
const SOON: Duration = Duration::from_secs(2);

/// `/staff` (alice) may use the session route `app` and the jwt route `api`.
const POLICY: &str = r#"
[groups]
"/staff" = ["editor"]
[roles.editor]
permissions = ["app:use"]
[[allow]]
route = "app"
methods = ["GET", "HEAD", "POST"]
permission = "app:use"
[[allow]]
route = "api"
methods = ["GET"]
permission = "app:use"
"#;

/// Replicas of one gateway on one database.
pub struct Cluster {
    pub gws: Vec<Gateway>,
    pub db: Option<PgTestDb>,
    /// The realm file, the cookie keys (shared, as a Kubernetes Secret would be).
    pub files: tempfile::TempDir,
    pub _up: Upstream,
}

/// Starts `urls.len()` replicas at once, replica `i` on database URL `urls[i]` (all one
/// database; the faults test puts a proxy in front of some). `db` is dropped at `finish`.
pub async fn cluster(db: PgTestDb, urls: &[String]) -> Cluster {
    portcullis_gateway::app::install_crypto_provider();
    let up = Upstream::start().await;
    let files = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = urls.iter().map(|_| free_port()).collect();
    let origins: Vec<String> = ports
        .iter()
        .map(|p| format!("https://localhost:{p}"))
        .collect();
    let realm = realm_with_gateway_client(files.path(), &origins, 300);
    let keys = files.path().join("session-keys");
    write_keys(&keys, &[KEY_A]);
    // One issuer name for all, as behind a load balancer: the first replica's origin.
    let frontend = format!("{}/auth", origins[0]);
    let routes = route("auth", "/auth", &["embedded:issuer".into()], "")
        + &route(
            "app",
            "/app",
            &[up.url()],
            "auth = \"session\"\npass_access_token = true",
        )
        + &route("api", "/api", &[up.url()], "auth = \"jwt\"")
        + &route("pub", "/pub", &[up.url()], "auth = \"public\"");
    let mut starting = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let mut o = Opts::new(routes.clone()).extra(&format!(
            "[[trust]]\nissuer = \"{frontend}/realms/myrealm\"\njwks_uri = \"embedded\"\n\
             audiences = [\"portcullis\", \"myclient\", \"svc-reports\"]\n\
             [issuer]\nfrontend_url = \"{frontend}\"\ndatabase = \"{url}\"\n\
             import = [\"{}\"]\n\
             [session]\nprovider = \"embedded:myrealm\"\nclient_id = \"portcullis\"\n\
             client_secret = \"{CLIENT_SECRET}\"\ncookie_keys = \"{}\"\nstore = \"database\"\n",
            realm.display(),
            keys.display(),
        ));
        o.policies = POLICY.to_string();
        o.public_port = Some(ports[i]);
        starting.push(launch(o));
    }
    // All at once: the start-up imports and the first keys race, as pods do.
    let mut gws = Vec::new();
    for mut gw in starting {
        gw.ready_within(Duration::from_secs(60)).await;
        gws.push(gw);
    }
    Cluster {
        gws,
        db: Some(db),
        files,
        _up: up,
    }
}

/// A replica process with the bootstrap admin of the `master` realm, started (not yet ready).
fn launch(o: Opts) -> Gateway {
    let env = [
        ("PORTCULLIS_BOOTSTRAP_ADMIN_USERNAME", Some(ROOT)),
        ("PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD", Some(ROOT_PW)),
    ];
    Gateway::launch(&o, o.public_port.unwrap(), free_port(), None, &env)
}

impl Cluster {
    pub fn client(&self) -> reqwest::Client {
        let cas: Vec<Vec<u8>> = self.gws.iter().map(|g| g.cert_pem()).collect();
        crate::session::browser_client(&cas)
    }

    pub fn token_url(&self, i: usize) -> String {
        self.gws[i].url("/auth/realms/myrealm/protocol/openid-connect/token")
    }

    /// Stops the replicas and drops the database.
    pub async fn finish(mut self) {
        self.gws.clear();
        if let Some(db) = self.db.take() {
            db.drop_db().await;
        }
    }

    /// Runs the binary's issuer command (`realm import`, `keys rotate`) with replica 0's config.
    pub fn cli(&self, args: &[&str]) {
        let with_config = args.iter().chain(&["--config", "portcullis.toml"]);
        let out = run_in(self.gws[0].dir.path(), with_config);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The kids replica `i` publishes for the realm.
    pub async fn kids(&self, c: &reqwest::Client, i: usize) -> Vec<String> {
        let url = self.gws[i].url("/auth/realms/myrealm/protocol/openid-connect/certs");
        let v: Value = c.get(url).send().await.unwrap().json().await.unwrap();
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    }

    /// The store itself, to look at the rows (keys) the replicas wrote.
    pub async fn store(&self) -> portcullis_store::SharedStore {
        let url = &self.db.as_ref().unwrap().url;
        portcullis_store::open(url, std::path::Path::new("."))
            .await
            .unwrap()
    }
}

/// A token request to `url`: its status and JSON body.
pub async fn grant(c: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = c.post(url).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub fn password_form<'a>(user: &'a str, pw: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "password"),
        ("client_id", "myclient"),
        ("client_secret", "my-client-secret"),
        ("username", user),
        ("password", pw),
        ("scope", "openid"),
    ]
}

pub fn refresh_form(rt: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "refresh_token"),
        ("client_id", "myclient"),
        ("client_secret", "my-client-secret"),
        ("refresh_token", rt),
    ]
}

/// An admin token of the `master` realm from replica `i`'s management listener.
async fn admin_token(cl: &Cluster, i: usize) -> String {
    let url = cl.gws[i].mgmt_url("/realms/master/protocol/openid-connect/token");
    let form = [
        ("grant_type", "password"),
        ("client_id", "admin-cli"),
        ("username", ROOT),
        ("password", ROOT_PW),
    ];
    let (status, body) = grant(&reqwest::Client::new(), &url, &form).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

const CALLBACK: &str = "http://localhost:8000/oidc/callback/";

fn auth_url(cl: &Cluster, i: usize) -> String {
    url::Url::parse_with_params(
        &cl.gws[i].url("/auth/realms/myrealm/protocol/openid-connect/auth"),
        &[
            ("client_id", "myclient"),
            ("redirect_uri", CALLBACK),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "st"),
        ],
    )
    .unwrap()
    .to_string()
}

fn code_of(r: &reqwest::Response) -> String {
    assert_eq!(r.status(), 302);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(loc.as_str().starts_with(CALLBACK), "{loc}");
    loc.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

/// Signs `alice` in through replica `i`'s login page: the code, and the SSO cookies.
async fn login(c: &reqwest::Client, cl: &Cluster, i: usize) -> (String, String) {
    let r = c.get(auth_url(cl, i)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let jar = set_cookies(&r);
    let (action, mut fields) = crate::session::form_of(&r.text().await.unwrap());
    fields.push(("username".into(), "alice".into()));
    fields.push(("password".into(), "password".into()));
    let action = crate::session::absolute(&cl.gws[i].url("/"), &action);
    let r = c
        .post(action)
        .header("cookie", jar)
        .form(&fields)
        .send()
        .await
        .unwrap();
    let sso = set_cookies(&r);
    (code_of(&r), sso)
}

fn code_form(code: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("client_id", "myclient"),
        ("client_secret", "my-client-secret"),
        ("code", code),
        ("redirect_uri", CALLBACK),
    ]
}

/// Codes, SSO cookies, refresh tokens, brute-force counters, keys and admin changes across
/// three replicas started together on a fresh database.
#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_act_as_one_issuer() {
    let db = PgTestDb::create().await;
    let url = db.url.clone();
    let cl = cluster(db, &[url.clone(), url.clone(), url]).await;
    let c = cl.client();
    let store = cl.store().await;

    // Started together on an empty database: one import, one key per realm.
    for realm in ["myrealm", "master"] {
        let keys = store.list_keys(realm).await.unwrap();
        assert_eq!(keys.len(), 1, "{realm}: {keys:?}");
    }

    // A code made on replica 0 is redeemed on replica 1, once.
    let (code, sso) = login(&c, &cl, 0).await;
    let (s, body) = grant(&c, &cl.token_url(1), &code_form(&code)).await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = grant(&c, &cl.token_url(2), &code_form(&code)).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    // Replica 0's SSO cookie signs in on replica 2 without a login page.
    let r = c
        .get(auth_url(&cl, 2))
        .header("cookie", &sso)
        .send()
        .await
        .unwrap();
    let code = code_of(&r);
    let (s, body) = grant(&c, &cl.token_url(0), &code_form(&code)).await;
    assert_eq!(s, 200, "{body}");

    // 16 uses of one refresh token at once over three replicas: one succeeds, the reuse
    // revokes the family (the winner's new token too), as on one node.
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (c, url, rt) = (c.clone(), cl.token_url(i % 3), rt.clone());
        tasks.push(tokio::spawn(async move {
            grant(&c, &url, &refresh_form(&rt)).await
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (s, body) = t.await.unwrap();
        match s {
            200 => winners.push(body["refresh_token"].as_str().unwrap().to_string()),
            400 => assert_eq!(body["error"], "invalid_grant", "{body}"),
            _ => panic!("{s}: {body}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one rotation");
    let (s, body) = grant(&c, &cl.token_url(1), &refresh_form(&winners[0])).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));

    admin_changes_reach_every_replica(&cl, &c).await;
    keys_reach_every_replica(&cl, &c, &store).await;
    sessions_reach_every_replica(&cl, &c).await;

    // Last (it locks this client's IP out too): brute force. five failures spread over the replicas lock bob out on all of them
    // (four on one, then the right password, would not).
    for i in 0..5 {
        let (s, _) = grant(&c, &cl.token_url(i % 3), &password_form("bob", "wrong")).await;
        assert_eq!(s, 401);
    }
    // Replica 2 saw one failure of the five.
    let (s, body) = grant(&c, &cl.token_url(2), &password_form("bob", "password")).await;
    assert_ne!(s, 200, "locked out on every replica: {body}");

    drop(store);
    cl.finish().await;
}

/// A client added through replica 0's admin API is usable on the others within `SOON` (their
/// directories are caches: only the notification or the 30 s re-read reloads them); deleted,
/// it is refused there as soon.
async fn admin_changes_reach_every_replica(cl: &Cluster, c: &reqwest::Client) {
    let admin = admin_token(cl, 0).await;
    let cc = [
        ("grant_type", "client_credentials"),
        ("client_id", "svc-new"),
        ("client_secret", "svc-new-secret"),
    ];
    for i in 1..3 {
        let (s, _) = grant(c, &cl.token_url(i), &cc).await;
        assert_eq!(s, 401, "no such client yet");
    }
    let r = reqwest::Client::new()
        .post(cl.gws[0].mgmt_url("/admin/realms/myrealm/clients"))
        .bearer_auth(&admin)
        .json(
            &json!({"clientId": "svc-new", "secret": "svc-new-secret", "enabled": true,
                      "publicClient": false, "serviceAccountsEnabled": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let t0 = Instant::now();
    for i in 1..3 {
        let url = cl.token_url(i);
        eventually("the new client on another replica", SOON, || {
            let (c, url) = (c.clone(), url.clone());
            async move { grant(&c, &url, &cc).await.0 == 200 }
        })
        .await;
    }
    eprintln!(
        "client added: seen on replicas 1 and 2 after {:?}",
        t0.elapsed()
    );
    let r = reqwest::Client::new()
        .delete(cl.gws[0].mgmt_url(&format!("/admin/realms/myrealm/clients/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    for i in 1..3 {
        let url = cl.token_url(i);
        eventually(
            "the deleted client refused on another replica",
            SOON,
            || {
                let (c, url) = (c.clone(), url.clone());
                async move { grant(&c, &url, &cc).await.0 == 401 }
            },
        )
        .await;
    }
}

/// `keys rotate` from the command line: every replica serves the new key within `SOON`. A
/// realm sync that changes the signing algorithm makes every replica find its key missing at
/// once: one new key is made between them, and all serve it.
async fn keys_reach_every_replica(
    cl: &Cluster,
    c: &reqwest::Client,
    store: &portcullis_store::SharedStore,
) {
    cl.cli(&["keys", "rotate", "--realm", "myrealm"]);
    let active = |keys: Vec<portcullis_store::KeyRow>| {
        keys.into_iter()
            .filter(|k| k.active)
            .map(|k| (k.kid, k.alg))
            .collect::<Vec<_>>()
    };
    let now = active(store.list_keys("myrealm").await.unwrap());
    assert_eq!(now.len(), 1);
    let kid = now[0].0.clone();
    for i in 0..3 {
        eventually("the rotated key on every replica", SOON, || {
            let kid = kid.clone();
            async move { cl.kids(c, i).await.first() == Some(&kid) }
        })
        .await;
    }

    let mut realm: Value =
        serde_json::from_str(&std::fs::read_to_string(cl.files.path().join("realm.json")).unwrap())
            .unwrap();
    realm["defaultSignatureAlgorithm"] = json!("ES256");
    let file = cl.files.path().join("realm-es256.json");
    std::fs::write(&file, realm.to_string()).unwrap();
    cl.cli(&[
        "realm",
        "import",
        "--sync",
        "--file",
        file.to_str().unwrap(),
    ]);
    eventually("one ES256 key", SOON, || async {
        let keys = store.list_keys("myrealm").await.unwrap();
        keys.iter().any(|k| k.active && k.alg == "ES256")
    })
    .await;
    // Give a losing replica the time it would need to add a second one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let keys = store.list_keys("myrealm").await.unwrap();
    let es256: Vec<_> = keys.iter().filter(|k| k.alg == "ES256").collect();
    assert_eq!(
        es256.len(),
        1,
        "one new key between three replicas: {keys:?}"
    );
    let kid = es256[0].kid.clone();
    for i in 0..3 {
        eventually("the ES256 key on every replica", SOON, || {
            let kid = kid.clone();
            async move { cl.kids(c, i).await.first() == Some(&kid) }
        })
        .await;
    }
    // Tokens are signed with it everywhere, and verified with it by the data plane of every
    // replica (the service account is not in `/staff`: 403, not 401).
    let cc = [
        ("grant_type", "client_credentials"),
        ("client_id", "svc-reports"),
        ("client_secret", "svc-secret"),
    ];
    for i in 0..3 {
        let (s, body) = grant(c, &cl.token_url(i), &cc).await;
        assert_eq!(s, 200, "{body}");
        let at = body["access_token"].as_str().unwrap();
        let head = jsonwebtoken::decode_header(at).unwrap();
        assert_eq!(head.kid.as_deref(), Some(kid.as_str()));
        let r = c.get(cl.gws[(i + 1) % 3].url("/api/x")).bearer_auth(at);
        assert_eq!(r.send().await.unwrap().status(), 403);
    }
}

/// A gateway session (`store = "database"`) made on replica 0 works on the others; a sign-out
/// there ends it on them within `SOON`, before their periodic re-check of the row (5 s) would.
async fn sessions_reach_every_replica(cl: &Cluster, c: &reqwest::Client) {
    use crate::session::{Jar, form_of, navigate, sign_in};
    let origin = |i: usize| format!("https://localhost:{}", cl.gws[i].public);
    let mut jar = Jar::default();
    let r = sign_in(
        c,
        &mut jar,
        &format!("{}/app/", origin(0)),
        "alice",
        "password",
    )
    .await;
    assert_eq!(r.status(), 200);
    let old = jar.clone();
    let status = |i: usize| {
        let (c, url, h) = (c.clone(), format!("{}/app/x", origin(i)), old.header());
        async move {
            let r = c.get(url).header("cookie", h).send().await.unwrap();
            r.status().as_u16()
        }
    };
    for i in 0..3 {
        assert_eq!(status(i).await, 200, "the session on replica {i}");
    }
    let r = navigate(c, &mut jar, &format!("{}/.portcullis/sign_out", origin(0))).await;
    let (_, fields) = form_of(&r.text().await.unwrap());
    let r = c
        .post(format!("{}/.portcullis/sign_out", origin(0)))
        .header("cookie", jar.header())
        .header("origin", origin(0))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let t0 = Instant::now();
    for i in 1..3 {
        eventually("the session ended on another replica", SOON, || {
            let f = status(i);
            async move { f.await == 401 }
        })
        .await;
    }
    assert!(t0.elapsed() < SOON);
}
