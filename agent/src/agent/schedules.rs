//! Schedules: the loop that claims due slots and submits their jobs, recovery of slots claimed
//! before a crash, and the outcome written back on a slot when its job ends.

use std::sync::Arc;
use std::time::Duration;

use super::Agent;
use crate::job::Job;

impl Agent {
    /// Claims due schedule slots and submits their jobs; keeps the machine awake before a slot.
    pub(super) async fn watch_schedules(&self) {
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

    /// After a job ends: write its outcome on its schedule run, and refresh the dashboard.
    pub(super) async fn after_job(&self, rec: &crate::store::JobRecord) {
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
}
