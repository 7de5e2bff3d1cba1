//! Job delivery: one interface, two backends.
//!
//! - **Embedded** (default, no server): the `queue` table of the workspace's SQLite state file.
//!   At-least-once with a lease that expires if the agent dies; dedupe by job id.
//! - **NATS JetStream** (`queue = "nats://host:port"`): a work-queue stream per agent, a durable pull
//!   consumer, ack only when the job has finished, progress acks while it runs, a dead-letter
//!   subject, events on `deskhand.<agent>.events.<job>` and job state in a KV bucket.
//!
//! Both deliver at least once; the agent's ledger (the jobs table) makes running exactly-once in
//! effect: a delivery of a job that already finished is acked and skipped.

use std::time::Duration;

use futures::stream::BoxStream;

use crate::job::{Job, JobEvent};
use crate::store::{Store, StoreError};

pub mod embedded;
pub mod nats;

/// Queue failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The embedded queue's database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The NATS server cannot be reached.
    #[error("cannot reach NATS at {url}: {message}; is `nats-server -js` running there? (or remove `queue` from config to use the embedded queue)")]
    Connect {
        /// The server URL.
        url: String,
        /// The client's message.
        message: String,
    },
    /// JetStream refused an operation.
    #[error("NATS JetStream: {0}")]
    JetStream(String),
    /// The queue URL is not one we know.
    #[error("unknown queue {0:?}; use \"embedded\" (default) or \"nats://host:port\"")]
    BadUrl(String),
}

/// How a queue behaves; the defaults suit a desktop agent.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// This agent's name: subjects, stream and bucket names derive from it.
    pub agent: String,
    /// How long a delivery is ours before it is handed to someone else (renewed while running).
    pub lease: Duration,
    /// Deliveries after which a job is dead-lettered instead of run again.
    pub max_deliveries: u32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            agent: "default".into(),
            lease: Duration::from_secs(30),
            max_deliveries: 5,
        }
    }
}

/// A job delivery queue.
pub enum Queue {
    /// SQLite table, no server.
    Embedded(Box<embedded::EmbeddedQueue>),
    /// NATS JetStream.
    Nats(Box<nats::NatsQueue>),
}

/// One delivered message, to be acked, handed back, or dead-lettered.
pub struct Delivery {
    /// The raw envelope.
    pub body: Vec<u8>,
    /// How many times it has been delivered (1 = first time).
    pub deliveries: u32,
    inner: DeliveryInner,
}

enum DeliveryInner {
    Embedded { key: String },
    Nats(Box<async_nats::jetstream::Message>),
}

impl Queue {
    /// Open the queue named by `url`: `embedded` (or empty) or `nats://…`.
    pub async fn open(url: &str, store: &Store, cfg: QueueConfig) -> Result<Queue, QueueError> {
        match url.trim() {
            "" | "embedded" | "sqlite" => Ok(Queue::Embedded(Box::new(
                embedded::EmbeddedQueue::new(store.clone(), cfg),
            ))),
            u if u.starts_with("nats://") => Ok(Queue::Nats(Box::new(
                nats::NatsQueue::connect(u, cfg).await?,
            ))),
            other => Err(QueueError::BadUrl(other.to_string())),
        }
    }

    /// Which backend, for messages and benchmarks.
    pub fn kind(&self) -> &'static str {
        match self {
            Queue::Embedded(_) => "embedded",
            Queue::Nats(_) => "nats",
        }
    }

    /// Enqueue a job (deduplicated by id).
    pub async fn publish(&self, job: &Job) -> Result<(), QueueError> {
        self.publish_raw(&job.id.to_string(), job.to_bytes()).await
    }

    /// Enqueue raw bytes under `key` (tests use it to send malformed messages).
    pub async fn publish_raw(&self, key: &str, body: Vec<u8>) -> Result<(), QueueError> {
        match self {
            Queue::Embedded(q) => q.publish(key, body).await,
            Queue::Nats(q) => q.publish(key, body).await,
        }
    }

    /// The next delivery, waiting at most `wait`.
    pub async fn next(&self, wait: Duration) -> Result<Option<Delivery>, QueueError> {
        match self {
            Queue::Embedded(q) => q.next(wait).await,
            Queue::Nats(q) => q.next(wait).await,
        }
    }

    /// Finished (well or badly): never deliver again.
    pub async fn ack(&self, d: Delivery) -> Result<(), QueueError> {
        match (self, d.inner) {
            (Queue::Embedded(q), DeliveryInner::Embedded { key }) => q.ack(&key).await,
            (Queue::Nats(_), DeliveryInner::Nats(m)) => nats::ack(&m).await,
            _ => unreachable!("a delivery always returns to the queue it came from"),
        }
    }

    /// Still working on it: keep the lease.
    pub async fn progress(&self, d: &Delivery) -> Result<(), QueueError> {
        match (self, &d.inner) {
            (Queue::Embedded(q), DeliveryInner::Embedded { key }) => q.progress(key).await,
            (Queue::Nats(_), DeliveryInner::Nats(m)) => nats::progress(m).await,
            _ => unreachable!("a delivery always returns to the queue it came from"),
        }
    }

    /// Hand it back for another agent (or our next start), e.g. on graceful shutdown.
    pub async fn release(&self, d: Delivery) -> Result<(), QueueError> {
        match (self, d.inner) {
            (Queue::Embedded(q), DeliveryInner::Embedded { key }) => q.release(&key).await,
            (Queue::Nats(_), DeliveryInner::Nats(m)) => nats::release(&m).await,
            _ => unreachable!("a delivery always returns to the queue it came from"),
        }
    }

    /// Move a poison message aside with the reason, and never deliver it again.
    pub async fn dead_letter(
        &self,
        store: &Store,
        d: Delivery,
        job_id: Option<String>,
        reason: &str,
    ) -> Result<(), QueueError> {
        tracing::warn!(job = ?job_id, %reason, "dead-lettering a message");
        store
            .dead_letter(job_id.clone(), d.body.clone(), reason.to_string())
            .await?;
        match (self, d.inner) {
            (Queue::Embedded(q), DeliveryInner::Embedded { key }) => q.ack(&key).await,
            (Queue::Nats(q), DeliveryInner::Nats(m)) => {
                q.dead_letter(&m, job_id.as_deref(), reason).await
            }
            _ => unreachable!("a delivery always returns to the queue it came from"),
        }
    }

    /// Tell the world about a transition (the store already has it).
    pub async fn emit(&self, ev: &JobEvent) {
        match self {
            Queue::Embedded(q) => q.emit(ev),
            Queue::Nats(q) => q.emit(ev).await,
        }
    }

    /// Follow one job's events from the sender's side, until it ends.
    pub async fn watch(
        &self,
        store: &Store,
        job_id: &str,
    ) -> Result<BoxStream<'static, JobEvent>, QueueError> {
        match self {
            Queue::Embedded(_) => Ok(embedded::watch_store(store.clone(), job_id.to_string())),
            Queue::Nats(q) => q.watch(job_id).await,
        }
    }
}
