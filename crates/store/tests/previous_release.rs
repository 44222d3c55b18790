//! The previous release against this one, for graceful upgrades: while the new process runs
//! this release's migrations, the old one keeps serving on the same database.
//!
//! `tests/fixtures/previous-release` is that release frozen by `tools/release_sql.py` (its
//! revision in `RELEASE`): its migrations, byte for byte, and every SQL statement its store
//! runs. Checked here, on SQLite and on PostgreSQL:
//! - its migrations are this release's first ones, unchanged (sqlx refuses to start on a
//!   database whose applied migration's checksum differs);
//! - a database it created, with rows it wrote, opens under this release: the later
//!   migrations apply on top and the rows read back through this release's `Store`;
//! - every statement it runs still prepares against the migrated schema (each table, column
//!   and type it names is still there), so the old process keeps working;
//! - every migration added since is additive (no drop, rename or retype; no new NOT NULL
//!   column without a default, which the old INSERTs would violate).
//!
//! What this does not prove: that the old code reads the new rows the same way (a column whose
//! meaning changed). That is for review; the statements and the schema are what break first.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use portcullis_store::{RealmRow, RealmSettings, SessionRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, Connection, Executor, SqlSafeStr};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/previous-release")
}

/// `(file name, SQL)` of a migrations directory, in order.
fn migration_files(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

fn current(backend: &str) -> Vec<(String, String)> {
    migration_files(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend),
    )
}

fn previous(backend: &str) -> Vec<(String, String)> {
    migration_files(&fixtures().join("migrations").join(backend))
}

