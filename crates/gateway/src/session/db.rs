//! `[session] store = "database"`: sessions kept in the issuer's database (SQLite or
//! PostgreSQL, table `gateway_sessions`), so a sign-out on one replica ends the session on all
//! of them. The cookie then carries only the session's id; the row holds its tokens, sealed
//! with the cookie keys, under a digest of that id. The store's connections live on a small
//! runtime of their own (as the embedded issuer's do), opened on first use.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::heard::Heard;
use super::keys::Keys;
use super::state::{Body, Sid};

/// AEAD purpose of a row's data (never opens as a cookie, nor a cookie as a row).
const ROW_PURPOSE: &[u8] = b"portcullis session row v1";

/// The database a `store = "database"` configuration names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub url: String,
    pub base_dir: PathBuf,
}

/// Why the database could not answer (the request is then treated as the provider being
/// down: existing cached sessions go on, new ones fail with 502).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

/// A session row, opened.
pub struct Row {
    pub rev: u32,
    pub created: u64,
    pub body: Body,
}

pub use super::heard::row_id;

pub fn seal_body(keys: &Keys, body: &Body) -> Option<String> {
    keys.seal(ROW_PURPOSE, serde_json::to_vec(body).ok()?)
}

pub fn open_body(keys: &Keys, data: &str) -> Option<Body> {
    serde_json::from_slice(&keys.open(ROW_PURPOSE, data).ok()?).ok()
}

/// The databases opened so far (one, unless a reload names another).
#[derive(Default)]
pub struct Databases {
    open: Mutex<Option<Arc<imp::SessionDb>>>,
}

impl Databases {
    /// The database at `at`, opened (on its own runtime) on first use.
    pub fn get(
        &self,
        at: &Location,
        clock: &portcullis_core::clock::SharedClock,
    ) -> Result<Arc<imp::SessionDb>, Unavailable> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(db) = open.as_ref().filter(|d| d.at == *at) {
            return Ok(Arc::clone(db));
        }
        let heard = Arc::new(super::heard::Heard::new(Arc::clone(clock)));
        let db = Arc::new(imp::SessionDb::new(at.clone(), heard)?);
        *open = Some(Arc::clone(&db));
        Ok(db)
    }
}

#[cfg(feature = "issuer")]
pub use imp::SessionDb;

#[cfg(feature = "issuer")]
mod imp {
    use super::*;
    use portcullis_store::{GatewaySessionRow, SharedStore};

    pub struct SessionDb {
        pub(super) at: Location,
        rt: Option<tokio::runtime::Runtime>,
        store: Arc<tokio::sync::OnceCell<SharedStore>>,
        pub heard: Arc<Heard>,
    }

    impl Drop for SessionDb {
        fn drop(&mut self) {
            // A runtime may not be dropped (blocking) from inside another runtime.
            if let Some(rt) = self.rt.take() {
                rt.shutdown_background();
            }
        }
    }

    impl SessionDb {
        pub(super) fn new(at: Location, heard: Arc<Heard>) -> Result<SessionDb, Unavailable> {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("session-db")
                .enable_all()
                .build()
                .map_err(|e| {
                    tracing::error!(error = %e, "cannot start the session database runtime");
                    Unavailable
                })?;
            Ok(SessionDb {
                at,
                rt: Some(rt),
                store: Arc::new(tokio::sync::OnceCell::new()),
                heard,
            })
        }

        /// Runs `f` with the store, on the store's runtime.
        async fn with<T, F, Fut>(&self, f: F) -> Result<T, Unavailable>
        where
            T: Send + 'static,
            F: FnOnce(SharedStore) -> Fut + Send + 'static,
            Fut: std::future::Future<Output = anyhow::Result<T>> + Send,
        {
            let rt = self.rt.as_ref().ok_or(Unavailable)?;
            let (cell, at) = (Arc::clone(&self.store), self.at.clone());
            let heard = Arc::clone(&self.heard);
            let task = rt.spawn(async move {
                let store = cell
                    .get_or_try_init(|| async {
                        let store = portcullis_store::open(&at.url, &at.base_dir).await?;
                        follow(&store, heard);
                        Ok::<_, anyhow::Error>(store)
                    })
                    .await?
                    .clone();
                f(store).await
            });
            match task.await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => {
                    tracing::warn!(error = %format!("{e:#}"), "session database");
                    Err(Unavailable)
                }
                Err(_) => Err(Unavailable),
            }
        }

