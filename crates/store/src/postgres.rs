//! PostgreSQL backend: shared state for several gateway replicas (`postgres://…`).

use std::str::FromStr;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::Access;

/// A pooled connection idle this long is pinged before use (see `connect`). Short: after a
/// database restart or failover every idle connection is dead, and each lent unchecked fails
/// one request; under load connections come back far more often than this, so the check still
/// costs nothing there (HikariCP's `aliveBypassWindowMs` is the same idea, at 500 ms).
const IDLE_PING_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

pub struct PostgresStore {
    pub(crate) pool: PgPool,
    /// The listener other replicas' changes arrive on (`replicas.rs`).
    pub(crate) hub: super::replicas::Hub,
    /// The refresh rotations' connections (`held.rs`).
    pub(crate) held: super::held::Held<sqlx::Postgres>,
}

fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            "init".into(),
            MigrationType::Simple,
            include_str!("../migrations/postgres/0001_init.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "refresh fast path".into(),
            MigrationType::Simple,
            include_str!("../migrations/postgres/0002_refresh_fast_path.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            3,
            "email verified and the admin API".into(),
            MigrationType::Simple,
            include_str!("../migrations/postgres/0003_email_verified.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            4,
            "gateway sessions".into(),
            MigrationType::Simple,
            include_str!("../migrations/postgres/0004_gateway_sessions.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            5,
            "accounts".into(),
            MigrationType::Simple,
            include_str!("../migrations/postgres/0005_accounts.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            6,
            "webauthn".into(),
            MigrationType::Simple,
            include_str!("../migrations/postgres/0006_webauthn.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            7,
            "action tokens".into(),
            MigrationType::Simple,
            include_str!("../migrations/postgres/0007_action_tokens.sql").into_sql_str(),
            false,
        ),
    ])
}

impl PostgresStore {
    /// Connects to an existing database and runs the migrations (under sqlx's advisory lock,
    /// so replicas starting together migrate once).
    pub async fn connect(url: &str, access: Access) -> anyhow::Result<Self> {
        let mut opts = PgConnectOptions::from_str(url)?;
        if access == Access::ReadOnly {
            // The server refuses any write in these sessions, whatever a caller tries.
            opts = opts.options([("default_transaction_read_only", "on")]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(if access == Access::ReadOnly { 1 } else { 16 })
            // A database that does not answer fails a request in seconds (the issuer's 503),
            // not after sqlx's default 30 s.
            .acquire_timeout(std::time::Duration::from_secs(5))
            // sqlx pings every connection it takes from the idle queue: one more round trip per
            // statement, on PostgreSQL's CPU and ours (a refresh is one statement). A connection
            // that was in use a moment ago is alive or fails its statement like any other error
            // (the caller answers 503 and sqlx drops it); only one idle long enough for a proxy,
            // a firewall or a restart to have cut it is checked first.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_PING_AFTER {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(opts.clone())
            .await?;
        if access == Access::ReadWrite {
            migrator().run(&pool).await?;
        }
        Ok(Self {
            pool,
            hub: super::replicas::Hub::new(opts),
            held: super::held::Held::new(),
        })
    }
}

super::sql::impl_store!(PostgresStore, sqlx::postgres::PgRow, 4);
super::observe::impl_observed!(PostgresStore, "postgres");
