//! WebAuthn credentials and ceremony challenges: the `Store` methods `impl_store!` (`sql.rs`)
//! gathers from this file, in the one SQL text both backends run.

/// Appends the WebAuthn methods to `$methods`; the last file: it hands every method back to
/// `impl_store!`, which writes the `impl Store` block.
macro_rules! webauthn_methods {
    ($ty:ty, { $($methods:tt)* }) => {
        crate::sql::impl_store! { @impl $ty, { $($methods)*
            async fn add_webauthn_credential(
                &self,
                c: &WebauthnCredentialRow,
            ) -> anyhow::Result<bool> {
                // A credential id already registered (to anyone) is refused, not replaced.
                let n = sqlx::query(
                    "INSERT INTO webauthn_credentials \
                     (id, realm, user_id, credential_id, passkey, label, created_at, last_used_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                )
                .bind(&c.id)
                .bind(&c.realm)
                .bind(&c.user_id)
                .bind(&c.credential_id)
                .bind(&c.passkey)
                .bind(&c.label)
                .bind(c.created_at)
                .bind(c.last_used_at)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(n > 0)
            }

            async fn webauthn_credentials_of(
                &self,
                realm: &str,
                user_id: &str,
            ) -> anyhow::Result<Vec<WebauthnCredentialRow>> {
                let rows = sqlx::query(
                    "SELECT id, realm, user_id, credential_id, passkey, label, created_at, \
                     last_used_at FROM webauthn_credentials WHERE realm = $1 AND user_id = $2 \
                     ORDER BY created_at, id",
                )
                .bind(realm)
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(decode::webauthn_credential).collect::<sqlx::Result<_>>()?)
            }

            async fn webauthn_credential_by_credential_id(
                &self,
                realm: &str,
                credential_id: &str,
            ) -> anyhow::Result<Option<WebauthnCredentialRow>> {
                let row = sqlx::query(
                    "SELECT id, realm, user_id, credential_id, passkey, label, created_at, \
                     last_used_at FROM webauthn_credentials \
                     WHERE realm = $1 AND credential_id = $2",
                )
                .bind(realm)
                .bind(credential_id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.as_ref().map(decode::webauthn_credential).transpose()?)
            }

            async fn webauthn_credential_used(
                &self,
                id: &str,
                passkey: &str,
                now: i64,
            ) -> anyhow::Result<()> {
                sqlx::query(
                    "UPDATE webauthn_credentials SET passkey = $2, last_used_at = $3 WHERE id = $1",
                )
                .bind(id)
                .bind(passkey)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn delete_webauthn_credential(
                &self,
                realm: &str,
                user_id: &str,
                id: &str,
            ) -> anyhow::Result<bool> {
                let n = sqlx::query(
                    "DELETE FROM webauthn_credentials WHERE realm = $1 AND user_id = $2 AND id = $3",
                )
                .bind(realm)
                .bind(user_id)
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(n > 0)
            }

            async fn put_webauthn_challenge(&self, c: &WebauthnChallengeRow) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO webauthn_challenges (id, realm, purpose, user_id, state, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&c.id)
                .bind(&c.realm)
                .bind(&c.purpose)
                .bind(&c.user_id)
                .bind(&c.state)
                .bind(c.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn take_webauthn_challenge(
                &self,
                id: &str,
                now: i64,
            ) -> anyhow::Result<Option<WebauthnChallengeRow>> {
                // Deleting is taking: of two requests with the same handle, one gets the row.
                let row = sqlx::query(
                    "DELETE FROM webauthn_challenges WHERE id = $1 \
                     RETURNING id, realm, purpose, user_id, state, expires_at",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                let Some(r) = row else { return Ok(None) };
                let c = WebauthnChallengeRow {
                    id: r.try_get("id")?,
                    realm: r.try_get("realm")?,
                    purpose: r.try_get("purpose")?,
                    user_id: r.try_get("user_id")?,
                    state: r.try_get("state")?,
                    expires_at: r.try_get("expires_at")?,
                };
                Ok((c.expires_at > now).then_some(c))
            }
        } }
    };
}

pub(crate) use webauthn_methods;

#[cfg(test)]
mod tests {
    use crate::testing::each_backend;
    use crate::{RealmRow, RealmSettings, UserRow, WebauthnChallengeRow, WebauthnCredentialRow};

    fn cred(id: &str, user: &str, cred_id: &str) -> WebauthnCredentialRow {
        WebauthnCredentialRow {
            id: id.into(),
            realm: "r".into(),
            user_id: user.into(),
            credential_id: cred_id.into(),
            passkey: "{}".into(),
            label: format!("key {id}"),
            created_at: 100,
            last_used_at: None,
        }
    }

    fn user(id: &str) -> UserRow {
        UserRow {
            id: id.into(),
            realm: "r".into(),
            username: id.into(),
            email: None,
            first_name: None,
            last_name: None,
            email_verified: false,
            enabled: true,
            created_at: 0,
            password_hash: None,
            service_account_client: None,
        }
    }

    #[tokio::test]
    async fn credentials_belong_to_one_user_and_go_with_them() {
        each_backend(|s| async move {
            s.put_realm(&RealmRow {
                name: "r".into(),
                enabled: true,
                settings: RealmSettings::default(),
            })
            .await
            .unwrap();
            s.put_user(&user("a")).await.unwrap();
            s.put_user(&user("b")).await.unwrap();
            assert!(
                s.add_webauthn_credential(&cred("1", "a", "c1"))
                    .await
                    .unwrap()
            );
            assert!(
                s.add_webauthn_credential(&cred("2", "a", "c2"))
                    .await
                    .unwrap()
            );
            assert!(
                !s.add_webauthn_credential(&cred("3", "b", "c1"))
                    .await
                    .unwrap(),
                "a credential id is registered once"
            );
            let of_a = s.webauthn_credentials_of("r", "a").await.unwrap();
            assert_eq!(of_a, vec![cred("1", "a", "c1"), cred("2", "a", "c2")]);
            assert!(
                s.webauthn_credentials_of("r", "b")
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert_eq!(
                s.webauthn_credential_by_credential_id("r", "c2")
                    .await
                    .unwrap(),
                Some(cred("2", "a", "c2"))
            );
            assert_eq!(
                s.webauthn_credential_by_credential_id("other", "c2")
                    .await
                    .unwrap(),
                None,
                "realms are apart"
            );
            s.webauthn_credential_used("2", "{\"n\":1}", 500)
                .await
                .unwrap();
            let c2 = s
                .webauthn_credential_by_credential_id("r", "c2")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                (c2.passkey.as_str(), c2.last_used_at),
                ("{\"n\":1}", Some(500))
            );

            assert!(
                !s.delete_webauthn_credential("r", "b", "1").await.unwrap(),
                "only the owner removes it"
            );
            assert!(s.delete_webauthn_credential("r", "a", "1").await.unwrap());
            assert!(!s.delete_webauthn_credential("r", "a", "1").await.unwrap());
            assert!(s.delete_user("r", "a").await.unwrap());
            assert_eq!(
                s.webauthn_credential_by_credential_id("r", "c2")
                    .await
                    .unwrap(),
                None,
                "a deleted user's credentials go"
            );
        })
        .await;
    }

    #[tokio::test]
    async fn challenges_are_taken_once_and_expire() {
        each_backend(|s| async move {
            let c = |id: &str, expires_at| WebauthnChallengeRow {
                id: id.into(),
                realm: "r".into(),
                purpose: "login".into(),
                user_id: None,
                state: "{\"challenge\":\"x\"}".into(),
                expires_at,
            };
            s.put_webauthn_challenge(&c("h1", 200)).await.unwrap();
            s.put_webauthn_challenge(&c("h2", 200)).await.unwrap();
            assert_eq!(
                s.take_webauthn_challenge("h1", 100).await.unwrap(),
                Some(c("h1", 200))
            );
            assert_eq!(
                s.take_webauthn_challenge("h1", 100).await.unwrap(),
                None,
                "single use"
            );
            assert_eq!(
                s.take_webauthn_challenge("h2", 200).await.unwrap(),
                None,
                "expired"
            );
            assert_eq!(
                s.take_webauthn_challenge("h2", 100).await.unwrap(),
                None,
                "gone too"
            );
            assert!(!format!("{:?}", c("h3", 1)).contains("challenge"));
            s.put_webauthn_challenge(&c("h4", 50)).await.unwrap();
            assert!(s.purge(0, 100).await.unwrap() >= 1);
            assert_eq!(
                s.take_webauthn_challenge("h4", 10).await.unwrap(),
                None,
                "purged"
            );
        })
        .await;
    }
}
