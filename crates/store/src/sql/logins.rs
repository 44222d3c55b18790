//! Brute-force counters and login events: the `Store` methods `impl_store!` (`sql.rs`) gathers
//! from this file, in the one SQL text both backends run.

/// Appends the brute-force and login-event methods to `$methods`, and hands them on to
/// `accounts`.
macro_rules! login_methods {
    ($ty:ty, { $($methods:tt)* }) => {
        crate::sql::accounts::account_methods! { $ty, { $($methods)*
            async fn get_failures(&self, realm: &str, key: &str) -> anyhow::Result<Option<Failures>> {
                let row = sqlx::query(
                    "SELECT failures, last_failure, locked_until FROM brute_force \
                     WHERE realm = $1 AND key = $2",
                )
                .bind(realm)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
                let Some(r) = row else { return Ok(None) };
                Ok(Some(Failures {
                    count: r.try_get("failures")?,
                    last_failure: r.try_get("last_failure")?,
                    locked_until: r.try_get("locked_until")?,
                }))
            }

            async fn failures_of(
                &self,
                realm: &str,
                keys: &[String],
            ) -> anyhow::Result<Vec<(String, Failures)>> {
                let mut out = Vec::new();
                // Logins have one or two keys: one statement, the same text for both backends.
                for pair in keys.chunks(2) {
                    let (a, b) = match pair {
                        [a, b] => (a, b),
                        [a] => (a, a),
                        _ => continue,
                    };
                    let rows = sqlx::query(
                        "SELECT key, failures, last_failure, locked_until FROM brute_force \
                         WHERE realm = $1 AND key IN ($2, $3)",
                    )
                    .bind(realm)
                    .bind(a)
                    .bind(b)
                    .fetch_all(&self.pool)
                    .await?;
                    for r in &rows {
                        out.push((
                            r.try_get("key")?,
                            Failures {
                                count: r.try_get("failures")?,
                                last_failure: r.try_get("last_failure")?,
                                locked_until: r.try_get("locked_until")?,
                            },
                        ));
                    }
                }
                Ok(out)
            }

            async fn put_failures(&self, realm: &str, key: &str, f: &Failures) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO brute_force (realm, key, failures, last_failure, locked_until) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (realm, key) DO UPDATE SET \
                     failures = $3, last_failure = $4, locked_until = $5",
                )
                .bind(realm)
                .bind(key)
                .bind(f.count)
                .bind(f.last_failure)
                .bind(f.locked_until)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn clear_failures(&self, realm: &str, key: &str) -> anyhow::Result<()> {
                sqlx::query("DELETE FROM brute_force WHERE realm = $1 AND key = $2")
                    .bind(realm)
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn add_event(&self, e: &LoginEvent) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO login_events (realm, time, kind, user_id, client_id, ip, error, factors) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&e.realm)
                .bind(e.time)
                .bind(&e.kind)
                .bind(&e.user_id)
                .bind(&e.client_id)
                .bind(&e.ip)
                .bind(&e.error)
                .bind(join_list(&e.factors))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn list_events(&self, realm: &str) -> anyhow::Result<Vec<LoginEvent>> {
                let rows = sqlx::query("SELECT * FROM login_events WHERE realm = $1 ORDER BY id")
                    .bind(realm)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(decode::event).collect::<sqlx::Result<_>>()?)
            }
        } }
    };
}

pub(crate) use login_methods;
