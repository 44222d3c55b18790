//! The realms and their signing keys: the `Store` methods `impl_store!` (`sql.rs`) gathers
//! from this file, in the one SQL text both backends run.

/// Appends the realm and signing-key methods to `$methods` and hands them to the next file's
/// macro.
macro_rules! realm_methods {
    ($ty:ty, { $($methods:tt)* }) => {
        crate::sql::directory::directory_methods! { $ty, { $($methods)*
            async fn realm_names(&self) -> anyhow::Result<Vec<String>> {
                let rows = sqlx::query("SELECT name FROM realms ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(|r| r.try_get("name")).collect::<sqlx::Result<_>>()?)
            }

            async fn get_realm(&self, name: &str) -> anyhow::Result<Option<RealmRow>> {
                let row = sqlx::query("SELECT name, enabled, settings FROM realms WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
                let Some(r) = row else { return Ok(None) };
                let settings: String = r.try_get("settings")?;
                Ok(Some(RealmRow {
                    name: r.try_get("name")?,
                    enabled: r.try_get("enabled")?,
                    settings: serde_json::from_str(&settings)?,
                }))
            }

            async fn put_realm(&self, realm: &RealmRow) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO realms (name, enabled, settings) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET enabled = $2, settings = $3",
                )
                .bind(&realm.name)
                .bind(realm.enabled)
                .bind(serde_json::to_string(&realm.settings)?)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn realm_revision(&self, name: &str) -> anyhow::Result<i64> {
                let row = sqlx::query("SELECT revision FROM realms WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|r| r.try_get("revision")).transpose()?.unwrap_or(0))
            }

            async fn bump_realm_revision(&self, name: &str) -> anyhow::Result<()> {
                sqlx::query("UPDATE realms SET revision = revision + 1 WHERE name = $1")
                    .bind(name)
                    .execute(&self.pool)
                    .await?;
                self.notify(crate::replicas::Change::Realm(name.to_string())).await;
                Ok(())
            }

            async fn list_keys(&self, realm: &str) -> anyhow::Result<Vec<KeyRow>> {
                let rows = sqlx::query("SELECT * FROM signing_keys WHERE realm = $1 ORDER BY created_at, kid")
                    .bind(realm)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(decode::key).collect::<sqlx::Result<_>>()?)
            }

            async fn add_active_key(&self, k: &KeyRow) -> anyhow::Result<()> {
                let mut tx = self.pool.begin().await?;
                crate::sql::realms::insert_active_key!(tx, k);
                tx.commit().await?;
                self.notify(crate::replicas::Change::Keys(k.realm.clone())).await;
                Ok(())
            }

            fn changes(&self) -> Option<crate::replicas::Changes> {
                self.subscribe()
            }

            async fn ensure_active_key(&self, k: &KeyRow) -> anyhow::Result<bool> {
                self.add_key_once(k).await
            }

            async fn startup_lock(&self) -> anyhow::Result<crate::replicas::StartupGuard> {
                self.lock_startup().await
            }
        } }
    };
}

pub(crate) use realm_methods;

/// In the transaction `$tx`: retires the realm's active keys at `$k.created_at` and stores
/// `$k` as its active key (`add_active_key`, and `ensure_active_key` under its lock).
macro_rules! insert_active_key {
    ($tx:ident, $k:expr) => {{
        let k: &crate::KeyRow = $k;
        sqlx::query(
            "UPDATE signing_keys SET active = $1, retired_at = $2 \
             WHERE realm = $3 AND active = $4",
        )
        .bind(false)
        .bind(k.created_at)
        .bind(&k.realm)
        .bind(true)
        .execute(&mut *$tx)
        .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, realm, alg, private_der, created_at, active, retired_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        )
        .bind(&k.kid)
        .bind(&k.realm)
        .bind(&k.alg)
        .bind(k.private_der.expose().as_slice())
        .bind(k.created_at)
        .bind(true)
        .execute(&mut *$tx)
        .await?;
    }};
}

pub(crate) use insert_active_key;

/// In the transaction `$tx`: whether the realm of `$k` already has an active key of its
/// algorithm (`ensure_active_key` then adds none).
macro_rules! active_key_held {
    ($tx:ident, $k:expr) => {{
        let k: &crate::KeyRow = $k;
        let held: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM signing_keys WHERE realm = $1 AND active AND alg = $2 LIMIT 1",
        )
        .bind(&k.realm)
        .bind(&k.alg)
        .fetch_optional(&mut *$tx)
        .await?;
        held.is_some()
    }};
}

pub(crate) use active_key_held;
