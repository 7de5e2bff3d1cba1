//! The agent daemon: components around a cloneable handle. It consumes deliveries from the queue,
//! runs each job's plan with a concurrency limit, records every transition (store, then queue
//! events, then in-process subscribers), and shuts down gracefully: running jobs get a grace period,
//! then are handed back to the queue.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, Mutex, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::browsers::BrowserPool;
use crate::job::{Job, JobError, JobEvent, JobState, Transition};
use crate::queue::{Delivery, Queue, QueueConfig, QueueError};
use crate::runner::{run_plan, RunError};
use crate::skills::{SkillEnv, Skills};
use crate::store::{Store, StoreError};

/// Everything the daemon needs to start.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Workspace folder.
    pub workspace: PathBuf,
    /// `embedded` or `nats://host:port`.
    pub queue: String,
    /// Queue behaviour (agent name, lease, dead-letter limit).
    pub queue_config: QueueConfig,
    /// Jobs at once.
    pub concurrency: usize,
    /// Steps at once within a job.
    pub parallel_steps: usize,
    /// How long running jobs may finish on shutdown before they are handed back.
    pub grace: Duration,
    /// Browser settings for browser steps.
    pub browser: deskhand_browser::LaunchOptions,
    /// Connector settings (provider URLs, retry policy, ...).
    pub connectors: deskhand_connectors::Settings,
    /// Where connector secrets are kept.
    pub secret_store: deskhand_connectors::SecretStoreKind,
    /// How often held jobs are checked for a fix.
    pub held_check: Duration,
    /// Hold a sleep inhibitor while jobs run or a schedule is due soon.
    pub keep_awake: bool,
    /// The inhibitor program (default `systemd-inhibit` on PATH).
    pub inhibit_command: Option<PathBuf>,
    /// Longest sleep between schedule checks.
    pub schedule_tick: Duration,
}

impl AgentConfig {
    /// Defaults for a workspace.
    pub fn new(workspace: PathBuf) -> Self {
        AgentConfig {
            workspace,
            queue: "embedded".into(),
            queue_config: QueueConfig::default(),
            concurrency: 4,
            parallel_steps: 4,
            grace: Duration::from_secs(20),
            browser: deskhand_browser::LaunchOptions::default(),
            connectors: deskhand_connectors::Settings::default(),
            secret_store: deskhand_connectors::SecretStoreKind::Auto,
            held_check: Duration::from_secs(2),
            keep_awake: true,
            inhibit_command: None,
            schedule_tick: Duration::from_secs(30),
        }
    }
}

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
    #[error("schedule ledger: {0}")]
    Schedule(String),
    /// Cancelling a job that has already ended.
    #[error("job {0} has already ended ({1}); nothing to cancel")]
    AlreadyEnded(String, &'static str),
}

impl AgentError {
    /// A database lock held by another process at that instant: worth trying again.
    pub fn is_busy(&self) -> bool {
        match self {
            AgentError::Store(e) | AgentError::Queue(QueueError::Store(e)) => e.is_busy(),
            AgentError::Schedule(m) => m.contains("database is locked"),
            _ => false,
        }
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
        match &mut queue {
            Queue::Embedded(q) => {
                q.reclaim_dead_leases().await?;
                q.set_batch(cfg.concurrency);
            }
            Queue::Nats(q) => q.set_batch(cfg.concurrency),
        }
        let ledger = crate::scheduler::open(&cfg.workspace)
            .await
            .map_err(AgentError::Schedule)?;
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
        let (events, _) = broadcast::channel(4096);
        let awake = crate::scheduler::KeepAwake::new(cfg.keep_awake, cfg.inhibit_command.clone());
        let skills = std::sync::RwLock::new((
            skills_fingerprint(&cfg.workspace),
            Arc::new(Skills::load(&cfg.workspace)),
        ));
        let dashboard = Arc::clone(env.dashboard());
        Ok(Agent {
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
        })
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

    /// Transitions as they happen (for SSE).
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.inner.events.subscribe()
    }

    /// Ask the daemon to stop: no new jobs; running ones get the grace period.
    pub fn shutdown(&self) {
        self.inner.stop.cancel();
    }

