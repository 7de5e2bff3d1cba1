//! The agent's own state: a SQLite file (WAL) in the workspace's `.deskhand/`. Jobs, their events
//! (every transition, in order) and — for the embedded queue — the queue table live here.
//!
//! rusqlite is synchronous; every call runs on the blocking pool behind one connection per process.
//! Other processes (the CLI) open their own connection to the same file; WAL lets readers and one
//! writer work at once, and `busy_timeout` rides out the short write locks.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::job::{next_state, Job, JobEvent, JobState, Transition};

/// Store failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite said no.
    #[error("state database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// No such job.
    #[error("no job {0}; `deskhand jobs list` shows the known ones")]
    NotFound(String),
    /// A stored row could not be read back.
    #[error("corrupt row for job {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Another connection held a lock SQLite would not wait for (its busy handler is skipped
    /// where waiting could deadlock): worth trying again shortly.
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::Sqlite { source, .. } if is_busy(source))
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// A job as the store knows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRecord {
    /// ULID.
    pub id: String,
    /// Skill name.
    pub skill: String,
    /// Current state.
    pub state: JobState,
    /// Current step (1-based).
    pub step: u32,
    /// Steps in the plan.
    pub steps: u32,
    /// Failure reason.
    pub error: Option<String>,
    /// Files the job wrote, relative to the workspace.
    pub outputs: Vec<String>,
    /// Times an agent started it.
    pub attempts: u32,
    /// Someone asked to cancel it.
    pub cancel_requested: bool,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// The envelope as received.
    #[serde(skip)]
    pub envelope: Vec<u8>,
}

/// Handle to the state database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    writer: std::sync::mpsc::Sender<WriteOp>,
    /// Dropped with the last handle, which ends the checkpoint thread.
    _checkpoints: std::sync::mpsc::Sender<()>,
    path: PathBuf,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    skill TEXT NOT NULL,
    envelope BLOB NOT NULL,
    state TEXT NOT NULL,
    step INTEGER NOT NULL DEFAULT 0,
    steps INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    outputs TEXT NOT NULL DEFAULT '[]',
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    step INTEGER NOT NULL,
    steps INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_job ON events(job_id, seq);
