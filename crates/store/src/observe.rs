//! What the gateway watches of the issuer's database, for its metrics: the connection pool
//! (in use, idle, the bound, and how long taking a connection waits) and the live SSO sessions
//! per realm.
//!
//! The issuer owns its store (only its `domain/` may call it), so every read-write store
//! registers itself here when [`crate::open`] opens it, weakly: a dropped store drops out. The
//! gateway samples [`opened`] every few seconds on the issuer's runtime. Nothing here writes.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// The pool of one store, at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Connections open, idle or lent out.
    pub size: u32,
    pub idle: u32,
    /// The pool's bound: at `size == max` with none idle, the next query waits.
    pub max: u32,
}

impl PoolStats {
    pub fn in_use(&self) -> u32 {
        self.size.saturating_sub(self.idle)
    }
}

/// A store seen from outside: its pool and its live sessions. Implemented by both backends.
#[async_trait::async_trait]
pub trait Observed: Send + Sync {
    fn pool(&self) -> PoolStats;
    /// Takes a connection from the pool, in turn with the queries waiting for one (sqlx's
    /// queue is fair), gives it back unused, and answers how long that took: what a query
    /// asked now would wait. Errors when no connection comes (database unreachable).
    async fn acquire_wait(&self) -> anyhow::Result<Duration>;
    /// Live SSO sessions per realm at `now` (seconds): not ended, and within the realm's idle
    /// timeout and maximum lifespan, the test the issuer applies to each session
    /// (`domain::sessions::alive`). Realms without one answer 0.
    async fn live_sessions(&self, now: i64) -> anyhow::Result<Vec<(String, u64)>>;
}

static OPENED: Mutex<Vec<Weak<dyn Observed>>> = Mutex::new(Vec::new());

/// Records a store just opened read-write (and forgets the dropped ones).
pub(crate) fn register(store: Weak<dyn Observed>) {
    if let Ok(mut v) = OPENED.lock() {
        v.retain(|w| w.strong_count() > 0);
        v.push(store);
    }
}

/// Every read-write store of this process still open (the gateway has one: its issuer's).
pub fn opened() -> Vec<Arc<dyn Observed>> {
    OPENED
        .lock()
        .map(|v| v.iter().filter_map(Weak::upgrade).collect())
        .unwrap_or_default()
}

/// Counts one realm's live sessions: the realm's bounds become cutoffs on `last_seen` and
/// `created_at` (an index-free count: sessions are few per realm, sampled every few seconds).
pub(crate) const COUNT_LIVE: &str = "SELECT COUNT(*) FROM sso_sessions \
     WHERE realm = $1 AND NOT ended AND last_seen >= $2 AND created_at >= $3";

/// `Observed` for a backend whose `pool` field is a sqlx pool, written once for both.
macro_rules! impl_observed {
    ($ty:ty, $backend:literal) => {
        #[async_trait::async_trait]
        impl crate::observe::Observed for $ty {
            fn pool(&self) -> crate::observe::PoolStats {
                crate::observe::PoolStats {
                    backend: $backend,
                    size: self.pool.size(),
                    // The rotation's kept connections wait for work like the pool's idle ones.
                    idle: u32::try_from(self.pool.num_idle() + self.held.idle())
                        .unwrap_or(u32::MAX),
                    max: self.pool.options().get_max_connections(),
                }
            }

            async fn acquire_wait(&self) -> anyhow::Result<std::time::Duration> {
                let start = std::time::Instant::now();
                let conn = self.pool.acquire().await?;
                let waited = start.elapsed();
                drop(conn);
                Ok(waited)
            }

            async fn live_sessions(&self, now: i64) -> anyhow::Result<Vec<(String, u64)>> {
                use crate::Store as _;
                let mut out = Vec::new();
                for name in self.realm_names().await? {
                    let Some(realm) = self.get_realm(&name).await? else {
                        continue;
                    };
                    let s = &realm.settings;
                    let n: i64 = sqlx::query_scalar(crate::observe::COUNT_LIVE)
                        .bind(&name)
                        .bind(now.saturating_sub(s.sso_session_idle_timeout))
                        .bind(now.saturating_sub(s.sso_session_max_lifespan))
                        .fetch_one(&self.pool)
                        .await?;
                    out.push((name, u64::try_from(n).unwrap_or(0)));
                }
                Ok(out)
            }
        }
    };
}

