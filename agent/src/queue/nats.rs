//! The NATS JetStream backend.
//!
//! Per agent `A`: stream `DESKHAND_A` on `deskhand.A.jobs` (work-queue retention, 2-minute
//! duplicate window keyed by job id), durable pull consumer `agent` (explicit acks, `ack_wait` =
//! lease, unlimited server-side redelivery — we count deliveries and dead-letter ourselves, so a
//! poison message always carries its reason), stream `DESKHAND_A_DEAD` on `deskhand.A.dead`,
//! events on `deskhand.A.events.<job>`, job state in KV bucket `deskhand_A_jobs`, finished jobs'
//! files in object store `deskhand_A_files` (`<job>/<path>`, listed under KV key `files.<job>`),
//! and the phone's API requests on `deskhand.A.api` (see [`crate::hub`]).

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, kv, object_store, stream, AckKind};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::Mutex;

use super::{Backend, Delivery, DeliveryInner, Op, QueueConfig, QueueError};
use crate::job::{Job, JobEvent};
use crate::store::Store;

/// Subject and resource names for one agent.
#[derive(Debug, Clone)]
pub struct Names {
    /// Jobs subject.
    pub jobs: String,
    /// Dead-letter subject.
    pub dead: String,
    /// Events subject prefix (`…events.<job>`).
    pub events: String,
    /// Jobs stream.
    pub stream: String,
    /// Dead-letter stream.
    pub dead_stream: String,
    /// KV bucket for job state.
    pub bucket: String,
    /// Object store bucket for finished jobs' files.
    pub files: String,
    /// Subject of the API requests a phone sends through the hub.
    pub api: String,
}

impl Names {
    /// Names for agent `agent` (sanitised to what NATS allows).
    pub fn for_agent(agent: &str) -> Names {
        let a: String = agent
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Names {
            jobs: format!("deskhand.{a}.jobs"),
            dead: format!("deskhand.{a}.dead"),
            events: format!("deskhand.{a}.events"),
            stream: format!("DESKHAND_{}", a.to_uppercase()),
            dead_stream: format!("DESKHAND_{}_DEAD", a.to_uppercase()),
            bucket: format!("deskhand_{a}_jobs"),
            files: format!("deskhand_{a}_files"),
            api: format!("deskhand.{a}.api"),
        }
    }
}

/// A connection to JetStream for one agent.
pub struct NatsQueue {
    client: async_nats::Client,
    js: jetstream::Context,
    names: Names,
    consumer: jetstream::consumer::PullConsumer,
    messages: Mutex<Option<pull::Stream>>,
    kv: kv::Store,
    files: object_store::ObjectStore,
    file_limit: u64,
    batch: usize,
}

/// The hub's inbox for this agent, when our server is a leaf of the hub: a stream in the hub's
/// domain on the jobs subject, so a phone's job sent while this desktop is off waits there; the
/// local work queue sources from it (a job that also reached the local stream directly arrives
/// twice, and the ledger runs it once). Made here when the hub can be reached; when it cannot,
/// the source still names it and picks up once it exists.
async fn hub_inbox(client: &async_nats::Client, names: &Names, domain: &str) -> stream::Source {
    let inbox = format!("{}_INBOX", names.stream);
    let hub = jetstream::with_domain(client.clone(), domain);
    let made = hub.get_or_create_stream(stream::Config {
        name: inbox.clone(),
        subjects: vec![names.jobs.clone()],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        max_age: super::MAX_WAIT,
        ..Default::default()
    });
    match tokio::time::timeout(Duration::from_secs(5), made).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(%domain, error = %e, "cannot make the hub's inbox stream; jobs sent to the hub while this desktop is off will not wait there")
        }
        Err(_) => {
            tracing::warn!(%domain, "the hub's JetStream does not answer; jobs it holds arrive once it does")
        }
    }
    stream::Source {
        name: inbox,
        // The server takes the domain as the external API prefix (a `domain` field is refused).
        external: Some(stream::External {
            api_prefix: format!("$JS.{domain}.API"),
            delivery_prefix: None,
        }),
        ..Default::default()
    }
}

fn js_err(e: impl std::fmt::Display) -> QueueError {
    QueueError::JetStream(e.to_string())
}

