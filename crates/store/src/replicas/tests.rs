//! Notifications between two stores on one PostgreSQL database, the key made once under the
//! advisory lock, and SQLite's one-node answers.

use std::sync::Arc;
use std::time::Duration;

use super::{Change, Changes};
use crate::testing::{PgTestDb, realm};
use crate::{GatewaySessionRow, KeyRow, Secret, SharedStore};

fn key(kid: &str, alg: &str, at: i64) -> KeyRow {
    KeyRow {
        kid: kid.into(),
        realm: "r1".into(),
        alg: alg.into(),
        private_der: Secret(vec![1, 2, 3]),
        created_at: at,
        active: true,
        retired_at: None,
    }
}

async fn next(c: &mut Changes) -> Change {
    tokio::time::timeout(Duration::from_secs(5), c.next())
        .await
        .expect("a notification within 5 s")
        .expect("the listener runs")
}

/// Waits for the listener's first `Resync` (it listens from then on).
async fn listening(c: &mut Changes) {
    assert_eq!(next(c).await, Change::Resync);
}

#[test]
fn payloads_round_trip_and_unknown_ones_are_ignored() {
    for c in [
        Change::Realm("r:1".into()),
        Change::Keys("r1".into()),
        Change::GatewaySession("abc".into()),
        Change::GatewaySessionsOf("u-1".into()),
    ] {
        assert_eq!(Change::parse(&c.payload().unwrap()), Some(c));
    }
    assert_eq!(Change::Resync.payload(), None);
    assert_eq!(Change::parse("later-kind:x"), None);
    assert_eq!(Change::parse("no colon"), None);
}

#[test]
fn only_connection_failures_count_as_unavailable() {
    assert!(super::is_unavailable(&anyhow::Error::from(
        sqlx::Error::PoolTimedOut
    )));
    let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    let e = anyhow::Error::from(sqlx::Error::Io(io)).context("loading realm");
    assert!(super::is_unavailable(&e));
    assert!(!super::is_unavailable(&anyhow::Error::from(
        sqlx::Error::RowNotFound
    )));
    assert!(!super::is_unavailable(&anyhow::anyhow!("other")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_store_writes_the_other_hears() {
    let db = PgTestDb::create().await;
    let a: SharedStore = crate::open(&db.url, std::path::Path::new("."))
        .await
        .unwrap();
    let b: SharedStore = crate::open(&db.url, std::path::Path::new("."))
        .await
        .unwrap();
    let mut heard = b.changes().expect("PostgreSQL notifies");
    listening(&mut heard).await;
    a.put_realm(&realm()).await.unwrap();
    a.bump_realm_revision("r1").await.unwrap();
    assert_eq!(next(&mut heard).await, Change::Realm("r1".into()));
    a.add_active_key(&key("k1", "RS256", 100)).await.unwrap();
    assert_eq!(next(&mut heard).await, Change::Keys("r1".into()));
    let row = GatewaySessionRow {
        id: "row-1".into(),
        sub: "u1".into(),
        rev: 0,
        data: "sealed".into(),
        created_at: 100,
        last_seen: 100,
        expires_at: i64::MAX,
    };
    a.create_gateway_session(&row).await.unwrap();
    assert!(a.end_gateway_session("row-1").await.unwrap());
    assert_eq!(
        next(&mut heard).await,
        Change::GatewaySession("row-1".into())
    );
    // Nothing ended, nothing announced: the next one heard is the subject's.
    assert!(!a.end_gateway_session("row-1").await.unwrap());
    a.create_gateway_session(&GatewaySessionRow {
        id: "row-2".into(),
        ..row
    })
    .await
    .unwrap();
    assert_eq!(a.end_gateway_sessions_of("u1").await.unwrap(), 1);
    assert_eq!(
        next(&mut heard).await,
        Change::GatewaySessionsOf("u1".into())
    );
    // A second subscriber shares the listener and hears what follows.
    let mut also = b.changes().unwrap();
    a.bump_realm_revision("r1").await.unwrap();
    assert_eq!(next(&mut heard).await, Change::Realm("r1".into()));
    assert_eq!(next(&mut also).await, Change::Realm("r1".into()));
    drop((heard, also, a, b));
    db.drop_db().await;
}

/// Replicas that all find the realm without a key of its algorithm race to add one: exactly
/// one is added, the realm has one active key, and the others hear of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_replicas_add_one_key() {
    let db = PgTestDb::create().await;
    let mut stores: Vec<SharedStore> = Vec::new();
    for _ in 0..3 {
        stores.push(
            crate::open(&db.url, std::path::Path::new("."))
                .await
                .unwrap(),
        );
    }
    stores[0].put_realm(&realm()).await.unwrap();
    stores[0]
        .add_active_key(&key("old", "RS256", 100))
        .await
        .unwrap();
    let mut heard = stores[2].changes().unwrap();
    listening(&mut heard).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(12));
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (s, barrier) = (stores[i % 3].clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            s.ensure_active_key(&key(&format!("new{i}"), "ES256", 200))
                .await
                .unwrap()
        }));
    }
    let mut added = 0;
    for t in tasks {
        added += usize::from(t.await.unwrap());
    }
    assert_eq!(added, 1, "one replica adds the key");
    let keys = stores[1].list_keys("r1").await.unwrap();
    let active: Vec<_> = keys.iter().filter(|k| k.active).collect();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].alg, "ES256");
    assert_eq!(keys.len(), 2, "the old one retired, no other new one");
    assert_eq!(next(&mut heard).await, Change::Keys("r1".into()));
    // Present now: nobody adds another.
    assert!(
        !stores[0]
            .ensure_active_key(&key("late", "ES256", 300))
            .await
            .unwrap()
    );
    drop((heard, stores));
    db.drop_db().await;
}

#[tokio::test]
async fn sqlite_is_one_node_and_adds_a_missing_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = crate::open("sqlite://data/one.db", dir.path())
        .await
        .unwrap();
    assert!(s.changes().is_none(), "no listener for the one-node store");
    s.put_realm(&realm()).await.unwrap();
    assert!(s.ensure_active_key(&key("a", "RS256", 100)).await.unwrap());
    assert!(!s.ensure_active_key(&key("b", "RS256", 101)).await.unwrap());
    assert!(s.ensure_active_key(&key("c", "ES256", 102)).await.unwrap());
    let keys = s.list_keys("r1").await.unwrap();
    let active: Vec<_> = keys.iter().filter(|k| k.active).map(|k| &k.kid).collect();
    assert_eq!(active, ["c"]);
}

/// Replicas starting together take the start-up lock in turn: the second waits until the
/// first's guard is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_startup_lock_is_taken_in_turn() {
    let db = PgTestDb::create().await;
    let a = crate::open(&db.url, std::path::Path::new("."))
        .await
        .unwrap();
    let b = crate::open(&db.url, std::path::Path::new("."))
        .await
        .unwrap();
    let first = a.startup_lock().await.unwrap();
    assert!(first.is_held());
    let second = tokio::spawn(async move { b.startup_lock().await.map(|g| g.is_held()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "waits for the first");
    drop(first);
    let got = tokio::time::timeout(Duration::from_secs(5), second).await;
    assert!(got.unwrap().unwrap().unwrap());
    drop(a);
    db.drop_db().await;
}
