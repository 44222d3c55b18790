//! Connections kept between uses by the refresh rotation, the issuer's hot write.
//!
//! sqlx's pool pings a connection when it goes back to the pool (unconditionally, in
//! `PoolConnection`'s drop): one more round trip per statement, on both sides' CPU, for a
//! statement that is itself one round trip. The rotation's batches (at most
//! `Store::concurrent_writes` at once) keep their connections here instead. One that failed
//! is not kept (its drop returns it to the pool, whose ping closes a broken one); one left
//! unused long enough for a proxy, firewall or restart to have cut it goes back to the pool,
//! which checks it before lending it again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::Database;
use sqlx::pool::{Pool, PoolConnection};

/// A kept connection unused this long goes back through the pool's check (as short as the
/// pool's own unchecked window, `postgres::IDLE_PING_AFTER`, for the same reason).
const STALE_AFTER: Duration = Duration::from_secs(1);

/// The kept connections, most recently used last.
pub(crate) struct Held<DB: Database> {
    idle: Mutex<Vec<(PoolConnection<DB>, Instant)>>,
    stale_after: Duration,
}

impl<DB: Database> Held<DB> {
    pub(crate) fn new() -> Self {
        Held {
            idle: Mutex::new(Vec::new()),
            stale_after: STALE_AFTER,
        }
    }

    /// A kept connection, or one from the pool.
    pub(crate) async fn take(&self, pool: &Pool<DB>) -> Result<PoolConnection<DB>, sqlx::Error> {
        let (fresh, stale) = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            // Every kept connection older than the newest stale one is stale too.
            let cut = idle
                .iter()
                .rposition(|(_, at)| now.duration_since(*at) >= self.stale_after)
                .map_or(0, |i| i + 1);
            let stale: Vec<_> = idle.drain(..cut).collect();
            (idle.pop(), stale)
        };
        // Dropped outside the lock: each drop spawns the pool's return (and its ping).
        drop(stale);
        match fresh {
            Some((conn, _)) => Ok(conn),
            None => pool.acquire().await,
        }
    }

    /// Keeps a connection whose statement succeeded.
    pub(crate) fn put(&self, conn: PoolConnection<DB>) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.push((conn, Instant::now()));
    }

    /// How many are kept, unused at this moment (the pool counts them as lent out).
    pub(crate) fn idle(&self) -> usize {
        self.idle.lock().map_or(0, |idle| idle.len())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};

    use super::Held;

    async fn pool() -> SqlitePool {
        SqlitePoolOptions::new()
            .max_connections(2)
            .connect("sqlite::memory:")
            .await
            .unwrap()
    }

    /// A TEMP table lives on one connection only: finding it again names the connection.
    async fn marked(conn: &mut sqlx::SqliteConnection) -> bool {
        sqlx::query("SELECT count(*) FROM mark")
            .execute(conn)
            .await
            .is_ok()
    }

    /// Takes a connection, marks it (`marked` finds it again) and keeps it.
    async fn keep_marked(held: &Held<sqlx::Sqlite>, pool: &SqlitePool) {
        let mut c = held.take(pool).await.unwrap();
        sqlx::query("CREATE TEMP TABLE mark (x)")
            .execute(&mut *c)
            .await
            .unwrap();
        held.put(c);
    }

    #[tokio::test]
    async fn a_kept_connection_is_lent_again_and_a_dropped_one_returns_to_the_pool() {
        let pool = pool().await;
        let held = Held::new();
        keep_marked(&held, &pool).await;
        assert_eq!((held.idle(), pool.num_idle()), (1, 0));
        let mut again = held.take(&pool).await.unwrap();
        assert!(
            marked(&mut again).await,
            "the kept connection is the one lent"
        );
        assert_eq!(held.idle(), 0);
        // Not put back (its statement failed): it goes back to the pool, not to the kept.
        drop(again);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!((held.idle(), pool.num_idle()), (0, 1));
    }

    #[tokio::test]
    async fn a_connection_kept_too_long_goes_back_through_the_pool() {
        let pool = pool().await;
        let held = Held {
            stale_after: Duration::from_millis(50),
            ..Held::new()
        };
        keep_marked(&held, &pool).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut next = held.take(&pool).await.unwrap();
        assert!(
            !marked(&mut next).await,
            "a fresh connection, not the stale one"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The stale one went back to the pool (idle there), the fresh one is lent.
        assert_eq!((held.idle(), pool.size(), pool.num_idle()), (0, 2, 1));
    }
}
