//! The `Store` implementation shared by both SQL backends, written once as a macro.
//!
//! SQLite understands PostgreSQL's `$N` placeholders, `ON CONFLICT … DO UPDATE` and `RETURNING`,
//! so one SQL text serves both; the macro is instantiated with each backend's pool type and lets
//! the compiler pick that backend's encoders. Types stay to `TEXT`, `BIGINT`/`INTEGER`,
//! `BOOLEAN` and `BYTEA`/`BLOB`, which both decode the same way.

macro_rules! impl_store {
    ($ty:ty, $row:ty, $concurrent_writes:expr) => {
        use crate::model::*;
        use sqlx::Row as _;

        super::decode::decoders!($row);

        #[async_trait::async_trait]
        impl crate::Store for $ty {
            fn concurrent_writes(&self) -> usize {
                $concurrent_writes
            }

            async fn ping(&self) -> anyhow::Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

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
                Ok(())
            }

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
                sqlx::query(
                    "INSERT INTO users (id, realm, username, email, first_name, last_name, \
                     enabled, password_hash, service_account_client) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (realm, username) DO UPDATE SET email = $4, first_name = $5, \
                     last_name = $6, enabled = $7, \
                     password_hash = COALESCE($8, users.password_hash), \
                     service_account_client = $9",
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
                    "SELECT realm, path, name, parent FROM realm_groups WHERE realm = $1 ORDER BY path",
                )
                .bind(realm)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        Ok(GroupRow {
                            realm: r.try_get("realm")?,
                            path: r.try_get("path")?,
                            name: r.try_get("name")?,
                            parent: r.try_get("parent")?,
                        })
                    })
                    .collect::<sqlx::Result<_>>()?)
            }

            async fn put_group(&self, g: &GroupRow) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO realm_groups (realm, path, name, parent) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (realm, path) DO UPDATE SET name = $3, parent = $4",
                )
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
                    "INSERT INTO clients (realm, client_id, secret_hash, config) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (realm, client_id) DO UPDATE SET \
                     secret_hash = COALESCE($3, clients.secret_hash), config = $4",
                )
                .bind(&c.realm)
                .bind(&c.client_id)
                .bind(c.secret_hash.as_ref().map(|h| h.expose().clone()))
                .bind(serde_json::to_string(&c.config)?)
                .execute(&self.pool)
                .await?;
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
                sqlx::query(
                    "UPDATE signing_keys SET active = $1, retired_at = $2 \
                     WHERE realm = $3 AND active = $4",
                )
                .bind(false)
                .bind(k.created_at)
                .bind(&k.realm)
                .bind(true)
                .execute(&mut *tx)
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
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn create_session(&self, s: &SessionRow) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO sso_sessions (id, realm, user_id, cookie_hash, created_at, last_seen, ended) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&s.id)
                .bind(&s.realm)
                .bind(&s.user_id)
                .bind(&s.cookie_hash)
                .bind(s.created_at)
                .bind(s.last_seen)
                .bind(s.ended)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn session_by_id(&self, id: &str) -> anyhow::Result<Option<SessionRow>> {
                let row = sqlx::query("SELECT * FROM sso_sessions WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(decode::session).transpose()?)
            }

            async fn session_by_cookie(&self, cookie_hash: &str) -> anyhow::Result<Option<SessionRow>> {
                let row = sqlx::query("SELECT * FROM sso_sessions WHERE cookie_hash = $1")
                    .bind(cookie_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(decode::session).transpose()?)
            }

            async fn touch_session(&self, id: &str, now: i64) -> anyhow::Result<()> {
                sqlx::query("UPDATE sso_sessions SET last_seen = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn end_session(&self, id: &str) -> anyhow::Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("UPDATE sso_sessions SET ended = $1 WHERE id = $2")
                    .bind(true)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE refresh_families SET revoked = $1 WHERE session_id = $2")
                    .bind(true)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn put_code(&self, c: &CodeRow) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO auth_codes (code_hash, realm, client_id, user_id, session_id, \
                     redirect_uri, scope, nonce, code_challenge, code_challenge_method, auth_time, \
                     expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL)",
                )
                .bind(&c.code_hash)
                .bind(&c.realm)
                .bind(&c.client_id)
                .bind(&c.user_id)
                .bind(&c.session_id)
                .bind(&c.redirect_uri)
                .bind(&c.scope)
                .bind(&c.nonce)
                .bind(&c.code_challenge)
                .bind(&c.code_challenge_method)
                .bind(c.auth_time)
                .bind(c.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn consume_code(&self, code_hash: &str, now: i64) -> anyhow::Result<CodeUse> {
                // The conditional UPDATE is the single-use guarantee: only one caller sees a row.
                let fresh = sqlx::query(
                    "UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL \
                     RETURNING *",
                )
                .bind(now)
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await?;
                if let Some(r) = fresh {
                    return Ok(CodeUse::Fresh(decode::code(&r)?));
                }
                let used = sqlx::query("SELECT * FROM auth_codes WHERE code_hash = $1")
                    .bind(code_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(match used {
                    Some(r) => CodeUse::Reused(decode::code(&r)?),
                    None => CodeUse::Unknown,
                })
            }

            async fn create_family(&self, f: &FamilyRow) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO refresh_families (id, realm, client_id, user_id, session_id, scope, \
                     current_hash, code_hash, created_at, updated_at, revoked) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&f.id)
                .bind(&f.realm)
                .bind(&f.client_id)
                .bind(&f.user_id)
                .bind(&f.session_id)
                .bind(&f.scope)
                .bind(&f.current_hash)
                .bind(&f.code_hash)
                .bind(f.created_at)
                .bind(f.updated_at)
                .bind(f.revoked)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_family(&self, id: &str) -> anyhow::Result<Option<FamilyRow>> {
                let row = sqlx::query("SELECT * FROM refresh_families WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(decode::family).transpose()?)
            }

            async fn rotate_live_families(
                &self,
                rs: &[Rotation<'_>],
            ) -> anyhow::Result<Vec<Option<Rotated>>> {
                let mut out = vec![None; rs.len()];
                for round in super::rotation::distinct_rounds(rs) {
                    // Built from counts only, never from input.
                    let sql = sqlx::AssertSqlSafe(super::rotation::rotation_sql(round.len()));
                    let mut q = sqlx::query(sql).bind(false);
                    for r in round.iter().map(|&i| &rs[i]) {
                        q = q
                            .bind(r.family_id)
                            .bind(r.realm)
                            .bind(r.client_id)
                            .bind(r.old_hash)
                            .bind(r.new_hash)
                            .bind(r.now)
                            .bind(r.active_since)
                            .bind(r.created_since);
                    }
                    for row in q.fetch_all(&self.pool).await? {
                        let family = decode::family(&row)?;
                        // Family ids are distinct within a round, so the id names the request.
                        if let Some(&i) = round.iter().find(|&&i| rs[i].family_id == family.id) {
                            out[i] = Some(Rotated {
                                family,
                                realm_revision: row.try_get("realm_revision")?,
                            });
                        }
                    }
                }
                Ok(out)
            }

            async fn revoke_family(&self, id: &str) -> anyhow::Result<()> {
                sqlx::query("UPDATE refresh_families SET revoked = $1 WHERE id = $2")
                    .bind(true)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn revoke_families_from_code(&self, code_hash: &str) -> anyhow::Result<()> {
                sqlx::query("UPDATE refresh_families SET revoked = $1 WHERE code_hash = $2")
                    .bind(true)
                    .bind(code_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn revoke_jti(&self, jti: &str, expires_at: i64) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .bind(jti)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn is_jti_revoked(&self, jti: &str) -> anyhow::Result<bool> {
                let row = sqlx::query("SELECT jti FROM revoked_tokens WHERE jti = $1")
                    .bind(jti)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.is_some())
            }

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
                    "INSERT INTO login_events (realm, time, kind, user_id, client_id, ip, error) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&e.realm)
                .bind(e.time)
                .bind(&e.kind)
                .bind(&e.user_id)
                .bind(&e.client_id)
                .bind(&e.ip)
                .bind(&e.error)
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

            async fn purge(&self, before: i64, now: i64) -> anyhow::Result<u64> {
                let mut n = 0;
                n += sqlx::query("DELETE FROM login_events WHERE time < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                n += sqlx::query("DELETE FROM auth_codes WHERE expires_at < $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                // Runtime rows idle for the whole retention period are long dead: realms'
                // session lifespans are hours, retention is days.
                for sql in [
                    "DELETE FROM sso_sessions WHERE last_seen < $1",
                    "DELETE FROM refresh_families WHERE updated_at < $1",
                    "DELETE FROM brute_force WHERE last_failure < $1",
                ] {
                    n += sqlx::query(sql)
                        .bind(before)
                        .execute(&self.pool)
                        .await?
                        .rows_affected();
                }
                n += sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(n)
            }
        }
    };
}

pub(crate) use impl_store;
