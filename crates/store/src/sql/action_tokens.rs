//! Action tokens (mailed links) and looking users up by address: the `Store` methods
//! `impl_store!` (`sql.rs`) gathers from this file, in the one SQL text both backends run.

/// Appends the action-token methods to `$methods`; the last file: it hands every method back
/// to `impl_store!`, which writes the `impl Store` block.
macro_rules! action_token_methods {
    ($ty:ty, { $($methods:tt)* }) => {
        crate::sql::webauthn::webauthn_methods! { $ty, { $($methods)*
            async fn use_action_token(
                &self,
                realm: &str,
                jti: &str,
                expires_at: i64,
            ) -> anyhow::Result<bool> {
                // One statement: of two replicas racing on a link, exactly one inserts the row.
                let done = sqlx::query(
                    "INSERT INTO used_action_tokens (jti, realm, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (jti) DO NOTHING",
                )
                .bind(jti)
                .bind(realm)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn users_by_email(&self, realm: &str, email: &str) -> anyhow::Result<Vec<UserRow>> {
                let rows = sqlx::query(
                    "SELECT * FROM users WHERE realm = $1 AND lower(email) = lower($2) \
                     ORDER BY username LIMIT 2",
                )
                .bind(realm)
                .bind(email)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(decode::user).collect::<sqlx::Result<_>>()?)
            }
        } }
    };
}

pub(crate) use action_token_methods;

#[cfg(test)]
mod tests {
    use crate::testing::{each_backend, realm, user};
    use crate::*;

    #[tokio::test]
    async fn a_token_is_used_once_and_users_are_found_by_address() {
        each_backend(|s| async move {
            assert!(s.use_action_token("r1", "j1", 100).await.unwrap());
            assert!(!s.use_action_token("r1", "j1", 100).await.unwrap());
            assert!(s.use_action_token("r1", "j2", 300).await.unwrap());
            // Expired rows go with the purge; a live one stays used.
            s.purge(0, 200).await.unwrap();
            assert!(!s.use_action_token("r1", "j2", 300).await.unwrap());

            s.put_realm(&realm()).await.unwrap();
            s.put_user(&UserRow {
                email: Some("Ann@Example.com".into()),
                ..user("1", "ann")
            })
            .await
            .unwrap();
            s.put_user(&user("2", "bob")).await.unwrap();
            let found = s.users_by_email("r1", "ann@example.COM").await.unwrap();
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].username, "ann");
            assert!(
                s.users_by_email("r1", "nobody@x.org")
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert!(
                s.users_by_email("r2", "bob@example.com")
                    .await
                    .unwrap()
                    .is_empty()
            );
        })
        .await;
    }
}
