//! The agent's side of schedules: when a slot is due, claim it in the ledger (at most once, also
//! across restarts and processes), then submit a job whose id the claim recorded; when the job
//! ends, write its outcome on the run. A claim whose job never reached the store (a crash between
//! the two) is resubmitted with the same id on start, so a slot is never lost and never doubled.
//! While a slot is due within a few minutes, or a job runs, the machine is kept awake.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use deskhand_schedule::{Inhibitor, Ledger, Outcome};
use serde_json::{Map, Value};

use crate::job::{Job, JobState};

/// Where the schedule ledger lives.
pub fn ledger_path(workspace: &Path) -> PathBuf {
    workspace.join(".deskhand/schedules.db")
}

/// Jobs started by a schedule carry this origin: `schedule:<id>@<due RFC 3339>`.
pub fn origin(schedule_id: &str, due: chrono::DateTime<Utc>) -> String {
    format!("schedule:{schedule_id}@{}", due.to_rfc3339())
}

/// The schedule id and due time in a job's origin.
pub fn parse_origin(origin: &str) -> Option<(String, chrono::DateTime<Utc>)> {
    let rest = origin.strip_prefix("schedule:")?;
    let (id, due) = rest.split_once('@')?;
    let due = chrono::DateTime::parse_from_rfc3339(due)
        .ok()?
        .with_timezone(&Utc);
    Some((id.to_string(), due))
}

/// The job for a claimed slot.
pub fn job_for(
    job_id: ulid::Ulid,
    schedule_id: &str,
    due: chrono::DateTime<Utc>,
    skill: &str,
    params: &Map<String, Value>,
) -> Job {
    let mut job = Job::new(skill, params.clone(), origin(schedule_id, due));
    job.id = job_id;
    job
}

/// How a finished job is written on its run.
pub fn outcome_of(state: JobState, error: Option<&str>) -> Option<Outcome> {
    Some(match state {
        JobState::Succeeded => Outcome::Ok,
        JobState::Failed => Outcome::Error(error.unwrap_or("failed").to_string()),
        JobState::Cancelled => Outcome::Error("cancelled".into()),
        JobState::Held => Outcome::Held(error.unwrap_or("connection needs the person").to_string()),
        JobState::Queued | JobState::Running => return None,
    })
}

/// Keeps the machine awake while work runs or a schedule is about to be due.
pub struct KeepAwake {
    /// The inhibitor and the count of holds so far (a delayed release checks nobody held since).
    inhibitor: Arc<Mutex<(Option<Inhibitor>, u64)>>,
    due_soon: Arc<std::sync::atomic::AtomicBool>,
}

/// How long the inhibitor stays after the last job: a stream of short jobs takes it once instead
/// of starting `systemd-inhibit` per job (that was a quarter of the CPU in the dispatch benchmark).
pub const AWAKE_AFTER: Duration = Duration::from_secs(10);

impl KeepAwake {
    /// `enabled: false` (`--keep-awake=false`) never takes an inhibitor.
    pub fn new(enabled: bool, command: Option<PathBuf>) -> KeepAwake {
        KeepAwake {
            inhibitor: Arc::new(Mutex::new((enabled.then(|| Inhibitor::new(command)), 0))),
            due_soon: Default::default(),
        }
    }

    /// Take the inhibitor (idempotent).
    pub fn hold(&self, why: &str) {
        let mut g = self.inhibitor.lock().unwrap_or_else(|p| p.into_inner());
        g.1 += 1;
        if let Some(i) = g.0.as_mut() {
            if let Err(e) = i.hold(why) {
                tracing::debug!(error = %e, "cannot keep the machine awake");
            }
        }
    }

    /// Let go after [`AWAKE_AFTER`], unless a schedule is due soon or something held it since.
    pub fn release_unless_due(&self) {
        if self.due_soon.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let holds = self.inhibitor.lock().unwrap_or_else(|p| p.into_inner()).1;
        let inhibitor = Arc::clone(&self.inhibitor);
        let due_soon = Arc::clone(&self.due_soon);
        let release = move || {
            // Checked under the lock, so a hold cannot slip in between the check and the release.
            let mut g = inhibitor.lock().unwrap_or_else(|p| p.into_inner());
            if g.1 == holds && !due_soon.load(std::sync::atomic::Ordering::SeqCst) {
                if let Some(i) = g.0.as_mut() {
                    i.release();
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    tokio::time::sleep(AWAKE_AFTER).await;
                    release();
                });
            }
            Err(_) => release(),
        }
    }

    /// Let go now (the agent is stopping).
    pub fn release(&self) {
        let mut g = self.inhibitor.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = g.0.as_mut() {
            i.release();
        }
    }

    /// Record whether a schedule is due within the next few minutes.
    pub fn set_due_soon(&self, soon: bool, jobs_running: bool) {
        self.due_soon
            .store(soon, std::sync::atomic::Ordering::SeqCst);
        if soon {
            self.hold("a scheduled skill is due within minutes");
        } else if !jobs_running {
            self.release_unless_due();
        }
    }

    /// Whether the inhibitor is held now.
    pub fn is_held(&self) -> bool {
        self.inhibitor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .as_mut()
            .is_some_and(|i| i.is_held())
    }
}

/// How long before a due time the machine is kept awake.
pub const AWAKE_BEFORE: Duration = Duration::from_secs(5 * 60);

/// A slot more than this late counts as missed (asleep or agent down).
pub const LATE_AFTER: Duration = Duration::from_secs(120);

/// Open the ledger on the blocking pool.
pub async fn open(workspace: &Path) -> Result<Arc<Ledger>, deskhand_schedule::ScheduleError> {
    let path = ledger_path(workspace);
    tokio::task::spawn_blocking(move || Ledger::open(&path).map(Arc::new))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}
