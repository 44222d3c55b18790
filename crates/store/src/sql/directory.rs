//! A realm's directory: users, groups, roles, role composites and clients; the `Store` methods
//! `impl_store!` (`sql.rs`) gathers from this file, in the one SQL text both backends run.

/// Appends the directory's methods to `$methods` and hands them to the next file's macro.
macro_rules! directory_methods {
    ($ty:ty, { $($methods:tt)* }) => {
        crate::sql::admin::admin_methods! { $ty, { $($methods)*
            async fn get_user(&self, realm: &str, id: &str) -> anyhow::Result<Option<UserRow>> {
                let row = sqlx::query("SELECT * FROM users WHERE realm = $1 AND id = $2")
                    .bind(realm)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(decode::user).transpose()?)
            }

            async fn user_by_username(
                &self,
                realm: &str,
                username: &str,
            ) -> anyhow::Result<Option<UserRow>> {
                // Keycloak usernames are case-insensitive; they are stored lower-cased.
                let row = sqlx::query("SELECT * FROM users WHERE realm = $1 AND username = $2")
                    .bind(realm)
                    .bind(username.to_lowercase())
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(decode::user).transpose()?)
            }

            async fn list_users(&self, realm: &str) -> anyhow::Result<Vec<UserRow>> {
                let rows = sqlx::query("SELECT * FROM users WHERE realm = $1 ORDER BY username")
                    .bind(realm)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(decode::user).collect::<sqlx::Result<_>>()?)
            }

            async fn put_user(&self, u: &UserRow) -> anyhow::Result<()> {
                // `created_at` and `id` are the first store's; an update keeps them.
                sqlx::query(
                    "INSERT INTO users (id, realm, username, email, first_name, last_name, \
                     enabled, password_hash, service_account_client, email_verified, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (realm, username) DO UPDATE SET email = $4, first_name = $5, \
                     last_name = $6, enabled = $7, \
                     password_hash = COALESCE($8, users.password_hash), \
                     service_account_client = $9, email_verified = $10",
                )
                .bind(&u.id)
                .bind(&u.realm)
                .bind(u.username.to_lowercase())
                .bind(&u.email)
                .bind(&u.first_name)
                .bind(&u.last_name)
                .bind(u.enabled)
                .bind(u.password_hash.as_ref().map(|h| h.expose().clone()))
                .bind(&u.service_account_client)
                .bind(u.email_verified)
                .bind(u.created_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn user_groups(&self, user_id: &str) -> anyhow::Result<Vec<String>> {
                let rows = sqlx::query("SELECT path FROM user_groups WHERE user_id = $1 ORDER BY path")
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(|r| r.try_get("path")).collect::<sqlx::Result<_>>()?)
            }

            async fn set_user_groups(&self, user_id: &str, paths: &[String]) -> anyhow::Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM user_groups WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                for p in paths {
                    sqlx::query(
                        "INSERT INTO user_groups (user_id, path) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    )
                    .bind(user_id)
                    .bind(p)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn user_roles(&self, user_id: &str) -> anyhow::Result<Vec<RoleRef>> {
                let rows = sqlx::query(
                    "SELECT role_client, role_name FROM user_roles WHERE user_id = $1 \
                     ORDER BY role_client, role_name",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .iter()
                    .map(|r| decode::role(r, "role_client", "role_name"))
                    .collect::<sqlx::Result<_>>()?)
            }

            async fn set_user_roles(&self, user_id: &str, roles: &[RoleRef]) -> anyhow::Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                for r in roles {
                    sqlx::query(
                        "INSERT INTO user_roles (user_id, role_client, role_name) VALUES ($1, $2, $3) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(user_id)
                    .bind(r.client_key())
                    .bind(&r.name)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_groups(&self, realm: &str) -> anyhow::Result<Vec<GroupRow>> {
                let rows = sqlx::query(
                    "SELECT id, realm, path, name, parent FROM realm_groups WHERE realm = $1 \
                     ORDER BY path",
                )
                .bind(realm)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(decode::group).collect::<sqlx::Result<_>>()?)
            }

            async fn put_group(&self, g: &GroupRow) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO realm_groups (id, realm, path, name, parent) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (realm, path) DO UPDATE SET name = $4, parent = $5",
                )
                .bind(&g.id)
                .bind(&g.realm)
                .bind(&g.path)
                .bind(&g.name)
                .bind(&g.parent)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn set_group_roles(
                &self,
                realm: &str,
                path: &str,
                roles: &[RoleRef],
            ) -> anyhow::Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM group_roles WHERE realm = $1 AND path = $2")
                    .bind(realm)
                    .bind(path)
                    .execute(&mut *tx)
                    .await?;
                for r in roles {
                    sqlx::query(
                        "INSERT INTO group_roles (realm, path, role_client, role_name) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    )
                    .bind(realm)
                    .bind(path)
                    .bind(r.client_key())
                    .bind(&r.name)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_group_roles(&self, realm: &str) -> anyhow::Result<Vec<(String, RoleRef)>> {
                let rows = sqlx::query(
                    "SELECT path, role_client, role_name FROM group_roles WHERE realm = $1 \
                     ORDER BY path, role_client, role_name",
                )
                .bind(realm)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .iter()
                    .map(|r| Ok((r.try_get("path")?, decode::role(r, "role_client", "role_name")?)))
                    .collect::<sqlx::Result<_>>()?)
            }

            async fn list_roles(&self, realm: &str) -> anyhow::Result<Vec<RoleRef>> {
                let rows = sqlx::query(
                    "SELECT client, name FROM roles WHERE realm = $1 ORDER BY client, name",
                )
                .bind(realm)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .iter()
                    .map(|r| decode::role(r, "client", "name"))
                    .collect::<sqlx::Result<_>>()?)
            }

            async fn put_role(&self, realm: &str, role: &RoleRef) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO roles (realm, client, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(realm)
                .bind(role.client_key())
                .bind(&role.name)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn set_role_composites(
                &self,
                realm: &str,
                parent: &RoleRef,
                children: &[RoleRef],
            ) -> anyhow::Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "DELETE FROM role_composites WHERE realm = $1 AND parent_client = $2 \
                     AND parent_name = $3",
                )
                .bind(realm)
                .bind(parent.client_key())
                .bind(&parent.name)
                .execute(&mut *tx)
                .await?;
                for c in children {
                    sqlx::query(
                        "INSERT INTO role_composites (realm, parent_client, parent_name, \
                         child_client, child_name) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    )
                    .bind(realm)
                    .bind(parent.client_key())
                    .bind(&parent.name)
                    .bind(c.client_key())
                    .bind(&c.name)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_composites(&self, realm: &str) -> anyhow::Result<Vec<(RoleRef, RoleRef)>> {
                let rows = sqlx::query(
                    "SELECT parent_client, parent_name, child_client, child_name \
                     FROM role_composites WHERE realm = $1 \
                     ORDER BY parent_client, parent_name, child_client, child_name",
                )
                .bind(realm)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        Ok((
                            decode::role(r, "parent_client", "parent_name")?,
                            decode::role(r, "child_client", "child_name")?,
                        ))
                    })
                    .collect::<sqlx::Result<_>>()?)
            }

            async fn list_clients(&self, realm: &str) -> anyhow::Result<Vec<ClientRow>> {
                let rows = sqlx::query("SELECT * FROM clients WHERE realm = $1 ORDER BY client_id")
                    .bind(realm)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(decode::client).collect()
            }

            async fn put_client(&self, c: &ClientRow) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO clients (id, realm, client_id, secret_hash, config) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (realm, client_id) DO UPDATE SET \
                     secret_hash = COALESCE($4, clients.secret_hash), config = $5",
                )
                .bind(&c.id)
                .bind(&c.realm)
                .bind(&c.client_id)
                .bind(c.secret_hash.as_ref().map(|h| h.expose().clone()))
                .bind(serde_json::to_string(&c.config)?)
                .execute(&self.pool)
                .await?;
                Ok(())
            }
        } }
    };
}

pub(crate) use directory_methods;
