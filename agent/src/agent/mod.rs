//! The agent daemon: components around a cloneable handle. It consumes deliveries from the queue,
//! runs each job's plan with a concurrency limit, records every transition (store, then queue
//! events, then in-process subscribers), and shuts down gracefully: running jobs get a grace period,
//! then are handed back to the queue.
//!
//! The parts, one file each:
//! - this file: the [`Agent`] handle, start, the serving loop and shutdown, the dashboard writer;
//! - [`config`]: [`AgentConfig`], built in one place from defaults, the config file, the
//!   environment (read once) and the command line;
//! - `admit`: the one gate every job passes ([`submit`], `run_now`, queue deliveries), and the
//!   one place a refusal is audited;
//! - `delivery`: a delivery from admission to acknowledgement, and the execution of a plan;
//! - `held`: the watcher that requeues held jobs once what held them is fixed;
//! - `schedules`: the loop that fires due schedule slots.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, Mutex, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::browsers::BrowserPool;
use crate::job::{Job, JobError, JobEvent, JobState, Transition};
use crate::queue::{Queue, QueueError};
use crate::skills::{SkillEnv, Skills};
use crate::store::{Store, StoreError};

mod admit;
pub mod config;
mod delivery;
mod held;
mod schedules;

pub use admit::submit;
pub use config::{AgentConfig, AgentFlags};

/// Agent failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The job was refused.
    #[error(transparent)]
    Job(#[from] JobError),
    /// State database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Queue.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The schedule ledger.
    #[error(transparent)]
    Schedule(#[from] deskhand_schedule::ScheduleError),
    /// Cancelling a job that has already ended.
    #[error("job {0} has already ended ({1}); nothing to cancel")]
    AlreadyEnded(String, &'static str),
}

impl AgentError {
    /// A database lock held by another process at that instant: worth trying again.
    pub fn is_busy(&self) -> bool {
        match self {
            AgentError::Store(e) | AgentError::Queue(QueueError::Store(e)) => e.is_busy(),
            AgentError::Schedule(e) => e.is_busy(),
            _ => false,
        }
    }

    /// A queue server that did not answer (as opposed to one that refused us): worth waiting for.
    pub fn is_unreachable_queue(&self) -> bool {
        matches!(self, AgentError::Queue(QueueError::Unreachable { .. }))
    }
}

struct Inner {
    cfg: AgentConfig,
    store: Store,
    queue: Queue,
    skills: std::sync::RwLock<(Fingerprint, Arc<Skills>)>,
    env: Arc<SkillEnv>,
    running: Mutex<HashMap<String, CancellationToken>>,
    events: broadcast::Sender<JobEvent>,
    /// Stop taking work.
    stop: CancellationToken,
    /// Interrupt running jobs (after the grace period).
    interrupt: CancellationToken,
    /// The sleep inhibitor.
    awake: crate::scheduler::KeepAwake,
    /// The schedule ledger.
    ledger: Arc<deskhand_schedule::Ledger>,
    /// Wakes the dashboard writer (shared with the skills' guards, which wake it when an
    /// approval is asked for).
    dashboard: Arc<tokio::sync::Notify>,
}

/// Jobs' progress events, recorded and sent like transitions. Weak: the environment it sits in
/// belongs to the agent.
struct Watchers(std::sync::Weak<Inner>);

impl crate::guard::JobEvents for Watchers {
    fn emit<'a>(&'a self, job: &'a str, t: Transition) -> futures::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(inner) = self.0.upgrade() {
                Agent { inner }.transition(job, t).await;
            }
        })
    }
}

/// Cloneable handle to a running agent.
#[derive(Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

impl Agent {
    /// Open the store and queue, and get ready to serve.
    pub async fn start(cfg: AgentConfig) -> Result<Agent, AgentError> {
        let store = Store::open(&cfg.workspace)?;
        let mut queue = Queue::open(&cfg.queue, &store, cfg.queue_config.clone()).await?;
        queue.prepare(cfg.concurrency).await?;
        let ledger = crate::scheduler::open(&cfg.workspace).await?;
        let env = Arc::new(SkillEnv::new(
            cfg.workspace.clone(),
            BrowserPool::new(cfg.browser.clone()),
            store.clone(),
            crate::connector_skills::Connectors::new(
                cfg.workspace.clone(),
                cfg.connectors.clone(),
                cfg.secret_store,
            ),
            Arc::clone(&ledger),
        ));
        env.set_planner(cfg.planner.clone());
        let (events, _) = broadcast::channel(4096);
        let awake = crate::scheduler::KeepAwake::new(cfg.keep_awake, cfg.inhibit_command.clone());
        let skills = std::sync::RwLock::new((
            skills_fingerprint(&cfg.workspace),
            Arc::new(Skills::load(&cfg.workspace)),
        ));
        let dashboard = Arc::clone(env.dashboard());
        let agent = Agent {
            inner: Arc::new(Inner {
                cfg,
                store,
                queue,
                skills,
                env,
                running: Mutex::new(HashMap::new()),
                events,
                stop: CancellationToken::new(),
                interrupt: CancellationToken::new(),
                awake,
                ledger,
                dashboard,
            }),
        };
        agent
            .inner
            .env
            .set_events(Arc::new(Watchers(Arc::downgrade(&agent.inner))));
        Ok(agent)
    }

