//! Replicas under faults: one killed with SIGKILL in the middle of refresh and
//! client_credentials loops (no token lost, none spent twice), and the database cut off from a
//! replica by a TCP proxy the test controls (the shared server itself is never touched): the
//! replica turns not-ready, its issuer answers 503 `temporarily_unavailable`, its data plane
//! keeps serving `public` and `jwt` routes, and when the database is back it recovers without
//! a restart, re-reading at once what it missed while its listener was cut off.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Cluster, cluster, grant, password_form, refresh_form};
use crate::harness::eventually;
use portcullis_store::testing::PgTestDb;

/// How one refresh loop ended.
struct Chain {
    /// Every refresh token this loop spent successfully.
    spent: Vec<String>,
    /// The token it holds now.
    current: String,
    /// Its last request was cut off by the kill: the outcome is unknown.
    uncertain: bool,
}

/// A replica the loops may use: after the kill, the load balancer takes the dead one out.
fn pick(n: usize, killed: &AtomicBool, i: usize) -> usize {
    let k = if killed.load(Ordering::Acquire) { 2 } else { n };
    i % k
}

async fn refresh_loop(
    cl: Arc<ClusterUrls>,
    killed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    seed: usize,
    first: String,
) -> Chain {
    let c = cl.client.clone();
    let mut chain = Chain {
        spent: Vec::new(),
        current: first,
        uncertain: false,
    };
    let mut i = seed;
    while !stop.load(Ordering::Acquire) {
        i += 1;
        let r = pick(3, &killed, i);
        let sent = c
            .post(&cl.token[r])
            .form(&refresh_form(&chain.current))
            .send()
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            // Never reached the replica: safe to send elsewhere.
            Err(e) if e.is_connect() => continue,
            Err(_) => {
                assert!(
                    killed.load(Ordering::Acquire) && r == 2,
                    "only the killed replica fails"
                );
                chain.uncertain = true;
                return chain;
            }
        };
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        assert_eq!(status, 200, "replica {r} refused a live token: {body}");
        chain.spent.push(std::mem::take(&mut chain.current));
        chain.current = body["refresh_token"].as_str().unwrap().to_string();
    }
    chain
}

