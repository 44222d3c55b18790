//! Group commit for refresh-token rotations: the rotations asked while one statement runs
//! go to the store together in the next (`Store::rotate_live_families`).
//!
//! A refresh is one RSA signature and one write. On one core the write's fixed costs (a hop to
//! SQLite's worker thread and back, the transaction's locks and WAL append, or a PostgreSQL
//! round trip) are paid once per batch instead of once per refresh. Nothing waits for a batch
//! to fill: an idle issuer sends each rotation alone, as before. SQLite takes one batch at a
//! time (one writer); PostgreSQL a few (`Store::concurrent_writes`).

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use portcullis_store::{Rotated, Rotation, SharedStore, Store};

/// Most rotations in one statement (nine parameters each, far below either backend's limit).
const MAX_BATCH: usize = 32;
/// Rotations waiting beyond this make their callers wait to enqueue (backpressure).
const QUEUE: usize = 1024;

/// One rotation's owned copy, and where its answer goes.
struct Job {
    family_id: String,
    realm: String,
    client_id: String,
    old_hash: String,
    new_hash: String,
    now: i64,
    active_since: i64,
    created_since: i64,
    reply: oneshot::Sender<Result<Option<Rotated>, String>>,
}

impl Job {
    fn rotation(&self) -> Rotation<'_> {
        Rotation {
            family_id: &self.family_id,
            realm: &self.realm,
            client_id: &self.client_id,
            old_hash: &self.old_hash,
            new_hash: &self.new_hash,
            now: self.now,
            active_since: self.active_since,
            created_since: self.created_since,
        }
    }
}

/// The queue's sending side; the batching task ends when this is dropped.
pub(crate) struct Rotations {
    tx: mpsc::Sender<Job>,
}

impl Rotations {
    /// Starts the batching task on the current tokio runtime.
    pub fn start(store: SharedStore) -> Rotations {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, rx));
        Rotations { tx }
    }

    /// One rotation (`Store::rotate_live_families`), batched with whatever else is waiting.
    pub async fn rotate(&self, r: &Rotation<'_>) -> anyhow::Result<Option<Rotated>> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            family_id: r.family_id.to_owned(),
            realm: r.realm.to_owned(),
            client_id: r.client_id.to_owned(),
            old_hash: r.old_hash.to_owned(),
            new_hash: r.new_hash.to_owned(),
            now: r.now,
            active_since: r.active_since,
            created_since: r.created_since,
            reply,
        };
        self.tx
            .send(job)
            .await
            .map_err(|_| anyhow::anyhow!("refresh rotation queue stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("refresh rotation queue stopped"))?
            .map_err(|e| anyhow::anyhow!("refresh rotation: {e}"))
    }
}

async fn run(store: SharedStore, mut rx: mpsc::Receiver<Job>) {
    // One batch at a time on SQLite; on PostgreSQL a few, so a round trip doesn't idle us.
    let in_flight = Arc::new(Semaphore::new(store.concurrent_writes().max(1)));
    loop {
        // Rotations queue up while every permit is out: they make the next batch.
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
            return;
        };
        let mut jobs = Vec::with_capacity(MAX_BATCH);
        if rx.recv_many(&mut jobs, MAX_BATCH).await == 0 {
            return;
        }
        if jobs.len() < MAX_BATCH {
            // Let the tasks already woken reach their own rotation first: on a busy issuer
            // they join this batch instead of each starting another.
            tokio::task::yield_now().await;
            while jobs.len() < MAX_BATCH {
                let Ok(job) = rx.try_recv() else { break };
                jobs.push(job);
            }
        }
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            commit(store.as_ref(), jobs).await;
            drop(permit);
        });
    }
}

/// One batch: its statement, and each caller's answer.
async fn commit(store: &dyn Store, jobs: Vec<Job>) {
    let rotations: Vec<Rotation<'_>> = jobs.iter().map(Job::rotation).collect();
    let answers = store.rotate_live_families(&rotations).await;
    drop(rotations);
    match answers {
        Ok(answers) => {
            for (job, answer) in jobs.into_iter().zip(answers) {
                // A caller that went away no longer wants its answer.
                let _ = job.reply.send(Ok(answer));
            }
        }
        Err(e) => {
            let e = format!("{e:#}");
            for job in jobs {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_store::testing::rotation;
    use portcullis_store::{RealmRow, RealmSettings};

    async fn family(store: &SharedStore, id: &str) {
        let row = portcullis_store::testing::family_row(id, &format!("{id}-0"));
        store.create_family(&row).await.unwrap();
    }

    /// Many concurrent rotations (more than a batch holds, two per family in a chain and one
    /// replay each), on SQLite (one batch at a time) and PostgreSQL (several in flight): each
    /// caller gets its own family's answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_rotations_each_get_their_own_answer() {
        portcullis_store::testing::each_backend(|store| async move {
            store
                .put_realm(&RealmRow {
                    name: "r1".into(),
                    enabled: true,
                    settings: RealmSettings::default(),
                })
                .await
                .unwrap();
            let ids: Vec<String> = (0..80).map(|i| format!("f{i}")).collect();
            for id in &ids {
                family(&store, id).await;
            }
            let rotations = Arc::new(Rotations::start(store.clone()));
            let mut tasks = Vec::new();
            for id in ids.clone() {
                let rotations = rotations.clone();
                tasks.push(tokio::spawn(async move {
                    let (h0, h1, h2) = (format!("{id}-0"), format!("{id}-1"), format!("{id}-2"));
                    let first = rotations.rotate(&rotation(&id, &h0, &h1)).await.unwrap();
                    let second = rotations.rotate(&rotation(&id, &h1, &h2)).await.unwrap();
                    let replay = rotations.rotate(&rotation(&id, &h0, "x")).await.unwrap();
                    (id, first, second, replay)
                }));
            }
            for task in tasks {
                let (id, first, second, replay) = task.await.unwrap();
                assert_eq!(first.unwrap().family.current_hash, format!("{id}-1"));
                let second = second.unwrap().family;
                assert_eq!(
                    (second.id.as_str(), second.current_hash),
                    (id.as_str(), format!("{id}-2"))
                );
                assert!(replay.is_none(), "{id}: a rotated token rotates no more");
            }
            for id in &ids {
                let f = store.get_family(id).await.unwrap().unwrap();
                assert_eq!(f.current_hash, format!("{id}-2"));
            }
        })
        .await;
    }

    #[tokio::test]
    async fn a_store_error_reaches_every_caller_of_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let store: SharedStore = Arc::new(
            portcullis_store::sqlite::SqliteStore::open(&path, portcullis_store::Access::ReadWrite)
                .await
                .unwrap(),
        );
        let rotations = Rotations::start(store.clone());
        // The table gone: the statement fails, and says so to its callers.
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query("DROP TABLE refresh_families")
            .execute(&pool)
            .await
            .unwrap();
        let err = rotations
            .rotate(&rotation("f1", "a", "b"))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("refresh rotation"), "{err}");
    }
}