    /// The state database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The link to the browser extension.
    pub fn extension(&self) -> &Arc<crate::extension::ExtensionHub> {
        self.inner.env.extension()
    }

    /// The queue.
    pub fn queue(&self) -> &Queue {
        &self.inner.queue
    }

    /// Connections and their health (from the cache; no keyring or network needed).
    pub async fn connections(&self) -> Vec<deskhand_connectors::ConnectionInfo> {
        let env = Arc::clone(&self.inner.env);
        tokio::task::spawn_blocking(move || env.connections())
            .await
            .unwrap_or_default()
    }

    /// The skills this agent runs, reloaded when the workspace's skill files change (an install
    /// or an edit while the daemon runs).
    pub fn skills(&self) -> Arc<Skills> {
        let now = skills_fingerprint(&self.inner.cfg.workspace);
        {
            let cur = self.inner.skills.read().unwrap_or_else(|p| p.into_inner());
            if cur.0 == now {
                return Arc::clone(&cur.1);
            }
        }
        let fresh = Arc::new(Skills::load(&self.inner.cfg.workspace));
        for p in fresh.problems() {
            tracing::warn!(problem = %p, "a skill did not load");
        }
        *self.inner.skills.write().unwrap_or_else(|p| p.into_inner()) = (now, Arc::clone(&fresh));
        fresh
    }

    /// Read-only access to the workspace's files, with the guard's path checks (the MCP
    /// server's resources).
    pub fn reader(&self) -> crate::guard::Reader {
        self.inner.env.reader()
    }

