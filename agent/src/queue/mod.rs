//! Job delivery: one interface, two backends.
//!
//! - **Embedded** (default, no server): the `queue` table of the workspace's SQLite state file.
//!   At-least-once with a lease that expires if the agent dies; dedupe by job id.
//! - **NATS JetStream** (`queue = "nats://host:port"`): a work-queue stream per agent, a durable pull
//!   consumer, ack only when the job has finished, progress acks while it runs, a dead-letter
//!   subject, events on `deskhand.<agent>.events.<job>` and job state in a KV bucket.
//!
//! Each backend implements [`Backend`]; [`Queue`] holds one and hands every call to it, so no
//! caller matches on which backend it has.
//!
//! Both deliver at least once; the agent's ledger (the jobs table) makes running exactly-once in
//! effect: a delivery of a job that already finished is acked and skipped.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::job::{Job, JobEvent};
use crate::store::{Store, StoreError};

pub mod auth;
pub mod embedded;
pub mod nats;

/// Queue failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The embedded queue's database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The NATS server refused the connection (credentials, TLS) or the URL is wrong.
    #[error("cannot connect to NATS at {url}: {message}; check the URL, the credentials and TLS settings under [nats] (`deskhand doctor` checks them), or remove `queue` from config to use the embedded queue")]
    Connect {
        /// The server URL.
        url: String,
        /// The client's message.
        message: String,
    },
    /// The NATS server did not answer (down, no network, a name that does not resolve yet):
    /// worth trying again, unlike [`QueueError::Connect`]'s refusals.
    #[error("cannot reach NATS at {url}: {message}; is the server (`nats-server -js`) up and the network there? (or remove `queue` from config to use the embedded queue)")]
    Unreachable {
        /// The server URL.
        url: String,
        /// The client's message.
        message: String,
    },
    /// JetStream refused an operation.
    #[error("NATS JetStream: {0}")]
    JetStream(String),
    /// The queue URL is not one we know.
    #[error("unknown queue {0:?}; use \"embedded\" (default), or a NATS URL: nats://, tls://, ws:// or wss://host:port")]
    BadUrl(String),
}

/// The key of the agent's job-state bucket that says when it was last up: `{"at", "agent",
/// "version"}`, refreshed every [`PRESENCE_EVERY`] (not a job id: those are ULIDs).
pub const PRESENCE_KEY: &str = "presence";

/// How often the presence key is refreshed.
pub const PRESENCE_EVERY: Duration = Duration::from_secs(15);

/// How long a job may wait in a hub's stream for a sleeping desktop: the stream's `max_age`, and
/// the oldest signed envelope a delivery may carry.
pub const MAX_WAIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// How a queue behaves; the defaults suit a desktop agent.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// This agent's name: subjects, stream and bucket names derive from it.
    pub agent: String,
    /// How long a delivery is ours before it is handed to someone else (renewed while running).
    pub lease: Duration,
    /// Deliveries after which a job is dead-lettered instead of run again.
    pub max_deliveries: u32,
    /// How a NATS server is reached: TLS and credentials.
    pub auth: auth::NatsAuth,
    /// What a hub keeps of finished jobs' files.
    pub files: FileLimits,
    /// The hub's JetStream domain when our server is a leaf of it (see `[nats] hub_domain`).
    pub hub_domain: Option<String>,
}

/// The hub's object store for result files: a size limit per file and for the bucket, and a
/// retention time.
#[derive(Debug, Clone)]
pub struct FileLimits {
    /// Larger files are listed but not stored.
    pub file_bytes: u64,
    /// The bucket's total (the server drops the oldest beyond it).
    pub bucket_bytes: u64,
    /// How long a file is kept.
    pub keep: Duration,
}

impl Default for FileLimits {
    fn default() -> Self {
        FileLimits {
            file_bytes: 25 << 20,
            bucket_bytes: 1 << 30,
            keep: MAX_WAIT,
        }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            agent: "default".into(),
            lease: Duration::from_secs(30),
            max_deliveries: 5,
            auth: auth::NatsAuth::default(),
            files: FileLimits::default(),
            hub_domain: None,
        }
    }
}