pub(crate) use impl_observed;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::testing::PgTestDb;
    use crate::{RealmRow, RealmSettings, SessionRow, SharedStore};

    fn session(id: &str, realm: &str, created_at: i64, last_seen: i64, ended: bool) -> SessionRow {
        SessionRow {
            id: id.into(),
            realm: realm.into(),
            user_id: "u1".into(),
            cookie_hash: format!("hash-{id}"),
            created_at,
            last_seen,
            ended,
            amr: Vec::new(),
        }
    }

    /// The live sessions of `s` at 10_000: realm r1 idles out after 100 s and lives 1000 s at
    /// most; r2 has the defaults; r3 has no session.
    async fn counts(s: &SharedStore) -> Vec<(String, u64)> {
        for (name, idle, max) in [("r1", 100, 1000), ("r2", 1800, 36000), ("r3", 1800, 36000)] {
            s.put_realm(&RealmRow {
                name: name.into(),
                enabled: true,
                settings: RealmSettings {
                    sso_session_idle_timeout: idle,
                    sso_session_max_lifespan: max,
                    ..RealmSettings::default()
                },
            })
            .await
            .unwrap();
        }
        for row in [
            session("live", "r1", 9_500, 9_950, false),
            session("live-at-the-edge", "r1", 9_000, 9_900, false),
            session("idle-too-long", "r1", 9_500, 9_899, false),
            session("too-old", "r1", 8_999, 9_990, false),
            session("ended", "r1", 9_500, 9_990, true),
            session("other-realm", "r2", 9_000, 9_000, false),
        ] {
            s.create_session(&row).await.unwrap();
        }
        s.end_session("ended").await.unwrap();
        let mut opened: Vec<_> = super::opened()
            .into_iter()
            .filter(|o| std::ptr::addr_eq(Arc::as_ptr(o), Arc::as_ptr(s)))
            .collect();
        assert_eq!(opened.len(), 1, "the store opened read-write is registered");
        let o = opened.pop().unwrap();
        let p = o.pool();
        assert!(p.size <= p.max && p.idle <= p.size, "{p:?}");
        assert!(o.acquire_wait().await.unwrap() < std::time::Duration::from_secs(5));
        let mut got = o.live_sessions(10_000).await.unwrap();
        got.sort();
        got
    }

    fn expected() -> Vec<(String, u64)> {
        vec![("r1".into(), 2), ("r2".into(), 1), ("r3".into(), 0)]
    }

    #[tokio::test]
    async fn live_sessions_per_realm_and_the_pool_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::open("sqlite://data/p.db", dir.path()).await.unwrap();
        assert_eq!(counts(&s).await, expected());
        let max = super::opened()
            .into_iter()
            .find(|o| std::ptr::addr_eq(Arc::as_ptr(o), Arc::as_ptr(&s)))
            .map(|o| o.pool());
        assert_eq!(max.map(|p| (p.backend, p.max)), Some(("sqlite", 3)));
        // Weakly held: a dropped store is no longer sampled.
        let ptr = Arc::as_ptr(&s) as *const ();
        drop(s);
        assert!(
            !super::opened()
                .iter()
                .any(|o| Arc::as_ptr(o) as *const () == ptr)
        );
    }

    #[tokio::test]
    async fn live_sessions_per_realm_and_the_pool_on_postgres() {
        let db = PgTestDb::create().await;
        let s = crate::open(&db.url, std::path::Path::new("."))
            .await
            .unwrap();
        assert_eq!(counts(&s).await, expected());
        drop(s);
        db.drop_db().await;
    }

    #[tokio::test]
    async fn a_read_only_store_is_not_sampled() {
        let dir = tempfile::tempdir().unwrap();
        let rw = crate::open("sqlite://p.db", dir.path()).await.unwrap();
        let ro = crate::open_with("sqlite://p.db", dir.path(), crate::Access::ReadOnly)
            .await
            .unwrap();
        let opened = super::opened();
        assert!(
            opened
                .iter()
                .any(|o| std::ptr::addr_eq(Arc::as_ptr(o), Arc::as_ptr(&rw)))
        );
        assert!(
            !opened
                .iter()
                .any(|o| std::ptr::addr_eq(Arc::as_ptr(o), Arc::as_ptr(&ro)))
        );
    }
}
