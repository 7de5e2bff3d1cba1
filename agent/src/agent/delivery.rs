//! Running jobs: a queue delivery from admission to acknowledgement, a job run here and now, and
//! the execution of a plan with every transition recorded.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::admit::{admit, Admitted, Entry};
use super::{Agent, AgentError};
use crate::job::{Job, Transition};
use crate::queue::Delivery;
use crate::runner::{run_plan, RunError};

impl Agent {
    /// One delivery from the queue: admitted, checked against the ledger, run, then acked (or
    /// handed back, or dead-lettered with its reason).
    pub(super) async fn handle(&self, d: Delivery) {
        let store = &self.inner.store;
        let queue = &self.inner.queue;
        let skills = self.skills();
        let parsed = Job::from_bytes(&d.body);
        let known = match &parsed {
            Ok(job) => {
                let id = job.id.to_string();
                // A lease that ran out while we were still running the job: the running copy
                // will ack it.
                if self.inner.running.lock().await.contains_key(&id) {
                    tracing::debug!(job = %id, "already running here; ignoring the duplicate delivery");
                    return;
                }
                // Known already when it was submitted here (or delivered before): one read
                // serves the signature check and the ledger below.
                store.get(&id).await.ok()
            }
            Err(_) => None,
        };
        let entry = Entry::Delivered {
            parsed: &parsed,
            body: &d.body,
            known: known.as_ref(),
            queued_at: d.queued_at,
        };
        if let Err(denied) = admit(store, &skills, entry).await {
            let (job_id, reason) = denied.for_dead_letter();
            let _ = queue.dead_letter(store, d, job_id, &reason).await;
            return;
        }
        let Ok(job) = parsed else {
            unreachable!("admission refuses an envelope that did not parse")
        };
        let id = job.id.to_string();
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
        // The skill as it stands now (it may have changed, or lost its trust, since it was sent).
        let (def, params) = match admit(store, &skills, Entry::Runnable(&job)).await {
            Ok(Admitted {
                skill: Some(skill), ..
            }) => skill,
            Ok(_) => unreachable!("admitting a runnable job checks its skill"),
            Err(denied) => {
                let (job_id, reason) = denied.for_dead_letter();
                self.transition(&id, Transition::Fail(reason.clone())).await;
                let _ = queue.dead_letter(store, d, job_id, &reason).await;
                return;
            }
        };
        let plan = skills.plan(&def, params, Arc::clone(&self.inner.env));
        let (ended, _) = self.execute(&id, plan, Some(&d)).await;
        if ended == Ended::HandedBack {
            let _ = queue.release(d).await;
            return;
        }
        if let Err(e) = queue.ack(d).await {
            // The ledger makes a redelivery harmless.
            tracing::warn!(job = %id, error = %e, "ack failed; a redelivery will be skipped");
        }
    }

    /// Run a job here and now, without a queue (`deskhand skills run`, `deskhand /trigger`, the
    /// demo). The job is recorded like any other, so it shows in `jobs list` and the dashboard.
    pub async fn run_now(&self, job: Job) -> Result<crate::store::JobRecord, AgentError> {
        Ok(self.run_now_with_results(job).await?.0)
    }

    /// [`Agent::run_now`], also returning each step's result by step name (empty unless the job
    /// succeeded): what the MCP server answers a tool call with.
    pub async fn run_now_with_results(
        &self,
        job: Job,
    ) -> Result<(crate::store::JobRecord, HashMap<String, Value>), AgentError> {
        let id = job.id.to_string();
        let skills = self.skills();
        let (def, params) = match admit(&self.inner.store, &skills, Entry::RunNow(&job)).await? {
            Admitted {
                skill: Some(skill), ..
            } => skill,
            _ => unreachable!("admitting a job to run now checks its skill"),
        };
        self.inner.store.audit().record(
            "job.received",
            Some(&id),
            serde_json::json!({"skill": def.name, "origin": job.origin, "params": params}),
        );
        self.inner.store.insert(&job).await?;
        let plan = skills.plan(&def, params, Arc::clone(&self.inner.env));
        let (_, results) = self.execute(&id, plan, None).await;
        self.refresh_dashboard().await;
        Ok((self.inner.store.get(&id).await?, results))
    }

    /// Run a plan, recording every transition; renews the delivery's lease while it runs.
    /// Returns how it ended and, when it succeeded, each step's result.
    async fn execute(
        &self,
        id: &str,
        plan: Vec<crate::runner::Step>,
        d: Option<&Delivery>,
    ) -> (Ended, HashMap<String, Value>) {
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
        let mut results = HashMap::new();
        let ended = match result {
            Ok(r) => {
                results = r;
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
        (ended, results)
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
