//! Several gateway processes on one PostgreSQL database: what one replica changes reaches the
//! others through `LISTEN`/`NOTIFY` on the channel [`CHANNEL`], and a realm's new signing key
//! is made once under an advisory lock. SQLite is the one-node store: it notifies nobody and
//! needs no lock beyond its single writer.
//!
//! A notification is sent after the write it announces has committed; each process listens on
//! one connection of its own ([`Changes`]). Notifications are not durable: when the listening
//! connection is lost, what was sent meanwhile is gone, so a reconnect is announced as
//! [`Change::Resync`] and the listener re-reads everything it caches (as its periodic re-read
//! would, later).

use std::sync::Mutex;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::broadcast;

use crate::KeyRow;

/// The `LISTEN`/`NOTIFY` channel of every portcullis process on one database.
pub const CHANNEL: &str = "portcullis";

/// What another process (or this one) changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The realm's directory (users, groups, roles, clients, settings) changed: a realm
    /// import or sync, an admin API write (`Store::bump_realm_revision`).
    Realm(String),
    /// The realm's signing keys changed (a rotation).
    Keys(String),
    /// A gateway session (by row id) was ended: a sign-out.
    GatewaySession(String),
    /// Every gateway session of this subject was ended.
    GatewaySessionsOf(String),
    /// Notifications may have been lost (the listener reconnected, or fell behind): re-read
    /// everything cached.
    Resync,
}

impl Change {
    fn payload(&self) -> Option<String> {
        Some(match self {
            Change::Realm(r) => format!("realm:{r}"),
            Change::Keys(r) => format!("keys:{r}"),
            Change::GatewaySession(id) => format!("gs:{id}"),
            Change::GatewaySessionsOf(sub) => format!("gs-sub:{sub}"),
            Change::Resync => return None,
        })
    }

    /// A notification's payload; `None` for one this version does not know.
    pub fn parse(payload: &str) -> Option<Change> {
        let (kind, what) = payload.split_once(':')?;
        let what = what.to_string();
        Some(match kind {
            "realm" => Change::Realm(what),
            "keys" => Change::Keys(what),
            "gs" => Change::GatewaySession(what),
            "gs-sub" => Change::GatewaySessionsOf(what),
            _ => return None,
        })
    }
}

/// The changes one subscriber receives, in order.
pub struct Changes(broadcast::Receiver<Change>);

impl Changes {
    /// The next change; `None` once the store is gone. A subscriber that fell behind gets
    /// [`Change::Resync`] for what it missed.
    pub async fn next(&mut self) -> Option<Change> {
        match self.0.recv().await {
            Ok(c) => Some(c),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Change::Resync),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// Whether `e` says the database could not be reached (rather than refused a statement):
/// the issuer then answers 503 `temporarily_unavailable`, not 500.
pub fn is_unavailable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<sqlx::Error>(),
            Some(
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            )
        )
    })
}

/// Held while a process imports its realm templates and makes the bootstrap admin at start,
/// so replicas starting together on one database do that one after another (on PostgreSQL a
/// session advisory lock, on a connection closed when the guard drops, which releases it).
pub struct StartupGuard(Option<Box<dyn Send>>);

impl StartupGuard {
    /// No lock needed (one process).
    pub fn none() -> StartupGuard {
        StartupGuard(None)
    }

    pub fn is_held(&self) -> bool {
        self.0.is_some()
    }
}

/// One PostgreSQL store's listener, started on the first subscription, on the caller's
/// runtime, and stopped when the last subscriber is gone.
pub(crate) struct Hub {
    opts: PgConnectOptions,
    tx: Mutex<Option<broadcast::Sender<Change>>>,
}

impl Hub {
    pub(crate) fn new(opts: PgConnectOptions) -> Hub {
        Hub {
            opts,
            tx: Mutex::new(None),
        }
    }