CREATE TABLE IF NOT EXISTS skill_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS queue (
    id TEXT PRIMARY KEY,
    body BLOB NOT NULL,
    enqueued_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    deliveries INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_order ON queue(enqueued_at);
CREATE TABLE IF NOT EXISTS nonces (
    device TEXT NOT NULL,
    nonce TEXT NOT NULL,
    job TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (device, nonce)
);
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    job TEXT NOT NULL,
    skill TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    preview TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    decided_by TEXT,
    decided_at TEXT
);
CREATE INDEX IF NOT EXISTS approvals_pending ON approvals(state, expires_at);
CREATE TABLE IF NOT EXISTS answers (
    approval TEXT PRIMARY KEY,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT,
    body BLOB NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
";

impl Store {
    /// The state file's place in a workspace.
    pub fn path_in(workspace: &Path) -> PathBuf {
        workspace.join(".deskhand").join("state.db")
    }

    /// The audit log kept beside this state file.
    pub fn audit(&self) -> crate::audit::AuditLog {
        crate::audit::AuditLog::at(
            self.path
                .parent()
                .unwrap_or(Path::new("."))
                .join("audit.jsonl"),
        )
    }

    /// Open (creating if needed) the workspace's state database.
    pub fn open(workspace: &Path) -> Result<Store, StoreError> {
        Self::open_file(&Self::path_in(workspace))
    }

    /// Open a specific file.
    pub fn open_file(path: &Path) -> Result<Store, StoreError> {
        let err = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
            // The agent's folder holds keys, the token, job parameters and the audit log: only
            // its owner may list or read it, whatever each file's own mode.
            use std::os::unix::fs::PermissionsExt;
            if dir.file_name() == Some(std::ffi::OsStr::new(".deskhand"))
                && std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
            {
                let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
            }
        }
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        // Two processes opening at once (the daemon starting while the CLI queues a job) can get
        // SQLITE_BUSY here without the busy handler being asked; the schema is idempotent.
        let started = std::time::Instant::now();
        loop {
            match conn.execute_batch(SCHEMA) {
                Ok(()) => break,
                Err(e) if is_busy(&e) && started.elapsed() < std::time::Duration::from_secs(10) => {
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                Err(e) => return Err(err(e)),
            }
        }
        let wconn = Connection::open(path).map_err(err)?;
        wconn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        // `synchronous` is per connection, and this one does the writing: NORMAL in WAL mode
        // survives a crashed or killed process (the commit is in the OS's cache); only a power cut
        // may lose the last commits. FULL fsyncs every commit: 350-500 us a write here.
        // The WAL is copied back into the database by a thread of its own (below), so no commit
        // pays for a checkpoint's fsyncs: with SQLite's default (1,000 pages), every ~100th job
        // waited for one. 50,000 pages (a few seconds of a burst) stays as a backstop should that
        // thread fall behind (long readers), and the WAL file is cut back to 64 MiB after a reset.
        wconn
            .execute_batch(
                "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 50000; \
                 PRAGMA journal_size_limit = 67108864;",
            )
            .map_err(err)?;
        let cconn = Connection::open(path).map_err(err)?;
        let (checkpoints, stop) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("deskhand-store-checkpoint".into())
            .spawn(move || checkpoint_wal(cconn, stop))
            .map_err(|e| err(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
        let (writer, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("deskhand-store-writer".into())
            .spawn(move || group_commit(wconn, rx))
            .map_err(|e| err(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            writer,
            _checkpoints: checkpoints,
            path: path.to_path_buf(),
        })
    }

    /// Run `f` with the connection on the blocking pool.
    pub(crate) async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(&self.conn);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut c).map_err(|source| StoreError::Sqlite { path, source })
        })
        .await
        .expect("store task panicked")
    }

    /// Record a newly accepted job as queued (idempotent: a known id is left as it is).
    pub async fn insert(&self, job: &Job) -> Result<bool, StoreError> {
        self.write(Write::Insert(NewJob::of(job), None))
            .await
            .map(|r| matches!(r, Written::Inserted(true)))
    }

    /// Record a job and put it on the embedded queue, in one transaction.
    pub async fn insert_and_enqueue(&self, job: &Job) -> Result<bool, StoreError> {
        let body = job.to_bytes();
        self.write(Write::Insert(NewJob::of(job), Some(body)))
            .await
            .map(|r| matches!(r, Written::Inserted(true)))
    }

    /// Apply a transition: checks the state machine, stores the new state and the event.
    /// Returns the event, or `None` when the current state absorbs the transition.
    pub async fn transition(
        &self,
        id: &str,
        t: Transition,
    ) -> Result<Option<JobEvent>, StoreError> {
        match self.write(Write::Transition(id.to_string(), t)).await? {
            Written::Event(e) => Ok(e),
            Written::Inserted(_) | Written::Claimed(_) => Ok(None),
        }
    }

    /// Embedded queue: lease the next available delivery to `owner`.
    pub(crate) async fn queue_claim(
        &self,
        owner: &str,
        lease_ms: i64,
        max: u32,
    ) -> Result<Vec<(String, Vec<u8>, u32)>, StoreError> {
        match self
            .write(Write::Claim {
                owner: owner.to_string(),
                lease_ms,
                max,
            })
            .await?
        {
            Written::Claimed(c) => Ok(c),
            _ => Ok(Vec::new()),
        }
    }

    /// Embedded queue: run a statement with parameters (key, owner, number) through the writer.
    pub(crate) async fn queue_exec(
        &self,
        sql: &'static str,
        key: &str,
        owner: &str,
        n: i64,
    ) -> Result<(), StoreError> {
        self.write(Write::Queue(sql, key.to_string(), owner.to_string(), n))
            .await
            .map(|_| ())
    }

    async fn write(&self, w: Write) -> Result<Written, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer.send((w, tx)).map_err(|_| StoreError::Sqlite {
            path: self.path.clone(),
            source: rusqlite::Error::InvalidQuery,
        })?;
        rx.await
            .map_err(|_| StoreError::Sqlite {
                path: self.path.clone(),
                source: rusqlite::Error::InvalidQuery,
            })?
            .map_err(|source| StoreError::Sqlite {
                path: self.path.clone(),
                source,
            })
    }

    /// The agent's private folder (`.deskhand/`).
    pub fn private_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Record that `device` used `nonce` for `job`. False when another job already used it (a
    /// replay); the same job again (a redelivery) is fine.
    pub async fn claim_nonce(
        &self,
        device: &str,
        nonce: &str,
        job: &str,
    ) -> Result<bool, StoreError> {
        let (d, n, j) = (device.to_string(), nonce.to_string(), job.to_string());
        self.with(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO nonces (device, nonce, job, at) VALUES (?1, ?2, ?3, ?4)",
                params![d, n, j, Utc::now().to_rfc3339()],
            )?;
            let owner: String = c.query_row(
                "SELECT job FROM nonces WHERE device = ?1 AND nonce = ?2",
                params![d, n],
                |r| r.get(0),
            )?;
            Ok(owner == j)
        })
        .await
    }

    /// Remember a file the job wrote (relative to the workspace).
    pub async fn add_output(&self, id: &str, rel: &str) -> Result<(), StoreError> {
        let (id, rel) = (id.to_string(), rel.to_string());
        self.with(move |c| {
            let cur: String =
                c.query_row("SELECT outputs FROM jobs WHERE id = ?1", params![id], |r| {
                    r.get(0)
                })?;
            let mut list: Vec<String> = serde_json::from_str(&cur).unwrap_or_default();
            if !list.contains(&rel) {
                list.push(rel);
            }
            c.execute(
                "UPDATE jobs SET outputs = ?2 WHERE id = ?1",
                params![id, serde_json::to_string(&list).unwrap_or_default()],
            )?;
            Ok(())
        })
        .await
    }

    /// A skill's remembered value (e.g. when the last status report ended).
    pub async fn skill_state(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let key = key.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT value FROM skill_state WHERE key = ?1",
                params![key],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map(|v| v.and_then(|v| serde_json::from_str(&v).ok()))
        })
        .await
    }

    /// Remember a skill's value.
    pub async fn set_skill_state(
        &self,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.with(move |c| {
            c.execute(
                "INSERT INTO skill_state(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(|_| ())
        })
        .await
    }

    /// Ask for a job to be cancelled. Returns its state then.
    pub async fn request_cancel(&self, id: &str) -> Result<JobState, StoreError> {
        let idc = id.to_string();
        let state = self
            .with(move |c| {
                c.execute(
                    "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1",
                    params![idc],
                )?;
                c.query_row("SELECT state FROM jobs WHERE id = ?1", params![idc], |r| {
                    r.get::<_, String>(0)
                })
                .optional()
            })
            .await?;
        state
            .and_then(|s| JobState::parse(&s))
            .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// One job.
    pub async fn get(&self, id: &str) -> Result<JobRecord, StoreError> {
        let idc = id.to_string();
        self.with(move |c| {
            c.prepare_cached(&format!("{SELECT_JOB} WHERE id = ?1"))?
                .query_row(params![idc], row_to_job)
                .optional()
        })
        .await?
        .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// Most recent jobs first.
    pub async fn list(&self, limit: u32) -> Result<Vec<JobRecord>, StoreError> {
        self.with(move |c| {
            let mut st = c.prepare(&format!("{SELECT_JOB} ORDER BY id DESC LIMIT ?1"))?;
            let rows = st.query_map(params![limit], row_to_job)?;
            rows.collect()
        })
        .await
    }

    /// When each job created since `since` was created (the dashboard's jobs chart).
    pub async fn created_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        // Stored as RFC 3339 in UTC, so the text order is the time order.
        let since = since.to_rfc3339();
        self.with(move |c| {
            let mut st = c.prepare_cached("SELECT created_at FROM jobs WHERE created_at >= ?1")?;
            let rows = st.query_map(params![since], |r| r.get::<_, String>(0))?;
            rows.map(|r| r.map(|t| ts(&t))).collect()
        })
        .await
    }

    /// Jobs parked in the `held` state, oldest first.
    pub async fn held(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.with(move |c| {
            let mut st = c.prepare(&format!(
                "{SELECT_JOB} WHERE state = 'held' AND cancel_requested = 0 ORDER BY id"
            ))?;
            let rows = st.query_map([], row_to_job)?;
            rows.collect()
        })
        .await
    }

    /// Events of a job after `after_seq`, in order.
    pub async fn events(&self, id: &str, after_seq: i64) -> Result<Vec<JobEvent>, StoreError> {
        let id = id.to_string();
        self.with(move |c| {
            let mut st = c.prepare(
                "SELECT seq, job_id, at, kind, state, step, steps, message FROM events WHERE job_id = ?1 AND seq > ?2 ORDER BY seq",
            )?;
            let rows = st.query_map(params![id, after_seq], |r| {
                let at: String = r.get(2)?;
                let state: String = r.get(4)?;
                Ok(JobEvent {
                    seq: r.get(0)?,
                    job_id: r.get(1)?,
                    at: DateTime::parse_from_rfc3339(&at).map(|d| d.with_timezone(&Utc)).unwrap_or_default(),
                    kind: r.get(3)?,
                    state: JobState::parse(&state).unwrap_or(JobState::Queued),
                    step: r.get(5)?,
                    steps: r.get(6)?,
                    message: r.get(7)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Record a dead letter (embedded queue, and a local copy for NATS).
    pub async fn dead_letter(
        &self,
        id: Option<String>,
        body: Vec<u8>,
        reason: String,
    ) -> Result<(), StoreError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO dead_letters (id, body, reason, at) VALUES (?1, ?2, ?3, ?4)",
                params![id, body, reason, Utc::now().to_rfc3339()],
            )?;
            Ok(())
        })
        .await
    }

    /// Dead letters, oldest first: `(job id if known, reason)`.
    pub async fn dead_letters(&self) -> Result<Vec<(Option<String>, String)>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare("SELECT id, reason FROM dead_letters ORDER BY seq")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
        .await
    }
}

/// A job as the writer inserts it.
struct NewJob {
    id: String,
    skill: String,
    envelope: Vec<u8>,
}

impl NewJob {
    fn of(job: &Job) -> NewJob {
        NewJob {
            id: job.id.to_string(),
            skill: job.resolved().0,
            envelope: job.to_bytes(),
        }
    }
}

/// Writes that go through the group-commit thread.
enum Write {
    /// A new job (and its queue row, for the embedded queue).
    Insert(NewJob, Option<Vec<u8>>),
    /// A state transition.
    Transition(String, Transition),
    /// Embedded queue: lease up to `max` of the oldest available rows to `owner` for `lease_ms`.
    Claim {
        owner: String,
        lease_ms: i64,
        max: u32,
    },
    /// Embedded queue: any other statement on the queue table (ack, release, renew).
    Queue(&'static str, String, String, i64),
}

enum Written {
    Inserted(bool),
    Event(Option<JobEvent>),
    Claimed(Vec<(String, Vec<u8>, u32)>),
}

type WriteOp = (
    Write,
    tokio::sync::oneshot::Sender<rusqlite::Result<Written>>,
);

/// Most writes are a few rows each; committing them one by one costs a WAL append and a lock each.
/// One thread takes whatever has queued up (up to 512) and commits it in one transaction: under
/// load, many jobs' transitions share a commit; idle, a write commits at once.
/// Every 500 ms, copy what the WAL holds into the database without blocking the writer
/// (`PASSIVE`); ends when the store's last handle is dropped, after a last one.
fn checkpoint_wal(conn: Connection, stop: std::sync::mpsc::Receiver<()>) {
    use std::sync::mpsc::RecvTimeoutError;
    loop {
        let done = matches!(
            stop.recv_timeout(std::time::Duration::from_millis(500)),
            Err(RecvTimeoutError::Disconnected)
        );
        if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);") {
            tracing::debug!(error = %e, "WAL checkpoint skipped");
        }
        if done {
            return;
        }
    }
}

fn group_commit(mut conn: Connection, rx: std::sync::mpsc::Receiver<WriteOp>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                let msg = e.to_string();
                for (_, reply) in batch {
                    let _ = reply.send(Err(rusqlite::Error::ToSqlConversionFailure(
                        msg.clone().into(),
                    )));
                }
                continue;
            }
        };
        let mut replies = Vec::with_capacity(batch.len());
        for (w, reply) in batch {
            let r = match w {
                Write::Insert(job, body) => apply_insert(&tx, &job, body).map(Written::Inserted),
                Write::Transition(id, t) => apply_transition(&tx, id, t).map(Written::Event),
                Write::Claim {
                    owner,
                    lease_ms,
                    max,
                } => apply_claim(&tx, &owner, lease_ms, max).map(Written::Claimed),
                Write::Queue(sql, key, owner, n) => tx
                    .prepare_cached(sql)
                    .and_then(|mut st| st.execute(params![key, owner, n]))
                    .map(|n| Written::Inserted(n > 0)),
            };
            replies.push((reply, r));
        }
        match tx.commit() {
            Ok(()) => {
                for (reply, r) in replies {
                    let _ = reply.send(r);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for (reply, _) in replies {
                    let _ = reply.send(Err(rusqlite::Error::ToSqlConversionFailure(
                        msg.clone().into(),
                    )));
                }
            }
        }
    }
}

