//! Sending mail off the request path: a bounded in-process queue and one task that delivers
//! what is queued, a few at a time, trying each mail up to `ATTEMPTS` times with a growing
//! pause. A request only queues (never waits on SMTP) and its page says the same whatever
//! happens here; a mail given up on is logged (never its body: it carries a live link) and
//! counted on `portcullis_issuer_emails_sent_total{result="error"}`.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, AsyncTransport, Message};
use tokio::sync::{Semaphore, mpsc};

use super::config::SmtpConfig;
use super::templates::{Kind, Mail};
use portcullis_core::metrics::metrics;

/// Mails waiting at most; past this a mail is refused (and counted) rather than held.
const QUEUE_LEN: usize = 1024;
/// Deliveries in flight at once.
const CONCURRENT: usize = 4;
/// Tries per mail.
const ATTEMPTS: u32 = 3;
/// The pause before the second try; doubled before each later one.
#[cfg(not(test))]
const BACKOFF: Duration = Duration::from_secs(2);
#[cfg(test)]
const BACKOFF: Duration = Duration::from_millis(20);

struct Job {
    realm: String,
    kind: Kind,
    smtp: SmtpConfig,
    message: Message,
}

/// The queue's sending end; the task ends when the issuer (every clone of this) is dropped.
pub struct Mailer {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").finish_non_exhaustive()
    }
}

fn count(realm: &str, kind: Kind, result: &str) {
    metrics()
        .issuer_emails_sent
        .with_label_values(&[realm, kind.label(), result])
        .inc();
}

impl Mailer {
    /// Starts the sending task on the current runtime.
    pub fn start() -> Mailer {
        let (tx, rx) = mpsc::channel(QUEUE_LEN);
        tokio::spawn(run(rx));
        Mailer { tx }
    }

    /// Queues `mail` to `to` through `smtp`; `false` when it cannot be (a message that does
    /// not build, or a full queue), which is logged and counted as an error.
    pub fn send(&self, realm: &str, smtp: &SmtpConfig, to: Address, mail: Mail) -> bool {
        let kind = mail.kind;
        let mut b = Message::builder()
            .from(smtp.from.clone())
            .to(Mailbox::new(None, to))
            .subject(mail.subject);
        if let Some(r) = &smtp.reply_to {
            b = b.reply_to(r.clone());
        }
        let message = match b.multipart(MultiPart::alternative_plain_html(mail.text, mail.html)) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(realm, kind = kind.label(), error = %e, "mail not built");
                count(realm, kind, "error");
                return false;
            }
        };
        let job = Job {
            realm: realm.to_string(),
            kind,
            smtp: smtp.clone(),
            message,
        };
        if self.tx.try_send(job).is_err() {
            tracing::warn!(realm, kind = kind.label(), "mail queue full, mail dropped");
            count(realm, kind, "error");
            return false;
        }
        true
    }
}

async fn run(mut rx: mpsc::Receiver<Job>) {
    let slots = Arc::new(Semaphore::new(CONCURRENT));
    while let Some(job) = rx.recv().await {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        tokio::spawn(async move {
            deliver(job).await;
            drop(slot);
        });
    }
}

async fn deliver(job: Job) {
    let kind = job.kind.label();
    let mut pause = BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let result = match job.smtp.transport() {
            Ok(t) => t.send(job.message.clone()).await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => {
                count(&job.realm, job.kind, "ok");
                return;
            }
            Err(e) if attempt < ATTEMPTS => {
                tracing::info!(realm = %job.realm, kind, attempt, error = %e, "mail not sent yet, retrying");
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
            }
            Err(e) => {
                tracing::warn!(realm = %job.realm, kind, attempts = ATTEMPTS, error = %e, "mail not sent, given up");
            }
        }
    }
    count(&job.realm, job.kind, "error");
}
