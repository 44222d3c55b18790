//! Test helpers: run a storage test against SQLite (a temp file) and PostgreSQL (a fresh database).
// Test fixtures: a failed setup must stop the test at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

use super::{
    FamilyRow, RealmRow, RealmSettings, Rotation, Secret, SharedStore, UserRow,
    postgres::PostgresStore, sqlite::SqliteStore,
};

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A uniquely named PostgreSQL database, dropped by `drop_db`.
pub struct PgTestDb {
    pub name: String,
    pub url: String,
}

impl PgTestDb {
    pub async fn create() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let mut rnd = [0u8; 4];
        aws_lc_rs::rand::fill(&mut rnd).unwrap();
        let name = format!(
            "portcullis_test_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            u32::from_le_bytes(rnd)
        );
        let mut c = PgConnection::connect(PG_ADMIN).await.unwrap();
        c.execute(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .unwrap();
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        Self { name, url }
    }

    pub async fn drop_db(self) {
        let mut c = PgConnection::connect(PG_ADMIN).await.unwrap();
        c.execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        )))
        .await
        .unwrap();
    }
}

/// Runs `test` once with a fresh SQLite store and once with a fresh PostgreSQL store.
pub async fn each_backend<F, Fut>(test: F)
where
    F: Fn(SharedStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("data/test.db"), super::Access::ReadWrite)
        .await
        .unwrap();
    test(Arc::new(sqlite)).await;

    let db = PgTestDb::create().await;
    let pg = PostgresStore::connect(&db.url, super::Access::ReadWrite)
        .await
        .unwrap();
    test(Arc::new(pg)).await;
    db.drop_db().await;
}

/// A live refresh family of realm `r1`, client `app` and user `u1`, without a session,
/// created and last used at 100; tests change what they need with `..family_row(…)`.
pub fn family_row(id: &str, current_hash: &str) -> FamilyRow {
    FamilyRow {
        id: id.into(),
        realm: "r1".into(),
        client_id: "app".into(),
        user_id: "u1".into(),
        session_id: None,
        scope: "openid".into(),
        current_hash: current_hash.into(),
        code_hash: None,
        created_at: 100,
        updated_at: 100,
        revoked: false,
    }
}

/// A rotation of `family_row`'s family (realm `r1`, client `app`) from `old_hash` to
/// `new_hash` at time 150, with no idle or lifespan bound; tests change the rest with `..`.
pub fn rotation<'a>(family_id: &'a str, old_hash: &'a str, new_hash: &'a str) -> Rotation<'a> {
    Rotation {
        family_id,
        realm: "r1",
        client_id: "app",
        old_hash,
        new_hash,
        now: 150,
        active_since: 0,
        created_since: 0,
    }
}

/// Realm `r1`, enabled, with Keycloak's default settings.
pub fn realm() -> RealmRow {
    RealmRow {
        name: "r1".into(),
        enabled: true,
        settings: RealmSettings::default(),
    }
}

/// A user of realm `r1` with an email, a (fake) password hash, created at 100.
pub fn user(id: &str, name: &str) -> UserRow {
    UserRow {
        id: id.into(),
        realm: "r1".into(),
        username: name.into(),
        email: Some(format!("{name}@example.com")),
        first_name: None,
        last_name: None,
        email_verified: false,
        enabled: true,
        created_at: 100,
        password_hash: Some(Secret("$argon2id$fake".into())),
        service_account_client: None,
    }
}
