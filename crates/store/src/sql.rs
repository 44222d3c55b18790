//! The `Store` implementation shared by both SQL backends, written once as macros.
//!
//! SQLite understands PostgreSQL's `$N` placeholders, `ON CONFLICT … DO UPDATE` and `RETURNING`,
//! so one SQL text serves both; the macro is instantiated with each backend's pool type and lets
//! the compiler pick that backend's encoders. Types stay to `TEXT`, `BIGINT`/`INTEGER`,
//! `BOOLEAN` and `BYTEA`/`BLOB`, which both decode the same way.
//!
//! The methods are grouped by what they persist, one file each under `sql/`. `#[async_trait]`
//! must see every method of the one `impl Store` block at once, so each file's macro appends its
//! methods to the list it is given and hands the list on (realms, directory, admin, sessions,
//! logins, accounts, gateway sessions, action tokens, WebAuthn); the last hands it back to
//! `impl_store!`, which writes the block.

pub(crate) mod accounts;
pub(crate) mod action_tokens;
pub(crate) mod admin;
pub(crate) mod directory;
pub(crate) mod gateway_sessions;
pub(crate) mod logins;
pub(crate) mod realms;
pub(crate) mod sessions;
pub(crate) mod webauthn;

macro_rules! impl_store {
    // The end of the chain: every method, in one block.
    (@impl $ty:ty, { $($methods:tt)* }) => {
        #[async_trait::async_trait]
        impl crate::Store for $ty {
            $($methods)*
        }
    };
    // The start, from each backend file: its row decoders, then the methods of this file
    // (health and housekeeping), handed to the first file's macro.
    ($ty:ty, $row:ty, $concurrent_writes:expr) => {
        use crate::model::*;
        use sqlx::Row as _;

        super::decode::decoders!($row);

        crate::sql::realms::realm_methods! { $ty, {
            fn concurrent_writes(&self) -> usize {
                $concurrent_writes
            }

            async fn ping(&self) -> anyhow::Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
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
                    "DELETE FROM admin_events WHERE time < $1",
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
                for sql in [
                    "DELETE FROM used_action_tokens WHERE expires_at < $1",
                    "DELETE FROM revoked_tokens WHERE expires_at < $1",
                    "DELETE FROM webauthn_challenges WHERE expires_at < $1",
                ] {
                    n += sqlx::query(sql)
                        .bind(now)
                        .execute(&self.pool)
                        .await?
                        .rows_affected();
                }
                Ok(n)
            }
        } }
    };
}

pub(crate) use impl_store;
