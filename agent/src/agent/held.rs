//! The held-job watcher: a job held for the person (an account to reconnect) goes back on the
//! queue by itself once what held it is fixed.

use std::sync::Arc;

use super::Agent;
use crate::job::{Job, Transition};

impl Agent {
    /// Puts held jobs back on the queue once what held them is fixed (a reconnected account).
    pub(super) async fn watch_held(&self) {
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
                let sent = self
                    .inner
                    .queue
                    .requeue(&self.inner.store, &job, ev.seq)
                    .await
                    .map_err(|e| e.to_string());
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
}