    /// Transitions as they happen (for SSE).
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.inner.events.subscribe()
    }

    /// The workspace this agent runs in.
    pub fn workspace(&self) -> &std::path::Path {
        &self.inner.cfg.workspace
    }

    /// Cancelled when the daemon is asked to stop (for long-lived connections to end with it).
    pub fn stopping(&self) -> CancellationToken {
        self.inner.stop.child_token()
    }

    /// Ask the daemon to stop: no new jobs; running ones get the grace period.
    pub fn shutdown(&self) {
        self.inner.stop.cancel();
    }

    /// Validate and enqueue a job (what the HTTP API and `dispatch` do).
    pub async fn submit(&self, job: Job) -> Result<String, AgentError> {
        admit::submit(&self.inner.store, &self.inner.queue, &self.skills(), job).await
    }

    /// Cancel a job: a queued one is skipped when delivered, a running one is stopped.
    pub async fn cancel(&self, id: &str) -> Result<JobState, AgentError> {
        let state = self.inner.store.request_cancel(id).await?;
        if state.is_terminal() {
            return Err(AgentError::AlreadyEnded(id.to_string(), state.as_str()));
        }
        if let Some(t) = self.inner.running.lock().await.get(id) {
            t.cancel();
        } else if matches!(state, JobState::Queued | JobState::Held) {
            self.transition(id, Transition::Cancel).await;
        }
        Ok(self.inner.store.get(id).await?.state)
    }

    async fn transition(&self, id: &str, t: Transition) -> Option<JobEvent> {
        match self.inner.store.transition(id, t).await {
            Ok(Some(ev)) => {
                // Watchers in this process first; the queue's copy (a NATS round trip) after.
                let _ = self.inner.events.send(ev.clone());
                if ev.is_terminal() && self.inner.queue.nats().is_some() {
                    // A phone on the hub sees the end only once the job's files are there.
                    self.keep_outputs(id).await;
                }
                self.inner.queue.emit(&ev).await;
                Some(ev)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!(job = id, error = %e, "could not record a transition");
                None
            }
        }
    }

    /// Hand a finished job's files to the queue (a hub keeps them for the phone).
    async fn keep_outputs(&self, id: &str) {
        let Ok(rec) = self.inner.store.get(id).await else {
            return;
        };
        let root = self.workspace();
        let files: Vec<crate::queue::Output> = rec
            .outputs
            .iter()
            .map(|rel| crate::queue::Output {
                rel: rel.clone(),
                path: root.join(rel),
            })
            .collect();
        if let Err(e) = self.inner.queue.keep_outputs(id, &files).await {
            tracing::warn!(job = id, error = %e, "could not list the job's files on the hub");
        }
    }

    /// Refresh the queue's presence key until the agent stops: a phone on the hub shows the
    /// desktop's last-seen time from it.
    async fn keep_present(&self) {
        let mut tick = tokio::time::interval(crate::queue::PRESENCE_EVERY);
        loop {
            tokio::select! {
                _ = self.inner.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let body = serde_json::json!({
                "at": chrono::Utc::now().to_rfc3339(),
                "agent": self.inner.cfg.queue_config.agent,
                "version": env!("CARGO_PKG_VERSION"),
            });
            if let Err(e) = self
                .inner
                .queue
                .present(body.to_string().into_bytes())
                .await
            {
                tracing::debug!(error = %e, "could not refresh the presence key");
            }
        }
    }

    /// Consume and run jobs until [`Agent::shutdown`]; then drain gracefully.
    pub async fn run(&self) -> Result<(), AgentError> {
        let slots = Arc::new(Semaphore::new(self.inner.cfg.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        tracing::info!(
            queue = self.inner.queue.kind(),
            concurrency = self.inner.cfg.concurrency,
            "agent serving"
        );
        let watcher = {
            let me = self.clone();
            tokio::spawn(async move { me.watch_held().await })
        };
        let schedules = {
            let me = self.clone();
            tokio::spawn(async move { me.watch_schedules().await })
        };
        let dashboard = {
            let me = self.clone();
            tokio::spawn(async move { me.write_dashboards().await })
        };
        let presence = {
            let me = self.clone();
            tokio::spawn(async move { me.keep_present().await })
        };
        // A fresh dashboard as soon as the agent is up (schedules, connections), not only after a job.
        self.inner.dashboard.notify_one();
        loop {
            let permit = tokio::select! {
                _ = self.inner.stop.cancelled() => break,
                p = Arc::clone(&slots).acquire_owned() => p.expect("semaphore open"),
            };
            // Lease only as many as can start now: buffered deliveries' leases would run out unused.
            self.inner.queue.fit_batch(slots.available_permits() + 1);
            let delivery = tokio::select! {
                _ = self.inner.stop.cancelled() => break,
                d = self.inner.queue.next(Duration::from_millis(250)) => d,
            };
            match delivery {
                Ok(Some(d)) => {
                    let me = self.clone();
                    tasks.spawn(async move {
                        me.handle(d).await;
                        drop(permit);
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    // A broker restart, say: keep serving, back off a little.
                    tracing::warn!(error = %e, "queue error; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            while tasks.try_join_next().is_some() {}
        }
        // Graceful: let running jobs finish within the grace period, then interrupt them.
        tracing::info!(
            running = tasks.len(),
            "shutting down; waiting up to {:?} for running jobs",
            self.inner.cfg.grace
        );
        if tokio::time::timeout(self.inner.cfg.grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            self.inner.interrupt.cancel();
            while tasks.join_next().await.is_some() {}
        }
        watcher.abort();
        schedules.abort();
        dashboard.abort();
        presence.abort();
        self.refresh_dashboard().await;
        self.inner.awake.release();
        self.inner.env.shutdown_browsers().await;
        Ok(())
    }

    /// Use this connector hub (the demo's fake accounts) instead of the configured one.
    pub async fn set_hub(&self, hub: Arc<deskhand_connectors::Hub>) {
        self.inner.env.set_hub(hub).await;
    }

    /// Close the browsers its jobs started (`run` does this on shutdown; a caller that runs
    /// jobs now, several agents in one process, does it after each).
    pub async fn close_browsers(&self) {
        self.inner.env.shutdown_browsers().await;
    }

    /// The schedule ledger.
    pub fn ledger(&self) -> &Arc<deskhand_schedule::Ledger> {
        &self.inner.ledger
    }

    /// Whether the sleep inhibitor is held now.
    pub fn keeping_awake(&self) -> bool {
        self.inner.awake.is_held()
    }

    /// Rewrites dashboard.html when woken, at most every 250 ms (bursts of jobs coalesce).
    async fn write_dashboards(&self) {
        loop {
            tokio::select! {
                _ = self.inner.stop.cancelled() => return,
                _ = self.inner.dashboard.notified() => {}
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            self.refresh_dashboard().await;
        }
    }

    /// The live dashboard's content and its version, read now.
    pub async fn live_dashboard(&self) -> Result<(String, String), String> {
        crate::dashboard::live(&self.inner.store, &self.inner.ledger, &self.inner.env).await
    }

    /// Write dashboard.html now.
    pub async fn refresh_dashboard(&self) {
        if let Err(e) =
            crate::dashboard::write(&self.inner.store, &self.inner.ledger, &self.inner.env).await
        {
            tracing::warn!(error = %e, "could not write dashboard.html");
        }
    }
}

/// Each skill file with its mtime and size.
type Fingerprint = Vec<(PathBuf, Option<std::time::SystemTime>, u64)>;

/// What identifies the workspace's skill files now: each SKILL.md / skill.yaml with its mtime and
/// size. Cheap (a directory listing and a few stats), so it is checked per job.
fn skills_fingerprint(workspace: &std::path::Path) -> Fingerprint {
    let mut out = Vec::new();
    // Trusting a skill (another process) changes what may run.
    let trust = workspace.join(".deskhand/trust.json");
    if let Ok(m) = std::fs::metadata(&trust) {
        out.push((trust, m.modified().ok(), m.len()));
    }
    let Ok(dirs) = std::fs::read_dir(workspace.join("skills")) else {
        return out;
    };
    for d in dirs.flatten() {
        for f in ["SKILL.md", "skill.yaml"] {
            let p = d.path().join(f);
            if let Ok(m) = std::fs::metadata(&p) {
                out.push((p, m.modified().ok(), m.len()));
            }
        }
    }
    out.sort();
    out
}