impl NatsQueue {
    pub(crate) async fn connect(url: &str, cfg: QueueConfig) -> Result<NatsQueue, QueueError> {
        let shown = super::auth::redact(url);
        let (options, bare) =
            cfg.auth
                .connect_options(url)
                .await
                .map_err(|message| QueueError::Connect {
                    url: shown.clone(),
                    message,
                })?;
        let client = options
            .connection_timeout(Duration::from_secs(5))
            .name(format!("deskhand-{}", cfg.agent))
            .connect(bare.as_str())
            .await
            .map_err(|e| {
                use async_nats::ConnectErrorKind as K;
                let (url, message) = (shown.clone(), e.to_string());
                match e.kind() {
                    K::Dns | K::TimedOut | K::Io => QueueError::Unreachable { url, message },
                    _ => QueueError::Connect { url, message },
                }
            })?;
        let js = jetstream::new(client.clone());
        let names = Names::for_agent(&cfg.agent);
        let mut jobs_config = stream::Config {
            name: names.stream.clone(),
            subjects: vec![names.jobs.clone()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            // A phone's job waits this long for a sleeping desktop.
            max_age: super::MAX_WAIT,
            ..Default::default()
        };
        if let Some(domain) = &cfg.hub_domain {
            jobs_config.sources = Some(vec![hub_inbox(&client, &names, domain).await]);
        }
        let jobs = js.get_or_create_stream(jobs_config).await.map_err(js_err)?;
        js.get_or_create_stream(stream::Config {
            name: names.dead_stream.clone(),
            subjects: vec![names.dead.clone()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(js_err)?;
        let consumer: jetstream::consumer::PullConsumer = jobs
            .get_or_create_consumer(
                "agent",
                pull::Config {
                    durable_name: Some("agent".into()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: cfg.lease,
                    max_deliver: -1,
                    filter_subject: names.jobs.clone(),
                    ..Default::default()
                },
            )
            .await
            .map_err(js_err)?;
        let kv = match js.get_key_value(&names.bucket).await {
            Ok(kv) => kv,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: names.bucket.clone(),
                    history: 1,
                    ..Default::default()
                })
                .await
                .map_err(js_err)?,
        };
        let files = match js.get_object_store(&names.files).await {
            Ok(os) => os,
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: names.files.clone(),
                    description: Some("finished jobs' files, for the phone".into()),
                    max_age: cfg.files.keep,
                    max_bytes: i64::try_from(cfg.files.bucket_bytes).unwrap_or(i64::MAX),
                    storage: stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(js_err)?,
        };
        Ok(NatsQueue {
            client,
            js,
            names,
            consumer,
            messages: Mutex::new(None),
            kv,
            files,
            file_limit: cfg.files.file_bytes,
            batch: 16,
        })
    }

    /// How many messages one pull may bring (keep it near the agent's concurrency: pulled messages'
    /// ack timers run while they wait in our buffer).
    pub fn set_batch(&mut self, batch: usize) {
        self.batch = batch.max(1);
    }

    /// The names in use.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The underlying client (benchmarks use it for the bare request/reply floor).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub(crate) async fn publish(&self, key: &str, body: Vec<u8>) -> Result<(), QueueError> {
        let ack = self
            .js
            .send_publish(
                self.names.jobs.clone(),
                jetstream::message::PublishMessage::build()
                    .payload(Bytes::from(body))
                    .message_id(key),
            )
            .await
            .map_err(js_err)?;
        ack.await.map_err(js_err)?;
        Ok(())
    }

    pub(crate) async fn next(&self, wait: Duration) -> Result<Option<Delivery>, QueueError> {
        let mut guard = self.messages.lock().await;
        if guard.is_none() {
            let s = self
                .consumer
                .stream()
                .max_messages_per_batch(self.batch)
                .heartbeat(Duration::from_secs(5))
                .expires(Duration::from_secs(30))
                .messages()
                .await
                .map_err(js_err)?;
            *guard = Some(s);
        }
        let stream = guard.as_mut().expect("just set");
        match tokio::time::timeout(wait, stream.next()).await {
            Err(_) => Ok(None),
            Ok(None) => {
                *guard = None;
                Ok(None)
            }
            Ok(Some(Err(e))) => {
                // Missed heartbeats after a server restart, and the like: start a fresh pull next time.
                tracing::warn!(error = %e, "NATS pull stream error; re-subscribing");
                *guard = None;
                Ok(None)
            }
            Ok(Some(Ok(msg))) => {
                let info = msg.info().ok();
                let deliveries = info
                    .as_ref()
                    .map(|i| i.delivered.max(1) as u32)
                    .unwrap_or(1);
                let queued_at = info.and_then(|i| {
                    let nanos = i64::try_from(i.published.unix_timestamp_nanos()).ok()?;
                    Some(chrono::DateTime::from_timestamp_nanos(nanos))
                });
                Ok(Some(Delivery {
                    body: msg.payload.to_vec(),
                    deliveries,
                    queued_at,
                    inner: DeliveryInner::Nats(Box::new(msg)),
                }))
            }
        }
    }

    pub(crate) async fn dead_letter(
        &self,
        m: &jetstream::Message,
        job_id: Option<&str>,
        reason: &str,
    ) -> Result<(), QueueError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            "Deskhand-Reason",
            reason.replace(['\r', '\n'], " ").as_str(),
        );
        if let Some(id) = job_id {
            headers.insert("Deskhand-Job", id);
        }
        let ack = self
            .js
            .publish_with_headers(self.names.dead.clone(), headers, m.payload.clone())
            .await
            .map_err(js_err)?;
        ack.await.map_err(js_err)?;
        m.ack_with(AckKind::Term).await.map_err(js_err)
    }

