//! The gateway's browser sessions (`[session] store = "database"`): the `Store` methods
//! `impl_store!` (`sql.rs`) gathers from this file, in the one SQL text both backends run.

/// Appends the gateway-session methods to `$methods` and hands them to the next file's macro.
macro_rules! gateway_session_methods {
    ($ty:ty, { $($methods:tt)* }) => {
        crate::sql::action_tokens::action_token_methods! { $ty, { $($methods)*
            async fn create_gateway_session(&self, s: &GatewaySessionRow) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO gateway_sessions (id, sub, rev, data, created_at, last_seen, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&s.id)
                .bind(&s.sub)
                .bind(s.rev)
                .bind(&s.data)
                .bind(s.created_at)
                .bind(s.last_seen)
                .bind(s.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn gateway_session(
                &self,
                id: &str,
                now: i64,
            ) -> anyhow::Result<Option<GatewaySessionRow>> {
                let row = sqlx::query(
                    "SELECT id, sub, rev, data, created_at, last_seen, expires_at \
                     FROM gateway_sessions WHERE id = $1 AND expires_at > $2",
                )
                .bind(id)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                let Some(r) = row else { return Ok(None) };
                Ok(Some(GatewaySessionRow {
                    id: r.try_get("id")?,
                    sub: r.try_get("sub")?,
                    rev: r.try_get("rev")?,
                    data: r.try_get("data")?,
                    created_at: r.try_get("created_at")?,
                    last_seen: r.try_get("last_seen")?,
                    expires_at: r.try_get("expires_at")?,
                }))
            }

            async fn update_gateway_session(
                &self,
                id: &str,
                rev: i64,
                data: &str,
                last_seen: i64,
            ) -> anyhow::Result<bool> {
                // Never brings back a session that was ended: an update of a deleted row is a
                // no-op, and a revision never goes back.
                let n = sqlx::query(
                    "UPDATE gateway_sessions SET rev = $2, data = $3, last_seen = $4 \
                     WHERE id = $1 AND rev <= $2",
                )
                .bind(id)
                .bind(rev)
                .bind(data)
                .bind(last_seen)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(n > 0)
            }

            async fn end_gateway_session(&self, id: &str) -> anyhow::Result<bool> {
                let n = sqlx::query("DELETE FROM gateway_sessions WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                if n > 0 {
                    self.notify(crate::replicas::Change::GatewaySession(id.to_string())).await;
                }
                Ok(n > 0)
            }

            async fn end_gateway_sessions_of(&self, sub: &str) -> anyhow::Result<u64> {
                let n = sqlx::query("DELETE FROM gateway_sessions WHERE sub = $1")
                    .bind(sub)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                if n > 0 {
                    self.notify(crate::replicas::Change::GatewaySessionsOf(sub.to_string())).await;
                }
                Ok(n)
            }

            async fn purge_gateway_sessions(&self, now: i64) -> anyhow::Result<u64> {
                Ok(sqlx::query("DELETE FROM gateway_sessions WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }
        } }
    };
}

pub(crate) use gateway_session_methods;

#[cfg(test)]
mod tests {
    use crate::GatewaySessionRow;
    use crate::testing::each_backend;

    fn row(id: &str, sub: &str) -> GatewaySessionRow {
        GatewaySessionRow {
            id: id.into(),
            sub: sub.into(),
            rev: 0,
            data: "sealed".into(),
            created_at: 100,
            last_seen: 100,
            expires_at: 1000,
        }
    }

    #[tokio::test]
    async fn gateway_sessions_live_until_ended_or_expired() {
        each_backend(|s| async move {
            s.create_gateway_session(&row("a", "u1")).await.unwrap();
            s.create_gateway_session(&row("b", "u1")).await.unwrap();
            s.create_gateway_session(&row("c", "u2")).await.unwrap();
            assert!(
                s.create_gateway_session(&row("a", "u1")).await.is_err(),
                "ids are unique"
            );
            assert_eq!(
                s.gateway_session("a", 500).await.unwrap(),
                Some(row("a", "u1"))
            );
            assert_eq!(s.gateway_session("a", 1000).await.unwrap(), None, "expired");

            assert!(
                s.update_gateway_session("a", 2, "resealed", 200)
                    .await
                    .unwrap()
            );
            assert!(
                !s.update_gateway_session("a", 1, "older", 300)
                    .await
                    .unwrap(),
                "no going back"
            );
            let a = s.gateway_session("a", 500).await.unwrap().unwrap();
            assert_eq!((a.rev, a.data.as_str(), a.last_seen), (2, "resealed", 200));

            assert!(s.end_gateway_session("a").await.unwrap());
            assert!(!s.end_gateway_session("a").await.unwrap());
            assert!(
                !s.update_gateway_session("a", 3, "x", 400).await.unwrap(),
                "ended stays ended"
            );
            assert_eq!(s.gateway_session("a", 500).await.unwrap(), None);

            assert_eq!(s.end_gateway_sessions_of("u1").await.unwrap(), 1);
            assert_eq!(s.purge_gateway_sessions(1000).await.unwrap(), 1);
            assert_eq!(s.gateway_session("c", 500).await.unwrap(), None);
            assert!(!format!("{:?}", row("x", "y")).contains("sealed"));
        })
        .await;
    }
}
