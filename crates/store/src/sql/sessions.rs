//! What a login leaves behind: SSO sessions, authorization codes, refresh-token families and
//! revoked access tokens; the `Store` methods `impl_store!` (`sql.rs`) gathers from this file,
//! in the one SQL text both backends run.

/// Appends the session, code, refresh-family and revocation methods to `$methods` and hands
/// them to the next file's macro.
macro_rules! session_methods {
    ($ty:ty, { $($methods:tt)* }) => {
        crate::sql::logins::login_methods! { $ty, { $($methods)*
            async fn create_session(&self, s: &SessionRow) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO sso_sessions (id, realm, user_id, cookie_hash, created_at, last_seen, ended, amr) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&s.id)
                .bind(&s.realm)
                .bind(&s.user_id)
                .bind(&s.cookie_hash)
                .bind(s.created_at)
                .bind(s.last_seen)
                .bind(s.ended)
                .bind(join_list(&s.amr))
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
                if rs.is_empty() {
                    return Ok(out);
                }
                // A kept connection: the pool's would cost a ping on its way back (`held.rs`).
                // On an error it is dropped instead of kept.
                let mut conn = self.held.take(&self.pool).await?;
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
                    for row in q.fetch_all(&mut *conn).await? {
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
                self.held.put(conn);
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
        } }
    };
}

pub(crate) use session_methods;
