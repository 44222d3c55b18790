//! What the admin API writes and reads beyond the directory's own upserts: deletes that cascade
//! by hand (one transaction each), single memberships and role mappings, role descriptions,
//! a user's sessions and the admin events; the `Store` methods `impl_store!` (`sql.rs`) gathers
//! from this file, in the one SQL text both backends run.

/// Appends the admin methods to `$methods` and hands them to the next file's macro.
macro_rules! admin_methods {
    ($ty:ty, { $($methods:tt)* }) => {
        crate::sql::sessions::session_methods! { $ty, { $($methods)*
            async fn delete_user(&self, realm: &str, id: &str) -> anyhow::Result<bool> {
                let mut tx = self.pool.begin().await?;
                for sql in [
                    "UPDATE sso_sessions SET ended = $3 WHERE realm = $1 AND user_id = $2",
                    "UPDATE refresh_families SET revoked = $3 WHERE realm = $1 AND user_id = $2",
                ] {
                    sqlx::query(sql).bind(realm).bind(id).bind(true).execute(&mut *tx).await?;
                }
                sqlx::query("DELETE FROM brute_force WHERE realm = $1 AND key = $2")
                    .bind(realm)
                    .bind(format!("user:{id}"))
                    .execute(&mut *tx)
                    .await?;
                for sql in [
                    "DELETE FROM user_groups WHERE user_id IN \
                     (SELECT id FROM users WHERE realm = $1 AND id = $2)",
                    "DELETE FROM user_roles WHERE user_id IN \
                     (SELECT id FROM users WHERE realm = $1 AND id = $2)",
                    "DELETE FROM webauthn_credentials WHERE realm = $1 AND user_id = $2",
                ] {
                    sqlx::query(sql).bind(realm).bind(id).execute(&mut *tx).await?;
                }
                let n = sqlx::query("DELETE FROM users WHERE realm = $1 AND id = $2")
                    .bind(realm)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(n > 0)
            }

            async fn add_user_group(&self, user_id: &str, path: &str) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO user_groups (user_id, path) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .bind(user_id)
                .bind(path)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn remove_user_group(&self, user_id: &str, path: &str) -> anyhow::Result<()> {
                sqlx::query("DELETE FROM user_groups WHERE user_id = $1 AND path = $2")
                    .bind(user_id)
                    .bind(path)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn add_user_roles(&self, user_id: &str, roles: &[RoleRef]) -> anyhow::Result<()> {
                let mut tx = self.pool.begin().await?;
                for r in roles {
                    sqlx::query(
                        "INSERT INTO user_roles (user_id, role_client, role_name) \
                         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
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

            async fn remove_user_roles(&self, user_id: &str, roles: &[RoleRef]) -> anyhow::Result<()> {
                let mut tx = self.pool.begin().await?;
                for r in roles {
                    sqlx::query(
                        "DELETE FROM user_roles WHERE user_id = $1 AND role_client = $2 \
                         AND role_name = $3",
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

            async fn group_members(&self, realm: &str, path: &str) -> anyhow::Result<Vec<UserRow>> {
                let rows = sqlx::query(
                    "SELECT u.* FROM users u JOIN user_groups g ON g.user_id = u.id \
                     WHERE u.realm = $1 AND g.path = $2 ORDER BY u.username",
                )
                .bind(realm)
                .bind(path)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(decode::user).collect::<sqlx::Result<_>>()?)
            }

            async fn role_members(&self, realm: &str, role: &RoleRef) -> anyhow::Result<Vec<UserRow>> {
                let rows = sqlx::query(
                    "SELECT u.* FROM users u JOIN user_roles r ON r.user_id = u.id \
                     WHERE u.realm = $1 AND r.role_client = $2 AND r.role_name = $3 \
                     ORDER BY u.username",
                )
                .bind(realm)
                .bind(role.client_key())
                .bind(&role.name)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(decode::user).collect::<sqlx::Result<_>>()?)
            }

            async fn move_group(&self, realm: &str, from: &str, to: &GroupRow) -> anyhow::Result<()> {
                // Every path in the subtree `from` (the group and its descendants) gets `to.path`
                // in place of the prefix `from`.
                let mut tx = self.pool.begin().await?;
                for sql in [
                    "UPDATE realm_groups SET path = $3 || substr(path, length($2) + 1) \
                     WHERE realm = $1 AND (path = $2 OR substr(path, 1, length($2) + 1) = $2 || '/')",
                    "UPDATE realm_groups SET parent = $3 || substr(parent, length($2) + 1) \
                     WHERE realm = $1 AND (parent = $2 OR substr(parent, 1, length($2) + 1) = $2 || '/')",
                    "UPDATE group_roles SET path = $3 || substr(path, length($2) + 1) \
                     WHERE realm = $1 AND (path = $2 OR substr(path, 1, length($2) + 1) = $2 || '/')",
                    "UPDATE user_groups SET path = $3 || substr(path, length($2) + 1) \
                     WHERE (path = $2 OR substr(path, 1, length($2) + 1) = $2 || '/') \
                     AND user_id IN (SELECT id FROM users WHERE realm = $1)",
                ] {
                    sqlx::query(sql)
                        .bind(realm)
                        .bind(from)
                        .bind(&to.path)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query("UPDATE realm_groups SET name = $3, parent = $4 WHERE realm = $1 AND path = $2")
                    .bind(realm)
                    .bind(&to.path)
                    .bind(&to.name)
                    .bind(&to.parent)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_group(&self, realm: &str, path: &str) -> anyhow::Result<()> {
                let mut tx = self.pool.begin().await?;
                for sql in [
                    "DELETE FROM realm_groups WHERE realm = $1 \
                     AND (path = $2 OR substr(path, 1, length($2) + 1) = $2 || '/')",
                    "DELETE FROM group_roles WHERE realm = $1 \
                     AND (path = $2 OR substr(path, 1, length($2) + 1) = $2 || '/')",
                    "DELETE FROM user_groups WHERE (path = $2 OR substr(path, 1, length($2) + 1) = $2 || '/') \
                     AND user_id IN (SELECT id FROM users WHERE realm = $1)",
                ] {
                    sqlx::query(sql).bind(realm).bind(path).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_role_rows(&self, realm: &str) -> anyhow::Result<Vec<RoleRow>> {
                let rows = sqlx::query(
                    "SELECT client, name, description FROM roles WHERE realm = $1 ORDER BY client, name",
                )
                .bind(realm)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        Ok(RoleRow {
                            role: decode::role(r, "client", "name")?,
                            description: r.try_get("description")?,
                        })
                    })
                    .collect::<sqlx::Result<_>>()?)
            }

            async fn put_role_row(&self, realm: &str, role: &RoleRow) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO roles (realm, client, name, description) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (realm, client, name) DO UPDATE SET description = $4",
                )
                .bind(realm)
                .bind(role.role.client_key())
                .bind(&role.role.name)
                .bind(&role.description)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn delete_role(&self, realm: &str, role: &RoleRef) -> anyhow::Result<()> {
                let mut tx = self.pool.begin().await?;
                for sql in [
                    "DELETE FROM roles WHERE realm = $1 AND client = $2 AND name = $3",
                    "DELETE FROM role_composites WHERE realm = $1 \
                     AND ((parent_client = $2 AND parent_name = $3) \
                     OR (child_client = $2 AND child_name = $3))",
                    "DELETE FROM group_roles WHERE realm = $1 AND role_client = $2 AND role_name = $3",
                    "DELETE FROM user_roles WHERE role_client = $2 AND role_name = $3 \
                     AND user_id IN (SELECT id FROM users WHERE realm = $1)",
                ] {
                    sqlx::query(sql)
                        .bind(realm)
                        .bind(role.client_key())
                        .bind(&role.name)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn delete_client(&self, realm: &str, client_id: &str) -> anyhow::Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("UPDATE refresh_families SET revoked = $3 WHERE realm = $1 AND client_id = $2")
                    .bind(realm)
                    .bind(client_id)
                    .bind(true)
                    .execute(&mut *tx)
                    .await?;
                for sql in [
                    "DELETE FROM clients WHERE realm = $1 AND client_id = $2",
                    "DELETE FROM roles WHERE realm = $1 AND client = $2",
                    "DELETE FROM role_composites WHERE realm = $1 \
                     AND (parent_client = $2 OR child_client = $2)",
                    "DELETE FROM group_roles WHERE realm = $1 AND role_client = $2",
                    "DELETE FROM user_roles WHERE role_client = $2 \
                     AND user_id IN (SELECT id FROM users WHERE realm = $1)",
                    "DELETE FROM user_groups WHERE user_id IN \
                     (SELECT id FROM users WHERE realm = $1 AND service_account_client = $2)",
                    "DELETE FROM user_roles WHERE user_id IN \
                     (SELECT id FROM users WHERE realm = $1 AND service_account_client = $2)",
                    "DELETE FROM users WHERE realm = $1 AND service_account_client = $2",
                ] {
                    sqlx::query(sql).bind(realm).bind(client_id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn user_sessions(&self, realm: &str, user_id: &str) -> anyhow::Result<Vec<SessionRow>> {
                let rows = sqlx::query(
                    "SELECT * FROM sso_sessions WHERE realm = $1 AND user_id = $2 AND ended = $3 \
                     ORDER BY created_at, id",
                )
                .bind(realm)
                .bind(user_id)
                .bind(false)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(decode::session).collect::<sqlx::Result<_>>()?)
            }

            async fn session_clients(&self, session_id: &str) -> anyhow::Result<Vec<String>> {
                let rows = sqlx::query(
                    "SELECT DISTINCT client_id FROM refresh_families \
                     WHERE session_id = $1 AND revoked = $2 ORDER BY client_id",
                )
                .bind(session_id)
                .bind(false)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(|r| r.try_get("client_id")).collect::<sqlx::Result<_>>()?)
            }

            async fn end_user_sessions(&self, realm: &str, user_id: &str) -> anyhow::Result<()> {
                let mut tx = self.pool.begin().await?;
                for sql in [
                    "UPDATE sso_sessions SET ended = $3 WHERE realm = $1 AND user_id = $2",
                    "UPDATE refresh_families SET revoked = $3 WHERE realm = $1 AND user_id = $2",
                ] {
                    sqlx::query(sql)
                        .bind(realm)
                        .bind(user_id)
                        .bind(true)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn add_admin_event(&self, e: &AdminEvent) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO admin_events (realm, time, operation, resource_type, \
                     resource_path, auth_realm, auth_client, auth_user, ip, error) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&e.realm)
                .bind(e.time)
                .bind(&e.operation)
                .bind(&e.resource_type)
                .bind(&e.resource_path)
                .bind(&e.auth_realm)
                .bind(&e.auth_client)
                .bind(&e.auth_user)
                .bind(&e.ip)
                .bind(&e.error)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn list_admin_events(&self, realm: &str) -> anyhow::Result<Vec<AdminEvent>> {
                let rows = sqlx::query("SELECT * FROM admin_events WHERE realm = $1 ORDER BY id")
                    .bind(realm)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(decode::admin_event).collect::<sqlx::Result<_>>()?)
            }
        } }
    };
}

pub(crate) use admin_methods;