/// The previous release's migrator (`0001_init.sql` is version 1).
fn previous_migrator(backend: &str) -> Migrator {
    Migrator::with_migrations(
        previous(backend)
            .into_iter()
            .map(|(name, sql)| {
                let (version, desc) = name.trim_end_matches(".sql").split_once('_').unwrap();
                Migration::new(
                    version.parse().unwrap(),
                    Cow::Owned(desc.replace('_', " ")),
                    MigrationType::Simple,
                    AssertSqlSafe(sql).into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

fn statements() -> Vec<String> {
    std::fs::read_to_string(fixtures().join("statements.sql"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// The statement of the previous release that starts with `prefix` (its own SQL text).
fn statement(prefix: &str) -> String {
    statements()
        .into_iter()
        .find(|s| s.starts_with(prefix))
        .unwrap_or_else(|| panic!("no statement starting {prefix:?}"))
}

#[test]
fn the_previous_releases_migrations_are_unchanged() {
    for backend in ["sqlite", "postgres"] {
        let (old, new) = (previous(backend), current(backend));
        assert!(!old.is_empty(), "{backend}: no frozen migrations");
        for (i, (name, sql)) in old.iter().enumerate() {
            let Some((now_name, now_sql)) = new.get(i) else {
                panic!("{backend}: {name} of the previous release is gone");
            };
            assert_eq!(now_name, name, "{backend}: migration {} renamed", i + 1);
            assert!(
                now_sql == sql,
                "{backend}: {name} changed since the previous release: a database it migrated \
                 would refuse to start (add a new migration instead)"
            );
        }
    }
}

/// Where a migration is not additive: the old release's statements would fail on its result.
fn not_additive(sql: &str) -> Vec<String> {
    let text: String = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase();
    let mut bad = Vec::new();
    for stmt in text
        .split(';')
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
    {
        let has = |w: &str| stmt.contains(w);
        if has("DROP TABLE") || has("DROP COLUMN") || has("DROP VIEW") {
            bad.push(format!("drops: {stmt}"));
        }
        if has("RENAME") {
            bad.push(format!("renames: {stmt}"));
        }
        if has("ALTER COLUMN") && (has(" TYPE ") || has("SET NOT NULL") || has("SET DATA TYPE")) {
            bad.push(format!("retypes or tightens: {stmt}"));
        }
        if has("ADD COLUMN") && has("NOT NULL") && !has("DEFAULT") {
            bad.push(format!("a NOT NULL column without a default: {stmt}"));
        }
    }
    bad
}

#[test]
fn migrations_since_the_previous_release_are_additive() {
    for backend in ["sqlite", "postgres"] {
        let old = previous(backend).len();
        for (name, sql) in current(backend).iter().skip(old) {
            assert_eq!(not_additive(sql), Vec::<String>::new(), "{backend}: {name}");
        }
    }
    // The check itself: each kind of break is caught, additive changes pass.
    for bad in [
        "DROP TABLE revoked_tokens;",
        "ALTER TABLE users DROP COLUMN email;",
        "ALTER TABLE users RENAME COLUMN email TO mail;",
        "ALTER TABLE realms RENAME TO tenants;",
        "ALTER TABLE users ALTER COLUMN email TYPE BYTEA;",
        "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
        "ALTER TABLE users ADD COLUMN tenant TEXT NOT NULL;",
    ] {
        assert!(!not_additive(bad).is_empty(), "{bad}");
    }
    for good in [
        "CREATE TABLE audit (id TEXT PRIMARY KEY);\nCREATE INDEX audit_id ON audit (id);",
        "ALTER TABLE users ADD COLUMN locale TEXT;",
        "ALTER TABLE realms ADD COLUMN revision BIGINT NOT NULL DEFAULT 0; -- drop table x",
    ] {
        assert_eq!(not_additive(good), Vec::<String>::new(), "{good}");
    }
}

/// Rows the previous release wrote, with its own statements: a realm, a user, a session.
macro_rules! seed {
    ($db:expr) => {{
        let settings = serde_json::to_string(&RealmSettings::default()).unwrap();
        sqlx::query(AssertSqlSafe(statement("INSERT INTO realms")))
            .bind("r1")
            .bind(true)
            .bind(settings)
            .execute($db)
            .await
            .unwrap();
        sqlx::query(AssertSqlSafe(statement("INSERT INTO users")))
            .bind("u1")
            .bind("r1")
            .bind("alice")
            .bind(Some("alice@example.com"))
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(true)
            .bind(None::<String>)
            .bind(None::<String>)
            .execute($db)
            .await
            .unwrap();
        sqlx::query(AssertSqlSafe(statement("INSERT INTO sso_sessions")))
            .bind("s1")
            .bind("r1")
            .bind("u1")
            .bind("cookie-hash")
            .bind(100_i64)
            .bind(200_i64)
            .bind(false)
            .execute($db)
            .await
            .unwrap();
    }};
}

/// The statements the database refuses to prepare, each with its reason.
macro_rules! prepare_each {
    ($conn:expr) => {{
        let mut failed = Vec::new();
        for s in statements() {
            if let Err(e) = $conn.prepare(AssertSqlSafe(s.clone()).into_sql_str()).await {
                failed.push(format!("{s}\n  -> {e}"));
            }
        }
        failed
    }};
}

/// This release on the previous release's database: its migrations apply on top, and the
/// previous release's rows read back through this release's `Store`.
async fn opens_with_its_rows(url: &str, base: &Path) {
    let store = portcullis_store::open(url, base).await.unwrap();
    let realm = store.get_realm("r1").await.unwrap();
    assert_eq!(
        realm,
        Some(RealmRow {
            name: "r1".into(),
            enabled: true,
            settings: RealmSettings::default(),
        })
    );
    let user = store
        .user_by_username("r1", "alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (user.id.as_str(), user.email.as_deref()),
        ("u1", Some("alice@example.com"))
    );
    let session = store.session_by_id("s1").await.unwrap();
    assert_eq!(
        session,
        Some(SessionRow {
            id: "s1".into(),
            realm: "r1".into(),
            user_id: "u1".into(),
            cookie_hash: "cookie-hash".into(),
            created_at: 100,
            last_seen: 200,
            ended: false,
            amr: vec!["pwd".into()],
        })
    );
}

#[tokio::test]
async fn sqlite_a_previous_release_database_opens_and_its_statements_still_prepare() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let url = format!("sqlite://{}", path.display());
    {
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        previous_migrator("sqlite").run(&pool).await.unwrap();
        seed!(&pool);
        pool.close().await;
    }
    opens_with_its_rows(&url, dir.path()).await;
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let failed: Vec<String> = prepare_each!(conn);
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(
        statements().len() >= 50,
        "{} statements",
        statements().len()
    );
}

#[tokio::test]
async fn postgres_a_previous_release_database_opens_and_its_statements_still_prepare() {
    let db = PgDb::create().await;
    {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        previous_migrator("postgres").run(&pool).await.unwrap();
        seed!(&pool);
        pool.close().await;
    }
    opens_with_its_rows(&db.url, Path::new(".")).await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let failed: Vec<String> = prepare_each!(conn);
    let gone = AssertSqlSafe("SELECT email_address FROM users WHERE realm = $1").into_sql_str();
    assert!(conn.prepare(gone).await.is_err());
    conn.close().await.unwrap();
    db.drop_db().await;
    assert!(failed.is_empty(), "{failed:#?}");
}

/// A fresh PostgreSQL database on the test server (trust auth), dropped at the end.
struct PgDb {
    name: String,
    url: String,
}

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

impl PgDb {
    async fn create() -> Self {
        let name = format!(
            "portcullis_previous_release_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let mut c = sqlx::PgConnection::connect(PG_ADMIN).await.unwrap();
        c.execute(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .unwrap();
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        Self { name, url }
    }

    async fn drop_db(self) {
        let mut c = sqlx::PgConnection::connect(PG_ADMIN).await.unwrap();
        c.execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        )))
        .await
        .unwrap();
    }
}