    pub(crate) async fn emit(&self, ev: &JobEvent) {
        let body = Bytes::from(serde_json::to_vec(ev).unwrap_or_default());
        if let Err(e) = self
            .client
            .publish(format!("{}.{}", self.names.events, ev.job_id), body.clone())
            .await
        {
            tracing::warn!(error = %e, "could not publish a job event to NATS");
        }
        // The final state is stored with JetStream's ack, so a phone reading KV after the end sees
        // it; the states before it (running, step n) are plain publishes to the bucket's subject,
        // in order on this connection, without a round trip each (the job store has them durably).
        if ev.is_terminal() {
            if let Err(e) = self.kv.put(&ev.job_id, body).await {
                tracing::warn!(error = %e, "could not store job state in NATS KV");
            }
        } else {
            let kv = &self.kv;
            let subject = format!(
                "{}{}",
                kv.put_prefix.as_ref().unwrap_or(&kv.prefix),
                ev.job_id
            );
            if let Err(e) = self.client.publish(subject, body).await {
                tracing::warn!(error = %e, "could not store job state in NATS KV");
            }
        }
    }

    /// Put a finished job's files into the object store as `<job>/<path>` and list them under KV
    /// key `files.<job>`: `[{"path", "object", "size"}]`, or `{"path", "skipped"}` for a file over
    /// the size limit or gone. A file that cannot be stored is logged and skipped, never fatal:
    /// the job's result stands.
    pub async fn keep_outputs(
        &self,
        job_id: &str,
        files: &[super::Output],
    ) -> Result<(), QueueError> {
        if files.is_empty() {
            return Ok(());
        }
        let mut listed = Vec::new();
        for f in files {
            let object = format!("{job_id}/{}", f.rel);
            let size = match tokio::fs::metadata(&f.path).await {
                Ok(m) if m.is_file() => m.len(),
                _ => {
                    listed
                        .push(serde_json::json!({"path": f.rel, "skipped": "not a file any more"}));
                    continue;
                }
            };
            if size > self.file_limit {
                listed.push(serde_json::json!({"path": f.rel, "size": size, "skipped": format!("over the {} byte limit for the hub", self.file_limit)}));
                continue;
            }
            let put = async {
                let mut file = tokio::fs::File::open(&f.path).await.map_err(js_err)?;
                self.files
                    .put(object.as_str(), &mut file)
                    .await
                    .map_err(js_err)
            };
            match put.await {
                Ok(_) => {
                    listed.push(serde_json::json!({"path": f.rel, "object": object, "size": size}))
                }
                Err(e) => {
                    tracing::warn!(job = job_id, file = %f.rel, error = %e, "could not put a result file on the hub");
                    listed.push(
                        serde_json::json!({"path": f.rel, "skipped": "the hub did not take it"}),
                    );
                }
            }
        }
        let body = serde_json::to_vec(&listed).unwrap_or_default();
        self.kv
            .put(format!("files.{job_id}"), body.into())
            .await
            .map_err(js_err)?;
        Ok(())
    }

    /// A stored result file's bytes (tests and `deskhand` tooling read them back).
    pub async fn output(&self, object: &str) -> Result<Vec<u8>, QueueError> {
        use tokio::io::AsyncReadExt;
        let mut o = self.files.get(object).await.map_err(js_err)?;
        let mut out = Vec::new();
        o.read_to_end(&mut out).await.map_err(js_err)?;
        Ok(out)
    }