    pub(crate) fn subscribe(&self) -> Option<Changes> {
        let handle = tokio::runtime::Handle::try_current().ok()?;
        let mut tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = tx.as_ref().filter(|t| t.receiver_count() > 0) {
            return Some(Changes(t.subscribe()));
        }
        let (t, rx) = broadcast::channel(1024);
        handle.spawn(listen(self.opts.clone(), t.clone()));
        *tx = Some(t);
        Some(Changes(rx))
    }
}

/// Listens until every subscriber is gone, reconnecting with a pause whenever the connection
/// fails; each (re)connection is announced as [`Change::Resync`], since what was sent before
/// it is lost (the first covers the time between the subscriber's load and the `LISTEN`).
async fn listen(opts: PgConnectOptions, tx: broadcast::Sender<Change>) {
    loop {
        // A pool of its own: the listening connection is held for good, never lent out.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(opts.clone());
        let listening = async {
            let mut l = PgListener::connect_with(&pool).await?;
            l.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        let mut listener = tokio::select! {
            l = listening => l.ok(),
            _ = tx.closed() => return,
        };
        if let Some(l) = listener.as_mut() {
            let _ = tx.send(Change::Resync);
            loop {
                let next = tokio::select! {
                    n = l.try_recv() => n,
                    _ = tx.closed() => return,
                };
                match next {
                    Ok(Some(n)) => {
                        if let Some(c) = Change::parse(n.payload()) {
                            let _ = tx.send(c);
                        }
                    }
                    // Lost and already reconnected (sqlx's eager reconnect): re-read.
                    Ok(None) => {
                        let _ = tx.send(Change::Resync);
                    }
                    Err(_) => break,
                }
            }
        }
        drop(listener);
        pool.close().await;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = tx.closed() => return,
        }
    }
}

impl crate::postgres::PostgresStore {
    /// Tells every listening process about `change`, after the write it announces committed.
    /// A failed notification is not the write's failure: the others' periodic re-read (or
    /// their reconnect's) still finds the change.
    pub(crate) async fn notify(&self, change: Change) {
        if let Some(payload) = change.payload() {
            let _ = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(payload)
                .execute(&self.pool)
                .await;
        }
    }

    pub(crate) fn subscribe(&self) -> Option<Changes> {
        self.hub.subscribe()
    }

    pub(crate) async fn lock_startup(&self) -> anyhow::Result<StartupGuard> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
            .bind("portcullis startup")
            .execute(&mut *conn)
            .await?;
        // Never back to the pool still holding the lock: closing the session releases it.
        conn.close_on_drop();
        Ok(StartupGuard(Some(Box::new(conn))))
    }

    /// `Store::ensure_active_key` under `pg_try_advisory_xact_lock` on the realm: of several
    /// replicas racing, one adds its key (and notifies); a loser of the lock adds nothing and
    /// picks the winner's key up by its notification.
    pub(crate) async fn add_key_once(&self, k: &KeyRow) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext($1))")
            .bind(format!("portcullis signing keys of {}", k.realm))
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(false);
        }
        if crate::sql::realms::active_key_held!(tx, k) {
            return Ok(false);
        }
        crate::sql::realms::insert_active_key!(tx, k);
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("keys:{}", k.realm))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}

impl crate::sqlite::SqliteStore {
    /// One process: nobody to notify.
    pub(crate) async fn notify(&self, _change: Change) {}

    pub(crate) fn subscribe(&self) -> Option<Changes> {
        None
    }

    pub(crate) async fn lock_startup(&self) -> anyhow::Result<StartupGuard> {
        Ok(StartupGuard::none())
    }

    /// `Store::ensure_active_key` for the one-node store: SQLite's single writer serialises the
    /// transaction.
    pub(crate) async fn add_key_once(&self, k: &KeyRow) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await?;
        if crate::sql::realms::active_key_held!(tx, k) {
            return Ok(false);
        }
        crate::sql::realms::insert_active_key!(tx, k);
        tx.commit().await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
