//! PostgreSQL backend: shared state for several gateway replicas (`postgres://…`).

use std::str::FromStr;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

pub struct PostgresStore {
    pool: PgPool,
}

fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            "init".into(),
            MigrationType::Simple,
            include_str!("../../migrations/postgres/0001_init.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "refresh fast path".into(),
            MigrationType::Simple,
            include_str!("../../migrations/postgres/0002_refresh_fast_path.sql").into_sql_str(),
            false,
        ),
    ])
}

impl PostgresStore {
    /// Connects to an existing database and runs the migrations (under sqlx's advisory lock,
    /// so replicas starting together migrate once).
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let opts = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect_with(opts)
            .await?;
        migrator().run(&pool).await?;
        Ok(Self { pool })
    }
}

super::sql::impl_store!(PostgresStore, sqlx::postgres::PgRow);