/// A backend operation in flight.
pub(crate) type Op<'a, T = ()> = BoxFuture<'a, Result<T, QueueError>>;

/// What a queue backend does. Object-safe (boxed futures), so [`Queue`] can hold either backend
/// behind one `&dyn Backend` and callers never match on which one it is.
pub(crate) trait Backend: Send + Sync {
    /// Which backend, for messages and benchmarks.
    fn kind(&self) -> &'static str;

    /// Get ready to serve `concurrency` jobs at once (size pulls; reclaim dead agents' leases).
    fn prepare(&mut self, concurrency: usize) -> Op<'_>;

    /// Lease at most `n` deliveries per pull from now on; backends without a lease per buffered
    /// delivery ignore it.
    fn fit_batch(&self, _n: usize) {}

    /// Enqueue raw bytes under `key` (deduplicated by key).
    fn publish<'a>(&'a self, key: &'a str, body: Vec<u8>) -> Op<'a>;

    /// Record a new job in the store's ledger and enqueue it.
    fn submit<'a>(&'a self, store: &'a Store, job: &'a Job) -> Op<'a>;

    /// Put a job the ledger already has back on the queue (a held job resuming); `seq` is the
    /// event that requeued it, so the message is new to a deduplicating backend.
    fn requeue<'a>(&'a self, store: &'a Store, job: &'a Job, seq: i64) -> Op<'a>;

    /// The next delivery, waiting at most `wait`.
    fn next(&self, wait: Duration) -> Op<'_, Option<Delivery>>;

    /// Finished: never deliver again.
    fn ack(&self, d: DeliveryInner) -> Op<'_>;

    /// Still working on it: keep the lease.
    fn progress<'a>(&'a self, d: &'a DeliveryInner) -> Op<'a>;

    /// Hand it back for another agent (or our next start).
    fn release(&self, d: DeliveryInner) -> Op<'_>;

    /// Say this agent is up (what a phone reading the hub shows as "last seen"); the embedded
    /// queue has nobody to tell.
    fn present(&self, _body: Vec<u8>) -> Op<'_> {
        Box::pin(async { Ok(()) })
    }

    /// Make a finished job's files reachable from elsewhere (a hub's object store); the embedded
    /// queue's callers are on this desktop and read them from the workspace.
    fn keep_outputs<'a>(&'a self, _job_id: &'a str, _files: &'a [Output]) -> Op<'a> {
        Box::pin(async { Ok(()) })
    }

    /// Never deliver it again; the store already has the dead letter with its reason.
    fn dead_letter<'a>(
        &'a self,
        d: DeliveryInner,
        job_id: Option<&'a str>,
        reason: &'a str,
    ) -> Op<'a>;

    /// Tell the world about a transition (the store already has it).
    fn emit<'a>(&'a self, ev: &'a JobEvent) -> BoxFuture<'a, ()>;

    /// Follow one job's events from the sender's side, until it ends.
    fn watch<'a>(
        &'a self,
        store: &'a Store,
        job_id: &'a str,
    ) -> Op<'a, BoxStream<'static, JobEvent>>;
}

/// A job delivery queue: one of the backends.
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
    /// When a server queue took the message in (a hub's stream); `None` for the embedded queue,
    /// which only holds jobs this desktop admitted itself.
    pub queued_at: Option<chrono::DateTime<chrono::Utc>>,
    inner: DeliveryInner,
}

/// A file a job wrote: its workspace-relative path and where it is on disk.
#[derive(Debug, Clone)]
pub struct Output {
    /// Relative to the workspace, as the job's record lists it.
    pub rel: String,
    /// The file itself.
    pub path: std::path::PathBuf,
}

