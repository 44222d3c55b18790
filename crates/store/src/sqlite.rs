//! SQLite backend: the default single-node store (`sqlite://data/portcullis.db`, WAL mode).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::Access;

pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// The refresh rotation's connection (`held.rs`).
    pub(crate) held: super::held::Held<sqlx::Sqlite>,
}

fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            "init".into(),
            MigrationType::Simple,
            include_str!("../migrations/sqlite/0001_init.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "refresh fast path".into(),
            MigrationType::Simple,
            include_str!("../migrations/sqlite/0002_refresh_fast_path.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            3,
            "email verified and the admin API".into(),
            MigrationType::Simple,
            include_str!("../migrations/sqlite/0003_email_verified.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            4,
            "gateway sessions".into(),
            MigrationType::Simple,
            include_str!("../migrations/sqlite/0004_gateway_sessions.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            5,
            "accounts".into(),
            MigrationType::Simple,
            include_str!("../migrations/sqlite/0005_accounts.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            6,
            "webauthn".into(),
            MigrationType::Simple,
            include_str!("../migrations/sqlite/0006_webauthn.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            7,
            "action tokens".into(),
            MigrationType::Simple,
            include_str!("../migrations/sqlite/0007_action_tokens.sql").into_sql_str(),
            false,
        ),
    ])
}

impl SqliteStore {
    /// Opens (creating directories and file on first run) and migrates the database at `path`;
    /// with [`Access::ReadOnly`], opens an existing file read-only and changes nothing.
    pub async fn open(path: &Path, access: Access) -> anyhow::Result<Self> {
        if access == Access::ReadOnly {
            if !path.is_file() {
                anyhow::bail!(
                    "{}: no issuer database yet (the gateway creates it on its first start)",
                    path.display()
                );
            }
            let opts = SqliteConnectOptions::from_str("sqlite://")?
                .filename(path)
                .read_only(true)
                .busy_timeout(Duration::from_secs(5));
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            return Ok(Self {
                pool,
                held: super::held::Held::new(),
            });
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("{}: cannot create directory: {e}", dir.display()))?;
        }
        let opts = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL is durable across application crashes; only an OS crash can lose
            // the last transactions, which for sessions and codes is acceptable.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        // SQLite takes one writer at a time: with many connections concurrent writes (a refresh
        // rotates a row) wait in SQLite's sleeping busy handler, each on its own sqlx worker
        // thread. Two connections queue them in the pool instead and keep one free for a
        // reader (refresh 905 -> 873 us/op, within the bench's run-to-run noise: benches/README.md).
        // The refresh rotation keeps one of its own (`held.rs`), hence three.
        let pool = SqlitePoolOptions::new()
            .max_connections(3)
            // sqlx pings a connection before lending it (a hop to its worker thread and back,
            // per statement); a local file's connection can't have been cut.
            .test_before_acquire(false)
            .connect_with(opts)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        migrator().run(&pool).await?;
        Ok(Self {
            pool,
            held: super::held::Held::new(),
        })
    }
}

super::sql::impl_store!(SqliteStore, sqlx::sqlite::SqliteRow, 1);
super::observe::impl_observed!(SqliteStore, "sqlite");

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::observe::Observed;

    /// With every connection lent out, the probe waits its turn: its answer is the wait a query
    /// asked at that moment would have.
    #[tokio::test]
    async fn acquire_wait_measures_the_wait_of_an_exhausted_pool() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(
            super::SqliteStore::open(&dir.path().join("p.db"), super::Access::ReadWrite)
                .await
                .unwrap(),
        );
        let a = s.pool.acquire().await.unwrap();
        let b = s.pool.acquire().await.unwrap();
        let c = s.pool.acquire().await.unwrap();
        let p = s.pool();
        assert_eq!((p.size, p.idle, p.max, p.in_use()), (3, 0, 3, 3));
        let probe = tokio::spawn({
            let s = s.clone();
            async move { s.acquire_wait().await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(a);
        let waited = probe.await.unwrap();
        assert!(waited >= Duration::from_millis(250), "{waited:?}");
        drop((b, c));
        assert!(s.acquire_wait().await.unwrap() < Duration::from_millis(250));
    }
}