    /// Job state as the KV bucket has it (what a phone sees without reaching the desktop).
    pub async fn state_of(&self, job_id: &str) -> Result<Option<JobEvent>, QueueError> {
        let v = self.kv.get(job_id).await.map_err(js_err)?;
        Ok(v.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// Dead letters on the dead-letter stream: `(job id, reason)`.
    pub async fn dead_letters(&self) -> Result<Vec<(Option<String>, String)>, QueueError> {
        let s = self
            .js
            .get_stream(&self.names.dead_stream)
            .await
            .map_err(js_err)?;
        let c: jetstream::consumer::PullConsumer = s
            .create_consumer(pull::Config {
                ack_policy: jetstream::consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .map_err(js_err)?;
        let mut out = Vec::new();
        let mut batch = c
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .map_err(js_err)?;
        while let Some(Ok(m)) = batch.next().await {
            let h = m.headers.clone().unwrap_or_default();
            out.push((
                h.get("Deskhand-Job").map(|v| v.to_string()),
                h.get("Deskhand-Reason")
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
            ));
        }
        Ok(out)
    }

    pub(crate) async fn watch(
        &self,
        job_id: &str,
    ) -> Result<BoxStream<'static, JobEvent>, QueueError> {
        // Subscribe first, then read the current state, so no transition slips between the two.
        let sub = self
            .client
            .subscribe(format!("{}.{}", self.names.events, job_id))
            .await
            .map_err(js_err)?;
        let current = self.state_of(job_id).await?;
        let live =
            sub.filter_map(|m| async move { serde_json::from_slice::<JobEvent>(&m.payload).ok() });
        let first = futures::stream::iter(current);
        let all = crate::job::until_terminal(Box::pin(first.chain(live)));
        Ok(all)
    }
}

pub(crate) async fn ack(m: &jetstream::Message) -> Result<(), QueueError> {
    m.ack().await.map_err(js_err)
}

pub(crate) async fn progress(m: &jetstream::Message) -> Result<(), QueueError> {
    m.ack_with(AckKind::Progress).await.map_err(js_err)
}

pub(crate) async fn release(m: &jetstream::Message) -> Result<(), QueueError> {
    m.ack_with(AckKind::Nak(None)).await.map_err(js_err)
}

/// The delivery's message; a delivery always returns to the queue it came from.
fn message_of(d: &DeliveryInner) -> &jetstream::Message {
    match d {
        DeliveryInner::Nats(m) => m,
        DeliveryInner::Embedded { .. } => {
            unreachable!("a delivery always returns to the queue it came from")
        }
    }
}

impl Backend for NatsQueue {
    fn kind(&self) -> &'static str {
        "nats"
    }

    fn prepare(&mut self, concurrency: usize) -> Op<'_> {
        self.set_batch(concurrency);
        Box::pin(std::future::ready(Ok(())))
    }

    fn publish<'a>(&'a self, key: &'a str, body: Vec<u8>) -> Op<'a> {
        Box::pin(NatsQueue::publish(self, key, body))
    }

    fn submit<'a>(&'a self, store: &'a Store, job: &'a Job) -> Op<'a> {
        Box::pin(async move {
            store.insert(job).await?;
            NatsQueue::publish(self, &job.id.to_string(), job.to_bytes()).await
        })
    }

    fn requeue<'a>(&'a self, _store: &'a Store, job: &'a Job, seq: i64) -> Op<'a> {
        // A key of its own: JetStream drops a second message with the job's id inside its
        // duplicate window.
        Box::pin(async move {
            NatsQueue::publish(self, &format!("{}.resume.{seq}", job.id), job.to_bytes()).await
        })
    }

    fn next(&self, wait: Duration) -> Op<'_, Option<Delivery>> {
        Box::pin(NatsQueue::next(self, wait))
    }

    fn ack(&self, d: DeliveryInner) -> Op<'_> {
        Box::pin(async move { ack(message_of(&d)).await })
    }

    fn progress<'a>(&'a self, d: &'a DeliveryInner) -> Op<'a> {
        Box::pin(progress(message_of(d)))
    }

    fn release(&self, d: DeliveryInner) -> Op<'_> {
        Box::pin(async move { release(message_of(&d)).await })
    }

    fn present(&self, body: Vec<u8>) -> Op<'_> {
        Box::pin(async move {
            self.kv
                .put(super::PRESENCE_KEY, body.into())
                .await
                .map(|_| ())
                .map_err(js_err)
        })
    }

    fn keep_outputs<'a>(&'a self, job_id: &'a str, files: &'a [super::Output]) -> Op<'a> {
        Box::pin(NatsQueue::keep_outputs(self, job_id, files))
    }

    fn dead_letter<'a>(
        &'a self,
        d: DeliveryInner,
        job_id: Option<&'a str>,
        reason: &'a str,
    ) -> Op<'a> {
        Box::pin(async move { NatsQueue::dead_letter(self, message_of(&d), job_id, reason).await })
    }

    fn emit<'a>(&'a self, ev: &'a JobEvent) -> BoxFuture<'a, ()> {
        Box::pin(NatsQueue::emit(self, ev))
    }

    fn watch<'a>(
        &'a self,
        _store: &'a Store,
        job_id: &'a str,
    ) -> Op<'a, BoxStream<'static, JobEvent>> {
        Box::pin(NatsQueue::watch(self, job_id))
    }
}