    /// Validate and enqueue a job (what the HTTP API and `dispatch` do).
    pub async fn submit(&self, job: Job) -> Result<String, AgentError> {
        submit(&self.inner.store, &self.inner.queue, &self.skills(), job).await
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
        // A fresh dashboard as soon as the agent is up (schedules, connections), not only after a job.
        self.inner.dashboard.notify_one();
        loop {
            let permit = tokio::select! {
                _ = self.inner.stop.cancelled() => break,
                p = Arc::clone(&slots).acquire_owned() => p.expect("semaphore open"),
            };
            // Lease only as many as can start now: buffered deliveries' leases would run out unused.
            if let Queue::Embedded(q) = &self.inner.queue {
                q.set_batch(slots.available_permits() + 1);
            }
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
        self.refresh_dashboard().await;
        self.inner.awake.release();
        self.inner.env.shutdown_browsers().await;
        Ok(())
    }

    /// Use this connector hub (the demo's fake accounts) instead of the configured one.
    pub async fn set_hub(&self, hub: Arc<deskhand_connectors::Hub>) {
        self.inner.env.set_hub(hub).await;
    }

    /// The schedule ledger.
    pub fn ledger(&self) -> &Arc<deskhand_schedule::Ledger> {
        &self.inner.ledger
    }

    /// Whether the sleep inhibitor is held now.
    pub fn keeping_awake(&self) -> bool {
        self.inner.awake.is_held()
    }

    /// After a job ends: write its outcome on its schedule run, and refresh the dashboard.
    async fn after_job(&self, rec: &crate::store::JobRecord) {
        let id = rec.id.as_str();
        {
            let origin = Job::from_bytes(&rec.envelope).ok().map(|j| j.origin);
            if let Some((sid, due)) = origin.as_deref().and_then(crate::scheduler::parse_origin) {
                if let Some(outcome) = crate::scheduler::outcome_of(rec.state, rec.error.as_deref())
                {
                    let ledger = Arc::clone(&self.inner.ledger);
                    let r = tokio::task::spawn_blocking(move || {
                        ledger.finish(&sid, due, outcome, chrono::Utc::now())
                    })
                    .await;
                    if let Ok(Err(e)) = r {
                        tracing::warn!(job = id, error = %e, "could not record the schedule run's outcome");
                    }
                }
            }
        }
        self.inner.dashboard.notify_one();
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

    /// Write dashboard.html now.
    pub async fn refresh_dashboard(&self) {
        if let Err(e) =
            crate::dashboard::write(&self.inner.store, &self.inner.ledger, &self.inner.env).await
        {
            tracing::warn!(error = %e, "could not write dashboard.html");
        }
    }

    /// Claims due schedule slots and submits their jobs; keeps the machine awake before a slot.
    async fn watch_schedules(&self) {
        let ledger = Arc::clone(&self.inner.ledger);
        self.recover_claims().await;
        loop {
            let now = chrono::Utc::now();
            let l = Arc::clone(&ledger);
            let due = tokio::task::spawn_blocking(move || {
                l.due(now, crate::scheduler::LATE_AFTER)
                    .map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            match due {
                Ok(due) => {
                    for d in due {
                        self.fire(d, now).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the schedule ledger"),
            }
            let l = Arc::clone(&ledger);
            let next = tokio::task::spawn_blocking(move || l.next_wake(chrono::Utc::now()))
                .await
                .ok()
                .and_then(|r| r.ok())
                .flatten();
            let now = chrono::Utc::now();
            let until = next.map(|t| (t - now).to_std().unwrap_or_default());
            let running = !self.inner.running.lock().await.is_empty();
            self.inner.awake.set_due_soon(
                until.is_some_and(|u| u <= crate::scheduler::AWAKE_BEFORE),
                running,
            );
            // Wake at the next due time, but check at least every tick (schedules added by
            // another process, a clock that jumped after sleep).
            let wait = until
                .unwrap_or(self.inner.cfg.schedule_tick)
                .min(self.inner.cfg.schedule_tick)
                .max(Duration::from_millis(50));
            tokio::select! {
                _ = self.inner.stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Claim one due slot and submit its job.
    async fn fire(&self, d: deskhand_schedule::Due, now: chrono::DateTime<chrono::Utc>) {
        let job_id = ulid::Ulid::new();
        let l = Arc::clone(&self.inner.ledger);
        let d2 = d.clone();
        let claim = tokio::task::spawn_blocking(move || {
            l.claim(&d2, now, &job_id.to_string())
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        let claim = match claim {
            Ok(Some(c)) => c,
            Ok(None) => return, // another process took it
            Err(e) => {
                tracing::warn!(schedule = %d.schedule.id, error = %e, "cannot claim a due slot");
                return;
            }
        };
        if !claim.run {
            tracing::info!(schedule = %d.schedule.id, "missed slot skipped (schedule says skip)");
            return;
        }
        let job = crate::scheduler::job_for(
            job_id,
            &d.schedule.id,
            d.due_at,
            &d.schedule.skill,
            &d.schedule.params,
        );
        if let Err(e) = self.submit(job).await {
            let l = Arc::clone(&self.inner.ledger);
            let (sid, due) = (d.schedule.id.clone(), d.due_at);
            let why = e.to_string();
            let _ = tokio::task::spawn_blocking(move || {
                l.finish(
                    &sid,
                    due,
                    deskhand_schedule::Outcome::Error(why),
                    chrono::Utc::now(),
                )
            })
            .await;
        }
    }

    /// After a crash between claiming a slot and submitting its job: submit it now, same id.
    async fn recover_claims(&self) {
        let l = Arc::clone(&self.inner.ledger);
        let Ok(Ok(pending)) = tokio::task::spawn_blocking(move || l.pending_runs()).await else {
            return;
        };
        for run in pending {
            let Some(job_id) = run
                .job_id
                .as_deref()
                .and_then(|j| j.parse::<ulid::Ulid>().ok())
            else {
                continue;
            };
            match self.inner.store.get(&job_id.to_string()).await {
                Ok(rec) => {
                    if rec.state.is_terminal() {
                        self.after_job(&rec).await;
                    }
                }
                Err(_) => {
                    let l = Arc::clone(&self.inner.ledger);
                    let sid = run.schedule_id.clone();
                    let sched = tokio::task::spawn_blocking(move || l.get(&sid)).await;
                    if let Ok(Ok(s)) = sched {
                        let job = crate::scheduler::job_for(
                            job_id, &s.id, run.due_at, &s.skill, &s.params,
                        );
                        tracing::info!(schedule = %s.id, job = %job_id, "resubmitting a claimed slot's job");
                        let _ = self.submit(job).await;
                    }
                }
            }
        }
    }

    /// Puts held jobs back on the queue once what held them is fixed (a reconnected account).
    async fn watch_held(&self) {
        let mut tick = tokio::time::interval(self.inner.cfg.held_check);
        loop {
            tokio::select! {
                _ = self.inner.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let held = match self.inner.store.held().await {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list held jobs");
                    continue;
                }
            };
            for rec in held {
                let Ok(job) = Job::from_bytes(&rec.envelope) else {
                    continue;
                };
                let (name, params) = job.resolved();
                let skills = self.skills();
                let Ok((def, params)) = skills.check(&name, &params) else {
                    continue;
                };
                let conns = skills.connections_of(&def, &params);
                if conns.is_empty() {
                    continue;
                }
                let env = Arc::clone(&self.inner.env);
                let c2 = conns.clone();
                let fixed = tokio::task::spawn_blocking(move || c2.iter().all(|c| env.usable(c)))
                    .await
                    .unwrap_or(false);
                if !fixed {
                    continue;
                }
                let conn = conns
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                let id = job.id.to_string();
                let why = format!("{conn} is connected again; resuming");
                let Some(ev) = self.transition(&id, Transition::Requeue(why)).await else {
                    continue; // cancelled or changed meanwhile
                };
                let sent = match &self.inner.queue {
                    Queue::Embedded(q) => {
                        let r = self.inner.store.insert_and_enqueue(&job).await.map(|_| ());
                        q.wake();
                        r.map_err(|e| e.to_string())
                    }
                    // A key of its own: JetStream drops a second message with the job's id
                    // inside its duplicate window.
                    Queue::Nats(_) => self
                        .inner
                        .queue
                        .publish_raw(&format!("{id}.resume.{}", ev.seq), job.to_bytes())
                        .await
                        .map_err(|e| e.to_string()),
                };
                match sent {
                    Ok(()) => tracing::info!(job = %id, %conn, "held job resumed"),
                    Err(e) => {
                        tracing::warn!(job = %id, error = %e, "could not requeue a held job");
                        let _ = self
                            .transition(
                                &id,
                                Transition::Hold(format!("waiting to be requeued: {e}")),
                            )
                            .await;
                    }
                }
            }
        }
    }

    async fn handle(&self, d: Delivery) {
        let store = &self.inner.store;
        let queue = &self.inner.queue;
        let job = match Job::from_bytes(&d.body) {
            Ok(j) => j,
            Err(e) => {
                let id = serde_json::from_slice::<serde_json::Value>(&d.body)
                    .ok()
                    .and_then(|v| v["id"].as_str().map(String::from));
                store.audit().record(
                    "job.refused",
                    id.as_deref(),
                    serde_json::json!({"reason": e.to_string()}),
                );
                let _ = queue.dead_letter(store, d, id, &e.to_string()).await;
                return;
            }
        };
        let id = job.id.to_string();
        // A lease that ran out while we were still running the job: the running copy will ack it.
        if self.inner.running.lock().await.contains_key(&id) {
            tracing::debug!(job = %id, "already running here; ignoring the duplicate delivery");
            return;
        }
        // Known already when it was submitted here (or delivered before): one read serves the
        // signature check and the ledger below.
        let known = store.get(&id).await.ok();
        // Signed dispatch: only paired devices' jobs run; replays and forgeries are refused.
        if let Err(why) = self.check_signature(&job, &d.body, known.as_ref()).await {
            store.audit().record(
                "job.refused",
                Some(&id),
                serde_json::json!({"origin": job.origin, "reason": why}),
            );
            let _ = queue.dead_letter(store, d, Some(id), &why).await;
            return;
        }
        // The ledger: a job the store has seen end is never run again (redelivery, duplicate, late ack).
        let rec = match known {
            Some(r) => r,
            None => {
                if let Err(e) = store.insert(&job).await {
                    tracing::error!(job = %id, error = %e, "cannot record job; handing it back");
                    let _ = queue.release(d).await;
                    return;
                }
                match store.get(&id).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(job = %id, error = %e, "cannot read job; handing it back");
                        let _ = queue.release(d).await;
                        return;
                    }
                }
            }
        };
        if rec.state.is_terminal() {
            tracing::info!(job = %id, state = rec.state.as_str(), "already finished; acknowledging the duplicate delivery");
            let _ = queue.ack(d).await;
            return;
        }
        if rec.cancel_requested {
            self.transition(&id, Transition::Cancel).await;
            let _ = queue.ack(d).await;
            return;
        }
        let limit = self.inner.cfg.queue_config.max_deliveries;
        if d.deliveries > limit {
            let reason = format!(
                "gave up after {} deliveries (the agent kept stopping while running it)",
                d.deliveries - 1
            );
            self.transition(&id, Transition::Fail(reason.clone())).await;
            let _ = queue.dead_letter(store, d, Some(id), &reason).await;
            return;
        }
        let (name, params) = job.resolved();
        let skills = self.skills();
        let (def, params) = match skills.check(&name, &params) {
            Ok(x) => x,
            Err(e) => {
                store.audit().record(
                    "job.refused",
                    Some(&id),
                    serde_json::json!({"origin": job.origin, "reason": e.to_string()}),
                );
                self.transition(&id, Transition::Fail(e.to_string())).await;
                let _ = queue.dead_letter(store, d, Some(id), &e.to_string()).await;
                return;
            }
        };
        let plan = skills.plan(&def, params, Arc::clone(&self.inner.env));
        let ended = self.execute(&id, plan, Some(&d)).await;
        if ended == Ended::HandedBack {
            let _ = queue.release(d).await;
            return;
        }
        if let Err(e) = queue.ack(d).await {
            // The ledger makes a redelivery harmless.
            tracing::warn!(job = %id, error = %e, "ack failed; a redelivery will be skipped");
        }
    }

    /// Who may send this job: a paired, unrevoked device's signature over exactly this envelope;
    /// a job new to this agent must also be recent and carry an unused nonce.
    async fn check_signature(
        &self,
        job: &Job,
        body: &[u8],
        known: Option<&crate::store::JobRecord>,
    ) -> Result<(), String> {
        use crate::guard::devices::{Devices, SignatureError};
        let store = &self.inner.store;
        let devices = Devices::in_dir(store.private_dir());
        let id = job.id.to_string();
        let now = chrono::Utc::now();
        // Accepted before (submitted here, or a redelivery): the time window and the nonce were
        // checked then; the signature still binds this copy to what was accepted.
        if let Some(rec) = known {
            // Byte for byte the envelope that was verified when it was accepted.
            if rec.envelope == body {
                return Ok(());
            }
            return devices
                .verify_signature(job, now)
                .map_err(|e| e.to_string());
        }
        devices.verify(job, now).map_err(|e| e.to_string())?;
        let signer = crate::guard::devices::signer_of(&job.origin);
        match store.claim_nonce(signer, &job.nonce, &id).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(SignatureError::Replayed(job.nonce.clone()).to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Run a job here and now, without a queue (`deskhand skills run`, `deskhand /trigger`, the
    /// demo). The job is recorded like any other, so it shows in `jobs list` and the dashboard.
    pub async fn run_now(&self, job: Job) -> Result<crate::store::JobRecord, AgentError> {
        let audit = self.inner.store.audit();
        let id = job.id.to_string();
        let skills = self.skills();
        let checked = job.validate().and_then(|_| {
            let (name, params) = job.resolved();
            skills.check(&name, &params)
        });
        let (def, params) = match checked {
            Ok(x) => x,
            Err(e) => {
                audit.record(
                    "job.refused",
                    Some(&id),
                    serde_json::json!({"origin": job.origin, "reason": e.to_string()}),
                );
                return Err(e.into());
            }
        };
        audit.record(
            "job.received",
            Some(&id),
            serde_json::json!({"skill": def.name, "origin": job.origin, "params": params}),
        );
        self.inner.store.insert(&job).await?;
        let plan = skills.plan(&def, params, Arc::clone(&self.inner.env));
        self.execute(&id, plan, None).await;
        self.refresh_dashboard().await;
        Ok(self.inner.store.get(&id).await?)
    }

    /// Run a plan, recording every transition; renews the delivery's lease while it runs.
    async fn execute(
        &self,
        id: &str,
        plan: Vec<crate::runner::Step>,
        d: Option<&Delivery>,
    ) -> Ended {
        let store = &self.inner.store;
        let queue = &self.inner.queue;
        let id = id.to_string();
        let audit = store.audit();
        audit.record(
            "job.started",
            Some(&id),
            serde_json::json!({"steps": plan.iter().map(|s| s.name.clone()).collect::<Vec<_>>()}),
        );
        self.transition(
            &id,
            Transition::Start {
                steps: plan.len() as u32,
            },
        )
        .await;
        let cancel = self.inner.interrupt.child_token();
        self.inner
            .running
            .lock()
            .await
            .insert(id.clone(), cancel.clone());
        self.inner.awake.hold("running a job");

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let run = run_plan(
            plan,
            &id,
            self.inner.cfg.parallel_steps,
            cancel.clone(),
            move |n, step| {
                let _ = tx.send((n, step.to_string()));
            },
        );
        tokio::pin!(run);
        // Renew the lease while the job runs, so long jobs are not redelivered under us.
        let mut tick = tokio::time::interval(self.inner.cfg.queue_config.lease / 3);
        tick.tick().await;
        let result = loop {
            tokio::select! {
                r = &mut run => break r,
                Some((n, step)) = rx.recv() => {
                    audit.record("step.started", Some(&id), serde_json::json!({"n": n, "step": step}));
                    self.transition(&id, Transition::Step { n, name: step }).await;
                }
                _ = tick.tick() => { if let Some(d) = d { let _ = queue.progress(d).await; } }
            }
        };
        while let Ok((n, step)) = rx.try_recv() {
            audit.record(
                "step.started",
                Some(&id),
                serde_json::json!({"n": n, "step": step}),
            );
            self.transition(&id, Transition::Step { n, name: step })
                .await;
        }
        let still_running = {
            let mut running = self.inner.running.lock().await;
            running.remove(&id);
            running.len()
        };
        if still_running == 0 {
            self.inner.awake.release_unless_due();
        }
        let ended = match result {
            Ok(_) => {
                self.transition(&id, Transition::Succeed).await;
                Ended::Done
            }
            Err(RunError::Cancelled) => {
                let asked = store
                    .get(&id)
                    .await
                    .map(|r| r.cancel_requested)
                    .unwrap_or(false);
                if asked || d.is_none() {
                    self.transition(&id, Transition::Cancel).await;
                    Ended::Done
                } else {
                    // Interrupted by shutdown: hand it back so it runs again after restart.
                    self.transition(
                        &id,
                        Transition::Requeue("agent shutting down; handed back to the queue".into()),
                    )
                    .await;
                    Ended::HandedBack
                }
            }
            Err(RunError::Step {
                error: crate::runner::StepError::Held { why, .. },
                ..
            }) => {
                // Parked in the store; the held-job watcher puts it back on the queue once the
                // person has fixed the cause.
                self.transition(&id, Transition::Hold(why)).await;
                Ended::Done
            }
            Err(e) => {
                self.transition(&id, Transition::Fail(e.to_string())).await;
                Ended::Done
            }
        };
        if let Ok(rec) = store.get(&id).await {
            audit.record(
                "job.ended",
                Some(&id),
                serde_json::json!({"state": rec.state.as_str(), "error": rec.error, "outputs": rec.outputs}),
            );
            self.after_job(&rec).await;
        }
        ended
    }
}

/// How [`Agent::execute`] left a job.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// Finished (any outcome) or held: acknowledge the delivery.
    Done,
    /// Interrupted by shutdown: give the delivery back.
    HandedBack,
}

/// Validate a job against the skills and enqueue it (used by the daemon and by `dispatch`).
pub async fn submit(
    store: &Store,
    queue: &Queue,
    skills: &Skills,
    mut job: Job,
) -> Result<String, AgentError> {
    let audit = store.audit();
    let id = job.id.to_string();
    // Submitted on this desktop (the CLI, the local API): signed with its own device key. A job
    // that arrives signed keeps its signature, which must then verify.
    let devices = crate::guard::devices::Devices::in_dir(store.private_dir());
    // Signed here just now (fresh time, fresh random nonce): nothing to verify or replay.
    let self_signed = job.signature.is_none();
    if self_signed {
        devices
            .local_key()
            .map_err(|e| AgentError::Job(JobError::Signature(e.to_string())))?
            .sign(&mut job);
    }
    let checked = job
        .validate()
        .and_then(|_| {
            if self_signed {
                return Ok(());
            }
            devices
                .verify(&job, chrono::Utc::now())
                .map_err(|e| JobError::Signature(e.to_string()))
        })
        .and_then(|_| {
            let (name, params) = job.resolved();
            skills.check(&name, &params).map(|_| ())
        })
        .and_then(|_| {
            let n = job.to_bytes().len();
            if n > crate::job::MAX_JOB_BYTES {
                Err(JobError::TooLarge(n))
            } else {
                Ok(())
            }
        });
    if let Err(e) = checked {
        audit.record(
            "job.refused",
            Some(&id),
            serde_json::json!({"origin": job.origin, "reason": e.to_string()}),
        );
        return Err(e.into());
    }
    if !self_signed
        && !store
            .claim_nonce(
                crate::guard::devices::signer_of(&job.origin),
                &job.nonce,
                &id,
            )
            .await?
    {
        let e = JobError::Signature(
            crate::guard::devices::SignatureError::Replayed(job.nonce.clone()).to_string(),
        );
        audit.record(
            "job.refused",
            Some(&id),
            serde_json::json!({"origin": job.origin, "reason": e.to_string()}),
        );
        return Err(e.into());
    }
    let (name, params) = job.resolved();
    audit.record(
        "job.received",
        Some(&id),
        serde_json::json!({"skill": name, "origin": job.origin, "params": params}),
    );
    match queue {
        // One transaction records the job and enqueues it.
        Queue::Embedded(q) => {
            store.insert_and_enqueue(&job).await?;
            q.wake();
        }
        Queue::Nats(_) => {
            store.insert(&job).await?;
            queue.publish(&job).await?;
        }
    }
    Ok(job.id.to_string())
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
