//! The embedded queue: a table in the workspace's SQLite file. No server.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use rusqlite::params;
use tokio::sync::broadcast;

use super::{Backend, Delivery, DeliveryInner, Op, QueueConfig, QueueError};
use crate::job::{Job, JobEvent};
use crate::store::Store;

/// How often a consumer looks for work published by another process (in-process publishes wake it
/// at once).
const POLL: Duration = Duration::from_millis(2);

/// Queue over the state database.
pub struct EmbeddedQueue {
    store: Store,
    cfg: QueueConfig,
    owner: String,
    wake: std::sync::Arc<tokio::sync::Notify>,
    events: broadcast::Sender<JobEvent>,
    /// Leased but not yet handed out: one claim leases a small batch (like a NATS pull batch).
    buffer: tokio::sync::Mutex<std::collections::VecDeque<(String, Vec<u8>, u32)>>,
    batch: std::sync::atomic::AtomicU32,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl EmbeddedQueue {
    pub(crate) fn new(store: Store, cfg: QueueConfig) -> Self {
        let (events, _) = broadcast::channel(1024);
        EmbeddedQueue {
            store,
            cfg,
            owner: format!("pid:{}", std::process::id()),
            wake: std::sync::Arc::new(tokio::sync::Notify::new()),
            events,
            buffer: tokio::sync::Mutex::new(std::collections::VecDeque::new()),
            batch: std::sync::atomic::AtomicU32::new(1),
        }
    }

    /// Hand back leases held by agents that died (their pid is gone), so a restart resumes at once
    /// instead of waiting for the lease to run out.
    pub async fn reclaim_dead_leases(&self) -> Result<usize, QueueError> {
        let owners: Vec<String> = self
            .store
            .with(|c| {
                let mut st = c.prepare(
                    "SELECT DISTINCT lease_owner FROM queue WHERE lease_owner IS NOT NULL",
                )?;
                let rows = st.query_map([], |r| r.get(0))?;
                rows.collect()
            })
            .await?;
        let dead: Vec<String> = owners
            .into_iter()
            .filter(|o| o != &self.owner)
            .filter(|o| {
                o.strip_prefix("pid:")
                    .and_then(|p| p.parse::<u32>().ok())
                    .is_some_and(|p| !deskhand_browser::process::pid_alive(p))
            })
            .collect();
        let n = self
            .store
            .with(move |c| {
                let mut n = 0;
                for o in dead {
                    n += c.execute("UPDATE queue SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?1", params![o])?;
                }
                Ok(n)
            })
            .await?;
        if n > 0 {
            tracing::info!(jobs = n, "reclaimed jobs leased by an agent that died");
        }
        Ok(n)
    }

    /// How many deliveries one claim may lease (keep it near the agent's concurrency).
    pub fn set_batch(&self, n: usize) {
        self.batch
            .store(n.clamp(1, 256) as u32, std::sync::atomic::Ordering::Relaxed);
    }

    /// Wake a waiting consumer in this process (after an enqueue done elsewhere in the store).
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    pub(crate) async fn publish(&self, key: &str, body: Vec<u8>) -> Result<(), QueueError> {
        let key = key.to_string();
        self.store
            .with(move |c| {
                c.execute(
                    "INSERT OR IGNORE INTO queue (id, body, enqueued_at) VALUES (?1, ?2, ?3)",
                    params![key, body, now_ms()],
                )
            })
            .await?;
        self.wake.notify_waiters();
        Ok(())
    }

    pub(crate) async fn next(&self, wait: Duration) -> Result<Option<Delivery>, QueueError> {
        let deadline = Instant::now() + wait;
        loop {
            // Register for a wake-up before looking, so a publish in between is not missed.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let lease = self.cfg.lease.as_millis() as i64;
            let mut buf = self.buffer.lock().await;
            if buf.is_empty() {
                let max = self.batch.load(std::sync::atomic::Ordering::Relaxed);
                buf.extend(self.store.queue_claim(&self.owner, lease, max).await?);
            }
            if let Some((key, body, deliveries)) = buf.pop_front() {
                return Ok(Some(Delivery {
                    body,
                    deliveries: deliveries + 1,
                    queued_at: None,
                    inner: DeliveryInner::Embedded { key },
                }));
            }
            drop(buf);
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            // Woken by an in-process publish, or poll for other processes' publishes.
            let _ = tokio::time::timeout(left.min(POLL), woken).await;
        }
    }

    pub(crate) async fn ack(&self, key: &str) -> Result<(), QueueError> {
        self.store
            .queue_exec("DELETE FROM queue WHERE id = ?1 AND (lease_owner = ?2 OR lease_owner IS NULL) AND ?3 = ?3", key, &self.owner, 0)
            .await?;
        Ok(())
    }

    pub(crate) async fn progress(&self, key: &str) -> Result<(), QueueError> {
        let until = now_ms() + self.cfg.lease.as_millis() as i64;
        self.store
            .queue_exec(
                "UPDATE queue SET lease_until = ?3 WHERE id = ?1 AND lease_owner = ?2",
                key,
                &self.owner,
                until,
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn release(&self, key: &str) -> Result<(), QueueError> {
        // A hand-back is not a failed attempt: it does not count towards the dead-letter limit.
        self.store
            .queue_exec(
                "UPDATE queue SET lease_owner = NULL, lease_until = NULL, deliveries = MAX(deliveries - 1, 0) WHERE id = ?1 AND lease_owner = ?2 AND ?3 = ?3",
                key,
                &self.owner,
                0,
            )
            .await?;
        self.wake.notify_waiters();
        Ok(())
    }

    pub(crate) fn emit(&self, ev: &JobEvent) {
        let _ = self.events.send(ev.clone());
    }
}

/// Follow a job through the store (works across processes: the CLI watching the daemon).
pub(crate) fn watch_store(store: Store, job_id: String) -> BoxStream<'static, JobEvent> {
    let stream = futures::stream::unfold(
        (store, job_id, 0i64, Vec::<JobEvent>::new(), false),
        |(store, id, mut seq, mut buf, done)| async move {
            loop {
                if let Some(ev) = (!buf.is_empty()).then(|| buf.remove(0)) {
                    let end = ev.is_terminal();
                    return Some((ev, (store, id, seq, buf, end)));
                }
                if done {
                    return None;
                }
                match store.events(&id, seq).await {
                    Ok(evs) if !evs.is_empty() => {
                        seq = evs.last().map(|e| e.seq).unwrap_or(seq);
                        buf = evs;
                    }
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        },
    );
    Box::pin(stream)
}

/// The delivery's key; a delivery always returns to the queue it came from.
fn key_of(d: &DeliveryInner) -> &str {
    match d {
        DeliveryInner::Embedded { key } => key,
        DeliveryInner::Nats(_) => {
            unreachable!("a delivery always returns to the queue it came from")
        }
    }
}

impl Backend for EmbeddedQueue {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    fn prepare(&mut self, concurrency: usize) -> Op<'_> {
        Box::pin(async move {
            self.reclaim_dead_leases().await?;
            self.set_batch(concurrency);
            Ok(())
        })
    }

    fn fit_batch(&self, n: usize) {
        self.set_batch(n);
    }

    fn publish<'a>(&'a self, key: &'a str, body: Vec<u8>) -> Op<'a> {
        Box::pin(EmbeddedQueue::publish(self, key, body))
    }

    fn submit<'a>(&'a self, store: &'a Store, job: &'a Job) -> Op<'a> {
        Box::pin(async move {
            // One transaction records the job and enqueues it.
            store.insert_and_enqueue(job).await?;
            self.wake();
            Ok(())
        })
    }

    fn requeue<'a>(&'a self, store: &'a Store, job: &'a Job, _seq: i64) -> Op<'a> {
        Box::pin(async move {
            let r = store.insert_and_enqueue(job).await.map(|_| ());
            self.wake();
            Ok(r?)
        })
    }

    fn next(&self, wait: Duration) -> Op<'_, Option<Delivery>> {
        Box::pin(EmbeddedQueue::next(self, wait))
    }

    fn ack(&self, d: DeliveryInner) -> Op<'_> {
        Box::pin(async move { EmbeddedQueue::ack(self, key_of(&d)).await })
    }

    fn progress<'a>(&'a self, d: &'a DeliveryInner) -> Op<'a> {
        Box::pin(EmbeddedQueue::progress(self, key_of(d)))
    }

    fn release(&self, d: DeliveryInner) -> Op<'_> {
        Box::pin(async move { EmbeddedQueue::release(self, key_of(&d)).await })
    }

    fn dead_letter<'a>(
        &'a self,
        d: DeliveryInner,
        _job_id: Option<&'a str>,
        _reason: &'a str,
    ) -> Op<'a> {
        // The store holds the dead letter; the queue only forgets the message.
        Box::pin(async move { EmbeddedQueue::ack(self, key_of(&d)).await })
    }

    fn emit<'a>(&'a self, ev: &'a JobEvent) -> BoxFuture<'a, ()> {
        EmbeddedQueue::emit(self, ev);
        Box::pin(std::future::ready(()))
    }

    fn watch<'a>(
        &'a self,
        store: &'a Store,
        job_id: &'a str,
    ) -> Op<'a, BoxStream<'static, JobEvent>> {
        Box::pin(std::future::ready(Ok(watch_store(
            store.clone(),
            job_id.to_string(),
        ))))
    }
}