/// What the loops need of the cluster (the cluster itself stays with the test).
struct ClusterUrls {
    client: reqwest::Client,
    token: Vec<String>,
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_killed_mid_load_loses_and_double_spends_no_token() {
    let db = PgTestDb::create().await;
    let url = db.url.clone();
    let cl = cluster(db, &[url.clone(), url.clone(), url]).await;
    let urls = Arc::new(ClusterUrls {
        client: cl.client(),
        token: (0..3).map(|i| cl.token_url(i)).collect(),
    });
    let (killed, stop) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    // Logged in before the load starts (a login is slow in a debug build).
    let mut firsts = Vec::new();
    for seed in 0..4 {
        let (s, body) = grant(
            &urls.client,
            &urls.token[seed % 3],
            &password_form("alice", "password"),
        )
        .await;
        assert_eq!(s, 200, "{body}");
        firsts.push(body["refresh_token"].as_str().unwrap().to_string());
    }
    let chains: Vec<_> = firsts
        .into_iter()
        .enumerate()
        .map(|(seed, first)| {
            tokio::spawn(refresh_loop(
                urls.clone(),
                killed.clone(),
                stop.clone(),
                seed,
                first,
            ))
        })
        .collect();
    let cc_ok = Arc::new(Mutex::new((0usize, 0usize)));
    let cc: Vec<_> = (0..2)
        .map(|seed| {
            let (urls, killed, stop, ok) =
                (urls.clone(), killed.clone(), stop.clone(), cc_ok.clone());
            tokio::spawn(async move {
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", "svc-reports"),
                    ("client_secret", "svc-secret"),
                ];
                let mut i = seed;
                while !stop.load(Ordering::Acquire) {
                    i += 1;
                    let r = pick(3, &killed, i);
                    match urls.client.post(&urls.token[r]).form(&form).send().await {
                        Ok(resp) => {
                            assert_eq!(resp.status(), 200);
                            let mut n = ok.lock().unwrap();
                            if killed.load(Ordering::Acquire) {
                                n.1 += 1
                            } else {
                                n.0 += 1
                            }
                        }
                        Err(_) => assert!(killed.load(Ordering::Acquire) && r == 2),
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    killed.store(true, Ordering::Release);
    cl.gws[2].signal("KILL");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Release);
    for t in cc {
        t.await.unwrap();
    }
    let (before, after) = *cc_ok.lock().unwrap();
    assert!(
        before > 0 && after > 0,
        "client_credentials went on: {before} then {after}"
    );
    let mut spent = HashSet::new();
    let mut rotations = 0;
    for t in chains {
        let chain = t.await.unwrap();
        rotations += chain.spent.len();
        for s in &chain.spent {
            assert!(spent.insert(s.clone()), "a refresh token was spent twice");
        }
        if chain.uncertain {
            continue;
        }
        // The token each loop holds still works on a surviving replica: nothing was lost.
        let (s, body) = grant(&urls.client, &urls.token[0], &refresh_form(&chain.current)).await;
        assert_eq!(s, 200, "a held token was lost: {body}");
    }
    assert!(rotations > 8, "the loops made progress: {rotations}");
    eprintln!("{rotations} rotations, cc {before} before the kill and {after} after");
    cl.finish().await;
}

/// A TCP proxy to the local PostgreSQL that the test cuts (every connection dropped, new ones
/// closed at once) and restores.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start() -> Proxy {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let (cut, conns) = (cut.clone(), conns.clone());
            async move {
                while let Ok((mut down, _)) = l.accept().await {
                    if cut.load(Ordering::Acquire) {
                        continue;
                    }
                    let h = tokio::spawn(async move {
                        if let Ok(mut up) = tokio::net::TcpStream::connect("127.0.0.1:5432").await {
                            let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                        }
                    });
                    conns.lock().unwrap().push(h.abort_handle());
                }
            }
        });
        Proxy {
            port,
            cut,
            conns,
            task,
        }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::Release);
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::Release);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

async fn ready(cl: &Cluster, i: usize) -> u16 {
    reqwest::get(cl.gws[i].mgmt_url("/health/ready"))
        .await
        .map_or(0, |r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_cut_off_from_the_database_degrades_and_recovers() {
    let db = PgTestDb::create().await;
    let proxy = Proxy::start().await;
    let via_proxy = format!("postgres://postgres@127.0.0.1:{}/{}", proxy.port, db.name);
    let direct = db.url.clone();
    let cl = cluster(db, &[via_proxy, direct]).await;
    let c = cl.client();
    let (s, body) = grant(&c, &cl.token_url(0), &password_form("alice", "password")).await;
    assert_eq!(s, 200, "{body}");
    let at = body["access_token"].as_str().unwrap().to_string();

    proxy.cut();
    eventually("replica 0 not ready", Duration::from_secs(15), || async {
        ready(&cl, 0).await == 503
    })
    .await;
    assert_eq!(ready(&cl, 1).await, 200, "the other replica is fine");
    // The issuer: 503 with an OAuth error body, for what needs the database.
    let (s, body) = grant(&c, &cl.token_url(0), &password_form("alice", "password")).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (503, Some("temporarily_unavailable")),
        "{body}"
    );
    // client_credentials needs no statement: minted from the cached directory.
    let cc = [
        ("grant_type", "client_credentials"),
        ("client_id", "svc-reports"),
        ("client_secret", "svc-secret"),
    ];
    assert_eq!(grant(&c, &cl.token_url(0), &cc).await.0, 200);
    // The data plane: public and jwt routes go on.
    let r = c.get(cl.gws[0].url("/pub/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(cl.gws[0].url("/api/x"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Meanwhile a client is added on the other replica: replica 0 cannot hear of it.
    let admin = super::admin_token(&cl, 1).await;
    let r = reqwest::Client::new()
        .post(cl.gws[1].mgmt_url("/admin/realms/myrealm/clients"))
        .bearer_auth(&admin)
        .json(
            &json!({"clientId": "svc-late", "secret": "svc-late-secret", "enabled": true,
                      "publicClient": false, "serviceAccountsEnabled": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    proxy.restore();
    let t0 = Instant::now();
    eventually("replica 0 ready again", Duration::from_secs(10), || async {
        ready(&cl, 0).await == 200
    })
    .await;
    let (s, body) = grant(&c, &cl.token_url(0), &password_form("alice", "password")).await;
    assert_eq!(s, 200, "{body}");
    // The notification was lost; the listener's reconnect re-reads at once (well before the
    // 30 s safety net).
    let cc = [
        ("grant_type", "client_credentials"),
        ("client_id", "svc-late"),
        ("client_secret", "svc-late-secret"),
    ];
    let url = cl.token_url(0);
    eventually(
        "the missed client on replica 0",
        Duration::from_secs(10),
        || {
            let (c, url) = (c.clone(), url.clone());
            async move { grant(&c, &url, &cc).await.0 == 200 }
        },
    )
    .await;
    eprintln!(
        "recovered and re-read {:?} after the database came back",
        t0.elapsed()
    );
    cl.finish().await;
}
