//! Accounts (issue 17): users' required actions, credentials beyond the password (TOTP, past
//! password hashes) and raising a session's factors; the `Store` methods `impl_store!`
//! (`sql.rs`) gathers from this file, in the one SQL text both backends run.

/// Appends the account methods to `$methods`, and hands them on to `gateway_sessions`.
macro_rules! account_methods {
    ($ty:ty, { $($methods:tt)* }) => {
        crate::sql::gateway_sessions::gateway_session_methods! { $ty, { $($methods)*
            async fn user_required_actions(&self, user_id: &str) -> anyhow::Result<Vec<String>> {
                let row = sqlx::query("SELECT required_actions FROM users WHERE id = $1")
                    .bind(user_id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(match row {
                    Some(r) => split_list(&r.try_get::<String, _>("required_actions")?),
                    None => Vec::new(),
                })
            }

            async fn set_user_required_actions(
                &self,
                user_id: &str,
                actions: &[String],
            ) -> anyhow::Result<()> {
                sqlx::query("UPDATE users SET required_actions = $1 WHERE id = $2")
                    .bind(join_list(actions))
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn user_credentials(
                &self,
                realm: &str,
                user_id: &str,
            ) -> anyhow::Result<Vec<CredentialRow>> {
                let rows = sqlx::query(
                    "SELECT * FROM credentials WHERE realm = $1 AND user_id = $2 \
                     ORDER BY created_at, id",
                )
                .bind(realm)
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(decode::credential).collect::<sqlx::Result<_>>()?)
            }

            async fn put_credential(&self, c: &CredentialRow) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO credentials (id, realm, user_id, type, label, secret, data, \
                     created_at, counter) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (id) DO UPDATE SET label = $5, secret = $6, data = $7, \
                     counter = CASE WHEN credentials.counter > $9 THEN credentials.counter ELSE $9 END",
                )
                .bind(&c.id)
                .bind(&c.realm)
                .bind(&c.user_id)
                .bind(&c.kind)
                .bind(&c.label)
                .bind(c.secret.expose())
                .bind(&c.data)
                .bind(c.created_at)
                .bind(c.counter)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn delete_credential(
                &self,
                realm: &str,
                user_id: &str,
                id: &str,
            ) -> anyhow::Result<bool> {
                let n = sqlx::query(
                    "DELETE FROM credentials WHERE realm = $1 AND user_id = $2 AND id = $3",
                )
                .bind(realm)
                .bind(user_id)
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(n > 0)
            }

            async fn advance_credential_counter(&self, id: &str, counter: i64) -> anyhow::Result<bool> {
                let n = sqlx::query(
                    "UPDATE credentials SET counter = $1 WHERE id = $2 AND counter < $1",
                )
                .bind(counter)
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(n > 0)
            }

            async fn set_session_amr(&self, id: &str, amr: &[String]) -> anyhow::Result<()> {
                sqlx::query("UPDATE sso_sessions SET amr = $1 WHERE id = $2")
                    .bind(join_list(amr))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        } }
    };
}

pub(crate) use account_methods;