fn apply_claim(
    tx: &rusqlite::Transaction<'_>,
    owner: &str,
    lease_ms: i64,
    max: u32,
) -> rusqlite::Result<Vec<(String, Vec<u8>, u32)>> {
    let now = Utc::now().timestamp_millis();
    let rows: Vec<(String, Vec<u8>, u32)> = tx
        .prepare_cached(
            "SELECT id, body, deliveries FROM queue WHERE lease_until IS NULL OR lease_until < ?1 ORDER BY enqueued_at, rowid LIMIT ?2",
        )?
        .query_map(params![now, max], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut st = tx.prepare_cached("UPDATE queue SET lease_owner = ?2, lease_until = ?3, deliveries = deliveries + 1 WHERE id = ?1")?;
    for (id, _, _) in &rows {
        st.execute(params![id, owner, now + lease_ms])?;
    }
    Ok(rows)
}

fn apply_insert(
    tx: &rusqlite::Transaction<'_>,
    job: &NewJob,
    queue_body: Option<Vec<u8>>,
) -> rusqlite::Result<bool> {
    let now = Utc::now().to_rfc3339();
    let n = tx.prepare_cached(
        "INSERT OR IGNORE INTO jobs (id, skill, envelope, state, created_at, updated_at) VALUES (?1, ?2, ?3, 'queued', ?4, ?4)",
    )?
    .execute(params![job.id, job.skill, job.envelope, now])?;
    if n == 1 {
        tx.prepare_cached(
            "INSERT INTO events (job_id, at, kind, state, step, steps, message) VALUES (?1, ?2, 'queued', 'queued', 0, 0, 'queued')",
        )?
        .execute(params![job.id, now])?;
    }
    if let Some(body) = queue_body {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO queue (id, body, enqueued_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![job.id, body, Utc::now().timestamp_millis()])?;
    }
    Ok(n == 1)
}

fn apply_transition(
    tx: &rusqlite::Transaction<'_>,
    id: String,
    t: Transition,
) -> rusqlite::Result<Option<JobEvent>> {
    let row: Option<(String, u32, u32)> = tx
        .prepare_cached("SELECT state, step, steps FROM jobs WHERE id = ?1")?
        .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((state, mut step, mut steps)) = row else {
        return Ok(None);
    };
    let Some(state) = JobState::parse(&state) else {
        return Ok(None);
    };
    let Some(new) = next_state(state, &t) else {
        tracing::debug!(job = %id, ?state, ?t, "transition absorbed");
        return Ok(None);
    };
    let now = Utc::now();
    let (kind, message, error) = match &t {
        Transition::Start { steps: n } => {
            steps = *n;
            step = 0;
            tx.prepare_cached(
                "UPDATE jobs SET attempts = attempts + 1, error = NULL WHERE id = ?1",
            )?
            .execute(params![id])?;
            ("running", format!("started ({n} steps)"), None)
        }
        Transition::Step { n, name } => {
            step = *n;
            ("step", name.clone(), None)
        }
        Transition::Succeed => {
            step = steps;
            ("succeeded", "done".to_string(), None)
        }
        Transition::Fail(e) => ("failed", e.clone(), Some(e.clone())),
        Transition::Cancel => (
            "cancelled",
            "cancelled".to_string(),
            Some("cancelled".to_string()),
        ),
        Transition::Requeue(why) => ("queued", why.clone(), None),
        Transition::Hold(why) => ("held", why.clone(), Some(why.clone())),
        Transition::Progress { kind, text } => (kind.as_str(), text.clone(), None),
    };
    tx.prepare_cached(
        "UPDATE jobs SET state = ?2, step = ?3, steps = ?4, error = COALESCE(?5, error), updated_at = ?6 WHERE id = ?1",
    )?
    .execute(params![id, new.as_str(), step, steps, error, now.to_rfc3339()])?;
    tx.prepare_cached(
        "INSERT INTO events (job_id, at, kind, state, step, steps, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![id, now.to_rfc3339(), kind, new.as_str(), step, steps, message])?;
    let seq = tx.last_insert_rowid();
    Ok(Some(JobEvent {
        seq,
        job_id: id,
        at: now,
        kind: kind.into(),
        state: new,
        step,
        steps,
        message,
    }))
}

const SELECT_JOB: &str =
    "SELECT id, skill, state, step, steps, error, outputs, attempts, cancel_requested, created_at, updated_at, envelope FROM jobs";

fn row_to_job(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRecord> {
    let state: String = r.get(2)?;
    let outputs: String = r.get(6)?;
    let created: String = r.get(9)?;
    let updated: String = r.get(10)?;
    Ok(JobRecord {
        id: r.get(0)?,
        skill: r.get(1)?,
        state: JobState::parse(&state).unwrap_or(JobState::Failed),
        step: r.get(3)?,
        steps: r.get(4)?,
        error: r.get(5)?,
        outputs: serde_json::from_str(&outputs).unwrap_or_default(),
        attempts: r.get(7)?,
        cancel_requested: r.get::<_, i64>(8)? != 0,
        created_at: ts(&created),
        updated_at: ts(&updated),
        envelope: r.get(11)?,
    })
}

/// A stored RFC 3339 time (the epoch if it does not parse).
fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lifecycle_is_stored_with_every_event() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        let job = Job::new("noop", Default::default(), "test");
        let id = job.id.to_string();
        assert!(s.insert(&job).await.unwrap());
        assert!(!s.insert(&job).await.unwrap(), "dedupe by id");
        s.transition(&id, Transition::Start { steps: 2 })
            .await
            .unwrap()
            .unwrap();
        s.transition(
            &id,
            Transition::Step {
                n: 1,
                name: "a".into(),
            },
        )
        .await
        .unwrap()
        .unwrap();
        let done = s
            .transition(&id, Transition::Succeed)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.state, JobState::Succeeded);
        assert!(
            s.transition(&id, Transition::Fail("late".into()))
                .await
                .unwrap()
                .is_none(),
            "terminal absorbs"
        );
        let kinds: Vec<_> = s
            .events(&id, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["queued", "running", "step", "succeeded"]);
        let rec = s.get(&id).await.unwrap();
        assert_eq!(
            (rec.state, rec.step, rec.steps, rec.attempts),
            (JobState::Succeeded, 2, 2, 1)
        );
        assert!(matches!(s.get("nope").await, Err(StoreError::NotFound(_))));
    }
}