        /// Stores a new session (and drops expired ones).
        pub async fn create(
            &self,
            keys: &Keys,
            sid: &Sid,
            body: &Body,
            created: u64,
            expires: u64,
        ) -> Result<(), Unavailable> {
            let row = GatewaySessionRow {
                id: row_id(sid),
                sub: body.who.sub.clone(),
                rev: 0,
                data: seal_body(keys, body).ok_or(Unavailable)?,
                created_at: secs(created),
                last_seen: secs(created),
                expires_at: secs(expires),
            };
            self.with(move |s| async move {
                s.purge_gateway_sessions(row.created_at).await?;
                s.create_gateway_session(&row).await
            })
            .await
        }

        /// The live session `sid`, opened with `keys`; `Ok(None)` when it was ended or expired
        /// (or its data no longer opens).
        pub async fn get(
            &self,
            keys: &Keys,
            sid: &Sid,
            now: u64,
        ) -> Result<Option<Row>, Unavailable> {
            let id = row_id(sid);
            let row = self
                .with(move |s| async move { s.gateway_session(&id, secs(now)).await })
                .await?;
            Ok(row.and_then(|r| {
                Some(Row {
                    rev: u32::try_from(r.rev).ok()?,
                    created: u64::try_from(r.created_at).ok()?,
                    body: open_body(keys, &r.data)?,
                })
            }))
        }

        /// A refreshed session; `Ok(false)` when it was ended meanwhile (it stays ended).
        pub async fn update(
            &self,
            keys: &Keys,
            sid: &Sid,
            rev: u32,
            body: &Body,
            now: u64,
        ) -> Result<bool, Unavailable> {
            let (id, data) = (row_id(sid), seal_body(keys, body).ok_or(Unavailable)?);
            self.with(move |s| async move {
                s.update_gateway_session(&id, i64::from(rev), &data, secs(now))
                    .await
            })
            .await
        }

        /// Ends the session on every replica.
        pub async fn end(&self, sid: &Sid) -> Result<(), Unavailable> {
            let id = row_id(sid);
            self.with(move |s| async move { s.end_gateway_session(&id).await.map(|_| ()) })
                .await
        }
    }

    fn secs(t: u64) -> i64 {
        i64::try_from(t).unwrap_or(i64::MAX)
    }

    /// On PostgreSQL, hears the sessions other replicas end (a sign-out there), for as long as
    /// the process runs: `current.rs` then checks such a session's row at its next request.
    fn follow(store: &SharedStore, heard: Arc<Heard>) {
        use portcullis_store::replicas::Change;
        let Some(mut changes) = store.changes() else {
            return;
        };
        tokio::spawn(async move {
            while let Some(change) = changes.next().await {
                match change {
                    Change::GatewaySession(row) => heard.ended(row),
                    Change::GatewaySessionsOf(sub) => heard.ended_all_of(sub),
                    Change::Resync => heard.resync(),
                    Change::Realm(_) | Change::Keys(_) => {}
                }
            }
        });
    }
}

#[cfg(not(feature = "issuer"))]
mod imp {
    //! The sidecar build has no store: `store = "database"` needs `[issuer]`, which it refuses.
    use super::*;

    pub struct SessionDb {
        pub(super) at: Location,
        pub heard: Arc<Heard>,
    }

    impl SessionDb {
        pub(super) fn new(_at: Location, _heard: Arc<Heard>) -> Result<SessionDb, Unavailable> {
            Err(Unavailable)
        }
        pub async fn create(
            &self,
            _: &Keys,
            _: &Sid,
            _: &Body,
            _: u64,
            _: u64,
        ) -> Result<(), Unavailable> {
            Err(Unavailable)
        }
        pub async fn get(&self, _: &Keys, _: &Sid, _: u64) -> Result<Option<Row>, Unavailable> {
            Err(Unavailable)
        }
        pub async fn update(
            &self,
            _: &Keys,
            _: &Sid,
            _: u32,
            _: &Body,
            _: u64,
        ) -> Result<bool, Unavailable> {
            Err(Unavailable)
        }
        pub async fn end(&self, _: &Sid) -> Result<(), Unavailable> {
            Err(Unavailable)
        }
    }
}

#[cfg(not(feature = "issuer"))]
pub use imp::SessionDb;

/// Where `store = "database"` keeps sessions, when it is configured.
pub fn location(cfg: &portcullis_core::config::Config) -> Option<Location> {
    let s = cfg.session.as_ref()?;
    if s.store != portcullis_core::config::SessionStore::Database {
        return None;
    }
    Some(Location {
        url: cfg.issuer.as_ref()?.database.clone(),
        base_dir: cfg.base_dir.clone(),
    })
}