/// The backend's handle on a delivery.
pub(crate) enum DeliveryInner {
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
            u if ["nats://", "tls://", "ws://", "wss://"]
                .iter()
                .any(|s| u.starts_with(s)) =>
            {
                Ok(Queue::Nats(Box::new(
                    nats::NatsQueue::connect(u, cfg).await?,
                )))
            }
            other => Err(QueueError::BadUrl(other.to_string())),
        }
    }

    /// The backend behind this queue: the one place that tells them apart.
    fn backend(&self) -> &dyn Backend {
        match self {
            Queue::Embedded(q) => q.as_ref(),
            Queue::Nats(q) => q.as_ref(),
        }
    }

    fn backend_mut(&mut self) -> &mut dyn Backend {
        match self {
            Queue::Embedded(q) => q.as_mut(),
            Queue::Nats(q) => q.as_mut(),
        }
    }

    /// Which backend, for messages and benchmarks.
    pub fn kind(&self) -> &'static str {
        self.backend().kind()
    }

    /// Get ready to serve `concurrency` jobs at once.
    pub async fn prepare(&mut self, concurrency: usize) -> Result<(), QueueError> {
        self.backend_mut().prepare(concurrency).await
    }

    /// Lease at most `n` deliveries per pull from now on (where the backend leases per delivery).
    pub fn fit_batch(&self, n: usize) {
        self.backend().fit_batch(n)
    }

    /// Hand a finished job's files to the backend (a hub's object store keeps them for the phone).
    pub async fn keep_outputs(&self, job_id: &str, files: &[Output]) -> Result<(), QueueError> {
        self.backend().keep_outputs(job_id, files).await
    }

    /// The NATS connection and this agent's names on it, when the queue is a NATS server (the
    /// phone's API road rides it).
    pub fn nats(&self) -> Option<(&async_nats::Client, &nats::Names)> {
        match self {
            Queue::Nats(q) => Some((q.client(), q.names())),
            Queue::Embedded(_) => None,
        }
    }

    /// Refresh this agent's presence key (see [`PRESENCE_KEY`]).
    pub async fn present(&self, body: Vec<u8>) -> Result<(), QueueError> {
        self.backend().present(body).await
    }

    /// Enqueue a job (deduplicated by id).
    pub async fn publish(&self, job: &Job) -> Result<(), QueueError> {
        self.publish_raw(&job.id.to_string(), job.to_bytes()).await
    }

    /// Enqueue raw bytes under `key` (tests use it to send malformed messages).
    pub async fn publish_raw(&self, key: &str, body: Vec<u8>) -> Result<(), QueueError> {
        self.backend().publish(key, body).await
    }

    /// Record a new, admitted job in the ledger and enqueue it.
    pub async fn submit(&self, store: &Store, job: &Job) -> Result<(), QueueError> {
        self.backend().submit(store, job).await
    }

    /// Put a job the ledger already has back on the queue; `seq` is the requeue event's.
    pub async fn requeue(&self, store: &Store, job: &Job, seq: i64) -> Result<(), QueueError> {
        self.backend().requeue(store, job, seq).await
    }

    /// The next delivery, waiting at most `wait`.
    pub async fn next(&self, wait: Duration) -> Result<Option<Delivery>, QueueError> {
        self.backend().next(wait).await
    }

    /// Finished (well or badly): never deliver again.
    pub async fn ack(&self, d: Delivery) -> Result<(), QueueError> {
        self.backend().ack(d.inner).await
    }

    /// Still working on it: keep the lease.
    pub async fn progress(&self, d: &Delivery) -> Result<(), QueueError> {
        self.backend().progress(&d.inner).await
    }

    /// Hand it back for another agent (or our next start), e.g. on graceful shutdown.
    pub async fn release(&self, d: Delivery) -> Result<(), QueueError> {
        self.backend().release(d.inner).await
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
        self.backend()
            .dead_letter(d.inner, job_id.as_deref(), reason)
            .await
    }

    /// Tell the world about a transition (the store already has it).
    pub async fn emit(&self, ev: &JobEvent) {
        self.backend().emit(ev).await
    }

    /// Follow one job's events from the sender's side, until it ends.
    pub async fn watch(
        &self,
        store: &Store,
        job_id: &str,
    ) -> Result<BoxStream<'static, JobEvent>, QueueError> {
        self.backend().watch(store, job_id).await
    }
}
